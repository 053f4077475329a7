"""The workloads by name: the one place that lists them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import Workload
from .comparison import ComparisonWorkload
from .concurrency import ConcurrencyWorkload
from .crossover import CrossoverWorkload
from .dbops import DbopsWorkload
from .errors import ParameterError
from .latency import LatencyWorkload
from .memory import MemoryWorkload
from .stress import StressWorkload
from .throughput import ThroughputWorkload

WORKLOADS: Mapping[str, Workload[Any]] = {
    workload.name: workload
    for workload in (
        ThroughputWorkload(),
        LatencyWorkload(),
        DbopsWorkload(),
        ConcurrencyWorkload(),
        StressWorkload(),
        MemoryWorkload(),
        ComparisonWorkload(),
        CrossoverWorkload(),
    )
}


def get_workload(name: str) -> Workload[Any]:
    """The workload called ``name``; :class:`ParameterError` listing the valid names if none."""
    try:
        return WORKLOADS[name]
    except KeyError:
        raise ParameterError(f"unknown workload {name!r}; valid: {', '.join(WORKLOADS)}") from None
