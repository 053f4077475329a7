"""The baseline: no profiler. Its runs are what every profiler's overhead is measured against."""

from __future__ import annotations

from .base import Artifact, Profiler


class NoProfiler(Profiler):
    """Runs the workload bare and writes no artifacts."""

    name = "none"
    description = "no profiler: the baseline for overhead ratios"

    def finish(self, *, interrupted: bool = False) -> list[Artifact]:
        return []
