"""comparison: our queue and other people's queues, side by side, in one run.

Every contender (see :mod:`workloads.adapters.catalog`) runs the same two scenarios on a
fresh database, with the same payloads, one producer and one worker:

- **drain**: enqueue N tasks one at a time, then claim and complete until the queue is
  empty (claims of the contender's ``claim_batch``), then query each task's status where the
  queue has a status query;
- **cycle**: N times, enqueue one task, claim it, complete it.

Rounds interleave the contenders (the order rotates each round) and each rate is the median
over rounds, so machine noise hits every contender alike. Rates are also given as a ratio to
the plain-``sqlite3`` reference measured in the same rounds (it claims one task at a time,
like the peers, whose APIs hand out one task per call; a batched strategy's ratio above 1 is
what batching buys over that). Every call is timed around the
adapter the same way and recorded as ``<contender>.<operation>`` (``huey.claim``) in
``op-samples.npz``, so ``queueprof analyze`` and ``compare`` read a comparison run like any
other; profiler samples inside each library are attributed to operations from the adapters'
declarations. Tasks are counted: a contender that completes fewer tasks than it was given
shows them as ``lost``.
"""

from __future__ import annotations

import contextlib
import sqlite3
import statistics
import time
from array import array
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

from runs import LatencySummary, StepResult, WorkerShare, WorkloadResult
from taskqueue import QueueConfig, QueueStats, observe

from .adapters.base import DONE, STATUS_WORDS, Contender, QueueAdapter
from .adapters.catalog import CONTENDER_NAMES, REFERENCE, contenders
from .adapters.plugins import broken_plugins, installed_plugins, load_reference, verified
from .adapters.postgres import on_server, release_scratch_database
from .adapters.specs import TASKQUEUE
from .base import DerivesNothingAfterRun
from .context import RunContext
from .errors import AdapterContractError, ParameterError
from .params import Size, WorkloadParams, param, payload_bytes_param, tasks_param
from .progress import NullProgress, Progress
from .sqlcapture import operation
from .tasks import payload

T = TypeVar("T")

SCENARIOS = ("drain", "cycle")
WORKER_OPS = frozenset({"claim", "complete"})
"""The operations of the scenarios' one worker."""
WORKER = "worker"
"""That worker's name in each row's per-worker record."""
OURS = "taskqueue"
"""The contender whose drain rate the goal compares with the best peer's."""


@dataclass(frozen=True)
class ComparisonParams(WorkloadParams):
    """Options of the comparison workload."""

    workload_name = "comparison"

    contenders: tuple[str, ...] = param(
        CONTENDER_NAMES,
        "queues to run side by side (the plain sqlite3 reference always runs too): built-in "
        "names and the contenders of installed plugins (entry-point group queueprof.adapters)",
    )
    adapters: tuple[str, ...] = param(
        (),
        "more adapters, each module:attr naming a Contender (or a sequence of them, or a "
        "function returning either); `queueprof run comparison --adapter module:attr` adds one",
        optional_list=True,
    )
    tasks: int = tasks_param(3_000, "tasks per scenario (drain and cycle) per round")
    rounds: int = param(3, "interleaved rounds; each rate is the median", minimum=1, maximum=50)
    budget_s: float = param(
        1.0,
        "seconds a contender's scenario may take (0: no limit): one whose every call waits on "
        "an fsync (huey with synchronous=FULL, persist-queue) runs fewer of the tasks, at the "
        "same cost per task; the table says how many",
        minimum=0,
        maximum=3600,
    )
    payload_bytes: int = payload_bytes_param()
    backlogs: tuple[int, ...] = param(
        (),
        "backlog sweep: for each size, fill a fresh queue with that many tasks, then time "
        "claiming and completing backlog_probe of them (e.g. 1000,5000,20000); empty: no sweep",
        minimum=1,
        maximum=1_000_000,
        optional_list=True,
    )
    backlog_probe: int = param(
        500, "tasks claimed and completed at each backlog size", minimum=1, maximum=100_000
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.backlogs and min(self.backlogs) <= self.backlog_probe:
            raise ParameterError(
                f"parameter backlogs={','.join(map(str, self.backlogs))}: each size must be "
                f"more than backlog_probe={self.backlog_probe} (the tasks claimed at that size, "
                "after one untimed claim)"
            )
        if len(set(self.contenders)) != len(self.contenders):
            raise ParameterError(
                f"parameter contenders={','.join(self.contenders)}: a contender is named twice"
            )

    def check_ready(self) -> None:
        """Every chosen contender exists and its library imports; else the error says what
        to install or which names are valid."""
        for contender in self.chosen(QueueConfig()):
            contender.spec.load()

    def chosen(self, config: QueueConfig) -> list[Contender]:
        """The contenders to run: the sqlite3 reference, ``contenders`` (built-in or from
        installed plugins), then every ``adapters`` reference's, each name once."""
        # An --adapter's contenders run anyway; named in contenders too, they run once.
        referenced = [
            c for reference in self.adapters for c in load_reference(reference, verify=False)
        ]
        known: dict[str, Contender] = {
            **contenders(config),
            **installed_plugins(),
            **{c.name: c for c in referenced},
        }
        unknown = [name for name in self.contenders if name not in known]
        if unknown:
            valid = ", ".join(name for name in known if name != REFERENCE)
            raise ParameterError(
                f"parameter contenders: unknown contender {', '.join(map(repr, unknown))}; "
                f"valid: {valid} (an installed plugin adds its own names; or pass "
                "--adapter module:attr)" + "".join(f"; {b}" for b in broken_plugins())
            )
        chosen = [known[REFERENCE], *(known[name] for name in self.contenders)]
        chosen.extend(c for c in referenced if c.name not in self.contenders)
        names = [c.name for c in chosen]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ParameterError(
                f"contender {', '.join(twice)} is named twice (contenders and --adapter "
                "together); leave one out or rename the adapter's Contender"
            )
        return list(verified(chosen))


@dataclass
class Recorder:
    """One contender's samples, per operation, over every round and scenario."""

    name: str
    timings: dict[str, array[int]] = field(default_factory=dict)
    rates: dict[str, list[float]] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    scenario: str = ""
    """The scenario running now (``drain``, ``cycle``): its calls are also kept apart."""
    by_scenario: dict[str, array[int]] = field(default_factory=dict)
    """``<scenario>.<op>`` -> durations: drain and cycle latencies reported apart."""
    tasks_run: dict[str, list[int]] = field(default_factory=dict)
    """Tasks each scenario ran, per round (fewer than given when its budget ran out)."""
    backlog_costs: list[tuple[int, float]] = field(default_factory=list)
    """The backlog sweep: (backlog size, median seconds per task of one probe), one point per
    size per round."""
    worker_busy_ns: int = 0
    """Time the scenarios' one worker spent claiming and completing (its busy time; the
    enqueues are the producer's, the status queries the reader's)."""

    async def timed(self, op: str, call: Awaitable[T]) -> T:
        """Await ``call``, recording its wall time as one ``op`` sample.

        Observers (viztracer's op spans) see it as ``<contender>.<op>`` on a lane named after
        the contender, as they see our queue's own operations.
        """
        start = time.perf_counter_ns()
        with operation(f"{self.name}.{op}"):  # the statements it runs, when SQL is captured
            value = await call
        end = time.perf_counter_ns()
        self.timings.setdefault(op, array("q")).append(end - start)
        if op in WORKER_OPS:
            self.worker_busy_ns += end - start
        if self.scenario:
            self.by_scenario.setdefault(f"{self.scenario}.{op}", array("q")).append(end - start)
        for observer in observe.active:
            observer.operation(f"{self.name}.{op}", self.name, start, end, 1)
        return value

    def ran(self, scenario: str, tasks: int) -> None:
        """Record how many tasks one round of ``scenario`` ran."""
        self.tasks_run.setdefault(scenario, []).append(tasks)

    def rate(self, metric: str, tasks: int, seconds: float) -> None:
        """Record one round's rate of ``metric``."""
        self.rates.setdefault(metric, []).append(tasks / seconds if seconds > 0 else 0.0)

    def count(self, name: str, value: int) -> None:
        """Add to a counter."""
        self.counters[name] = self.counters.get(name, 0) + value

    def median(self, metric: str) -> float | None:
        """The median over rounds (None when no round measured it)."""
        values = self.rates.get(metric)
        return statistics.median(values) if values else None

    def backlog_rates(self) -> dict[int, float]:
        """The backlog sweep: median claim-and-complete rate by backlog size."""
        return {
            int(name.split("_")[1]): rate
            for name in self.rates
            if name.startswith("backlog_") and (rate := self.median(name)) is not None
        }

    def backlog_fit(self) -> BacklogFit | None:
        """The sweep's fit of cost per task against backlog (None without two sizes)."""
        return fit_backlog(self.backlog_costs)

    def publish(self, start: Mapping[str, int]) -> None:
        """Hand the samples recorded since ``start`` (counts per op) to the run's observers.

        The adapters are queues like ours: what they recorded reaches ``op-samples.npz``
        through the same :meth:`~taskqueue.QueueObserver.queue_closed` hook, as
        ``<contender>.<op>``.
        """
        stats = QueueStats()
        for op, samples in self.timings.items():
            fresh = samples[start.get(op, 0) :]
            if len(fresh):
                stats.timings_ns[f"{self.name}.{op}"] = fresh
                stats.items[f"{self.name}.{op}"] += len(fresh)
        for observer in list(observe.active):
            observer.queue_closed(stats)


async def run_drain(
    adapter: QueueAdapter,
    recorder: Recorder,
    tasks: Sequence[Mapping[str, Any]],
    batch: int,
    budget_s: float = 0.0,
) -> None:
    """Enqueue every task, then claim and complete until empty, then ask each one's status.

    With a ``budget_s``, enqueueing stops once it has taken a third of it (the claims,
    completions and status queries that follow cost about as much each), so the scenario
    runs the tasks enqueued by then."""
    refs: list[object] = []
    started = time.perf_counter()
    deadline = started + budget_s / 3 if budget_s else float("inf")
    for body in tasks:
        refs.append(await recorder.timed("enqueue", adapter.enqueue(body)))
        if time.perf_counter() > deadline:
            break
    recorder.rate("enqueue_tasks_per_s", len(refs), time.perf_counter() - started)
    recorder.ran("drain", len(refs))

    completed = 0
    started = time.perf_counter()
    while claimed := await recorder.timed("claim", adapter.claim(batch)):
        await recorder.timed("complete", adapter.complete(claimed))
        completed += len(claimed)
    recorder.rate("drain_tasks_per_s", completed, time.perf_counter() - started)
    _count_outcome(recorder, len(refs), completed)

    if adapter.spec.has_status:
        not_done = 0
        for ref in refs:
            word = await recorder.timed("status", adapter.status(ref))
            if word is not None and word not in STATUS_WORDS:
                raise AdapterContractError(
                    f"{adapter.spec.name}: status() answered {word!r}; the contract is one of "
                    f"{', '.join(STATUS_WORDS)} (exactly, lower case) or None for an unknown "
                    "task: map your queue's states onto those words in the adapter"
                )
            if word != DONE:
                not_done += 1
        recorder.count("status_not_done", not_done)


async def run_cycle(
    adapter: QueueAdapter,
    recorder: Recorder,
    tasks: Sequence[Mapping[str, Any]],
    budget_s: float = 0.0,
) -> None:
    """For each task: enqueue it, claim it, complete it (until ``budget_s`` has passed)."""
    completed = given = 0
    started = time.perf_counter()
    deadline = started + budget_s if budget_s else float("inf")
    for body in tasks:
        await recorder.timed("enqueue", adapter.enqueue(body))
        given += 1
        claimed = await recorder.timed("claim", adapter.claim(1))
        if claimed:
            await recorder.timed("complete", adapter.complete(claimed))
            completed += len(claimed)
        if time.perf_counter() > deadline:
            break
    recorder.rate("cycle_tasks_per_s", completed, time.perf_counter() - started)
    recorder.ran("cycle", given)
    _count_outcome(recorder, given, completed)


async def run_backlog(
    adapter: QueueAdapter,
    recorder: Recorder,
    tasks: Sequence[Mapping[str, Any]],
    probe: int,
    batch: int,
) -> None:
    """Fill the queue with ``tasks`` (untimed), claim and complete one (untimed), then time
    claiming and completing ``probe`` more.

    A queue whose claim reads or sorts every waiting row pays for the backlog on each claim;
    one whose claim is an index search does not. The rate is recorded as
    ``backlog_<size>_tasks_per_s``. The sweep's statements are captured under operations of
    their own (``<queue>.backlog.claim``): its calls are not the scenarios' timed calls, so
    counted with them they would read as many statements per call (an N+1 that is the fill).
    """
    swept = f"{recorder.name}.backlog"
    with operation(f"{swept}.enqueue"):
        for body in tasks:
            await adapter.enqueue(body)
    # One untimed claim first: the first after the fill pays for its WAL checkpoint once
    # (taskqueue read 3.7x "growth" at 10,000 from that alone), which is not a per-task cost.
    with operation(f"{swept}.claim"):
        warm = await adapter.claim(1)
    with operation(f"{swept}.complete"):
        await adapter.complete(warm)
    completed = 0
    per_task: list[float] = []
    started = time.perf_counter()
    while completed < probe:
        began = time.perf_counter()
        with operation(f"{swept}.claim"):
            claimed = await adapter.claim(min(batch, probe - completed))
        if not claimed:
            break
        with operation(f"{swept}.complete"):
            await adapter.complete(claimed)
        per_task.append((time.perf_counter() - began) / len(claimed))
        completed += len(claimed)
    recorder.rate(f"backlog_{len(tasks)}_tasks_per_s", completed, time.perf_counter() - started)
    recorder.count("backlog_probe_short", max(0, probe - completed))
    if per_task:
        # The median claim-and-complete: one fsync stall or checkpoint in the probe moves
        # the mean, not this.
        recorder.backlog_costs.append((len(tasks), statistics.median(per_task)))


BACKLOG_FLAT = 1.2
"""Growth in cost per task from the smallest to the largest backlog that still counts as
flat: an index search deepens its B-tree by a level or so over a sweep, which is no claim
reading the waiting rows."""

BACKLOG_GROWTH_FLAG = 1.5
"""Growth that matters: a queue whose band lies wholly under it is called flat."""

BACKLOG_BAND = 0.90
"""Confidence of the band around the fitted growth."""


@dataclass(frozen=True)
class BacklogFit:
    """Cost per task against backlog size, fitted over every probe of the sweep.

    A Theil-Sen line (the median of the pairwise slopes: one stalled probe cannot tilt it)
    through the probes' median costs, each size once per round; ``growth`` is the line's
    cost at the largest size over its cost at the smallest, ``low`` and ``high`` the same
    for the slope's :data:`BACKLOG_BAND` confidence band.
    """

    sizes: tuple[int, ...]
    median_cost_s: dict[int, float]
    """Per size, the median over rounds of the probes' median seconds per task."""
    growth: float
    low: float
    high: float

    @property
    def verdict(self) -> str:
        """``grows`` when the band lies above :data:`BACKLOG_FLAT`, ``flat`` when it lies
        below :data:`BACKLOG_GROWTH_FLAG` (falling cost included), else ``unclear`` (too
        noisy: more rounds)."""
        if self.low > BACKLOG_FLAT:
            return "grows"
        if self.high < BACKLOG_GROWTH_FLAG:
            return "flat"
        return "unclear"

    def describe(self) -> str:
        """The growth, its band and the per-size costs, in words."""
        small, large = self.sizes[0], self.sizes[-1]
        costs = ", ".join(f"{self.median_cost_s[s] * 1e6:,.0f} us at {s:,}" for s in self.sizes)
        return (
            f"{self.growth:.2f}x from {small:,} to {large:,} waiting tasks "
            f"({BACKLOG_BAND:.0%} band {self.low:.2f}x-{_times(self.high)}; median cost per "
            f"task {costs})"
        )


def _times(value: float) -> str:
    return f"{value:.2f}x" if value != float("inf") else "unbounded"


def fit_backlog(points: Sequence[tuple[int, float]]) -> BacklogFit | None:
    """The fit of ``points`` ((backlog size, seconds per task), any number per size); None
    with fewer than two sizes."""
    sizes = tuple(sorted({size for size, _ in points}))
    if len(sizes) < 2:
        return None
    from scipy.stats import theilslopes  # only a sweep needs it

    xs = [float(size) for size, _ in points]
    ys = [cost for _, cost in points]
    fitted = theilslopes(ys, xs, alpha=BACKLOG_BAND)
    centre_x, centre_y = statistics.median(xs), statistics.median(ys)

    def growth(slope: float) -> float:
        at_small = centre_y + slope * (sizes[0] - centre_x)
        at_large = centre_y + slope * (sizes[-1] - centre_x)
        # A steep line crosses zero: a cost cannot fall below nothing nor start from it.
        return max(0.0, at_large) / at_small if at_small > 0 else float("inf")

    by_size = {size: statistics.median(cost for s, cost in points if s == size) for size in sizes}
    return BacklogFit(
        sizes,
        by_size,
        growth(float(fitted.slope)),
        growth(float(fitted.low_slope)),
        growth(float(fitted.high_slope)),
    )


def _count_outcome(recorder: Recorder, given: int, completed: int) -> None:
    recorder.count("completed", completed)
    recorder.count("lost", max(0, given - completed))
    recorder.count("completed_twice", max(0, completed - given))


def ratio(value: float | None, reference: float | None) -> float | None:
    """``value / reference``, or None when either is missing or the reference is zero."""
    if value is None or reference is None or reference <= 0:
        return None
    return value / reference


class ComparisonWorkload(DerivesNothingAfterRun):
    """Drain and full-cycle scenarios over our queue, its peers and plain sqlite3."""

    name = "comparison"
    description = (
        "our queue vs other queues (huey, persist-queue; PostgreSQL peers by plugin) vs plain "
        "sqlite3: drain and full cycle"
    )
    params_type = ComparisonParams
    queue_defaults = ""
    sizes: Mapping[Size, ComparisonParams] = {
        Size.SMOKE: ComparisonParams(tasks=200, rounds=1),
        Size.DEFAULT: ComparisonParams(tasks=3_000, rounds=3),
        # The full size runs every task of every contender, however long that takes.
        Size.FULL: ComparisonParams(
            tasks=20_000, rounds=5, backlogs=(1_000, 5_000, 20_000), budget_s=0.0
        ),
    }

    async def run(self, params: ComparisonParams, ctx: RunContext) -> WorkloadResult:
        """Every round runs every contender's scenarios; the table is built from the medians."""
        params.check_ready()
        chosen = params.chosen(ctx.queue_config)
        # The run folder keeps every spec: `analyze` maps frames to operations from them on a
        # machine that has none of these adapters installed.
        ctx.declare_adapters(c.spec for c in chosen)
        recorders = {c.name: Recorder(c.name) for c in chosen}
        for contender in chosen:
            ctx.partial.note(
                f"{contender.name} [{contender.spec.guarantee}]: {contender.spec.delivery}; "
                f"settings: {contender.settings}"
            )
        # With backend=postgresql://..., our queue runs there, and so does every PostgreSQL
        # peer (their scratch databases follow on_server), whatever QUEUEPROF_PG says.
        backend = ctx.queue_config.backend
        server = on_server(backend) if backend != "sqlite" else contextlib.nullcontext()
        try:
            with server:
                await measure(
                    chosen,
                    recorders,
                    lambda label: ctx.sqlite_database(label).with_suffix(""),
                    tasks=params.tasks,
                    rounds=params.rounds,
                    payload_bytes=params.payload_bytes,
                    progress=ctx.progress,
                    backlogs=params.backlogs,
                    backlog_probe=params.backlog_probe,
                    budget_s=params.budget_s,
                )
        finally:  # an interrupted run keeps the rows of the rounds it finished
            _record(chosen, recorders, ctx)
            _budget_notes(chosen, recorders, params, ctx)
        return ctx.partial.result(complete=True)


async def measure(
    chosen: Sequence[Contender],
    recorders: Mapping[str, Recorder],
    folder_for: Callable[[str], Path],
    *,
    tasks: int,
    rounds: int,
    payload_bytes: int = 0,
    progress: Progress | None = None,
    backlogs: Sequence[int] = (),
    backlog_probe: int = 500,
    budget_s: float = 0.0,
) -> None:
    """Run both scenarios of every contender, ``rounds`` times, into ``recorders``, then
    (each round) the backlog sweep over ``backlogs``.

    ``folder_for(label)`` names a fresh folder (created here) for each contender's scenario.
    The order of the contenders rotates each round. A scenario stops early once it has
    taken ``budget_s`` (0: never).
    """
    progress = progress or NullProgress()
    padding = "x" * payload_bytes
    bodies = [payload("noop", seq, padding) for seq in range(max(tasks, *backlogs, 0))]
    for round_no in range(rounds):
        shift = round_no % len(chosen)
        for contender in [*chosen[shift:], *chosen[:shift]]:
            for scenario in SCENARIOS:
                progress.phase(f"round {round_no + 1}/{rounds}: {contender.name} {scenario}", tasks)
                folder = folder_for(f"{contender.name}-{scenario}")
                folder.mkdir(parents=True)
                await _run_scenario(
                    contender,
                    scenario,
                    folder,
                    recorders[contender.name],
                    bodies[:tasks],
                    budget_s,
                )
                progress.advance(tasks)
            # Ascending one round, descending the next: a machine's load drifting over a
            # round does not line up with the backlog.
            for size in sorted(backlogs, reverse=round_no % 2 == 1):
                label = f"round {round_no + 1}/{rounds}: {contender.name} backlog {size:,}"
                progress.phase(label, size)
                folder = folder_for(f"{contender.name}-backlog-{size}")
                folder.mkdir(parents=True)
                adapter = await contender.open(folder)
                try:
                    await run_backlog(
                        adapter,
                        recorders[contender.name],
                        bodies[:size],
                        backlog_probe,
                        contender.claim_batch,
                    )
                finally:
                    await adapter.close()
                    await release_scratch_database(folder)
                progress.advance(size)


async def compare_queues(
    extra: Sequence[Contender],
    folder: Path,
    *,
    tasks: int = 500,
    rounds: int = 1,
    config: QueueConfig | None = None,
) -> tuple[StepResult, ...]:
    """The comparison's rows for ``extra`` (your own adapters) next to sqlite3 and our queue.

    The same scenarios, timing and table as ``queueprof run comparison``, from Python: one
    row per contender, the plain-sqlite3 reference first, then taskqueue with ``config``
    (``QueueConfig()`` by default), then ``extra``. Databases go under ``folder``.
    """
    catalog = contenders(config or QueueConfig())
    chosen = [catalog[REFERENCE], catalog[OURS], *extra]
    names = [c.name for c in chosen]
    if len(set(names)) != len(names):
        raise ParameterError(f"contender names must be unique; got {', '.join(names)}")
    for contender in extra:
        contender.spec.load()
    verified(extra)
    recorders = {c.name: Recorder(c.name) for c in chosen}
    numbers = iter(range(1_000_000))
    await measure(
        chosen,
        recorders,
        lambda label: folder / f"{label}-{next(numbers)}",
        tasks=tasks,
        rounds=rounds,
    )
    return tuple(_row(c, recorders[c.name], recorders[REFERENCE]) for c in chosen)


async def _run_scenario(
    contender: Contender,
    scenario: str,
    folder: Path,
    recorder: Recorder,
    bodies: Sequence[Mapping[str, Any]],
    budget_s: float = 0.0,
) -> None:
    start = {op: len(samples) for op, samples in recorder.timings.items()}
    adapter = await contender.open(folder)
    recorder.scenario = scenario
    try:
        if scenario == "drain":
            await run_drain(adapter, recorder, bodies, contender.claim_batch, budget_s)
        else:
            await run_cycle(adapter, recorder, bodies, budget_s)
    finally:
        recorder.scenario = ""
        await adapter.close()
        recorder.publish(start)
        # Done with the folder: a PostgreSQL contender's database goes now, so the next
        # scenario does not run beside this one's pages (see release_scratch_database).
        await release_scratch_database(folder)


def _row(contender: Contender, recorder: Recorder, reference: Recorder) -> StepResult:
    """One contender's row: median rates, ratios to sqlite3, latencies from every sample."""
    metrics: dict[str, float] = {}
    for size, rate in sorted(recorder.backlog_rates().items()):
        metrics[f"backlog_{size}_tasks_per_s"] = rate
    counters = dict(recorder.counters)
    if (fit := recorder.backlog_fit()) is not None:
        for size, cost in fit.median_cost_s.items():
            metrics[f"backlog_{size}_us_per_task"] = cost * 1e6
        metrics["backlog_cost_growth"] = fit.growth
        metrics["backlog_cost_growth_low"] = fit.low
        if fit.high != float("inf"):
            metrics["backlog_cost_growth_high"] = fit.high
        # The verdict, for the analysis's diagnosis (which does not re-judge the noise).
        counters["backlog_grows"] = int(fit.verdict == "grows")
    for scenario, runs in recorder.tasks_run.items():
        metrics[f"{scenario}_tasks"] = min(runs)  # the fewest any round ran
    for metric in ("drain_tasks_per_s", "cycle_tasks_per_s", "enqueue_tasks_per_s"):
        value = recorder.median(metric)
        if value is None:
            continue
        metrics[metric] = value
        versus = ratio(value, reference.median(metric))
        if versus is not None and metric != "enqueue_tasks_per_s":
            metrics[metric.replace("tasks_per_s", "x_sqlite3")] = versus
    return StepResult(
        label=f"{contender.name} [{contender.spec.guarantee}]",
        settings={
            "workers": 1,
            "contender": contender.name,
            "library": contender.spec.package or contender.spec.module,
            "version": _version(contender),
            "settings": contender.settings,
            "claim_batch": contender.claim_batch,
            "guarantee": contender.spec.guarantee,
            "exactly_once": contender.spec.exactly_once,
            "strategy": dict(contender.strategy),
        },
        metrics=metrics,
        # Every call of an operation, then the drain's and the cycle's apart: a claim on a
        # full queue (drain) and on a queue of one (cycle) are different costs.
        latencies={
            op: LatencySummary.from_samples(samples)
            for op, samples in (*recorder.timings.items(), *recorder.by_scenario.items())
        },
        counters=counters,
        workers=(
            WorkerShare(
                WORKER, recorder.counters.get("completed", 0), recorder.worker_busy_ns / 1e9
            ),
        ),
    )


def _record(
    chosen: Sequence[Contender], recorders: Mapping[str, Recorder], ctx: RunContext
) -> None:
    reference = recorders[REFERENCE]
    lost = 0
    for contender in chosen:
        recorder = recorders[contender.name]
        if not recorder.rates:
            continue  # interrupted before its first scenario finished
        ctx.partial.step(_row(contender, recorder, reference))
        lost += recorder.counters.get("lost", 0)
    ctx.partial.count("lost_tasks", lost)
    _backlog_verdicts(chosen, recorders, ctx)
    ours = recorders.get(OURS)
    for scenario in SCENARIOS:
        _versus_best_peer(chosen, recorders, ours, scenario, ctx)


def _versus_best_peer(
    chosen: Sequence[Contender],
    recorders: Mapping[str, Recorder],
    ours: Recorder | None,
    scenario: str,
    ctx: RunContext,
) -> None:
    """``<scenario>_x_best_peer``: our queue's rate over the best peer's in ``scenario``, and
    the same for each of our other named rows (``..._taskqueue_pg``): shown, not judged."""
    metric = f"{scenario}_tasks_per_s"
    peers = [c for c in chosen if c.peer and recorders[c.name].median(metric)]
    if not peers:
        return
    best = max(peers, key=lambda c: recorders[c.name].median(metric) or 0.0)
    best_rate = recorders[best.name].median(metric)
    versus = None if ours is None else ratio(ours.median(metric), best_rate)
    if versus is not None:
        ctx.partial.metric(f"{scenario}_x_best_peer", versus)
        ctx.partial.note(
            f"best peer on the {scenario}: {best.name} ({best.spec.guarantee}); taskqueue (the "
            f"run's strategy) {'drains' if scenario == 'drain' else 'cycles'} {versus:.2f}x "
            "its rate"
        )
    for contender in chosen:
        if contender.spec is TASKQUEUE and contender.name != OURS:
            other = ratio(recorders[contender.name].median(metric), best_rate)
            if other is not None:
                name = contender.name.replace("-", "_")
                ctx.partial.metric(f"{scenario}_x_best_peer_{name}", other)


def _budget_notes(
    chosen: Sequence[Contender],
    recorders: Mapping[str, Recorder],
    params: ComparisonParams,
    ctx: RunContext,
) -> None:
    """One note per contender whose scenarios ran out of their time budget."""
    for contender in chosen:
        runs = recorders[contender.name].tasks_run
        cut = {scenario: min(n) for scenario, n in runs.items() if min(n) < params.tasks}
        if cut:
            counts = " and ".join(f"its {s} to {n:,}" for s, n in sorted(cut.items()))
            ctx.partial.note(
                f"{contender.name}: the {params.budget_s:g} s budget per scenario cut {counts} "
                f"of {params.tasks:,} tasks (the fewest in any round); its rates are per task, "
                "over that smaller backlog (budget_s=0 runs every task)"
            )


def _backlog_verdicts(
    chosen: Sequence[Contender], recorders: Mapping[str, Recorder], ctx: RunContext
) -> None:
    """One note per contender of the sweep: its cost per task grows with the backlog, stays
    flat, or the rounds were too noisy to tell."""
    for contender in chosen:
        fit = recorders[contender.name].backlog_fit()
        if fit is None:
            continue
        name = contender.name
        if fit.verdict == "grows":
            ctx.partial.note(
                f"backlog: {name}'s cost per task grows with the backlog, {fit.describe()}: "
                "its claim reads or sorts the waiting rows (see the SQL hotspots with "
                "capture_sql=true)"
            )
        elif fit.verdict == "flat":
            ctx.partial.note(
                f"backlog: {name}'s cost per task does not grow with the backlog, {fit.describe()}"
            )
        else:
            ctx.partial.note(
                f"backlog: {name}'s growth is unclear, {fit.describe()}: the band spans flat "
                "and growing; more rounds (--param rounds=5) narrow it"
            )


def _version(contender: Contender) -> str:
    if contender.spec.package is None:
        return "this checkout" if contender.spec.module != "sqlite3" else _sqlite_version()
    try:
        return metadata.version(contender.spec.package)
    except metadata.PackageNotFoundError:
        return "unknown"


def _sqlite_version() -> str:
    return f"SQLite {sqlite3.sqlite_version}"
