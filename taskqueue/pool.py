"""Run N worker engines: ``async`` (N engines on one event loop) or ``process`` (N processes).

Both modes return the same :class:`PoolResult`, so workloads compare them side by side.
Process workers are started with the ``spawn`` method: forking a process that already runs
aiosqlite threads is unsafe.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import queue as queue_module
import threading
import time
from dataclasses import dataclass, field
from enum import StrEnum
from multiprocessing.context import SpawnProcess
from multiprocessing.synchronize import Barrier as BarrierType
from multiprocessing.synchronize import Event as EventType
from pathlib import Path
from typing import Any

from . import observe
from .config import QueueConfig
from .errors import InvalidArgumentError, TaskQueueError
from .queue import TaskQueue
from .stats import QueueStats
from .worker import EngineStats, WorkerEngine


class WorkerMode(StrEnum):
    """Where worker engines run."""

    ASYNC = "async"
    PROCESS = "process"


@dataclass
class PoolResult:
    """What a pool of engines did, summed and per engine."""

    engines: list[EngineStats]
    stats: QueueStats = field(default_factory=QueueStats)
    """Queue instrumentation of the workers' side (merged across processes)."""
    wall_s: float = 0.0
    """From the moment every worker was ready to the moment the last one stopped."""

    @property
    def total(self) -> EngineStats:
        """All engines' counts added up."""
        total = EngineStats("total")
        for engine in self.engines:
            total.add(engine)
        return total


@dataclass(frozen=True)
class EngineOptions:
    """Per-engine settings shared by every worker of a pool."""

    concurrency: int = 1
    handlers: str = "builtin"
    """``builtin`` or ``module:attribute`` (must be importable by name in worker processes)."""
    name_prefix: str = "w"
    engines: int = 1
    """Process mode: worker engines in each process, sharing its queue object (and so its
    connections): 20 workers over 4 processes is ``engines=5``. Named ``<process>.<n>``."""
    netns: str | None = None
    """Process mode: the network namespace (a name ``ip netns list`` shows) each worker
    process enters before it opens its queue, so its connections leave from another "host".
    Entering one needs CAP_SYS_ADMIN (root)."""


async def run_async_workers(
    queue: TaskQueue,
    workers: int,
    options: EngineOptions | None = None,
    stop: asyncio.Event | None = None,
) -> PoolResult:
    """Run ``workers`` engines on this event loop over ``queue`` until empty (or ``stop``)."""
    _check_workers(workers)
    options = options or EngineOptions()
    engines = [
        WorkerEngine(
            f"{options.name_prefix}{i}", queue, options.handlers, concurrency=options.concurrency
        )
        for i in range(workers)
    ]
    start = time.perf_counter()
    runs = [e.run_until_empty() if stop is None else e.run(stop) for e in engines]
    stats = await asyncio.gather(*runs)
    return PoolResult(list(stats), queue.stats, time.perf_counter() - start)


class WorkerProcesses:
    """``workers`` OS processes, each one engine with its own :class:`TaskQueue`.

    ``start()`` returns once every process has opened the queue; ``stop()`` asks them to
    finish (for ``until_empty=False``); ``join()`` collects their results. ``processes`` is
    exposed so tests and stress workloads can kill one.
    """

    def __init__(
        self,
        path: str | Path,
        config: QueueConfig,
        workers: int,
        options: EngineOptions | None = None,
        *,
        until_empty: bool = True,
        start_timeout: float = 60.0,
    ) -> None:
        _check_workers(workers)
        _check_workers(options.engines if options else 1, "engines")
        self.path = str(path)
        self.config = config
        self.options = options or EngineOptions()
        self.until_empty = until_empty
        self.start_timeout = start_timeout
        ctx = mp.get_context("spawn")
        self._results: mp.Queue[tuple[str, Any]] = ctx.Queue()
        self._ready: BarrierType = ctx.Barrier(workers + 1)
        self._stop: EventType = ctx.Event()
        self.processes: list[SpawnProcess] = [
            ctx.Process(
                target=_child_main,
                name=f"{self.options.name_prefix}{i}",
                args=(
                    self.path,
                    config.to_dict(),
                    i,
                    f"{self.options.name_prefix}{i}",
                    self.options,
                    until_empty,
                    self._ready,
                    self._stop,
                    self._results,
                ),
                daemon=True,
            )
            for i in range(workers)
        ]
        self._started_at = 0.0

    def engine_names(self, process: str) -> list[str]:
        """The names the engines of worker process ``process`` claim under."""
        return _engine_names(process, self.options.engines)

    def start(self) -> None:
        """Start every process and wait until each has its queue open."""
        for process in self.processes:
            process.start()
        try:
            self._ready.wait(self.start_timeout)
        except threading.BrokenBarrierError as error:  # a child died before it was ready
            self.kill()
            raise TaskQueueError(
                f"worker processes did not start (killed, or not ready within "
                f"{self.start_timeout} s): "
                f"{self._child_errors() or error}"
            ) from None
        self._started_at = time.perf_counter()

    def stop(self) -> None:
        """Ask every worker to finish its claimed tasks and exit."""
        self._stop.set()

    def kill(self) -> None:
        """SIGKILL every worker still alive (leases then expire and are reclaimed).

        A :meth:`start` still waiting for the workers to be ready fails at once instead of
        waiting out ``start_timeout`` for processes that will never arrive.
        """
        self._ready.abort()
        for process in self.processes:
            if process.is_alive():
                process.kill()

    def join(self, timeout: float | None = None) -> PoolResult:
        """Wait for the workers and return their results.

        A worker killed on purpose (SIGKILL) is reported with an empty result; a worker that
        crashed with an error raises :class:`TaskQueueError` carrying that error.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        engines: dict[str, list[EngineStats]] = {}
        """Each process's engines, by process name."""
        stats = QueueStats()
        errors: list[str] = []
        while len(engines) + len(errors) < len(self.processes):
            if all(not p.is_alive() for p in self.processes):
                # Everyone exited; drain what they sent, then stop waiting.
                try:
                    kind, payload = self._results.get(timeout=0.5)
                except queue_module.Empty:
                    break
            else:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    self.kill()
                    raise TaskQueueError(f"worker processes still running after {timeout} s")
                try:
                    kind, payload = self._results.get(timeout=0.2)
                except queue_module.Empty:
                    continue
            if kind == "ok":
                process, engine_stats, child_stats = payload
                engines[process] = engine_stats
                stats.merge(child_stats)
                for observer in observe.active:  # the child's queue has closed
                    observer.queue_closed(child_stats)
            else:
                errors.append(payload)
        wall = time.perf_counter() - self._started_at
        for process in self.processes:
            process.join(5)
        if errors:
            raise TaskQueueError("worker process failed: " + "; ".join(errors))
        ordered = [
            engine
            for p in self.processes
            for engine in engines.get(p.name)
            or [EngineStats(name) for name in self.engine_names(p.name)]
        ]
        return PoolResult(ordered, stats, wall)

    def _child_errors(self) -> str:
        codes = [
            f"{p.name} exit code {p.exitcode}"
            for p in self.processes
            if p.exitcode not in (None, 0)
        ]
        return ", ".join(codes)


def run_process_workers(
    path: str | Path,
    config: QueueConfig,
    workers: int,
    options: EngineOptions | None = None,
) -> PoolResult:
    """Run ``workers`` processes until the queue is empty and return their results."""
    pool = WorkerProcesses(path, config, workers, options)
    pool.start()
    return pool.join()


def _check_workers(workers: int, what: str = "workers") -> None:
    if not isinstance(workers, int) or isinstance(workers, bool) or not 1 <= workers <= 512:
        raise InvalidArgumentError(f"{what}={workers!r} must be a whole number 1..512")


def _engine_names(process: str, engines: int) -> list[str]:
    """One engine: the process's own name (as before engines per process existed)."""
    return [process] if engines == 1 else [f"{process}.{n}" for n in range(engines)]


CLONE_NEWNET = 0x40000000
"""setns(2)'s flag for a network namespace (os.setns arrives only in Python 3.12)."""
NETNS_DIR = Path("/var/run/netns")
"""Where ``ip netns add`` mounts the namespaces it names."""


def enter_netns(name: str) -> None:
    """Move the calling thread (and the threads it starts after) into network namespace
    ``name``; sockets opened from then on belong to it. Raises :class:`TaskQueueError`."""
    import ctypes

    where = NETNS_DIR / name
    try:
        fd = os.open(where, os.O_RDONLY)
    except OSError as error:
        raise TaskQueueError(
            f"network namespace {name!r} cannot be opened ({where}: {error.strerror}); "
            "create it with `ip netns add` first"
        ) from None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.setns(fd, CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            raise TaskQueueError(
                f"cannot enter network namespace {name!r}: {os.strerror(errno)}; entering "
                "one needs CAP_SYS_ADMIN (run as root)"
            )
    finally:
        os.close(fd)


def _child_main(
    path: str,
    config: dict[str, Any],
    slot: int,
    name: str,
    options: EngineOptions,
    until_empty: bool,
    ready: BarrierType,
    stop: EventType,
    results: mp.Queue[tuple[str, Any]],
) -> None:
    try:
        if options.netns is not None:
            # Before the event loop: every thread and socket of the worker starts in it.
            enter_netns(options.netns)
        engine_stats, stats = asyncio.run(
            _child(
                path, QueueConfig.from_dict(config), slot, name, options, until_empty, ready, stop
            )
        )
    except BaseException as error:  # noqa: BLE001 - reported to the parent, then exit 1
        results.put(("error", f"{name}: {type(error).__name__}: {error}"))
        raise SystemExit(1) from None
    results.put(("ok", (name, engine_stats, stats)))


async def _child(
    path: str,
    config: QueueConfig,
    slot: int,
    name: str,
    options: EngineOptions,
    until_empty: bool,
    ready: BarrierType,
    stop: EventType,
) -> tuple[list[EngineStats], QueueStats]:
    main = asyncio.current_task()
    assert main is not None
    orphaned = asyncio.ensure_future(_watch_parent(main, ready))
    try:
        async with TaskQueue(path, config, affinity_slot=slot) as queue:
            engines = [
                WorkerEngine(engine, queue, options.handlers, concurrency=options.concurrency)
                for engine in _engine_names(name, options.engines)
            ]
            await asyncio.to_thread(ready.wait)
            if until_empty:
                results = await asyncio.gather(*(e.run_until_empty() for e in engines))
            else:
                stop_event = asyncio.Event()
                watcher = asyncio.ensure_future(_watch(stop, stop_event))
                results = await asyncio.gather(*(e.run(stop_event) for e in engines))
                watcher.cancel()
            return list(results), queue.stats
    finally:
        orphaned.cancel()


PARENT_CHECK_S = 0.1
"""How often a worker process checks that the process that started it is alive."""


async def _watch_parent(main: asyncio.Task[Any], ready: BarrierType) -> None:
    """Cancel the worker once the process that started it has died.

    A parent that stops on a signal it handles kills its workers itself; one killed outright
    (SIGKILL, the OOM killer) cannot, and a worker of ``until_empty=False`` would then run
    for ever, or wait for ever at the start barrier.
    """
    parent = mp.parent_process()
    if parent is None:
        return  # not a spawned worker (called in-process)
    while parent.is_alive():
        await asyncio.sleep(PARENT_CHECK_S)
    ready.abort()  # a worker still waiting for the others stops waiting (its thread returns)
    main.cancel()


async def _watch(stop: EventType, stop_event: asyncio.Event) -> None:
    while not stop.is_set():
        await asyncio.sleep(0.02)
    stop_event.set()
