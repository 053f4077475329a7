"""The typed result of an analysis: what every renderer formats.

:class:`Analysis` holds one :class:`RunAnalysis` per run folder, the agreement between
profilers that ran the same workload, and every finding ranked. Values are frozen; the JSON
form (``findings.json``) carries :data:`SCHEMA_VERSION`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from runs import StepResult, Verdict

from .attribution import Agreement, Attribution
from .hotspots import SqlHotspot
from .latency import LatencyDistribution
from .memory import AllocationAttribution

SCHEMA_VERSION = 2
"""Version of ``findings.json``. Bump on any change to these classes.

2: :attr:`RunAnalysis.screenshots`."""


class Severity(StrEnum):
    """How much a finding matters; findings are ranked by this, then by impact."""

    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"


SEVERITY_ORDER = {s: i for i, s in enumerate(Severity)}


@dataclass(frozen=True, slots=True)
class Evidence:
    """One number a finding rests on, and the artifact it came from."""

    figure: str
    value: float
    unit: str
    artifact: str


@dataclass(frozen=True, slots=True)
class Finding:
    """A conclusion computed from a run's data, citing its numbers."""

    key: str
    """Stable identifier (``batching``, ``sql-scan-3``...), for tools that track findings."""
    severity: Severity
    title: str
    detail: str
    evidence: tuple[Evidence, ...]
    recommendation: str | None = None
    impact: float = 0.0
    """The fraction of time (or of the target) at stake, for ranking within a severity."""
    run_id: str | None = None


@dataclass(frozen=True, slots=True)
class Overhead:
    """The profiler's cost, measured against the bare run of the same invocation."""

    profiler: str
    ratio: float
    wall_ratio: float | None
    goal: float | None
    baseline: str | None


@dataclass(frozen=True, slots=True)
class RoundTrips:
    """Operation calls per completed task: each one trip to the connection thread, except
    those that ran inline on the event loop (``dispatch``)."""

    calls: Mapping[str, int]
    tasks: int
    inline: int = 0
    """Of the calls, how many ran on the event loop with no trip (the queue's count)."""

    @property
    def per_task(self) -> float:
        return sum(self.calls.values()) / self.tasks if self.tasks else 0.0

    @property
    def inline_share(self) -> float:
        """The share of the calls that ran inline, with no trip."""
        total = sum(self.calls.values())
        return min(self.inline / total, 1.0) if total else 0.0


@dataclass(frozen=True, slots=True)
class Screenshot:
    """An artifact as its viewer showed it (``queueprof view-check``), as PNG."""

    path: str
    """Relative to the run folder."""
    description: str
    """Which artifact, in which viewer, and whether it rendered."""
    png_base64: str
    """The image, so the HTML report can embed it and stay one self-contained file."""


@dataclass(frozen=True)
class RunAnalysis:
    """Everything the analysis computed for one run folder."""

    run_id: str
    folder: str
    workload: str
    size: str
    profiler: str
    profiler_options: Mapping[str, Any]
    status: str
    started_at: str
    duration_s: float
    params: Mapping[str, Any]
    queue: Mapping[str, Any]
    metrics: Mapping[str, float]
    counters: Mapping[str, int]
    steps: tuple[StepResult, ...]
    targets: tuple[Verdict, ...]
    attributions: tuple[Attribution, ...] = ()
    allocations: AllocationAttribution | None = None
    latencies: tuple[LatencyDistribution, ...] = ()
    """From op-samples.npz: every call of every operation."""
    trace_latencies: tuple[LatencyDistribution, ...] = ()
    """From the Chrome trace's operation spans, when the run has one."""
    sql: tuple[SqlHotspot, ...] = ()
    round_trips: RoundTrips | None = None
    overhead: Overhead | None = None
    findings: tuple[Finding, ...] = ()
    screenshots: tuple[Screenshot, ...] = ()
    notes: tuple[str, ...] = ()
    """Caveats about the inputs (partial run, profiler problems, skipped events...)."""


@dataclass(frozen=True, slots=True)
class RunAgreement:
    """Two runs of the same workload under different profilers, compared on one role."""

    run_a: str
    run_b: str
    agreement: Agreement


@dataclass(frozen=True)
class Analysis:
    """The analysis of one or more runs: what renderers format."""

    runs: tuple[RunAnalysis, ...]
    agreements: tuple[RunAgreement, ...] = ()
    findings: tuple[Finding, ...] = ()
    """Every run's findings and the cross-run ones, ranked."""
    schema_version: int = field(default=SCHEMA_VERSION)


def ranked(findings: list[Finding] | tuple[Finding, ...]) -> tuple[Finding, ...]:
    """``findings`` by severity, then by impact (largest first), then by key."""
    return tuple(
        sorted(
            findings, key=lambda f: (SEVERITY_ORDER[f.severity], -f.impact, f.key, f.run_id or "")
        )
    )
