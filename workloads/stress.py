"""stress: sustained load with bursts, large payloads, status queries and killed workers.

A producer offers ``rate`` tasks/s for ``duration_s`` seconds, adds a burst of
``burst_tasks`` every ``burst_every_s``, gives every ``large_every``-th task a large payload,
and a reader queries random task statuses. In process mode a worker is killed with SIGKILL
every ``kill_every_s`` and replaced; the tasks it held must come back once their lease
expires (recovery time). Afterwards the database itself is audited: a trigger installed
before the run logs every transition to ``done``, so a task completed twice shows up twice,
and a task never completed is lost. Both counts must be 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass
from multiprocessing.context import SpawnProcess
from pathlib import Path

from runs import LatencySummary, WorkerShare, WorkloadResult
from taskqueue import EngineOptions, PoolResult, QueueStats, TaskQueue, is_dsn

from . import pgaudit
from .base import DerivesNothingAfterRun
from .context import RunContext
from .errors import WorkloadError
from .params import (
    Size,
    WorkloadParams,
    mode_param,
    param,
    payload_bytes_param,
    task_type_param,
    workers_param,
)
from .sampler import QUEUE_COLUMNS, QueueDepthSampler
from .tasks import error_counters, make_tasks, op_latencies
from .workers import Workers, worker_step

AUDIT_SCHEMA = """
CREATE TABLE IF NOT EXISTS stress_completions (
    task_id INTEGER NOT NULL, attempts INTEGER, worker TEXT
);
CREATE TRIGGER IF NOT EXISTS stress_audit_done AFTER UPDATE OF state ON tasks
WHEN NEW.state = 'done' AND OLD.state <> 'done'
BEGIN
    INSERT INTO stress_completions (task_id, attempts, worker)
    VALUES (NEW.id, NEW.attempts, NEW.worker);
END;
"""


@dataclass(frozen=True)
class StressParams(WorkloadParams):
    """Options of the stress workload."""

    workload_name = "stress"

    duration_s: float = param(20.0, "seconds of sustained load", minimum=0.5, maximum=86_400)
    rate: float = param(200.0, "steady offered rate in tasks/s", minimum=1, maximum=100_000)
    workers: int = workers_param(4)
    mode: str = mode_param("process")
    task_type: str = task_type_param("sleep")
    payload_bytes: int = payload_bytes_param(256)
    burst_every_s: float = param(5.0, "seconds between bursts (0: none)", minimum=0, maximum=3600)
    burst_tasks: int = param(500, "tasks in each burst", minimum=1, maximum=1_000_000)
    large_payload_bytes: int = param(
        65_536, "bytes of padding in the large payloads", minimum=0, maximum=4_194_304
    )
    large_every: int = param(10, "every n-th task carries the large payload", minimum=1)
    status_rate: float = param(50.0, "status queries per second", minimum=0, maximum=10_000)
    kill_every_s: float = param(
        5.0, "process mode: SIGKILL a worker this often (0: never)", minimum=0, maximum=3600
    )
    drain_timeout_s: float = param(
        120.0, "longest wait for the queue to drain after the load", minimum=1, maximum=3600
    )
    seed: int = param(1, "random seed (status ids, which worker to kill)", minimum=0)
    sample_interval_s: float = param(
        0.2, "seconds between counts of the queue's tasks by state", minimum=0.01, maximum=60
    )


class StressWorkload(DerivesNothingAfterRun):
    """Sustained load with bursts and killed workers; audits lost and duplicated tasks."""

    name = "stress"
    description = "sustained load, bursts, 64 KiB payloads, SIGKILLed workers: lost/duplicated"
    params_type = StressParams
    queue_defaults = "lease_s=1"
    """A short lease so a killed worker's tasks come back within the run."""
    sizes: Mapping[Size, StressParams] = {
        Size.SMOKE: StressParams(
            duration_s=3, rate=100, burst_every_s=1, burst_tasks=100, kill_every_s=1.2, workers=3
        ),
        Size.DEFAULT: StressParams(),
        Size.FULL: StressParams(duration_s=300, rate=400, burst_tasks=2_000),
    }

    async def run(self, params: StressParams, ctx: RunContext) -> WorkloadResult:
        """Load, kill, drain, then audit the database."""
        path = ctx.database("stress")
        rng = random.Random(params.seed)
        ids: list[int] = []
        recoveries: list[float] = []
        pools: list[Workers] = []
        results: list[PoolResult] = []
        watchers: list[asyncio.Task[None]] = []
        ctx.partial.declare_series("queue", QUEUE_COLUMNS)
        ctx.partial.declare_series("bursts", ("elapsed_s", "tasks"))
        ctx.partial.declare_series("kills", ("elapsed_s",))
        stack = contextlib.ExitStack()
        depth: QueueDepthSampler | None = None
        async with TaskQueue(path, ctx.queue_config) as queue:
            await asyncio.to_thread(_install_audit, path)
            main = Workers(queue, params.workers, params.mode, until_empty=False)
            pools.append(main)
            try:
                await main.start()
                ctx.progress.phase(f"{params.duration_s:g} s of load", params.duration_s)
                # One clock for the queue's depth and the events marked on it.
                depth = QueueDepthSampler(path, time.perf_counter(), params.sample_interval_s)
                stack.enter_context(depth)
                load = asyncio.create_task(self._produce(queue, params, ids, ctx, depth.started))
                reader = asyncio.create_task(
                    self._read(queue, params, ids, rng), name="status reader"
                )
                killer = asyncio.create_task(
                    self._kill(queue, params, pools, rng, watchers, recoveries, ctx, depth.started),
                    name="worker killer",
                )
                try:
                    await load
                finally:
                    reader.cancel()
                    killer.cancel()
                    await asyncio.wait([reader, killer])
                for helper in (reader, killer):
                    if not helper.cancelled() and helper.exception() is not None:
                        raise WorkloadError(f"stress: {helper.get_name()} failed") from (
                            helper.exception()
                        )
                ctx.progress.phase("drain", None)
                deadline = time.monotonic() + params.drain_timeout_s
                while not await queue.is_drained():
                    if params.mode == "process" and not _alive(pools):
                        # Every worker exited on its own: joining them reports why.
                        for pool in pools:
                            await pool.stop()
                        raise WorkloadError(
                            "stress: every worker process exited before the queue drained"
                        )
                    if time.monotonic() > deadline:
                        stuck = await asyncio.to_thread(_unfinished, path)
                        alive = [process.name for process in _alive(pools)]
                        raise WorkloadError(
                            f"stress: the queue did not drain within {params.drain_timeout_s} s "
                            f"after the load (unfinished: {stuck}; live worker processes: "
                            f"{alive or 'none'}); raise drain_timeout_s or lower the rate"
                        )
                    await asyncio.sleep(0.05)
                await asyncio.gather(*watchers)
                stack.close()  # the depth series ends once the queue has drained
                for pool in pools:
                    results.append(await pool.stop())
            except BaseException:
                for watcher in watchers:
                    watcher.cancel()
                for pool in pools:
                    await pool.abort()
                # What the producer side measured is the partial result.
                ctx.partial.metric("tasks_enqueued", len(ids))
                for op, summary in op_latencies(queue.stats).items():
                    ctx.partial.latency(op, summary)
                if recoveries:
                    ctx.partial.latency("recovery", LatencySummary.from_seconds(recoveries))
                raise
            finally:
                stack.close()
                for row in depth.samples if depth is not None else ():
                    ctx.partial.sample("queue", row)
            stats = QueueStats()
            stats.merge(queue.stats)
            if params.mode == "process":
                for result in results:
                    stats.merge(result.stats)
        audit = await asyncio.to_thread(_audit, path, ids)
        by_worker = await asyncio.to_thread(_completed_by_worker, path)
        self._record(params, ids, stats, audit, recoveries, results, ctx)
        self._record_workers(params, results, by_worker, stats, ctx)
        return ctx.partial.result(complete=True)

    async def _produce(
        self,
        queue: TaskQueue,
        params: StressParams,
        ids: list[int],
        ctx: RunContext,
        started: float,
    ) -> None:
        small = "x" * params.payload_bytes
        large = "x" * params.large_payload_bytes
        next_burst = params.burst_every_s or float("inf")
        sent = 0
        while (elapsed := time.perf_counter() - started) < params.duration_s:
            if elapsed >= next_burst:
                burst = make_tasks(params.task_type, params.burst_tasks, start=len(ids))
                ctx.partial.sample("bursts", (elapsed, len(burst)))
                ids.extend(await queue.enqueue_many(burst))
                next_burst += params.burst_every_s
            due = sent / params.rate
            if due > elapsed:
                await asyncio.sleep(due - elapsed)
                continue
            pad = large if (sent + 1) % params.large_every == 0 else small
            ((task_type, payload),) = make_tasks(params.task_type, 1, start=len(ids))
            payload["pad"] = pad
            ids.append(await queue.enqueue(task_type, payload))
            sent += 1
            ctx.progress.update(elapsed)

    @staticmethod
    async def _read(
        queue: TaskQueue, params: StressParams, ids: list[int], rng: random.Random
    ) -> None:
        if params.status_rate <= 0:
            return
        while True:
            await asyncio.sleep(1.0 / params.status_rate)
            if ids:
                await queue.status(rng.choice(ids))

    async def _kill(
        self,
        queue: TaskQueue,
        params: StressParams,
        pools: list[Workers],
        rng: random.Random,
        watchers: list[asyncio.Task[None]],
        recoveries: list[float],
        ctx: RunContext,
        started: float,
    ) -> None:
        """Until cancelled: SIGKILL a random live worker, start a replacement, time recovery."""
        ctx.partial.count("workers_killed", 0)
        if params.mode != "process" or params.kill_every_s <= 0:
            if params.kill_every_s > 0:
                ctx.partial.note("async mode: no worker is killed (SIGKILL needs process mode)")
            return
        kills = 0
        while True:
            await asyncio.sleep(params.kill_every_s)
            victim = await self._victim(queue.target, pools, rng)
            if victim is None:
                continue
            victim.kill()
            killed_at = time.perf_counter()
            ctx.partial.sample("kills", (killed_at - started,))
            await asyncio.to_thread(victim.join, 5)
            kills += 1
            # Counted now: the load may end (and cancel this) while the replacement starts.
            ctx.partial.count("workers_killed", kills)
            held = await asyncio.to_thread(_held_by, queue.target, victim.name)
            watchers.append(asyncio.create_task(self._recovery(queue, held, killed_at, recoveries)))
            replacement = Workers(
                queue,
                1,
                "process",
                until_empty=False,
                options=EngineOptions(name_prefix=f"r{kills}-"),
            )
            pools.append(replacement)
            await replacement.start()

    @staticmethod
    async def _victim(
        path: Path | str, pools: list[Workers], rng: random.Random
    ) -> SpawnProcess | None:
        """A live worker process, preferably one holding tasks (a crash in mid-task).

        Looks for a busy worker for up to half a second, then takes any live one.
        """
        alive = {process.name: process for process in _alive(pools)}
        if not alive:
            return None
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            busy = [name for name in await asyncio.to_thread(_busy_workers, path) if name in alive]
            if busy:
                return alive[rng.choice(sorted(busy))]
            await asyncio.sleep(0.002)
        return alive[rng.choice(sorted(alive))]

    @staticmethod
    async def _recovery(
        queue: TaskQueue, held: list[int], killed_at: float, recoveries: list[float]
    ) -> None:
        """Time from the kill until every task the victim held is finished."""
        pending = set(held)
        while pending:
            for task_id in list(pending):
                status = await queue.status(task_id)
                if status is None or status.finished:
                    pending.discard(task_id)
            if pending:
                await asyncio.sleep(0.02)
        if held:
            recoveries.append(time.perf_counter() - killed_at)

    @staticmethod
    def _record(
        params: StressParams,
        ids: list[int],
        stats: QueueStats,
        audit: dict[str, int],
        recoveries: list[float],
        results: list[PoolResult],
        ctx: RunContext,
    ) -> None:
        partial = ctx.partial
        partial.metric("lost_tasks", audit["lost"])
        partial.metric("duplicated_tasks", audit["duplicated"])
        partial.metric("tasks_enqueued", len(ids))
        partial.metric("offered_tasks_per_s", len(ids) / params.duration_s)
        if recoveries:
            partial.metric("recovery_max_s", max(recoveries))
            partial.latency("recovery", LatencySummary.from_seconds(recoveries))
        for op, summary in op_latencies(stats).items():
            partial.latency(op, summary)
        for name, value in error_counters(stats).items():
            partial.count(name, value)
        for name, value in audit.items():
            partial.count(name, value)
        partial.count("kills_with_tasks_in_flight", len(recoveries))
        partial.count("failed_attempts", sum(r.total.failed for r in results))

    @staticmethod
    def _record_workers(
        params: StressParams,
        results: list[PoolResult],
        by_worker: Mapping[str, int],
        stats: QueueStats,
        ctx: RunContext,
    ) -> None:
        """One step with every worker that ran, the killed ones and their replacements too.

        Completions come from the audit table (the database's own count, by the worker that
        held the lease), so a SIGKILLed worker's tasks are counted; its busy time died with
        its process and shows as 0.
        """
        shares = tuple(
            WorkerShare(engine.name, by_worker.get(engine.name, 0), engine.busy_s)
            for result in results
            for engine in result.engines
        )
        ctx.partial.step(
            worker_step(
                f"{params.workers} workers, {params.mode}",
                {"workers": params.workers, "mode": params.mode, "workers_started": len(shares)},
                shares,
                latencies=op_latencies(stats),
                counters={"completed": sum(s.completed for s in shares)},
            )
        )
        if len(shares) > params.workers:
            ctx.partial.note(
                f"{len(shares) - params.workers} of the {len(shares)} workers are replacements "
                "for killed ones (r<n>-...): they started late, so they did less; a killed "
                "worker's busy time is lost with its process (recorded as 0 s)"
            )


def _alive(pools: list[Workers]) -> list[SpawnProcess]:
    return [
        process
        for pool in pools
        if pool.processes is not None
        for process in pool.processes.processes
        if process.is_alive()
    ]


# Each helper reads a SQLite file, or, given a postgresql:// URL, asks workloads.pgaudit.


def _install_audit(path: Path | str) -> None:
    if is_dsn(path):
        return pgaudit.install(str(path))
    with contextlib.closing(sqlite3.connect(path, timeout=30)) as db:
        db.executescript(AUDIT_SCHEMA)


def _busy_workers(path: Path | str) -> list[str]:
    if is_dsn(path):
        return pgaudit.busy_workers(str(path))
    with contextlib.closing(sqlite3.connect(path, timeout=30)) as db:
        rows = db.execute("SELECT DISTINCT worker FROM tasks WHERE state = 'running'").fetchall()
    return [row[0] for row in rows if row[0] is not None]


def _unfinished(path: Path | str) -> str:
    """Tasks still pending or running, by state and worker, for a drain-timeout message."""
    if is_dsn(path):
        rows = pgaudit.unfinished(str(path))
    else:
        with contextlib.closing(sqlite3.connect(path, timeout=30)) as db:
            rows = db.execute(
                "SELECT state, coalesce(worker, '-'), count(*), min(lease_until) - ? "
                "FROM tasks WHERE state IN ('pending', 'running') GROUP BY 1, 2",
                (time.time(),),
            ).fetchall()
    return ", ".join(
        f"{count} {state} on {worker} (lease ends in {left:.1f} s)"
        if left is not None
        else f"{count} {state}"
        for state, worker, count, left in rows
    )


def _held_by(path: Path | str, worker: str) -> list[int]:
    if is_dsn(path):
        return pgaudit.held_by(str(path), worker)
    with contextlib.closing(sqlite3.connect(path, timeout=30)) as db:
        rows = db.execute(
            "SELECT id FROM tasks WHERE state = 'running' AND worker = ?", (worker,)
        ).fetchall()
    return [row[0] for row in rows]


def _completed_by_worker(path: Path | str) -> dict[str, int]:
    """Tasks each worker completed, from the audit table."""
    if is_dsn(path):
        return pgaudit.completed_by_worker(str(path))
    with contextlib.closing(sqlite3.connect(path, timeout=30)) as db:
        rows = db.execute(
            "SELECT worker, count(*) FROM stress_completions GROUP BY worker"
        ).fetchall()
    return {str(worker): count for worker, count in rows}


def _audit(path: Path | str, ids: list[int]) -> dict[str, int]:
    """Count, from the database itself, tasks lost, completed twice and run more than once."""
    if is_dsn(path):
        return pgaudit.audit(str(path), ids)
    with contextlib.closing(sqlite3.connect(path, timeout=30)) as db:
        db.execute("CREATE TEMP TABLE enqueued (id INTEGER PRIMARY KEY)")
        db.executemany("INSERT INTO enqueued VALUES (?)", ((i,) for i in ids))
        lost = db.execute(
            "SELECT count(*) FROM enqueued e LEFT JOIN tasks t ON t.id = e.id "
            "WHERE t.id IS NULL OR t.state <> 'done'"
        ).fetchone()[0]
        duplicated = db.execute(
            "SELECT count(*) FROM (SELECT task_id FROM stress_completions "
            "GROUP BY task_id HAVING count(*) > 1)"
        ).fetchone()[0]
        rerun = db.execute(
            "SELECT count(*) FROM tasks WHERE state = 'done' AND attempts > 1"
        ).fetchone()[0]
        done = db.execute("SELECT count(*) FROM tasks WHERE state = 'done'").fetchone()[0]
    return {"lost": lost, "duplicated": duplicated, "rerun_after_reclaim": rerun, "done": done}
