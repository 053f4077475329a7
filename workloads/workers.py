"""Worker engines in either mode behind one interface, safe to cancel (Ctrl-C).

``async`` mode runs :class:`~taskqueue.WorkerEngine` objects on the workload's own event loop
and queue; ``process`` mode runs :class:`~taskqueue.WorkerProcesses`, whose blocking
``start``/``join`` happen on a thread so the loop (progress, producers, Ctrl-C) keeps running.
Leaving the ``async with`` block on an error or cancellation stops (async) or kills (process)
every worker, so nothing outlives the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, TypeVar

from runs.results import LatencySummary, StepResult, WorkerShare
from taskqueue import (
    EngineOptions,
    EngineStats,
    PoolResult,
    QueueConfig,
    QueueStats,
    TaskQueue,
    TaskState,
    WorkerEngine,
    WorkerProcesses,
)

from .errors import WorkloadError
from .progress import Progress
from .tasks import error_counters, make_tasks

T = TypeVar("T")


class Workers:
    """``count`` workers over ``queue``'s database in ``mode`` (``async`` or ``process``).

    With ``until_empty`` the workers stop by themselves once the queue is drained
    (:meth:`wait`); otherwise they run until :meth:`stop`.
    """

    def __init__(
        self,
        queue: TaskQueue,
        count: int,
        mode: str,
        *,
        until_empty: bool,
        options: EngineOptions | None = None,
    ) -> None:
        self.queue = queue
        self.count = count
        self.mode = mode
        self.until_empty = until_empty
        self.options = options or EngineOptions()
        self._stop = asyncio.Event()
        self._engines: list[WorkerEngine] = []
        self._runs: list[asyncio.Task[EngineStats]] = []
        self.processes: WorkerProcesses | None = None
        self._started_at = 0.0

    async def __aenter__(self) -> Workers:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None:
            await self.abort()

    async def start(self) -> None:
        """Start every worker; returns once all are ready to claim."""
        if self.mode == "async":
            if self.options.engines != 1:
                raise WorkloadError(
                    f"engines={self.options.engines} per process needs process mode (in async "
                    f"mode every engine shares this process: ask for {self.count} workers)"
                )
            if self.options.netns is not None:
                raise WorkloadError(
                    f"workers in network namespace {self.options.netns!r} must be processes "
                    "(an engine on this event loop cannot leave this process's network); "
                    "use mode=process"
                )
            self._engines = [
                WorkerEngine(
                    f"{self.options.name_prefix}{i}",
                    self.queue,
                    self.options.handlers,
                    concurrency=self.options.concurrency,
                )
                for i in range(self.count)
            ]
            self._started_at = time.perf_counter()
            self._runs = [
                asyncio.create_task(
                    engine.run_until_empty() if self.until_empty else engine.run(self._stop)
                )
                for engine in self._engines
            ]
            return
        self.processes = WorkerProcesses(
            self.queue.target,
            self.queue.config,
            self.count,
            self.options,
            until_empty=self.until_empty,
        )
        await _in_thread(self.processes.start, on_cancel=self.processes.kill)
        self._started_at = time.perf_counter()

    async def wait(self) -> PoolResult:
        """Wait for workers started with ``until_empty`` to drain the queue."""
        if self.mode == "async":
            stats = await asyncio.gather(*self._runs)
            return PoolResult(list(stats), self.queue.stats, time.perf_counter() - self._started_at)
        assert self.processes is not None
        return await _in_thread(self.processes.join, on_cancel=self.processes.kill)

    async def stop(self) -> PoolResult:
        """Ask every worker to finish its claimed tasks and stop; returns their results."""
        self._stop.set()
        if self.processes is not None:
            self.processes.stop()
        return await self.wait()

    async def abort(self) -> None:
        """Stop at once: cancel engines, SIGKILL processes. Used on errors and Ctrl-C."""
        self._stop.set()
        for run in self._runs:
            run.cancel()
        if self._runs:
            await asyncio.wait(self._runs)
        if self.processes is not None:
            self.processes.kill()
            await asyncio.to_thread(_reap, self.processes)

    async def drained(self, poll_s: float = 0.005) -> None:
        """Wait until the queue has no pending or running task.

        Raises if every worker process has exited first (the join names why), instead of
        waiting for ever on work nobody will do.
        """
        while not await self.queue.is_drained():
            if self.processes is not None and not any(
                p.is_alive() for p in self.processes.processes
            ):
                await self.stop()  # raises TaskQueueError with the workers' own errors
                raise WorkloadError(
                    f"every worker process exited with tasks left in {self.queue.where}"
                )
            await asyncio.sleep(poll_s)

    async def done(self) -> int:
        """Tasks finished so far (done or dead); costs a query in process mode."""
        if self.mode == "async":
            return sum(e.stats.completed + e.stats.dead for e in self._engines)
        counts = await self.queue.counts()
        return counts[TaskState.DONE] + counts[TaskState.DEAD]


def _reap(processes: WorkerProcesses) -> None:
    """Wait for killed worker processes to exit, so none outlives the run."""
    for process in processes.processes:
        if process.pid is not None:
            process.join(5)


async def _in_thread(fn: Callable[[], T], *, on_cancel: Callable[[], None]) -> T:
    """Run blocking ``fn`` on a thread; if cancelled, call ``on_cancel`` and wait for ``fn``."""
    future = asyncio.get_running_loop().run_in_executor(None, fn)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        on_cancel()
        # fn returns soon after on_cancel (the processes are dead); wait so no thread
        # outlives the run. Its own outcome no longer matters: the run is being cancelled.
        await asyncio.wait([future])
        if not future.cancelled():
            future.exception()  # retrieved, so asyncio does not log it as lost
        raise


async def follow(progress: Progress, workers: Workers, interval: float = 0.25) -> None:
    """Move the progress bar with the workers' finished count until cancelled."""
    if not progress.visible:
        return
    while True:
        progress.update(await workers.done())
        await asyncio.sleep(interval)


@contextlib.asynccontextmanager
async def following(progress: Progress, workers: Workers) -> AsyncIterator[None]:
    """Run :func:`follow` for the duration of the block."""
    watcher = asyncio.create_task(follow(progress, workers))
    try:
        yield
    finally:
        watcher.cancel()
        await asyncio.wait([watcher])


async def drain(queue: TaskQueue, count: int, mode: str, progress: Progress) -> PoolResult:
    """Run ``count`` workers in ``mode`` until ``queue`` is empty, moving the progress bar."""
    async with Workers(queue, count, mode, until_empty=True) as pool, following(progress, pool):
        return await pool.wait()


@dataclass(frozen=True)
class MeasuredDrain:
    """One drain of a fresh queue: what its workers did and what the queue saw."""

    pool: PoolResult
    stats: QueueStats
    """The producer's and the workers' instrumentation together (:func:`combined_stats`)."""
    tasks: int
    """Tasks enqueued before the drain."""

    @property
    def tasks_per_s(self) -> float:
        """Tasks completed per second of the drain's wall time."""
        done = self.pool.total.completed
        return done / self.pool.wall_s if self.pool.wall_s > 0 else 0.0

    @property
    def lost(self) -> int:
        """Tasks neither completed nor dead after the drain (0 unless the queue lost some)."""
        total = self.pool.total
        return self.tasks - total.completed - total.dead

    def counters(self) -> dict[str, int]:
        """A step's counters: contention and each worker's work (:func:`error_counters`),
        then ``completed``, ``dead`` and ``lost``."""
        total = self.pool.total
        return {
            **error_counters(self.stats, self.pool),
            "completed": total.completed,
            "dead": total.dead,
            "lost": self.lost,
        }


class DrainParams(Protocol):
    """What a drain is made of: the fields the stepped workloads' params share."""

    @property
    def tasks(self) -> int: ...

    @property
    def task_type(self) -> str: ...

    @property
    def payload_bytes(self) -> int: ...


async def measure_drain(
    database: Path | str,
    config: QueueConfig,
    params: DrainParams,
    *,
    workers: int,
    mode: str,
    label: str,
    progress: Progress,
) -> MeasuredDrain:
    """Enqueue ``params.tasks`` into a fresh queue at ``database``, then drain it with
    ``workers`` workers in ``mode``; only the drain is measured (the queue's stats are reset
    after the enqueues)."""
    tasks = params.tasks
    async with TaskQueue(database, config) as queue:
        for first in range(0, tasks, 1_000):
            count = min(1_000, tasks - first)
            await queue.enqueue_many(
                make_tasks(params.task_type, count, params.payload_bytes, start=first)
            )
        queue.stats.reset()  # measure the drain only
        progress.phase(label, tasks)
        pool = await drain(queue, workers, mode, progress)
        return MeasuredDrain(pool, combined_stats(queue, pool), tasks)


def combined_stats(queue: TaskQueue, pool: PoolResult) -> QueueStats:
    """The producer side's and the workers' instrumentation, each sample counted once."""
    if pool.stats is queue.stats:  # async mode: one queue object saw everything
        return queue.stats
    merged = QueueStats()
    merged.merge(queue.stats)
    merged.merge(pool.stats)
    return merged


def worker_shares(pool: PoolResult) -> tuple[WorkerShare, ...]:
    """Each worker's completions and busy time, in worker order."""
    return tuple(WorkerShare(e.name, e.completed, e.busy_s) for e in pool.engines)


def worker_step(
    label: str,
    settings: Mapping[str, Any],
    shares: tuple[WorkerShare, ...],
    *,
    metrics: Mapping[str, float] | None = None,
    latencies: Mapping[str, LatencySummary] | None = None,
    counters: Mapping[str, int] | None = None,
) -> StepResult:
    """A step of ``shares``'s workers, its metrics led by their fairness figures."""
    return StepResult(
        label=label,
        settings=settings,
        metrics={**fairness_metrics(shares), **(metrics or {})},
        latencies=latencies or {},
        counters=counters or {},
        workers=shares,
    )


def fairness_metrics(shares: tuple[WorkerShare, ...]) -> dict[str, float]:
    """How evenly the workers shared the tasks, for a step's metrics (none for one worker).

    ``smallest_worker_pct_of_tasks``: the least busy worker's completions as a percentage of
    all (10 % is an even share among ten); ``smallest_worker_x_even_share``: the same against
    an even share, 1.0 when even and 0.0 when a worker did nothing.
    """
    total = sum(s.completed for s in shares)
    if len(shares) < 2 or total <= 0:
        return {}
    smallest = min(s.completed for s in shares)
    return {
        "smallest_worker_pct_of_tasks": 100.0 * smallest / total,
        "smallest_worker_x_even_share": smallest * len(shares) / total,
    }
