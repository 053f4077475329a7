"""dbops: latency of each queue operation (enqueue, claim, complete, status).

Two phases on fresh databases: ``1 worker`` (enqueue N one at a time, query each task's
status, then one worker claims and completes them all) and ``N workers`` (N workers drain a
pre-filled queue while a producer enqueues one task at a time, each followed by a status
query of a random earlier task).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass

from runs import StepResult, WorkloadResult
from taskqueue import PoolResult, TaskQueue

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
)
from .tasks import error_counters, make_tasks, op_latencies
from .workers import Workers, combined_stats, drain, fairness_metrics, worker_shares

TARGET_OPS = ("enqueue", "claim", "status")


@dataclass(frozen=True)
class DbopsParams(WorkloadParams):
    """Options of the dbops workload."""

    workload_name = "dbops"

    tasks: int = tasks_param(3_000, "tasks per phase (and status queries per phase)")
    workers: int = param(10, "concurrent workers in the second phase", minimum=2, maximum=64)
    mode: str = mode_param()
    task_type: str = task_type_param()
    payload_bytes: int = payload_bytes_param()
    seed: int = param(1, "random seed for the status queries' task ids", minimum=0, maximum=2**31)


class DbopsWorkload(DerivesNothingAfterRun):
    """Per-operation latency with one worker, then under N concurrent workers."""

    name = "dbops"
    description = "per-operation latency of enqueue, claim, status: 1 worker and N workers"
    params_type = DbopsParams
    queue_defaults = ""
    sizes: Mapping[Size, DbopsParams] = {
        Size.SMOKE: DbopsParams(tasks=300),
        Size.DEFAULT: DbopsParams(tasks=2_000),
        Size.FULL: DbopsParams(tasks=30_000),
    }

    async def run(self, params: DbopsParams, ctx: RunContext) -> WorkloadResult:
        """Run both phases; each target metric is the worse of the two phases' p99."""
        rng = random.Random(params.seed)
        await self._single(params, ctx, rng)
        await self._concurrent(params, ctx, rng)
        # Tasks completed over both phases: what `compare` divides time and calls by.
        ctx.partial.count(
            "completed", sum(step.counters.get("completed", 0) for step in ctx.partial.steps)
        )
        for op in TARGET_OPS:
            worst = [
                summary.p99_ms
                for step in ctx.partial.steps
                if (summary := step.latencies.get(op)) is not None and summary.p99_ms is not None
            ]
            if worst:
                ctx.partial.metric(f"{op}_p99_ms", max(worst))
        return ctx.partial.result(complete=True)

    async def _single(self, params: DbopsParams, ctx: RunContext, rng: random.Random) -> None:
        tasks = make_tasks(params.task_type, params.tasks, params.payload_bytes)
        async with TaskQueue(ctx.database("dbops-single"), ctx.queue_config) as queue:
            ctx.progress.phase("1 worker: enqueue", len(tasks))
            ids = []
            for task_type, payload in tasks:
                ids.append(await queue.enqueue(task_type, payload))
                ctx.progress.advance()
            ctx.progress.phase("1 worker: status", len(ids))
            for task_id in rng.sample(ids, len(ids)):
                await queue.status(task_id)
                ctx.progress.advance()
            ctx.progress.phase("1 worker: claim + complete", len(ids))
            result = await drain(queue, 1, params.mode, ctx.progress)
            self._record("1 worker", 1, params, queue, result, ctx)

    async def _concurrent(self, params: DbopsParams, ctx: RunContext, rng: random.Random) -> None:
        prefill = make_tasks(params.task_type, params.tasks, params.payload_bytes)
        extra = make_tasks(params.task_type, params.tasks, params.payload_bytes, start=len(prefill))
        async with TaskQueue(ctx.database("dbops-concurrent"), ctx.queue_config) as queue:
            ids = await queue.enqueue_many(prefill)
            queue.stats.reset()  # the bulk pre-fill is not an enqueue latency sample
            label = f"{params.workers} workers"
            ctx.progress.phase(f"{label}: enqueue + status while draining", len(extra))
            async with Workers(queue, params.workers, params.mode, until_empty=False) as pool:
                for task_type, payload in extra:
                    ids.append(await queue.enqueue(task_type, payload))
                    await queue.status(rng.choice(ids))
                    ctx.progress.advance()
                await pool.drained(0.01)
                result = await pool.stop()
            self._record(label, params.workers, params, queue, result, ctx)

    @staticmethod
    def _record(
        label: str,
        workers: int,
        params: DbopsParams,
        queue: TaskQueue,
        pool: PoolResult,
        ctx: RunContext,
    ) -> None:
        stats = combined_stats(queue, pool)
        latencies = op_latencies(stats)
        shares = worker_shares(pool)
        metrics: dict[str, float] = fairness_metrics(shares)
        for op, summary in latencies.items():
            if summary.p50_ms is not None and summary.p99_ms is not None:
                metrics[f"{op}_p50_ms"] = summary.p50_ms
                metrics[f"{op}_p99_ms"] = summary.p99_ms
        ctx.partial.step(
            StepResult(
                label=label,
                settings={"workers": workers, "mode": params.mode},
                metrics=metrics,
                latencies=latencies,
                counters={**error_counters(stats, pool), "completed": pool.total.completed},
                workers=shares,
            )
        )
        suffix = "1_worker" if workers == 1 else f"{workers}_workers"
        for op in TARGET_OPS:
            if f"{op}_p50_ms" in metrics:
                ctx.partial.metric(f"{op}_p50_ms_{suffix}", metrics[f"{op}_p50_ms"])
                ctx.partial.metric(f"{op}_p99_ms_{suffix}", metrics[f"{op}_p99_ms"])
