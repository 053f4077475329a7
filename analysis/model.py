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
from .crossover import CrossoverReport
from .hotspots import SqlHotspot
from .latency import LatencyDistribution
from .memory import AllocationAttribution, RetainedGrowth
from .pgserver import DatabaseSide
from .scaling import UslFit
from .timelines import MemoryTimeline, QueueTimeline

SCHEMA_VERSION = 6
"""Version of ``findings.json``. Bump on any change to these classes.

2: :attr:`RunAnalysis.screenshots`.
3: findings carry a cause, a cost and their support instead of a severity; the analysis
lists them by standing (causes, information, insufficient evidence).
4: latency distributions carry a histogram of every sample; runs carry their scaling fits,
timelines, memory timeline, artifacts and the project's goals; the analysis, where each run's
artifacts are relative to the report.
5: runs carry their database side (:attr:`RunAnalysis.database`): PostgreSQL sessions
sampled by operation and pg_stat_statements.
6: runs carry their crossover (SQLite against PostgreSQL by worker count)."""


class Cause(StrEnum):
    """What a finding says is wrong (or that it only informs). One name per rule."""

    SQL_SCAN = "sql-scan"
    SQL_SORT = "sql-sort"
    N_PLUS_ONE = "n-plus-one"
    HOT_SUBTREE = "hot-subtree"
    PER_CALL_OVERHEAD = "per-call-overhead"
    CONTENTION = "contention"
    POLLING = "polling"
    """Idle engines claiming again and again and finding nothing."""
    MEMORY_GROWTH = "memory-growth"
    MEMORY_PEAK = "memory-peak"
    WORKER_IMBALANCE = "worker-imbalance"
    LOOP_HOLD = "loop-hold"
    ROUND_TRIPS = "round-trips"
    BACKLOG_GROWTH = "backlog-growth"
    """A queue whose cost per task grows with its backlog (the comparison's sweep)."""
    WAITING = "waiting"
    TARGET = "target"
    TAIL = "tail"
    OVERHEAD = "overhead"
    PROFILE = "profile"
    """Where the time goes, as a description: no cause claimed."""
    AGREEMENT = "agreement"


INFORMATION = frozenset(
    {
        Cause.TARGET,
        Cause.TAIL,
        Cause.OVERHEAD,
        Cause.PROFILE,
        Cause.AGREEMENT,
        Cause.WAITING,
        Cause.MEMORY_PEAK,
    }
)
"""Causes that describe a run rather than explain a cost: they never lead a ranking that has
a cause finding above the floors (a missed target is what the causes explain)."""


class Measure(StrEnum):
    """What a cost's ``share`` is a fraction of: how costs of different kinds compare."""

    WALL = "wall time of the run"
    """Seconds of the run (statement time, lock waits, profile time on the event loop)."""
    WORKERS = "workers' busy time"
    """Seconds summed over concurrent workers (lock waits, trips), over their busy time (not
    idle) summed; the wall time each when busy time was not recorded."""
    MEMORY = "heap growth of the run"
    """Bytes retained in steady state, or held at the peak: memory findings rank by this."""


@dataclass(frozen=True, slots=True)
class Cost:
    """What a finding costs, in the run's own units, and as a comparable share."""

    value: float
    unit: str
    """``s`` (seconds of the run), ``ms/task``, ``bytes/1k tasks``, ``bytes``."""
    share: float
    """``value`` as a fraction of the run's :class:`Measure` (0-1): the ranking key."""
    measure: Measure = Measure.WALL

    def text(self) -> str:
        """``1.2 s (34% of the wall time of the run)``."""
        return f"{_amount(self.value, self.unit)} ({100 * self.share:.0f}% of the {self.measure})"


def _amount(value: float, unit: str) -> str:
    if unit.startswith("bytes"):
        rest = unit[len("bytes") :]
        if abs(value) >= 2**20:
            return f"{value / 2**20:.3g} MiB{rest}"
        return f"{value / 1024:.3g} KiB{rest}"
    return f"{value:.3g} {unit}"


@dataclass(frozen=True, slots=True)
class Support:
    """How much data a finding rests on, and the least it needs to be believed."""

    count: int
    unit: str
    """``samples``, ``calls``, ``statements``, ``retries``, ``allocations``..."""
    floor: int
    """Below this a finding is reported under "insufficient evidence" and never leads."""

    @property
    def sufficient(self) -> bool:
        return self.count >= self.floor


MIN_LEADING_SHARE = 0.03
"""A cause costing less than this share of its run's measure is ranked with the information:
on a clean run every operation has some cost, and the largest of them is not an alarm."""
MIN_LEADING_SECONDS = 0.01
"""A cause costing less than this many seconds of its run is ranked with the information
whatever its share: in a run of a tenth of a second, one scheduler hiccup on a shared machine
is a few milliseconds and several percent, and no change to the queue would win it back."""


class Standing(StrEnum):
    """Where a finding sits in the ranking (the sections of the report)."""

    CAUSE = "cause"
    """A cause above its evidence floor and above :data:`MIN_LEADING_SHARE`."""
    INFORMATION = "information"
    """A description, a minor cause, or a finding with no measured cost."""
    INSUFFICIENT = "insufficient evidence"
    """Below its evidence floor: reported as such, never ranked above the others."""


@dataclass(frozen=True, slots=True)
class Evidence:
    """One number a finding rests on, and the artifact it came from."""

    figure: str
    value: float
    unit: str
    artifact: str


@dataclass(frozen=True, slots=True)
class Finding:
    """A conclusion computed from a run's data, citing its numbers, its cost and its support."""

    key: str
    """Stable identifier (``sql-scan-3``, ``n-plus-one-status``...), for tools that track them."""
    cause: Cause
    title: str
    detail: str
    evidence: tuple[Evidence, ...]
    recommendation: str | None = None
    cost: Cost | None = None
    """None: nothing measured to rank it by (information)."""
    support: Support | None = None
    """None: the finding does not rest on a sample (a count from the results)."""
    op: str | None = None
    """The queue operation the finding names (``claim``), when it names one."""
    subject: str | None = None
    """What inside the operation it names, as a bare function name (``_notify``), so runs of
    the same workload under different profilers can be matched."""
    run_id: str | None = None

    @property
    def standing(self) -> Standing:
        """The section this finding is ranked in."""
        if self.support is not None and not self.support.sufficient:
            return Standing.INSUFFICIENT
        if self.cause in INFORMATION or self.cost is None or self.cost.share < MIN_LEADING_SHARE:
            return Standing.INFORMATION
        if self.cost.unit == "s" and self.cost.value < MIN_LEADING_SECONDS:
            return Standing.INFORMATION
        return Standing.CAUSE

    @property
    def sufficient(self) -> bool:
        return self.standing is not Standing.INSUFFICIENT

    @property
    def negligible(self) -> bool:
        """Whether it measured a cost of less than :data:`MIN_LEADING_SECONDS` of its run:
        kept in the report, but no reading for a short list."""
        return (
            self.cost is not None
            and self.cost.unit == "s"
            and self.cost.value < MIN_LEADING_SECONDS
        )


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


@dataclass(frozen=True, slots=True)
class ArtifactLink:
    """An artifact of a run, as its manifest lists it: what the reports link and cite."""

    path: str
    """Relative to the run folder."""
    kind: str
    format: str
    description: str
    viewer: str
    """How to open it, as the profiler that wrote it says."""


@dataclass(frozen=True, slots=True)
class BareRun:
    """The bare (unprofiled) run of the same invocation (``baseline/``): call timings without
    the profiler's cost on every Python call, for rules that weigh the queue's own Python."""

    duration_s: float
    latencies: tuple[LatencyDistribution, ...]
    sql_ms: Mapping[str, float]
    """Each operation's SQL time in the bare run (its SQL capture)."""


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
    retained: RetainedGrowth | None = None
    """Steady-state growth by site (heap-growth.json), when the memory workload wrote it."""
    latencies: tuple[LatencyDistribution, ...] = ()
    """From op-samples.npz: every call of every operation."""
    trace_latencies: tuple[LatencyDistribution, ...] = ()
    """From the Chrome trace's operation spans, when the run has one."""
    sql: tuple[SqlHotspot, ...] = ()
    database: DatabaseSide | None = None
    """A PostgreSQL run's server side: sessions by operation, statement counters."""
    round_trips: RoundTrips | None = None
    overhead: Overhead | None = None
    findings: tuple[Finding, ...] = ()
    screenshots: tuple[Screenshot, ...] = ()
    bare: BareRun | None = None
    notes: tuple[str, ...] = ()
    """Caveats about the inputs (partial run, profiler problems, skipped events...)."""
    scaling: tuple[UslFit, ...] = ()
    """The scalability fit per worker mode, when the run's steps vary the worker count."""
    timelines: tuple[QueueTimeline, ...] = ()
    """Throughput (and queue depth) over time, with the workload's events."""
    memory_timeline: MemoryTimeline | None = None
    """RSS and heap over time with the growth lines (the memory workload)."""
    artifacts: tuple[ArtifactLink, ...] = ()
    """The run's artifacts present in its folder, in the manifest's order."""
    goals: tuple[Verdict, ...] = ()
    """The project's own goals (``workloads.goals``) on this run's metrics, beside
    :attr:`targets` (the seed's)."""
    crossover: CrossoverReport | None = None
    """SQLite against PostgreSQL by worker count, when the steps pair the two backends."""


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
    artifact_dirs: Mapping[str, str] = field(default_factory=dict)
    """Per run id, where its artifacts are, relative to the folder the report is written to
    (set when a report is written; without it, links are relative to the run folder)."""
    schema_version: int = field(default=SCHEMA_VERSION)


_STANDING_ORDER = {s: i for i, s in enumerate(Standing)}


def ranked(findings: list[Finding] | tuple[Finding, ...]) -> tuple[Finding, ...]:
    """``findings`` by standing (causes, information, insufficient evidence), then by cost
    share (largest first); findings with no cost last in their section, then by key."""
    return tuple(
        sorted(
            findings,
            key=lambda f: (
                _STANDING_ORDER[f.standing],
                -(f.cost.share if f.cost is not None else -1.0),
                f.key,
                f.run_id or "",
            ),
        )
    )
