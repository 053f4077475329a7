"""``memray-stats.json``: peak and leaked memory by allocating stack (innermost frame first)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ArtifactError
from ..profile import Frame
from .jsonfile import read_json_object

FIX = "re-run the workload with `--profiler memray`"


@dataclass(frozen=True, slots=True)
class StackAllocation:
    """Memory held by one stack: its frames innermost first."""

    frames: tuple[Frame, ...]
    bytes: int
    allocations: int
    thread: str


@dataclass(frozen=True, slots=True)
class AllocationSnapshot:
    """One view of the capture (at the peak, or leaked at the end): totals and top stacks."""

    total_bytes: int
    total_allocations: int
    stacks: tuple[StackAllocation, ...]


@dataclass(frozen=True, slots=True)
class MemoryStats:
    """What the memray wrapper summarised from its capture."""

    peak_memory_bytes: int
    total_allocations: int
    duration_s: float | None
    peak: AllocationSnapshot
    leaked: AllocationSnapshot


def load_memray_stats(path: Path) -> MemoryStats:
    """Read ``memray-stats.json``."""
    document = read_json_object(path, "the memray stack statistics", FIX)
    if document.get("schema_version") != 1:
        raise ArtifactError(
            path,
            f"schema_version {document.get('schema_version')!r} is not supported (expected 1)",
            FIX,
        )
    try:
        return MemoryStats(
            peak_memory_bytes=int(document["peak_memory_bytes"]),
            total_allocations=int(document["total_allocations"]),
            duration_s=float(document["duration_s"]) if "duration_s" in document else None,
            peak=_snapshot(document["peak_by_stack"]),
            leaked=_snapshot(document["leaked_by_stack"]),
        )
    except (KeyError, TypeError, ValueError, IndexError) as error:
        raise ArtifactError(
            path, f"not memray stack statistics ({type(error).__name__}: {error})", FIX
        ) from None


def _snapshot(data: dict[str, Any]) -> AllocationSnapshot:
    return AllocationSnapshot(
        total_bytes=int(data["total_bytes"]),
        total_allocations=int(data["total_allocations"]),
        stacks=tuple(stack_allocation(entry) for entry in data["stacks"]),
    )


def stack_allocation(entry: dict[str, Any]) -> StackAllocation:
    """One ``stacks`` entry (``stack`` innermost first as [function, file, line], ``bytes``,
    ``allocations``, ``thread``): the shape memray's statistics and heap growth share."""
    return StackAllocation(
        frames=tuple(
            Frame(str(f[0]), str(f[1]) if f[1] else None, int(f[2]) if f[2] else None)
            for f in entry["stack"]
        ),
        bytes=int(entry["bytes"]),
        allocations=int(entry["allocations"]),
        thread=str(entry.get("thread", "")),
    )
