"""``heap-growth.json``: memory allocated in the steady-state window and still live at its end.

The memory workload snapshots the heap (tracemalloc) after its warm-up chunks and after its
last chunk, before the workers stop and the queue closes, and diffs them by allocation stack:
what the queue retains per task while it runs, not what is left at teardown.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import ArtifactError
from .jsonfile import read_json_object
from .memray_stats import StackAllocation, stack_allocation

FIX = "re-run the memory workload (`queueprof run memory`)"


@dataclass(frozen=True, slots=True)
class HeapGrowth:
    """Net growth by allocation stack over the steady-state window."""

    source: str
    """What measured it (``tracemalloc``)."""
    tasks: int
    """Tasks completed in the window."""
    seconds: float
    total_bytes: int
    """Net growth: the sum of the sites that grew."""
    bytes_per_1k_tasks: float
    stacks: tuple[StackAllocation, ...]
    """The sites that grew the most, innermost frame first."""


def load_heap_growth(path: Path) -> HeapGrowth:
    """Read ``heap-growth.json`` (schema_version 1)."""
    document = read_json_object(path, "the steady-state heap growth", FIX)
    if document.get("schema_version") != 1:
        raise ArtifactError(
            path,
            f"schema_version {document.get('schema_version')!r} is not supported (expected 1)",
            FIX,
        )
    try:
        window = document["window"]
        return HeapGrowth(
            source=str(document.get("source", "tracemalloc")),
            tasks=int(window["tasks"]),
            seconds=float(window.get("seconds", 0.0)),
            total_bytes=int(document["total_bytes"]),
            bytes_per_1k_tasks=float(document["bytes_per_1k_tasks"]),
            stacks=tuple(stack_allocation(entry) for entry in document["stacks"]),
        )
    except (KeyError, TypeError, ValueError, IndexError) as error:
        raise ArtifactError(
            path, f"not a heap growth document ({type(error).__name__}: {error})", FIX
        ) from None
