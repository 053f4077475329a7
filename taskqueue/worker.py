"""Worker engines: claim, run handlers, acknowledge; one engine per worker name."""

from __future__ import annotations

import asyncio
import inspect
import time
from array import array
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from time import perf_counter_ns
from typing import Any

from .config import ConnectionMode
from .errors import InvalidArgumentError, InvalidPayloadError
from .handlers import Handler, resolve
from .models import Task, TaskState
from .payload import encode_json
from .queue import TaskQueue
from .store import AckRow

_NULL = "null"
"""The encoded result of a handler that returned None."""
_PLAIN_RESULTS = frozenset({dict, list, str, int, float, bool})
"""Result types :meth:`WorkerEngine._run_plain` encodes itself (none of them awaitable)."""


class _Raised:
    """A handler's exception, carried from where it ran to where the failure is recorded."""

    __slots__ = ("error",)

    def __init__(self, error: Exception) -> None:
        self.error = error


@dataclass
class EngineStats:
    """What one engine did. Counts are of tasks unless named otherwise."""

    name: str
    claims: int = 0
    """Claim calls made."""
    empty_claims: int = 0
    claimed: int = 0
    completed: int = 0
    failed: int = 0
    """Failed attempts: the handler raised, the type had no handler, or the result was not JSON."""
    retried: int = 0
    """Failed attempts sent back to ``pending`` for another try."""
    dead: int = 0
    stale: int = 0
    """Acks or failures that found the lease had expired and the task moved on."""
    reclaimed: int = 0
    """Expired leases (of any worker) this engine returned to the queue."""
    expired: int = 0
    """Claimed tasks not run because their lease ran out while they waited in the buffer;
    the lease sweep returns them to the queue for another claim."""
    busy_s: float = 0.0
    """Seconds the engine was working: its run's wall time less the time it waited idle for
    work and for its turn on an event loop shared with other engines. Claims, acks and
    handlers count, also while they wait on a connection thread (so the engines of one loop
    may add up to more than the wall time when their calls overlap on the thread)."""
    errors: list[str] = field(default_factory=list)
    """The first few failure messages, for reports."""

    def add(self, other: EngineStats) -> None:
        """Fold another engine's counts into this one."""
        for name in (
            "claims",
            "empty_claims",
            "claimed",
            "completed",
            "failed",
            "retried",
            "dead",
            "stale",
            "reclaimed",
            "expired",
            "busy_s",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.errors.extend(other.errors[: max(0, _KEPT_ERRORS - len(self.errors))])


_KEPT_ERRORS = 20
_FIRST_DRAIN_CHECK_S = 0.001
"""run_until_empty: first wait before looking again for tasks other engines still hold."""


class WorkerEngine:
    """Runs tasks from ``queue`` under the worker name ``name``.

    ``concurrency`` handlers run at once (1 runs them inline, the fastest for short tasks);
    ``claim_batch``, ``ack_batch`` and ``claim_budget_ms`` default to the queue's config.
    Each claim asks for about ``claim_budget_ms`` of work at the time per task this engine
    has measured, shared among the engines on the queue (see
    :attr:`~taskqueue.config.QueueConfig.claim_budget_ms`). Completions are buffered up to
    ``ack_batch`` and always written before the engine claims again or stops, so a buffered
    ack never outlives the lease of a claim that follows it; a buffered task whose lease has
    run out is left for the lease sweep instead of being run by a worker that no longer
    holds it. On a queue whose ``acks_behind_claims`` is set (PostgreSQL's
    ``pg_acks=behind``) the acks are instead handed to a write the engine does not wait
    for, and the claim goes at once: one write in flight per engine, each task counted
    completed once its write has committed, every write landed before the engine idles or
    stops.
    """

    def __init__(
        self,
        name: str,
        queue: TaskQueue,
        handlers: Mapping[str, Handler] | str | None = None,
        *,
        concurrency: int = 1,
        claim_batch: int | None = None,
        ack_batch: int | None = None,
        claim_budget_ms: float | None = None,
        lease: float | None = None,
        reclaim_interval: float | None = None,
    ) -> None:
        if not isinstance(concurrency, int) or isinstance(concurrency, bool) or concurrency < 1:
            raise InvalidArgumentError(f"concurrency={concurrency!r} must be a whole number >= 1")
        self.name = name
        self.queue = queue
        self.handlers = resolve(handlers)
        self._is_async = {t: inspect.iscoroutinefunction(h) for t, h in self.handlers.items()}
        self.concurrency = concurrency
        self.claim_batch = claim_batch or queue.config.claim_batch
        self.ack_batch = ack_batch or queue.config.ack_batch
        budget_ms = queue.config.claim_budget_ms if claim_budget_ms is None else claim_budget_ms
        if not isinstance(budget_ms, int | float) or isinstance(budget_ms, bool) or budget_ms < 0:
            raise InvalidArgumentError(f"claim_budget_ms={budget_ms!r} must be a number >= 0")
        self.lease = lease or queue.config.lease_s
        self.reclaim_interval = reclaim_interval or max(self.lease / 4, 0.05)
        self.stats = EngineStats(name)
        self._acks: list[AckRow] = []
        self._pending: tuple[Task, Any] | None = None
        """The task :meth:`_run_plain` ran and its outcome, for the coroutine path."""
        self._sizer = _ClaimSizer(budget_ms / 1000.0, self.claim_batch)
        self._shares_connection = queue.config.connection is ConnectionMode.SHARED
        self._acks_behind = queue.acks_behind_claims
        self._writing: asyncio.Future[None] | None = None
        """The ack write in flight behind the claims (``acks_behind_claims``), if any."""

    async def run_until_empty(self) -> EngineStats:
        """Run until no task is pending or running anywhere in the queue.

        Tasks leased by other workers count as outstanding: if such a worker dies, this engine
        waits for the lease to expire, reclaims the task and runs it.
        """
        return await self._loop(stop=None)

    async def run(self, stop: asyncio.Event) -> EngineStats:
        """Run until ``stop`` is set, then finish the tasks already claimed and write their acks."""
        return await self._loop(stop=stop)

    async def _loop(self, stop: asyncio.Event | None) -> EngineStats:
        queue, stats = self.queue, self.stats
        buffer: deque[Task] = deque()
        running: set[asyncio.Task[None]] = set()
        next_reclaim = time.monotonic() + self.reclaim_interval
        sizer = self._sizer
        drain_check_s = _FIRST_DRAIN_CHECK_S
        started = time.perf_counter()
        waited = 0.0
        """Seconds spent idle or waiting for a turn: not busy."""
        # Engines on one event loop take turns, one claim and its plain handlers at a time,
        # first come first served (an asyncio.Lock wakes its waiters in order). A claim that
        # runs inline returns without suspending, and an engine that never suspends kept
        # every other one waiting (5 engines on 20,000 tasks did 20,000 / 0 / 0 / 0 / 0).
        # Giving way (sleep(0)) before each claim made them share, but then every engine
        # ran its turn in each pass of the event loop, and a timer waited for all of them
        # (38 ms median, 112 ms worst at 5 engines on the loaded machine): with the lock, a
        # pass runs one turn. Engines with concurrency > 1 suspend on their handlers anyway.
        # A turn lasts as long as the queue's own (TURN_S): handing the lock on costs a pass
        # of the loop, and at one claim per turn 10 engines paid 214 hand-overs per 20,000
        # tasks (claims of 100 take about 0.8 ms); keeping it for the turn made them 84, and
        # the workers_10 drain 4 % faster. Timers still wait at most a turn plus one call.
        turns = queue.turns if self.concurrency == 1 else None
        holding = False
        queue.engines += 1
        try:
            while stop is None or not stop.is_set():
                if time.monotonic() >= next_reclaim:
                    await self._reclaim()
                    next_reclaim = time.monotonic() + self.reclaim_interval
                if not buffer:
                    if holding and not queue.turn_left():  # end of this engine's turn:
                        turns.release()  # type: ignore[union-attr]  # the next engine's
                        holding = False
                    sizer.ran_out(time.perf_counter())
                    free = sizer.size(queue.engines, self._shares_connection)
                    if self.concurrency > 1:
                        free = max(free, self.concurrency - len(running))
                    if self._acks and self._acks_behind:
                        # Before the turn: a wait for the write in flight holds up no one.
                        await self._write_behind()
                    if turns is not None and queue.engines > 1 and not holding:
                        paused = time.perf_counter()
                        await turns.acquire()
                        holding = True
                        last, queue.turn_holder = queue.turn_holder, self
                        if last is not None and last is not self:
                            # Another engine's turn came between: this engine waited at
                            # least one pass of the loop, which gave way as a claim would.
                            queue.turn_started()
                        waited += time.perf_counter() - paused
                    if self._acks and not self._acks_behind:
                        # Ack what is done and claim more in one round trip.
                        acks, self._acks = self._acks, []
                        applied, tasks = await queue.complete_acks_and_claim(
                            acks, self.name, free, self.lease
                        )
                        self._count_acks(len(acks), applied)
                    else:
                        tasks = await queue.claim(self.name, free, self.lease)
                    stats.claims += 1
                    sizer.claimed(time.perf_counter(), len(tasks))
                    if not tasks:
                        stats.empty_claims += 1
                        if holding:  # no turn to take while idle
                            turns.release()  # type: ignore[union-attr]
                            holding = False
                        if running:
                            await self._wait_one(running)
                            continue
                        # Idle or done: this engine's acks land first (with acks behind the
                        # claims, some may still be in flight or waiting for the next write).
                        await self._settle()
                        if stop is None:
                            if await queue.is_drained():
                                # The others may be waiting out a long drain check: they
                                # would add it to the drain's wall time (up to 1 s).
                                queue.wake_all()
                                break
                            # Other engines still hold tasks: their acks arrive with no
                            # enqueue to wake us, so look again soon, then less often (a
                            # whole wake-up interval was most of a short drain's wall time).
                            paused = time.perf_counter()
                            await queue.wait_for_work(timeout=drain_check_s)
                            waited += time.perf_counter() - paused
                            drain_check_s = min(drain_check_s * 2, 1.0)
                            continue
                        # No sweep of expired leases here: every idle engine would run one
                        # per wake-up (the analysis of a dbops run found 2 sweeps per task).
                        # The sweep at the top of the loop runs every reclaim_interval.
                        paused = time.perf_counter()
                        await self._idle(stop)
                        waited += time.perf_counter() - paused
                        continue
                    drain_check_s = _FIRST_DRAIN_CHECK_S
                    stats.claimed += len(tasks)
                    buffer.extend(tasks)
                if self.concurrency == 1:
                    while buffer:
                        # Plain functions' tasks run right here, with no coroutine each:
                        # per task that was most of an engine's own Python.
                        task = self._run_plain(buffer)
                        if task is not None:
                            if holding:  # its handler may suspend: others run meanwhile
                                turns.release()  # type: ignore[union-attr]
                                holding = False
                            await self._run_held(task)
                        # The acks left when the buffer runs out ride on the next claim
                        # (complete_and_claim): one round trip per task instead of two.
                        if buffer and len(self._acks) >= self.ack_batch:
                            await self._send_full_batch()
                else:
                    while buffer and len(running) < self.concurrency:
                        running.add(asyncio.create_task(self._run_held(buffer.popleft())))
                    if len(running) >= self.concurrency:
                        await self._wait_one(running)
                    if len(self._acks) >= self.ack_batch:
                        await self._send_full_batch()
        finally:
            if holding:
                turns.release()  # type: ignore[union-attr]
            if queue.turn_holder is self:
                queue.turn_holder = None
            queue.engines -= 1
            # Graceful stop: claimed tasks are ours until their lease ends, so run them.
            while buffer and not _cancelling():
                await self._run_held(buffer.popleft())
            if running:
                await asyncio.gather(*running, return_exceptions=True)
            writing = self._writing
            if not _cancelling():
                await self._settle()
            # Cancelled: the write in flight is cancelled too (its acks may or may not land,
            # as buffered ones); an error it already had is not this cancellation's.
            elif writing is not None and not writing.cancel() and not writing.cancelled():
                writing.exception()
            stats.busy_s += time.perf_counter() - started - waited
        return stats

    def _run_plain(self, buffer: deque[Task]) -> Task | None:
        """Run buffered tasks whose handler is a plain function that returns JSON, in order.

        Stops at a full ack buffer (None), or at a task that needs the coroutine path
        (:meth:`_run_held`), which it returns: a coroutine handler, no handler, a lease that
        ran out; or, with the handler run and its outcome in ``_pending``, a result to await,
        a result that is not JSON, or an exception. With ``record_timings`` each handler call
        is timed, as :meth:`_execute` times it.
        """
        handlers, is_async, acks = self.handlers, self._is_async, self._acks
        clock, margin, most = self.queue.clock, self._sizer.own_s, self.ack_batch
        stats = self.queue.stats
        timed = self.queue.timed
        timings = stats.samples("handler") if timed else array("q")
        timed_before = len(timings)
        buffered = len(acks)
        # Under a profile hook (Python 3.11) every bytecode here takes the slower tracing
        # path, once per task: the loop keeps to the steps a task needs. A claim's tasks are
        # mostly of one type: its handler is looked up once per run of them.
        kind: str | None = None
        handler: Any = None
        plain = False
        try:
            while buffer:
                task = buffer.popleft()
                if task.type != kind:
                    kind, handler = task.type, handlers.get(task.type)
                    plain = handler is not None and not is_async[kind]
                if not plain or clock() + margin >= task.lease_until:
                    return task
                start = perf_counter_ns() if timed else 0
                try:
                    result = handler(task)
                except Exception as error:  # noqa: BLE001 - recorded by the coroutine path
                    self._pending = (task, _Raised(error))
                    return task
                finally:
                    if timed:
                        timings.append(perf_counter_ns() - start)
                if result is None:
                    acks.append((task.id, task.claim, _NULL))
                elif type(result) in _PLAIN_RESULTS:  # never awaitable: encode it here
                    try:
                        encoded = encode_json(result, f"result of {task.type} task {task.id}")
                    except InvalidPayloadError:  # the coroutine path records it, with this text
                        self._pending = (task, result)
                        return task
                    acks.append((task.id, task.claim, encoded))
                else:
                    self._pending = (task, result)
                    return task
                buffered += 1
                if buffered >= most and buffer:
                    return None
            return None
        finally:
            if timed:
                stats.items["handler"] += len(timings) - timed_before

    async def _run_held(self, task: Task) -> None:
        """Run ``task`` if this engine still holds its lease, else leave it to the sweep."""
        pending, self._pending = self._pending, None
        if pending is not None:  # _run_plain ran the handler: finish with its outcome
            await self._outcome(task, pending[1])
            return
        if self.queue.clock() + self._sizer.own_s >= task.lease_until:
            self.stats.expired += 1
            return
        await self._execute(task)

    async def _execute(self, task: Task) -> None:
        handler = self.handlers.get(task.type)
        if handler is None:
            known = ", ".join(sorted(self.handlers)) or "none"
            await self._fail(
                task, f"no handler for task type {task.type!r} (registered: {known})", retry=False
            )
            return
        timed = self.queue.timed
        start = perf_counter_ns() if timed else 0
        try:
            result = await handler(task) if self._is_async[task.type] else handler(task)
        except Exception as error:  # noqa: BLE001 - a handler's failure is data: record it, go on
            result = _Raised(error)
        finally:
            if timed:
                self.queue.stats.record("handler", perf_counter_ns() - start)
        await self._outcome(task, result)

    async def _outcome(self, task: Task, result: Any) -> None:
        """Buffer the ack of ``task`` with ``result``, or record its failure."""
        if type(result) is _Raised:
            error = result.error
            await self._fail(task, f"{type(error).__name__}: {error}", retry=True)
            return
        if inspect.isawaitable(result):
            result = await result
        try:
            encoded = encode_json(result, f"result of {task.type} task {task.id}")
        except InvalidPayloadError as error:
            await self._fail(task, str(error), retry=False)
            return
        self._acks.append((task.id, task.claim, encoded))

    async def _flush(self) -> None:
        acks, self._acks = self._acks, []
        await self._write(acks)

    async def _send_full_batch(self) -> None:
        """A full ``ack_batch`` is buffered while claimed tasks remain: write it now, or
        behind the claims, where it waits for the write in flight, if any, without holding
        up the tasks (the wait would count as their run time, and the claim sizer would
        shrink the next claims for it: 2 tasks a claim, 9,252 claims for 18,297 tasks)."""
        if self._acks_behind:
            await self._write_behind(wait=False)
        else:
            await self._flush()

    async def _write_behind(self, *, wait: bool = True) -> None:
        """Start a write of the buffered acks that the engine does not wait for. With one
        in flight, the acks wait for the next write; if a full ``ack_batch`` waits and
        ``wait``, the engine first waits for the one in flight (and sees its error)."""
        writing = self._writing
        if writing is not None:
            if not writing.done() and (not wait or len(self._acks) < self.ack_batch):
                return
            self._writing = None
            await writing
        acks, self._acks = self._acks, []
        self._writing = asyncio.ensure_future(self._write(acks))

    async def _write(self, acks: list[AckRow]) -> None:
        applied = await self.queue.complete_acks(acks, self.name)
        self._count_acks(len(acks), applied)

    async def _settle(self) -> None:
        """Wait for the ack write in flight, then write the acks still buffered."""
        writing, self._writing = self._writing, None
        if writing is not None:
            await writing
        if self._acks:
            await self._flush()

    def _count_acks(self, sent: int, applied: int) -> None:
        self.stats.completed += applied
        self.stats.stale += sent - applied

    async def _fail(self, task: Task, error: str, *, retry: bool) -> None:
        stats = self.stats
        stats.failed += 1
        if len(stats.errors) < _KEPT_ERRORS:
            stats.errors.append(f"task {task.id} attempt {task.attempts}: {error}")
        state = await self.queue.fail(task, error, retry=retry)
        if state is TaskState.PENDING:
            stats.retried += 1
        elif state is TaskState.DEAD:
            stats.dead += 1
        else:
            stats.stale += 1

    async def _reclaim(self) -> None:
        result = await self.queue.reclaim_expired()
        self.stats.reclaimed += result.requeued + result.dead

    async def _idle(self, stop: asyncio.Event | None) -> None:
        if stop is None:
            await self.queue.wait_for_work()
            return
        waiter = asyncio.ensure_future(self.queue.wait_for_work())
        stopper = asyncio.ensure_future(stop.wait())
        await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        for pending in (waiter, stopper):
            pending.cancel()

    @staticmethod
    async def _wait_one(running: set[asyncio.Task[None]]) -> None:
        done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
        running.difference_update(done)
        for finished in done:
            finished.result()  # surface an engine bug instead of losing it


class _ClaimSizer:
    """Sizes one engine's claims to about ``budget_s`` of work (``QueueConfig.claim_budget_ms``).

    Two measurements, each a moving average per claimed task: ``own_s``, the engine's own
    time from a claim's return until its tasks ran out (handlers, acks, its share of the
    loop while handlers await); ``cycle_s``, from one claim's return to the next, which on a
    shared connection also holds the wait behind the other engines' work on the event loop
    and on the connection thread. Engines sharing a connection size by the cycle, so the
    time each waits for the others stays near the budget however many there are; otherwise
    by their own time, split among the engines on the loop. The cycle is not used with
    separate writers: there it includes lock waits, and shrinking the batch because of them
    would add the statements that cause them. Nor may it shrink a claim more than a few
    times below what the own time gives: the cycle holds each statement's fixed cost too.
    """

    def __init__(self, budget_s: float, most: int) -> None:
        self.budget_s = budget_s
        self.most = most
        self.own_s = 0.0
        self._cycle_s = 0.0
        self._measured = False
        self._claimed_at = 0.0
        self._claimed_n = 0

    def size(self, engines: int, shared: bool) -> int:
        """Tasks the next claim should ask for, 1..most."""
        if not self.budget_s:
            return self.most
        if not self._measured:
            return 1  # nothing measured yet: a slow task type must not fill a whole batch
        share = self.own_s * max(1, engines)
        if share <= 0:
            return self.most
        tasks = self.budget_s / share
        if shared and engines > 1 and self._cycle_s:
            # The cycle also counts each statement's fixed cost as if it grew with the batch:
            # when statements are slow, sizing by it alone would shrink claims into more
            # statements. So it shrinks them at most _CYCLE_SHRINK_MOST times below the size
            # the engines' own time gives.
            tasks = max(self.budget_s / self._cycle_s, tasks / _CYCLE_SHRINK_MOST)
        return max(1, min(self.most, int(tasks)))

    def ran_out(self, now: float) -> None:
        """The claimed tasks have all been started: the engine is about to claim again."""
        if self._claimed_n:
            self.own_s = _average(self.own_s, (now - self._claimed_at) / self._claimed_n)
            self._measured = True

    def claimed(self, now: float, tasks: int) -> None:
        """A claim returned ``tasks`` tasks (0: the engine idles, which is no cycle)."""
        if self._claimed_n and tasks:
            self._cycle_s = _average(self._cycle_s, (now - self._claimed_at) / self._claimed_n)
        self._claimed_at, self._claimed_n = now, tasks


_CYCLE_SHRINK_MOST = 4


def _average(current: float, sample: float) -> float:
    return sample if current == 0.0 else 0.5 * (current + sample)


def _cancelling() -> bool:
    current = asyncio.current_task()
    return current is not None and current.cancelling() > 0
