"""Time series of a run, read from its results: what the over-time plots draw.

:func:`queue_timeline` gives throughput and queue depth over time with the workload's events
(the stress workload's bursts and kills); :func:`memory_timeline` gives RSS and heap over time
with the growth lines the memory workload's verdict rests on. Both are pure functions of a
:class:`~runs.WorkloadResult`; a result without the series gives None.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from runs import StepResult, WorkloadResult

EVENT_SERIES = {"bursts": "burst", "kills": "worker killed"}
"""Series whose rows mark events (first column ``elapsed_s``), and what to call each event."""
MEMORY_GROWTH = {
    "rss_bytes": "rss_growth_kib_per_1k_tasks",
    "heap_bytes": "heap_growth_kib_per_1k_tasks",
}
"""The memory workload's per-chunk columns and the growth metric fitted through each."""


@dataclass(frozen=True, slots=True)
class QueueTimeline:
    """Throughput and queue depth over a run, and the events that happened in it."""

    series: str
    """The results series it comes from."""
    elapsed_s: tuple[float, ...]
    """The end of each interval, seconds from the series' start."""
    throughput: tuple[float, ...]
    """Tasks completed per second over the interval ending at ``elapsed_s``."""
    queue_depth: tuple[float, ...] | None
    """Tasks waiting to be claimed at ``elapsed_s`` (None: the series does not count them)."""
    events: Mapping[str, tuple[float, ...]]
    """Event name -> the times it happened, on the same clock."""
    completed: int
    """Tasks completed over the series (the last count minus the first)."""


@dataclass(frozen=True, slots=True)
class GrowthLine:
    """A least-squares growth line through the steady-state chunks, as the verdict fits it."""

    column: str
    slope_kib_per_1k_tasks: float
    elapsed_s: tuple[float, ...]
    """Where each fitted chunk ended."""
    fitted_bytes: tuple[float, ...]
    """The line's value at each of those chunks."""


@dataclass(frozen=True, slots=True)
class MemoryTimeline:
    """RSS and heap over a memory run, with the growth lines of its verdicts."""

    rss_elapsed_s: tuple[float, ...]
    rss_bytes: tuple[float, ...]
    """The resource sampler's RSS of the process tree."""
    chunk_elapsed_s: tuple[float, ...]
    chunk_rss_bytes: tuple[float, ...]
    chunk_heap_bytes: tuple[float, ...] | None
    """The traced Python heap after each chunk (None: the heap was not traced)."""
    warmup_chunks: int
    growth: tuple[GrowthLine, ...]


def _columns(result: WorkloadResult, name: str) -> dict[str, np.ndarray[Any, Any]] | None:
    rows = result.series.get(name, ())
    columns = result.series_columns.get(name, ())
    if not rows or not columns:
        return None
    table = np.asarray(rows, dtype=np.float64).reshape(len(rows), len(columns))
    return {column: table[:, i] for i, column in enumerate(columns)}


def completion_rate(
    elapsed_s: np.ndarray[Any, Any], done: np.ndarray[Any, Any]
) -> np.ndarray[Any, Any]:
    """Tasks per second between consecutive samples of a cumulative ``done`` count."""
    span = np.diff(elapsed_s)
    return np.divide(np.diff(done), span, out=np.zeros_like(span), where=span > 0)


def queue_timelines(result: WorkloadResult) -> tuple[QueueTimeline, ...]:
    """One timeline per results series with ``elapsed_s`` and ``tasks_done`` (two rows or
    more), each carrying every event series of the result."""
    events = {
        label: tuple(float(t) for t in columns["elapsed_s"])
        for name, label in EVENT_SERIES.items()
        if (columns := _columns(result, name)) is not None and "elapsed_s" in columns
    }
    found = []
    for name in sorted(result.series):
        columns = _columns(result, name)
        if columns is None or "elapsed_s" not in columns or "tasks_done" not in columns:
            continue
        elapsed, done = columns["elapsed_s"], columns["tasks_done"]
        if elapsed.size < 2:
            continue
        depth = columns.get("tasks_pending")
        found.append(
            QueueTimeline(
                series=name,
                elapsed_s=tuple(float(t) for t in elapsed[1:]),
                throughput=tuple(float(r) for r in completion_rate(elapsed, done)),
                queue_depth=None if depth is None else tuple(float(d) for d in depth[1:]),
                events=events,
                completed=int(done[-1] - done[0]),
            )
        )
    return tuple(found)


def memory_timeline(result: WorkloadResult) -> MemoryTimeline | None:
    """RSS and heap over time from the memory workload's ``chunks`` and ``resources`` series.

    Each growth line has the slope the result's metric reports and passes through the mean
    of the fitted chunks, as every least-squares line does: the line drawn is the verdict's.
    """
    chunks = _columns(result, "chunks")
    if chunks is None or not {"elapsed_s", "tasks_done", "rss_bytes"} <= chunks.keys():
        return None
    warmup = int(result.params.get("warmup_chunks", 0))
    fitted = slice(warmup, None)
    growth = []
    for column, metric in MEMORY_GROWTH.items():
        slope = result.metrics.get(metric)
        values = chunks.get(column)
        if slope is None or values is None or values[fitted].size < 2:
            continue
        tasks = chunks["tasks_done"][fitted]
        line = values[fitted].mean() + slope * 1024 * (tasks - tasks.mean()) / 1_000
        growth.append(
            GrowthLine(
                column,
                float(slope),
                tuple(float(t) for t in chunks["elapsed_s"][fitted]),
                tuple(float(v) for v in line),
            )
        )
    resources = _columns(result, "resources")
    heap = chunks.get("heap_bytes")
    traced = heap is not None and bool(heap.any())
    return MemoryTimeline(
        rss_elapsed_s=_floats(resources, "elapsed_s"),
        rss_bytes=_floats(resources, "rss_bytes"),
        chunk_elapsed_s=tuple(float(t) for t in chunks["elapsed_s"]),
        chunk_rss_bytes=tuple(float(v) for v in chunks["rss_bytes"]),
        chunk_heap_bytes=tuple(float(v) for v in heap) if heap is not None and traced else None,
        warmup_chunks=warmup,
        growth=tuple(g for g in growth if traced or g.column != "heap_bytes"),
    )


def _floats(columns: Mapping[str, np.ndarray[Any, Any]] | None, name: str) -> tuple[float, ...]:
    if columns is None or name not in columns:
        return ()
    return tuple(float(v) for v in columns[name])


def worker_steps(steps: Sequence[StepResult]) -> tuple[StepResult, ...]:
    """The steps worth a per-worker strip: per worker mode, the one with the most workers
    (where imbalance shows first), in the steps' order. Steps without per-worker figures
    are skipped."""
    widest: dict[str, StepResult] = {}
    for step in steps:
        if not step.workers:
            continue
        mode = str(step.settings.get("mode", ""))
        if mode not in widest or len(step.workers) > len(widest[mode].workers):
            widest[mode] = step
    chosen = set(map(id, widest.values()))
    return tuple(step for step in steps if id(step) in chosen)
