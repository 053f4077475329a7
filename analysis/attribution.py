"""Time by queue operation, per thread role, from sampled profiles.

:func:`attribute` turns :class:`~analysis.profile.SampledProfile` values (any profiler) into
an :class:`Attribution`: for the event loop, the aiosqlite threads and any other thread, the
wall time of each :class:`~analysis.operations.Category`, how much of it was waiting (when
the profiler samples waits), and inside each category the top functions by self and total
time. :func:`compare_attributions` says whether two attributions rank the operations alike.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .operations import (
    BUILTIN,
    Classifier,
    Op,
    OperationMap,
    in_order,
    is_capture_frame,
    is_event_loop_io,
    is_operation,
    is_plumbing_frame,
    is_sql_call,
    is_store_frame,
    parks_thread,
    sync_primitive,
)
from .profile import Frame, SampledProfile, Stack, ThreadRole, in_event_loop

TOP_FUNCTIONS = 8
QUEUE_TOP_FUNCTIONS = 3

BLOCKING_CALLS = frozenset(
    {
        "sleep",
        "acquire",
        "recv",
        "recv_into",
        "read",
        "readinto",
        "readline",
        "write",
        "send",
        "sendall",
        "connect",
        "accept",
        "join",
        "getaddrinfo",
        "fsync",
        "flush",
        "wait",
    }
)
"""Innermost functions that block the thread without computing (time.sleep, a lock, I/O)."""
NATIVE_BLOCKING_CALLS = frozenset(
    {"time_sleep", "pysleep", "clock_nanosleep", "nanosleep", "os_fsync", "fsync", "fdatasync"}
)
"""Native frames (py-spy ``--native``) of a sleep or an fsync the program's Python made."""


def _is_native(frame: Frame) -> bool:
    file = frame.file or ""
    return file.endswith((".so", ".c", ".h")) or ".so." in file or frame.name.startswith("0x")


def blocking_call(frames: Sequence[Frame], stack: Stack) -> tuple[Frame, Frame] | None:
    """(the blocking call, the frame that made it) when ``stack``'s innermost frames block:
    a blocking built-in (``sleep`` as pyinstrument names ``time.sleep``) and its caller, or
    native frames of a sleep or fsync (``time_sleep`` -> ``clock_nanosleep``) and the Python
    frame above them; None otherwise, and for SQLite's own (its fsync is a commit's)."""
    if len(stack) < 2:
        return None
    native = len(stack)
    while native > 0 and _is_native(frames[stack[native - 1]]):
        native -= 1
    if native == len(stack):
        leaf, caller = frames[stack[-1]], frames[stack[-2]]
        if leaf.function not in BLOCKING_CALLS or is_event_loop_io(caller):
            return None
        return leaf, caller
    calls = [frames[i] for i in stack[native:]]
    if native == 0 or any(is_sql_call(f) for f in calls):
        return None
    named = [f for f in calls if f.function in NATIVE_BLOCKING_CALLS]
    return (named[0], frames[stack[native - 1]]) if named else None


@dataclass(frozen=True, slots=True)
class FunctionTime:
    """One function's time inside a category: as the innermost frame, and on the stack."""

    function: str
    file: str | None
    self_time: float
    total_time: float


@dataclass(frozen=True, slots=True)
class BlockingCall:
    """Samples whose innermost frame is a blocking call (:data:`BLOCKING_CALLS`), by the
    function that made it: ``time.sleep`` called from ``consume`` in ``app.py``."""

    call: str
    caller: str
    caller_file: str | None
    time: float
    samples: int


@dataclass(frozen=True, slots=True)
class SyncWait:
    """A category's samples inside an asyncio synchronisation primitive (``Lock``): suspended
    on it (waiting for another task of the same event loop to let them on), or taking and
    handing it on (``release`` waking the next waiter)."""

    primitive: str
    """The primitive's class (``Lock``, ``Semaphore``, ``Condition``, ``Event``...)."""
    waiter: str
    """The innermost frame above the primitive outside asyncio's and the standard library's
    plumbing: the code that took the lock (``WorkerEngine.serialised``)."""
    waiter_file: str | None
    time: float
    """Seconds suspended on it (waiting samples)."""
    samples: int
    """Waiting samples."""
    touches: int = 0
    """Every sample inside the primitive, waiting or running: evidence that the code uses it
    even when the profile charged the waits elsewhere."""


@dataclass(frozen=True, slots=True)
class CategoryTime:
    """One category's time on one thread role."""

    category: Op
    wall: float
    wait: float | None
    """Of ``wall``, samples whose innermost frame waits; None when the source cannot tell."""
    share: float
    """``wall`` over the role's total."""
    samples: int
    top_self: tuple[FunctionTime, ...] = ()
    top_total: tuple[FunctionTime, ...] = ()
    store: float = 0.0
    """Of ``wall``, samples inside the store's SQL code (``taskqueue/store.py``): on a
    connection thread nearly all of an operation's time, on the event loop the operations
    that ran there inline (``dispatch``)."""
    top_inner: tuple[FunctionTime, ...] = ()
    """Functions called inside the operation (below its innermost operation frame) by their
    INCLUSIVE time outside SQL and waits (``total_time``; ``self_time`` is their own): an
    encoder, a copy, a validation walk. Plumbing (asyncio, aiosqlite, threading) is left out."""
    inner_samples: tuple[tuple[str, str | None, int], ...] = ()
    """(function, file, samples) of the entries of :attr:`top_inner`."""
    inner_locked: tuple[tuple[str, str | None, float], ...] = ()
    """(function, file, time) of inner functions while inside the store's code: work done
    within the operation's transaction, holding SQLite's lock."""
    sync_waits: tuple[SyncWait, ...] = ()
    """Waiting samples suspended on an asyncio synchronisation primitive, by primitive and
    waiter, largest first (profilers that see coroutines' awaits: pyinstrument's async mode)."""
    blocking: tuple[BlockingCall, ...] = ()
    """Blocking calls by the function that made them, largest first: outside every operation
    the only place a program's sleep or fsync is named with its caller."""

    @property
    def cpu(self) -> float:
        """Wall time that was not waiting (all of it when waits are unknown)."""
        return self.wall - (self.wait or 0.0)


@dataclass(frozen=True, slots=True)
class QueueCategoryTime:
    """One queue's time in one category on one thread role (runs that drive several queues)."""

    queue: str
    category: Op
    wall: float
    share: float
    """``wall`` over everything sampled in this queue's code on the role."""
    samples: int
    top_self: tuple[FunctionTime, ...] = ()


@dataclass(frozen=True, slots=True)
class RoleAttribution:
    """Every category's time on the threads of one role (summed over those threads)."""

    role: ThreadRole
    threads: int
    unit: str
    total: float
    samples: int
    categories: tuple[CategoryTime, ...]
    excluded: float = 0.0
    """Time sampled outside the workload run (py-spy: start-up, imports, writing results)."""
    queues: tuple[QueueCategoryTime, ...] = ()
    """Time by queue, then category, when samples fell in more than one queue's code
    (the comparison workload); empty otherwise."""

    def get(self, category: Op) -> CategoryTime | None:
        """The entry of ``category`` (None when nothing was sampled in it)."""
        return next((c for c in self.categories if c.category is category), None)

    def share(self, category: Op) -> float:
        """``category``'s share of this role's wall time (0 when absent)."""
        found = self.get(category)
        return 0.0 if found is None else found.share

    @property
    def waits_known(self) -> bool:
        """True when the source tells waiting apart from computing."""
        return all(c.wait is not None for c in self.categories)

    def cpu_shares(self) -> dict[Op, float]:
        """Each operation category's share of the operations' non-waiting time."""
        cpu = {c.category: c.cpu for c in self.categories if is_operation(c.category)}
        total = sum(cpu.values())
        return {k: (v / total if total > 0 else 0.0) for k, v in cpu.items()}


@dataclass(frozen=True, slots=True)
class Attribution:
    """Where one profile artifact says the time went."""

    profiler: str
    source: str
    """The artifact, relative to its run folder."""
    roles: tuple[RoleAttribution, ...]
    measure: str = "wall"
    """``wall`` (samples include waits) or ``cpu`` (only code that ran was recorded)."""

    def role(self, role: ThreadRole) -> RoleAttribution | None:
        """The attribution of ``role`` (None if no thread of that role was sampled)."""
        return next((r for r in self.roles if r.role is role), None)

    def store_time(self) -> dict[Op, dict[ThreadRole, float]]:
        """Each operation's time in the store's SQL code, by the thread role it ran on."""
        found: dict[Op, dict[ThreadRole, float]] = defaultdict(dict)
        for role in self.roles:
            for entry in role.categories:
                if entry.store > 0 and is_operation(entry.category):
                    found[entry.category][role.role] = entry.store
        return dict(found)


class _Accumulator:
    """Sums one role's samples by category and function."""

    def __init__(self) -> None:
        self.wall: dict[Op, float] = defaultdict(float)
        self.wait: dict[Op, float] = defaultdict(float)
        self.samples: dict[Op, int] = defaultdict(int)
        self.store: dict[Op, float] = defaultdict(float)
        self.self_time: dict[Op, dict[tuple[str, str | None], float]] = defaultdict(
            lambda: defaultdict(float)
        )
        self.total_time: dict[Op, dict[tuple[str, str | None], float]] = defaultdict(
            lambda: defaultdict(float)
        )
        self.inner_total: dict[Op, dict[tuple[str, str | None], float]] = defaultdict(
            lambda: defaultdict(float)
        )
        self.inner_samples: dict[Op, dict[tuple[str, str | None], int]] = defaultdict(
            lambda: defaultdict(int)
        )
        self.inner_locked: dict[Op, dict[tuple[str, str | None], float]] = defaultdict(
            lambda: defaultdict(float)
        )
        self.blocking: dict[Op, dict[tuple[str, str, str | None], list[float]]] = defaultdict(
            lambda: defaultdict(lambda: [0.0, 0])
        )
        self.sync: dict[Op, dict[tuple[str, str, str | None], list[float]]] = defaultdict(
            lambda: defaultdict(lambda: [0.0, 0, 0])
        )
        self.threads = 0
        self.excluded = 0.0
        self.units: set[str] = set()
        self.by_queue: dict[tuple[str, Op], float] = defaultdict(float)
        self.queue_samples: dict[tuple[str, Op], int] = defaultdict(int)
        self.queue_self: dict[tuple[str, Op], dict[tuple[str, str | None], float]] = defaultdict(
            lambda: defaultdict(float)
        )
        self.queue_total: dict[tuple[str, Op], dict[tuple[str, str | None], float]] = defaultdict(
            lambda: defaultdict(float)
        )

    def add(self, profile: SampledProfile, waits_known: bool, operations: OperationMap) -> None:
        self.threads += 1
        self.units.add(profile.unit)
        classify = Classifier(profile.frames, profile.stacks, operations)
        keys = [(f.name, f.file) for f in profile.frames]
        store = frozenset(i for i, f in enumerate(profile.frames) if is_store_frame(f))
        plumbing = frozenset(
            i for i, f in enumerate(profile.frames) if is_plumbing_frame(f) or is_store_frame(f)
        )
        sql_leaves = frozenset(
            i for i, f in enumerate(profile.frames) if is_sql_call(f) or is_store_frame(f)
        )
        measuring = frozenset(i for i, f in enumerate(profile.frames) if is_capture_frame(f))
        primitives = frozenset(
            i for i, f in enumerate(profile.frames) if sync_primitive(f) is not None
        )
        # On the event loop's thread, a sample parked on another thread inside an operation
        # (a blocking Future.result(), a threading lock) holds the loop: it runs nothing else
        # meanwhile, so the time is the operation's own, not an await's.
        parked = (
            frozenset(i for i, f in enumerate(profile.frames) if parks_thread(f))
            if profile.role is ThreadRole.EVENT_LOOP
            else frozenset()
        )
        scoped = profile.whole_process and profile.role is ThreadRole.EVENT_LOOP
        for stack, weight in zip(profile.stacks, profile.weights, strict=True):
            if scoped and not in_event_loop(profile.frames, stack):
                self.excluded += weight
                continue
            category, waiting = classify.category(stack)
            if waiting and stack[-1] in parked and classify.op_frame_position(stack) is not None:
                waiting = False
            self.wall[category] += weight
            self.samples[category] += 1
            if waiting and waits_known:
                self.wait[category] += weight
            if store and not store.isdisjoint(stack):
                self.store[category] += weight
            if primitives and not primitives.isdisjoint(stack):
                waits = self.sync[category][_sync_wait(profile, stack, primitives, plumbing)]
                if waiting:
                    waits[0] += weight
                    waits[1] += 1
                waits[2] += 1
            if stack:
                self.self_time[category][keys[stack[-1]]] += weight
                blocked = blocking_call(profile.frames, stack)
                if blocked is not None:
                    call, caller = blocked
                    made = self.blocking[category][(call.name, caller.name, caller.file)]
                    made[0] += weight
                    made[1] += 1
            for key in {keys[i] for i in stack}:
                self.total_time[category][key] += weight
            # Work inside an operation that is neither SQL (the sample's innermost frame is
            # SQLite's, or the store's own statement code) nor waiting; inside the store it
            # runs within the operation's transaction.
            if not waiting and stack and stack[-1] not in sql_leaves:
                position = classify.op_frame_position(stack)
                if position is not None:
                    locked = bool(store) and not store.isdisjoint(stack)
                    inner = stack[position + 1 :]
                    if not measuring.isdisjoint(inner):
                        # The capture recording a statement (its caller, its text): the
                        # measurement's cost, which the bare run does not pay, not work of the
                        # code that called it (a program's own transaction helper).
                        inner = ()
                    # A loop parked on another thread: the call the operation made and the
                    # wait it ended in are its own work, threading's frames between them not.
                    ends = {inner[0], inner[-1]} if stack[-1] in parked else set()
                    for key in {keys[i] for i in inner if i not in plumbing or i in ends}:
                        self.inner_total[category][key] += weight
                        self.inner_samples[category][key] += 1
                        if locked:
                            self.inner_locked[category][key] += weight
            queue = classify.queue(stack)
            if queue is not None:
                self.by_queue[(queue, category)] += weight
                self.queue_samples[(queue, category)] += 1
                if stack:
                    self.queue_self[(queue, category)][keys[stack[-1]]] += weight
                for key in {keys[i] for i in stack}:
                    self.queue_total[(queue, category)][key] += weight

    def result(self, role: ThreadRole, waits_known: bool) -> RoleAttribution:
        total = sum(self.wall.values())
        categories = tuple(
            CategoryTime(
                category=category,
                wall=self.wall[category],
                wait=self.wait[category] if waits_known else None,
                share=self.wall[category] / total if total > 0 else 0.0,
                samples=self.samples[category],
                top_self=_top(self.self_time[category], self.total_time[category], by_self=True),
                top_total=_top(self.self_time[category], self.total_time[category], by_self=False),
                store=self.store[category],
                top_inner=_top_inner(self.self_time[category], self.inner_total[category]),
                inner_samples=tuple(
                    (name, file, self.inner_samples[category][(name, file)])
                    for name, file in sorted(
                        self.inner_total[category], key=lambda k: -self.inner_total[category][k]
                    )[:INNER_FUNCTIONS]
                ),
                inner_locked=tuple(
                    (name, file, seconds)
                    for (name, file), seconds in self.inner_locked[category].items()
                    if seconds > 0
                ),
                blocking=tuple(
                    BlockingCall(call, caller, file, seconds, int(samples))
                    for (call, caller, file), (seconds, samples) in sorted(
                        self.blocking[category].items(), key=lambda item: -item[1][0]
                    )[:INNER_FUNCTIONS]
                ),
                sync_waits=tuple(
                    SyncWait(primitive, waiter, file, seconds, int(samples), int(touches))
                    for (primitive, waiter, file), (seconds, samples, touches) in sorted(
                        self.sync[category].items(), key=lambda item: (-item[1][0], -item[1][2])
                    )
                ),
            )
            for category in in_order(self.samples)
            if self.samples[category]
        )
        return RoleAttribution(
            role=role,
            threads=self.threads,
            unit="/".join(sorted(self.units)),
            total=total,
            samples=sum(self.samples.values()),
            categories=categories,
            excluded=self.excluded,
            queues=self._queues(),
        )

    def _queues(self) -> tuple[QueueCategoryTime, ...]:
        totals: dict[str, float] = defaultdict(float)
        for (queue, _), wall in self.by_queue.items():
            totals[queue] += wall
        if len(totals) < 2:  # one queue: the categories above say it all
            return ()
        return tuple(
            QueueCategoryTime(
                queue=queue,
                category=category,
                wall=wall,
                share=wall / totals[queue] if totals[queue] > 0 else 0.0,
                samples=self.queue_samples[(queue, category)],
                top_self=_top(
                    self.queue_self[(queue, category)],
                    self.queue_total[(queue, category)],
                    by_self=True,
                )[:QUEUE_TOP_FUNCTIONS],
            )
            for (queue, category), wall in sorted(
                self.by_queue.items(), key=lambda item: (item[0][0], -item[1])
            )
        )


INNER_FUNCTIONS = 12


def _sync_wait(
    profile: SampledProfile,
    stack: tuple[int, ...],
    primitives: frozenset[int],
    plumbing: frozenset[int],
) -> tuple[str, str, str | None]:
    """(primitive, waiter, waiter's file) of a sample inside a synchronisation primitive:
    the class of its outermost primitive frame (``Lock.__aenter__`` -> ``Lock``), and the
    first frame above it that is not plumbing (``contextlib``) but the code that took it."""
    position = min(i for i, index in enumerate(stack) if index in primitives)
    primitive = sync_primitive(profile.frames[stack[position]]) or "?"
    waiter = next(
        (profile.frames[i] for i in reversed(stack[:position]) if i not in plumbing), None
    )
    if waiter is None:
        return primitive, "?", None
    return primitive, waiter.name, waiter.file


def _top_inner(
    self_time: dict[tuple[str, str | None], float],
    inner: dict[tuple[str, str | None], float],
) -> tuple[FunctionTime, ...]:
    best = sorted(inner.items(), key=lambda item: (-item[1], item[0][0]))[:INNER_FUNCTIONS]
    return tuple(
        FunctionTime(name, file, self_time.get((name, file), 0.0), total)
        for (name, file), total in best
        if total > 0
    )


def _top(
    self_time: dict[tuple[str, str | None], float],
    total_time: dict[tuple[str, str | None], float],
    *,
    by_self: bool,
) -> tuple[FunctionTime, ...]:
    ranking = self_time if by_self else total_time
    best = sorted(ranking.items(), key=lambda item: (-item[1], item[0][0]))[:TOP_FUNCTIONS]
    return tuple(
        FunctionTime(name, file, self_time.get((name, file), 0.0), total_time[(name, file)])
        for (name, file), value in best
        if value > 0
    )


def attribute(
    profiles: Iterable[SampledProfile],
    *,
    profiler: str,
    source: str,
    waits_known: bool = True,
    operations: OperationMap = BUILTIN,
) -> Attribution:
    """Attribute every sample of ``profiles`` to a category, per thread role.

    ``waits_known`` is False for sources whose samples never include waiting (the role's
    ``wait`` is then None and its wall time is time spent running).
    """
    by_role: dict[ThreadRole, _Accumulator] = {}
    for profile in profiles:
        by_role.setdefault(profile.role, _Accumulator()).add(profile, waits_known, operations)
    roles = tuple(by_role[role].result(role, waits_known) for role in ThreadRole if role in by_role)
    return Attribution(profiler, source, roles, "wall" if waits_known else "cpu")


# -- agreement between two attributions ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class Disagreement:
    """Two operations that two profilers rank in opposite orders beyond sampling noise."""

    first: Op
    second: Op
    shares_a: tuple[float, float]
    shares_b: tuple[float, float]


@dataclass(frozen=True, slots=True)
class Agreement:
    """Whether two attributions rank the queue's operations alike on one thread role.

    Compared on each operation's share of the operations' running (not waiting) time:
    profilers see waits differently (pyinstrument's async mode charges an ``await`` to the
    awaiting operation, py-spy sees the loop idle in its selector), but running time is what
    both sample.
    """

    role: ThreadRole
    source_a: str
    source_b: str
    ranking_a: tuple[Op, ...]
    ranking_b: tuple[Op, ...]
    shares_a: tuple[tuple[Op, float], ...]
    shares_b: tuple[tuple[Op, float], ...]
    tolerance: float
    """Share differences below this are within sampling noise (two standard errors)."""
    disagreements: tuple[Disagreement, ...]

    @property
    def agree(self) -> bool:
        """True when no two operations are ranked in opposite orders beyond the noise."""
        return not self.disagreements

    @property
    def comparable(self) -> bool:
        """False when the noise is so large that any ranking would pass as agreeing."""
        return self.tolerance < MAX_TOLERANCE

    @property
    def verdict(self) -> str:
        """``too few samples``, ``agree`` or ``disagree``: what the renderers show."""
        if not self.comparable:
            return "too few samples"
        return "agree" if self.agree else "disagree"


MIN_TOLERANCE = 0.02
MAX_TOLERANCE = 0.25


def compare_attributions(
    a: Attribution, b: Attribution, role: ThreadRole = ThreadRole.EVENT_LOOP
) -> Agreement | None:
    """How ``a`` and ``b`` rank the operations on ``role``; None if either lacks that role."""
    role_a, role_b = a.role(role), b.role(role)
    if role_a is None or role_b is None:
        return None
    shares_a, shares_b = role_a.cpu_shares(), role_b.cpu_shares()
    ops = [
        op
        for op in in_order((*shares_a, *shares_b))
        if shares_a.get(op, 0) > 0 or shares_b.get(op, 0) > 0
    ]
    tolerance = max(
        MIN_TOLERANCE,
        2
        * (
            _standard_error(shares_a, _op_samples(role_a))
            + _standard_error(shares_b, _op_samples(role_b))
        ),
    )
    disagreements = []
    for i, first in enumerate(ops):
        for second in ops[i + 1 :]:
            diff_a = shares_a.get(first, 0.0) - shares_a.get(second, 0.0)
            diff_b = shares_b.get(first, 0.0) - shares_b.get(second, 0.0)
            if diff_a * diff_b < 0 and abs(diff_a) > tolerance and abs(diff_b) > tolerance:
                disagreements.append(
                    Disagreement(
                        first,
                        second,
                        (shares_a.get(first, 0.0), shares_a.get(second, 0.0)),
                        (shares_b.get(first, 0.0), shares_b.get(second, 0.0)),
                    )
                )
    return Agreement(
        role=role,
        source_a=f"{a.profiler}: {a.source}",
        source_b=f"{b.profiler}: {b.source}",
        ranking_a=_ranking(shares_a, ops),
        ranking_b=_ranking(shares_b, ops),
        shares_a=tuple((op, shares_a.get(op, 0.0)) for op in ops),
        shares_b=tuple((op, shares_b.get(op, 0.0)) for op in ops),
        tolerance=tolerance,
        disagreements=tuple(disagreements),
    )


def _ranking(shares: dict[Op, float], ops: Sequence[Op]) -> tuple[Op, ...]:
    return tuple(sorted(ops, key=lambda op: (-shares.get(op, 0.0), ops.index(op))))


def _op_samples(role: RoleAttribution) -> int:
    return sum(c.samples for c in role.categories if is_operation(c.category))


def _standard_error(shares: dict[Op, float], samples: int) -> float:
    """The largest standard error a share estimated from ``samples`` samples can have.

    The binomial bound at p = 1/2, not the observed shares: with a handful of samples the
    observed shares are 0% and 100%, whose plug-in error is zero, and two profilers would be
    declared in disagreement on two samples (py-spy sees the event loop idle in select 94% of
    a dbops run, leaving ~5 samples in the operations).
    """
    if samples <= 0 or not shares:
        return 0.5
    return 0.5 / math.sqrt(samples)
