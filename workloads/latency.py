"""latency: end-to-end latency at an offered rate (open loop).

A producer enqueues at a fixed rate whatever the queue does (an open loop: a late task adds
to the backlog instead of slowing the producer down). Every task's latency is observed twice:
by polling its status as a client would (``e2e``), and from the queue's own timestamps
(``e2e_timestamps``: finished_at - created_at; ``queue_wait``: started_at - created_at).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from runs import LatencySummary, WorkloadResult
from taskqueue import QueueConfig, TaskQueue

from .base import DerivesNothingAfterRun
from .context import RunContext
from .params import (
    Size,
    WorkloadParams,
    mode_param,
    param,
    payload_bytes_param,
    task_type_param,
    tasks_param,
    workers_param,
)
from .tasks import error_counters, make_tasks, op_latencies, workers_label
from .workers import Workers, combined_stats, worker_shares, worker_step


@dataclass(frozen=True)
class LatencyParams(WorkloadParams):
    """Options of the latency workload."""

    workload_name = "latency"

    rate: float = param(500.0, "offered rate in tasks/s (open loop)", minimum=1, maximum=100_000)
    tasks: int = tasks_param(2_500, "tasks offered in total (duration = tasks / rate)")
    workers: int = workers_param(5)
    mode: str = mode_param()
    task_type: str = task_type_param()
    payload_bytes: int = payload_bytes_param()
    poll_interval_ms: float = param(
        1.0, "how often a client polls a task's status", minimum=0.1, maximum=1_000
    )
    drain_timeout_s: float = param(
        60.0, "longest wait for the last task after the producer stops", minimum=1, maximum=3_600
    )


class LatencyWorkload(DerivesNothingAfterRun):
    """Offer tasks at a fixed rate and measure each one's enqueue-to-completion latency."""

    name = "latency"
    description = "end-to-end latency at an offered rate (open loop): p50 .. p99.9, max"
    params_type = LatencyParams
    queue_defaults = ""
    sizes: Mapping[Size, LatencyParams] = {
        Size.SMOKE: LatencyParams(tasks=400),
        Size.DEFAULT: LatencyParams(tasks=5_000),
        Size.FULL: LatencyParams(tasks=30_000),
    }

    async def run(self, params: LatencyParams, ctx: RunContext) -> WorkloadResult:
        """Produce, observe, then read the queue's timestamps of every task."""
        path = ctx.database("latency")
        polled_s: list[float] = []
        ids: list[int] = []
        async with TaskQueue(path, ctx.queue_config) as queue:
            try:
                started = time.perf_counter()
                async with Workers(queue, params.workers, params.mode, until_empty=False) as pool:
                    await self._produce(queue, params, ctx, ids, polled_s)
                    offered_s = time.perf_counter() - started
                    ctx.partial.metric("achieved_rate_tasks_per_s", len(ids) / offered_s)
                    pool_result = await pool.stop()
                stats = combined_stats(queue, pool_result)
                shares = worker_shares(pool_result)
                # The run's one pool of workers, as a step: who did how much of it.
                ctx.partial.step(
                    worker_step(
                        f"{workers_label(params.workers)}, {params.mode}",
                        {"workers": params.workers, "mode": params.mode},
                        shares,
                        latencies=op_latencies(stats),
                        counters=error_counters(stats, pool_result),
                    )
                )
                ctx.partial.count("completed", pool_result.total.completed)
                ctx.partial.count("lost", len(ids) - len(polled_s))
                for name, value in error_counters(stats, pool_result).items():
                    ctx.partial.count(name, value)
                for op, summary in op_latencies(stats).items():
                    ctx.partial.latency(op, summary)
            finally:
                # Also on Ctrl-C: what was observed so far is the partial result.
                self._record_polled(polled_s, ctx)
        await self._record_timestamps(path, ids, ctx)
        return ctx.partial.result(complete=True)

    async def _produce(
        self,
        queue: TaskQueue,
        params: LatencyParams,
        ctx: RunContext,
        ids: list[int],
        polled_s: list[float],
    ) -> None:
        ctx.progress.phase(f"{params.rate:g} tasks/s, {params.workers} workers", params.tasks)
        interval = params.poll_interval_ms / 1000.0
        watchers: list[asyncio.Task[None]] = []
        tasks = make_tasks(params.task_type, params.tasks, params.payload_bytes)
        first = time.perf_counter()
        try:
            for index, (task_type, payload) in enumerate(tasks):
                lag = first + index / params.rate - time.perf_counter()
                if lag > 0:
                    await asyncio.sleep(lag)
                enqueued = time.perf_counter()
                task_id = await queue.enqueue(task_type, payload)
                ids.append(task_id)
                watchers.append(
                    asyncio.create_task(self._observe(queue, task_id, enqueued, interval, polled_s))
                )
                ctx.progress.advance()
            await asyncio.wait_for(asyncio.gather(*watchers), params.drain_timeout_s)
        finally:
            for watcher in watchers:
                watcher.cancel()

    @staticmethod
    async def _observe(
        queue: TaskQueue, task_id: int, enqueued: float, interval: float, polled_s: list[float]
    ) -> None:
        await queue.poll(task_id, interval=interval)
        polled_s.append(time.perf_counter() - enqueued)

    @staticmethod
    def _record_polled(polled_s: list[float], ctx: RunContext) -> None:
        e2e = LatencySummary.from_seconds(polled_s)
        ctx.partial.latency("e2e", e2e)
        if e2e.count:
            for name in ("p50_ms", "p95_ms", "p99_ms", "p999_ms", "max_ms", "mean_ms"):
                value = getattr(e2e, name)
                assert value is not None
                ctx.partial.metric(f"e2e_{name}", value)

    @staticmethod
    async def _record_timestamps(path: Path | str, ids: list[int], ctx: RunContext) -> None:
        # A second, uninstrumented queue object, so these reads do not count as status calls.
        e2e: list[float] = []
        wait: list[float] = []
        async with TaskQueue(path, QueueConfig()) as reader:
            for task_id in ids:
                status = await reader.status(task_id)
                if status is None or status.finished_at is None or status.started_at is None:
                    continue
                e2e.append(status.finished_at - status.created_at)
                wait.append(status.started_at - status.created_at)
        ctx.partial.latency("e2e_timestamps", LatencySummary.from_seconds(e2e))
        ctx.partial.latency("queue_wait", LatencySummary.from_seconds(wait))
