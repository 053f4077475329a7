"""memory: many tasks in chunks; memory growth per 1,000 tasks, peak, and a leak verdict.

After each chunk is drained the workload collects garbage and records RSS (this process and
its worker processes) and the Python heap (tracemalloc, this process). Growth per 1,000 tasks
is the slope of a least-squares line through the chunks after the warm-up; the leak verdict
is that slope against the ``[memory]`` target. A sampler thread records CPU and RSS over time.
The fit runs in :meth:`MemoryWorkload.finalize`, after the profiler's session: computed inside
it, numpy's fit was the peak a memray run reported, not the queue.
``leak_bytes_per_task`` plants a leak (the ``alloc`` handler keeping its block) to check that
the verdict catches one.
"""

from __future__ import annotations

import dataclasses
import gc
import time
import tracemalloc
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from runs import WorkloadResult
from taskqueue import TaskQueue

from . import heapgrowth
from .context import RunContext
from .errors import ParameterError
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
from .sampler import ResourceSampler, tree_rss
from .tasks import error_counters, make_tasks, op_latencies
from .workers import Workers, worker_shares, worker_step


@dataclass(frozen=True)
class MemoryParams(WorkloadParams):
    """Options of the memory workload."""

    workload_name = "memory"

    chunks: int = param(20, "chunks of tasks, each drained before the next", minimum=2)
    chunk_tasks: int = tasks_param(1_000, "tasks per chunk")
    workers: int = workers_param(2)
    mode: str = mode_param()
    task_type: str = task_type_param()
    payload_bytes: int = payload_bytes_param(256)
    warmup_chunks: int = param(2, "chunks left out of the growth fit", minimum=0)
    sample_interval_s: float = param(
        0.1, "seconds between CPU/RSS samples", minimum=0.01, maximum=60
    )
    trace_heap: bool = param(True, "trace the Python heap with tracemalloc (slower)")
    leak_bytes_per_task: int = param(
        0, "plant a leak: each task keeps this many bytes (0: none)", minimum=0, maximum=1_048_576
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.chunks - self.warmup_chunks < 2:
            raise ParameterError(
                f"parameter warmup_chunks={self.warmup_chunks} leaves "
                f"{self.chunks - self.warmup_chunks} of chunks={self.chunks} to fit; "
                "at least 2 are needed: lower warmup_chunks or raise chunks"
            )


class MemoryWorkload:
    """Drain chunk after chunk and watch memory."""

    name = "memory"
    description = "tasks in chunks: RSS and heap growth per 1k tasks, peak, leak verdict"
    params_type = MemoryParams
    queue_defaults = ""
    sizes: Mapping[Size, MemoryParams] = {
        Size.SMOKE: MemoryParams(chunks=6, chunk_tasks=200, warmup_chunks=1),
        Size.DEFAULT: MemoryParams(),
        Size.FULL: MemoryParams(chunks=50, chunk_tasks=2_000, warmup_chunks=5),
    }

    async def run(self, params: MemoryParams, ctx: RunContext) -> WorkloadResult:
        """Drain every chunk, sampling memory after each one."""
        partial = ctx.partial
        partial.declare_series("chunks", ("tasks_done", "rss_bytes", "heap_bytes", "elapsed_s"))
        partial.declare_series("resources", ("elapsed_s", "cpu_percent", "rss_bytes"))
        tracing = params.trace_heap and not tracemalloc.is_tracing()
        if tracing:
            tracemalloc.start(heapgrowth.HEAP_FRAMES)  # enough frames to name the operation
        sampler = ResourceSampler(params.sample_interval_s)
        started = time.perf_counter()
        marks: list[heapgrowth.HeapMark] = []
        try:
            with sampler:
                await self._chunks(params, ctx, started, marks)
        finally:
            peak_heap = tracemalloc.get_traced_memory()[1] if tracemalloc.is_tracing() else 0
            if tracing:
                tracemalloc.stop()
            if len(marks) == 2:
                growth = heapgrowth.growth_document(marks[0], marks[1])
                ctx.keep_artifact(heapgrowth.artifact(growth), heapgrowth.encode(growth))
                marks.clear()  # the snapshots are large: free them now
            for row in sampler.samples:
                partial.sample("resources", row)
            if sampler.peak_rss:
                partial.metric("peak_rss_mib", sampler.peak_rss / 2**20)
            if peak_heap:
                partial.metric("peak_heap_mib", peak_heap / 2**20)
        return partial.result(complete=True)

    def finalize(self, params: MemoryParams, result: WorkloadResult) -> WorkloadResult:
        """Growth per 1,000 tasks: least-squares slopes through the chunks after the warm-up."""
        rows = result.series.get("chunks", ())[params.warmup_chunks :]
        if len(rows) < 2:
            return result
        data = np.asarray(rows, dtype=np.float64)
        per_1k = data[:, 0] / 1_000.0
        metrics = dict(result.metrics)
        metrics["rss_growth_kib_per_1k_tasks"] = float(np.polyfit(per_1k, data[:, 1], 1)[0]) / 1024
        if data[:, 2].any():
            heap_slope = float(np.polyfit(per_1k, data[:, 2], 1)[0])
            metrics["heap_growth_kib_per_1k_tasks"] = heap_slope / 1024
        notes = [
            "record_timings keeps every operation's duration (8 bytes per sample, about 2-3 "
            "samples per task): part of the heap growth is that instrumentation"
        ]
        if params.mode == "process":
            notes.append(
                "process mode: the heap is this process's only (the producer); worker "
                "processes show in RSS"
            )
        return dataclasses.replace(result, metrics=metrics, notes=(*result.notes, *notes))

    async def _chunks(
        self,
        params: MemoryParams,
        ctx: RunContext,
        started: float,
        marks: list[heapgrowth.HeapMark],
    ) -> None:
        """Drain the chunks; ``marks`` gets the steady-state window's two heap snapshots."""
        total = params.chunks * params.chunk_tasks
        ctx.progress.phase(f"{params.chunks} chunks of {params.chunk_tasks}", total)
        async with TaskQueue(ctx.database("memory"), ctx.queue_config) as queue:
            async with Workers(queue, params.workers, params.mode, until_empty=False) as pool:
                # Steady state: from the end of the warm-up to the end of the last chunk, with
                # the workers still running (what they free when they stop is not growth).
                window_start = heapgrowth.mark(0, 0.0) if params.warmup_chunks == 0 else None
                for chunk in range(params.chunks):
                    first = chunk * params.chunk_tasks
                    await queue.enqueue_many(self._tasks(params, first))
                    await pool.drained()
                    gc.collect()
                    heap = tracemalloc.get_traced_memory()[0] if tracemalloc.is_tracing() else 0
                    done = first + params.chunk_tasks
                    elapsed = time.perf_counter() - started
                    ctx.partial.sample("chunks", (done, tree_rss(), heap, elapsed))
                    ctx.progress.update(done)
                    if chunk + 1 == params.warmup_chunks:
                        window_start = heapgrowth.mark(done, elapsed)
                    elif chunk + 1 == params.chunks and window_start is not None:
                        window_end = heapgrowth.mark(done, elapsed)
                        if window_end is not None:
                            marks.extend((window_start, window_end))
                result = await pool.stop()
            stats = queue.stats
            if result.stats is not queue.stats:
                stats.merge(result.stats)
            ctx.partial.metric("tasks_per_s", total / (time.perf_counter() - started))
            for op, summary in op_latencies(stats).items():
                ctx.partial.latency(op, summary)
            for name, value in error_counters(stats, result).items():
                ctx.partial.count(name, value)
            ctx.partial.count("completed", result.total.completed)
            ctx.partial.step(
                worker_step(
                    f"{params.workers} workers, {params.mode}",
                    {"workers": params.workers, "mode": params.mode},
                    worker_shares(result),
                    latencies=op_latencies(stats),
                    counters={"completed": result.total.completed},
                )
            )

    @staticmethod
    def _tasks(params: MemoryParams, first: int) -> list[tuple[str, dict[str, object]]]:
        if params.leak_bytes_per_task == 0:
            return list(
                make_tasks(params.task_type, params.chunk_tasks, params.payload_bytes, first)
            )
        tasks = make_tasks("alloc", params.chunk_tasks, params.payload_bytes, first)
        for _, payload in tasks:
            payload["bytes"] = params.leak_bytes_per_task
            payload["keep"] = True
        return list(tasks)
