"""throughput: enqueue N tasks, then drain them with W workers; tasks per second for each W."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass

from runs import StepResult, WorkloadResult
from taskqueue import TaskQueue

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
    worker_counts_param,
)
from .sampler import QUEUE_COLUMNS, queue_timeline, task_times
from .tasks import error_counters, make_tasks, op_latencies
from .tasks import workers_label as _workers
from .workers import combined_stats, drain, fairness_metrics, worker_shares


@dataclass(frozen=True)
class ThroughputParams(WorkloadParams):
    """Options of the throughput workload."""

    workload_name = "throughput"

    worker_counts: tuple[int, ...] = worker_counts_param((1, 5, 10))
    tasks: int = tasks_param(5_000, "tasks enqueued and processed at each worker count")
    mode: str = mode_param()
    task_type: str = task_type_param()
    payload_bytes: int = payload_bytes_param()
    enqueue_batch: int = param(
        1, "tasks per enqueue call (1 = one enqueue() per task)", minimum=1, maximum=10_000
    )


def rate_metric(kind: str, workers: int) -> str:
    """The metric (and target) name of a rate at ``workers`` workers.

    ``rate_metric("process", 5)`` is ``process_tasks_per_s_5_workers``.
    """
    return f"{kind}_tasks_per_s_{workers}_worker" + ("" if workers == 1 else "s")


class ThroughputWorkload(DerivesNothingAfterRun):
    """Enqueue, then process until empty, once per worker count (a fresh database each)."""

    name = "throughput"
    description = "enqueue N tasks, then drain with W workers: enqueue and process tasks/s"
    params_type = ThroughputParams
    queue_defaults = ""
    sizes: Mapping[Size, ThroughputParams] = {
        Size.SMOKE: ThroughputParams(tasks=300),
        Size.DEFAULT: ThroughputParams(tasks=3_000),
        Size.FULL: ThroughputParams(tasks=50_000),
    }

    async def run(self, params: ThroughputParams, ctx: RunContext) -> WorkloadResult:
        """Run every worker count in turn, recording each as a step."""
        for workers in params.worker_counts:
            await self._step(params, workers, ctx)
        return ctx.partial.result(complete=True)

    async def _step(self, params: ThroughputParams, workers: int, ctx: RunContext) -> None:
        tasks = make_tasks(params.task_type, params.tasks, params.payload_bytes)
        label = f"{_workers(workers)}, {params.mode}"
        database = ctx.database(f"throughput-w{workers}")
        async with TaskQueue(database, ctx.queue_config) as queue:
            ctx.progress.phase(f"{label}: enqueue", params.tasks)
            started = time.perf_counter()
            batch = params.enqueue_batch
            for first in range(0, len(tasks), batch):
                chunk = tasks[first : first + batch]
                if batch == 1:
                    await queue.enqueue(*chunk[0])
                else:
                    await queue.enqueue_many(chunk)
                ctx.progress.advance(len(chunk))
            enqueue_s = time.perf_counter() - started

            ctx.progress.phase(f"{label}: process", params.tasks)
            result = await drain(queue, workers, params.mode, ctx.progress)
            stats = combined_stats(queue, result)

        # Throughput and queue depth over the step, from the tasks' own times once it is over.
        series = f"queue, step {len(ctx.partial.steps) + 1} ({label})"
        ctx.partial.declare_series(series, QUEUE_COLUMNS)
        for row in queue_timeline(await asyncio.to_thread(task_times, database)):
            ctx.partial.sample(series, row)
        total = result.total
        process_rate = total.completed / result.wall_s if result.wall_s > 0 else 0.0
        enqueue_rate = params.tasks / enqueue_s if enqueue_s > 0 else 0.0
        shares = worker_shares(result)
        fairness = fairness_metrics(shares)
        counters = {
            **error_counters(stats, result),
            "completed": total.completed,
            "failed_attempts": total.failed,
            "dead": total.dead,
            "lost": params.tasks - total.completed - total.dead,
        }
        ctx.partial.step(
            StepResult(
                label=label,
                settings={"workers": workers, "mode": params.mode},
                metrics={
                    "enqueue_tasks_per_s": enqueue_rate,
                    "process_tasks_per_s": process_rate,
                    "process_wall_s": result.wall_s,
                    **fairness,
                },
                latencies=op_latencies(stats),
                counters=counters,
                workers=shares,
            )
        )
        ctx.partial.metric(rate_metric("process", workers), process_rate)
        ctx.partial.metric(rate_metric("enqueue", workers), enqueue_rate)
        for name, value in counters.items():
            ctx.partial.count(name, ctx.partial.counters.get(name, 0) + value)
