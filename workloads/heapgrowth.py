"""Retained heap growth by allocation site, measured in steady state (``heap-growth.json``).

A leak report taken when tracking stops (memray's "leaked" view) misses whatever the run
frees on its way out: a worker that holds every finished task releases them all when it
stops, so at teardown nothing is left to see. Here the memory workload takes two
tracemalloc snapshots while the workers are still running, each after a drained chunk and a
full garbage collection: one when the warm-up chunks are done, one after the last chunk,
before the workers stop and the queue closes. Their difference by allocating traceback is
what the steady state kept: bytes allocated inside the window and still live at its end.

``heap-growth.json``::

    {"schema_version": 1, "source": "tracemalloc", "frames": 25,
     "window": {"start_tasks": int, "end_tasks": int, "tasks": int, "seconds": float},
     "total_bytes": int, "bytes_per_1k_tasks": float,
     "stacks": [{"bytes": int, "allocations": int, "bytes_per_1k_tasks": float,
                 "stack": [[function, file, line], ...]}]}

``total_bytes`` is the net growth over every site (sites that shrank count against it);
``stacks`` are the sites that grew, largest first, innermost frame first as memray lists
them. tracemalloc records file and line only: the function is the innermost ``def`` around
that line in the source file, ``<module>`` outside any.
"""

from __future__ import annotations

import ast
import functools
import tracemalloc
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from runs import Artifact, ArtifactKind
from runs.files import HEAP_GROWTH

from . import sampler

HEAP_GROWTH_VERSION = 1
HEAP_FRAMES = 25
"""Frames kept per traced allocation: enough to reach the queue operation (``Store.*``,
``TaskQueue.*``) from inside orjson, a model constructor or the asyncio machinery."""
TOP_SITES = 50
_MEASUREMENT_FILES = frozenset({tracemalloc.__file__, sampler.__file__})
"""Allocations made under these files are the measurement's (a clean control's growth was
once put on psutil's read buffer, taken by the RSS sampler's thread mid-read)."""


@dataclass(frozen=True, slots=True)
class HeapMark:
    """One steady-state snapshot and where the run was when it was taken."""

    snapshot: tracemalloc.Snapshot
    tasks_done: int
    elapsed_s: float


def mark(tasks_done: int, elapsed_s: float) -> HeapMark | None:
    """Snapshot the traced heap now (call after ``gc.collect()``); None when not tracing."""
    if not tracemalloc.is_tracing():
        return None
    return HeapMark(tracemalloc.take_snapshot(), tasks_done, elapsed_s)


def growth_document(start: HeapMark, end: HeapMark, top: int = TOP_SITES) -> dict[str, Any]:
    """``heap-growth.json``'s content for the window from ``start`` to ``end``.

    Call it with tracing stopped: naming functions parses source files, which under
    tracemalloc with many frames took seconds.
    """
    diffs = [
        d
        for d in end.snapshot.compare_to(start.snapshot, "traceback")
        # The first snapshot's own objects are not the queue's memory, nor are the rows and
        # buffers of the run's own samplers (filtering the snapshots with tracemalloc.Filter
        # instead took 2 s each at smoke size).
        if not any(frame.filename in _MEASUREMENT_FILES for frame in d.traceback)
    ]
    tasks = max(end.tasks_done - start.tasks_done, 0)
    per_1k = 1000.0 / tasks if tasks else 0.0
    grew = sorted((d for d in diffs if d.size_diff > 0), key=lambda d: d.size_diff, reverse=True)
    total = sum(d.size_diff for d in diffs)
    return {
        "schema_version": HEAP_GROWTH_VERSION,
        "source": "tracemalloc",
        "frames": HEAP_FRAMES,
        "window": {
            "start_tasks": start.tasks_done,
            "end_tasks": end.tasks_done,
            "tasks": tasks,
            "seconds": max(end.elapsed_s - start.elapsed_s, 0.0),
        },
        "total_bytes": total,
        "bytes_per_1k_tasks": total * per_1k,
        "stacks": [
            {
                "bytes": d.size_diff,
                "allocations": d.count_diff,
                "bytes_per_1k_tasks": d.size_diff * per_1k,
                "stack": [
                    [_function_at(frame.filename, frame.lineno), frame.filename, frame.lineno]
                    for frame in reversed(d.traceback)  # tracemalloc lists oldest first
                ],
            }
            for d in grew[:top]
        ],
    }


def encode(document: dict[str, Any]) -> bytes:
    """The document as the artifact's bytes."""
    return orjson.dumps(document, option=orjson.OPT_INDENT_2)


def artifact(document: dict[str, Any]) -> Artifact:
    """The manifest entry of ``heap-growth.json``."""
    window = document["window"]
    return Artifact(
        ArtifactKind.ALLOCATIONS,
        HEAP_GROWTH,
        "json",
        "any JSON viewer; `queueprof analyze` attributes the sites to operations",
        f"heap kept during steady state ({window['tasks']:,} tasks, "
        f"{window['seconds']:.2f} s, workers running): "
        f"{document['bytes_per_1k_tasks'] / 1024:,.1f} KiB per 1,000 tasks, by allocation site",
    )


def _function_at(filename: str, line: int) -> str:
    for first, last, name in _functions(filename):
        if first <= line <= last:
            return name  # innermost first: _functions sorts by span
    return "<module>"


@functools.cache
def _functions(filename: str) -> tuple[tuple[int, int, str], ...]:
    """Every ``def`` of ``filename`` as (first line, last line, name), shortest span first;
    empty when the file is not Python source we can read (a frozen or built-in module)."""
    try:
        tree = ast.parse(Path(filename).read_bytes())
    except (OSError, SyntaxError, ValueError):
        return ()
    spans = [
        (node.lineno, node.end_lineno or node.lineno, node.name)
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    ]
    return tuple(sorted(spans, key=lambda span: span[1] - span[0]))
