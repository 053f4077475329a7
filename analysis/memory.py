"""Memory by queue operation, from memray's peak and leaked stacks."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from .load.heap_growth import HeapGrowth
from .load.memray_stats import AllocationSnapshot, MemoryStats
from .operations import BUILTIN, Category, Op, OperationMap

TOP_SITES = 5


@dataclass(frozen=True, slots=True)
class AllocationSite:
    """A function that allocated (the innermost frame of its stacks) and what it holds."""

    function: str
    file: str | None
    bytes: int
    allocations: int


@dataclass(frozen=True, slots=True)
class CategoryBytes:
    """Memory a category's stacks hold."""

    category: Op
    bytes: int
    allocations: int
    share: float
    """Of the bytes in the stacks memray-stats.json lists."""
    top_sites: tuple[AllocationSite, ...]


@dataclass(frozen=True, slots=True)
class SnapshotByOperation:
    """One snapshot (peak or leaked) split by category."""

    total_bytes: int
    """Every byte of the snapshot."""
    listed_bytes: int
    """Bytes in the stacks the stats file lists (the largest ones); shares are of these."""
    categories: tuple[CategoryBytes, ...]

    @property
    def coverage(self) -> float:
        """How much of the snapshot the listed stacks cover."""
        return self.listed_bytes / self.total_bytes if self.total_bytes else 0.0


@dataclass(frozen=True, slots=True)
class AllocationAttribution:
    """Where memray says the memory went."""

    source: str
    peak_memory_bytes: int
    peak: SnapshotByOperation
    leaked: SnapshotByOperation


def attribute_memory(
    stats: MemoryStats, source: str, operations: OperationMap = BUILTIN
) -> AllocationAttribution:
    """Split memray's peak and leaked stacks by the innermost operation frame of each."""
    return AllocationAttribution(
        source=source,
        peak_memory_bytes=stats.peak_memory_bytes,
        peak=_split(stats.peak, operations),
        leaked=_split(stats.leaked, operations),
    )


def _split(snapshot: AllocationSnapshot, operations: OperationMap) -> SnapshotByOperation:
    by_category: dict[Op, list[int]] = defaultdict(lambda: [0, 0])
    sites: dict[Op, dict[tuple[str, str | None], list[int]]] = defaultdict(
        lambda: defaultdict(lambda: [0, 0])
    )
    for stack in snapshot.stacks:
        category = next(
            (c for c in (operations.category(f) for f in stack.frames) if c is not None),
            Category.OTHER,
        )
        by_category[category][0] += stack.bytes
        by_category[category][1] += stack.allocations
        site = (stack.frames[0].name, stack.frames[0].file) if stack.frames else ("?", None)
        sites[category][site][0] += stack.bytes
        sites[category][site][1] += stack.allocations
    listed = sum(v[0] for v in by_category.values())
    categories = tuple(
        CategoryBytes(
            category=category,
            bytes=by_category[category][0],
            allocations=by_category[category][1],
            share=by_category[category][0] / listed if listed else 0.0,
            top_sites=tuple(
                AllocationSite(name, file, size, count)
                for (name, file), (size, count) in sorted(
                    sites[category].items(), key=lambda item: -item[1][0]
                )[:TOP_SITES]
            ),
        )
        for category in sorted(by_category, key=lambda c: -by_category[c][0])
    )
    return SnapshotByOperation(snapshot.total_bytes, listed, categories)


@dataclass(frozen=True, slots=True)
class RetainedGrowth:
    """Memory retained in the steady-state window, by operation and allocation site."""

    source: str
    """The artifact (``heap-growth.json``)."""
    tasks: int
    bytes_per_1k_tasks: float
    growth: SnapshotByOperation


def attribute_growth(
    growth: HeapGrowth, source: str, operations: OperationMap = BUILTIN
) -> RetainedGrowth:
    """Split the steady-state growth by the innermost operation frame of each stack."""
    snapshot = AllocationSnapshot(
        total_bytes=growth.total_bytes,
        total_allocations=sum(s.allocations for s in growth.stacks),
        stacks=growth.stacks,
    )
    return RetainedGrowth(
        source, growth.tasks, growth.bytes_per_1k_tasks, _split(snapshot, operations)
    )
