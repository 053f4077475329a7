"""Number formatting shared by the renderers (one way to write a share or a duration)."""

from __future__ import annotations

import posixpath
from urllib.parse import quote

from runs import Verdict
from workloads.goals import GOALS_COMMAND, METRIC_GOALS, beside_targets, headroom

from ..attribution import FunctionTime, RoleAttribution
from ..crossover import METRICS, THROUGHPUT, CrossoverReport, Lead, PairedPoint
from ..hotspots import SqlHotspot
from ..latency import LatencyDistribution
from ..model import Analysis, Evidence, Finding, RunAnalysis, Standing
from ..pgserver import STATE_COLUMNS, DatabaseSide, state_columns

SECTION_TITLES = {
    Standing.CAUSE: "Causes, by measured cost",
    Standing.INFORMATION: "Information (descriptions, minor costs, targets, overhead)",
    Standing.INSUFFICIENT: "Insufficient evidence (below the floor: never ranked first)",
}


def cost_line(finding: Finding) -> str:
    """``cause sql-scan; cost 0.167 s (12% of the wall time of the run); 109 calls (floor
    20)``: what a finding is, what it cost and what it rests on."""
    parts = [f"cause {finding.cause}"]
    if finding.op:
        parts.append(f"op {finding.op}")
    parts.append(f"cost {finding.cost.text()}" if finding.cost is not None else "no measured cost")
    if finding.support is not None:
        s = finding.support
        parts.append(f"{s.count:,} {s.unit} (floor {s.floor:,})")
    return "; ".join(parts)


def pct(share: float | None) -> str:
    """``0.123`` -> ``12.3%`` (``-`` for None)."""
    return "-" if share is None else f"{100 * share:.1f}%"


def amount(value: float | None, unit: str) -> str:
    """A time in ``unit`` (seconds are shown in ms below 1 s); samples as counts."""
    if value is None:
        return "-"
    if unit == "seconds":
        return f"{value:.3f} s" if value >= 1 else f"{value * 1e3:.1f} ms"
    return f"{value:,.0f} {unit}"


def ms(value: float | None) -> str:
    """Milliseconds with three significant digits."""
    return "-" if value is None else f"{value:.3g} ms"


def evidence(item: Evidence) -> str:
    """``figure = value unit (artifact)``."""
    return f"{evidence_figure(item)} ({item.artifact})"


def evidence_figure(item: Evidence) -> str:
    """``figure = value unit``: an evidence item without the artifact it came from."""
    if item.unit == "fraction":
        value = pct(item.value)
    elif item.unit == "bytes":
        value = f"{item.value:,.0f} bytes"
    else:
        value = f"{item.value:,.4g} {item.unit}"
    return f"{item.figure} = {value}"


def artifact_href(analysis: Analysis, run_id: str | None, path: str) -> str | None:
    """A relative link from the report to ``path`` of run ``run_id`` (a path in its folder),
    or None when the run lists no such artifact (a figure from the results, a finding about
    several runs)."""
    run = next((r for r in analysis.runs if r.run_id == run_id), None)
    if run is None or not any(a.path == path for a in run.artifacts):
        return None
    folder = analysis.artifact_dirs.get(run.run_id, ".")
    return quote(posixpath.normpath(posixpath.join(folder, path)))


def function(item: FunctionTime) -> str:
    """``name (file)``, the file shortened to its last two parts."""
    if not item.file:
        return item.function
    parts = item.file.replace("\\", "/").split("/")
    return f"{item.function} ({'/'.join(parts[-2:])})"


SQL_TIMING_HEADERS = ("calls", "total", "p50", "p99", "of op SQL", "of op latency")
"""Columns every renderer shows for a SQL hotspot, in this order (see :func:`sql_timings`)."""


def sql_timings(hotspot: SqlHotspot) -> list[str]:
    """A hotspot's timing cells, formatted once for the Markdown and HTML tables."""
    return [
        f"{hotspot.count:,}",
        ms(hotspot.total_ms),
        f"{hotspot.p50_us:.3g} us",
        f"{hotspot.p99_us:.3g} us",
        pct(hotspot.share_of_op_sql),
        pct(hotspot.share_of_op_latency),
    ]


QUEUE_HEADER = ("queue", "category", "time", "of queue", "top functions (self time)")
"""Columns of the time-by-queue table (runs that drove several queues)."""


def queue_rows(role: RoleAttribution, *, min_share: float = 0.0) -> list[list[str]]:
    """The time-by-queue table of ``role`` as plain text cells (renderers escape them)."""
    return [
        [
            q.queue,
            str(q.category),
            amount(q.wall, role.unit),
            pct(q.share),
            "; ".join(
                f"{function(f)} {pct(f.self_time / q.wall if q.wall else 0)}" for f in q.top_self
            ),
        ]
        for q in role.queues
        if q.share >= min_share
    ]


def latency_section(run: RunAnalysis) -> tuple[str, tuple[LatencyDistribution, ...]] | None:
    """The one operation-latency table a report shows, and its title: every call from
    op-samples.npz when the run kept them, else the trace's operation spans (the same calls,
    timed again by the tracer: showing both would print each operation twice)."""
    if run.latencies:
        return "Operation latency (op-samples.npz, every call)", run.latencies
    if run.trace_latencies:
        return "Operation latency (operation spans in the trace)", run.trace_latencies
    return None


TARGET_HEADER = (
    "metric",
    "measured",
    "unit",
    "seed target",
    "headroom",
    "seed",
    "project goal",
    "headroom",
    "goal",
)
"""Columns of the targets table: the seed's target and the project's goal side by side,
each with its headroom (how many times over the bar: below 1x it is missed)."""
MISSED = ("FAIL", "missed")
"""The cells of :data:`TARGET_HEADER`'s verdict columns that renderers mark as failures."""


def times(value: float | None) -> str:
    """A headroom: ``1,051x``, ``3.20x``, ``0.84x``; ``-`` where a ratio says nothing."""
    if value is None:
        return "-"
    if value == float("inf"):
        return "∞"
    return f"{value:,.0f}x" if value >= 100 else f"{value:.2f}x"


def target_rows(run: RunAnalysis) -> list[list[str]]:
    """The targets table of ``run`` as plain text cells (renderers escape them)."""

    def bar(verdict: Verdict | None) -> list[str]:
        if verdict is None:
            return ["-", "-"]
        return [f"{verdict.comparator} {verdict.target:g}", times(headroom(verdict))]

    rows = []
    for metric, target, goal in beside_targets(run.targets, run.goals):
        shown = target if target is not None else goal
        if shown is None:  # beside_targets gives at least one of the two
            continue
        rows.append(
            [
                metric,
                f"{shown.measured:.4g}",
                shown.unit,
                *bar(target),
                "-" if target is None else ("pass" if target.passed else "FAIL"),
                *bar(goal),
                "-" if goal is None else ("met" if goal.passed else "missed"),
            ]
        )
    return rows


def goal_notes(run: RunAnalysis) -> list[tuple[str, str]]:
    """Where each project goal of ``run`` comes from, and the command that measures it."""
    measured = {verdict.metric for verdict in run.goals}
    return [
        (
            f"{goal.metric}: goal table row {goal.row}, measured with {goal.conditions}",
            f"{GOALS_COMMAND} --only {goal.row}",
        )
        for goal in METRIC_GOALS.get(run.workload, ())
        if goal.metric in measured
    ]


ARTIFACT_HEADER = ("file", "what it holds", "how to open it")


def artifact_rows(run: RunAnalysis, analysis: Analysis) -> list[tuple[str, str | None, str, str]]:
    """Each artifact of ``run``: its path, its link from the report, what it holds and how
    to open it (as the profiler that wrote it says)."""
    return [
        (a.path, artifact_href(analysis, run.run_id, a.path), a.description, a.viewer)
        for a in run.artifacts
    ]


SERVER_OP_HEADER = (
    "operation",
    "samples",
    *(f"{state}" for state in STATE_COLUMNS),
    "other",
    "idle",
    "top wait",
    "held by",
)
"""Columns of the database-side table: one row per operation, shares of its statement time."""
SERVER_STATEMENT_HEADER = (
    "op",
    "statement",
    "calls",
    "total exec",
    "mean",
    "rows",
    "blocks hit",
    "blocks read",
    "plan",
)
"""Columns of the pg_stat_statements table."""


def database_caption(side: DatabaseSide) -> str:
    """One sentence on how the sessions were sampled and what the sampling cost."""
    return (
        f"pg_stat_activity every {side.interval_ms:g} ms ({side.polls:,} polls; the sampler's "
        f"queries took {pct(side.sampler_share)} of its time); shares of each operation's "
        "session samples inside its statements"
    )


def server_op_rows(side: DatabaseSide) -> list[list[str]]:
    """A row per operation: samples, the share in each state, the top wait, the holders."""
    rows = []
    for profile in side.ops:
        top = profile.wait_events[0] if profile.wait_events else None
        rows.append(
            [
                profile.op,
                f"{profile.in_statement:,}",
                *(
                    pct(n / profile.in_statement) if profile.in_statement else "-"
                    for _, n in state_columns(profile)
                ),
                f"{profile.idle:,}",
                f"{top[0]}:{top[1]}" if top else "-",
                ", ".join(f"{op} {n:,}" for op, n in profile.blocked_by[:3]) or "-",
            ]
        )
    return rows


def server_statement_rows(side: DatabaseSide, *, most: int = 15) -> list[list[str]]:
    """The ``most`` statements with the largest execution time in the server."""
    rows = []
    for statement in side.statements[:most]:
        plan = side.plan(statement)
        rows.append(
            [
                statement.op or "-",
                statement.statement or statement.query[:80],
                f"{statement.calls:,}",
                ms(statement.total_exec_ms),
                ms(statement.mean_exec_ms),
                f"{statement.rows:,}",
                f"{statement.shared_blks_hit:,}",
                f"{statement.shared_blks_read:,}",
                "-" if plan is None else "FLAGGED" if plan.flagged else "ok",
            ]
        )
    return rows


CROSSOVER_HEADER = (
    "mode",
    "workers",
    "tasks/s SQLite",
    "tasks/s PostgreSQL",
    "ahead on throughput",
    "µs/task SQLite",
    "µs/task PostgreSQL",
    "claim p99 SQLite",
    "claim p99 PostgreSQL",
    "cycle p99 SQLite",
    "cycle p99 PostgreSQL",
)
"""The crossover table's columns: per-task cost is the workers' busy µs per task."""


def crossover_rows(report: CrossoverReport) -> list[list[str]]:
    """One row per worker mode and count: both backends' figures side by side."""
    rows = []
    for mode in report.modes:
        by_metric = {m.key: report.of(mode, m) for m in METRICS}
        counts = sorted({p.workers for c in by_metric.values() if c for p in c.points})
        for workers in counts:
            row = [mode, str(workers)]
            for metric in METRICS:
                crossover = by_metric[metric.key]
                point = next(
                    (p for p in (crossover.points if crossover else ()) if p.workers == workers),
                    None,
                )
                cells = (
                    ["-", "-"]
                    if point is None
                    else [_figure(point.sqlite), _figure(point.postgresql)]
                )
                if metric.unit == "ms":
                    cells = [c if c == "-" else f"{c} ms" for c in cells]
                row += cells
                if metric == THROUGHPUT:
                    row.append("-" if point is None else _ahead(point, report.band))
            rows.append(row)
    return rows


def crossover_summaries(report: CrossoverReport) -> list[str]:
    """Each metric's lead over the range in words, mode by mode."""
    return [c.summary for c in report.crossovers]


def _ahead(point: PairedPoint, band: float) -> str:
    lead = point.lead(THROUGHPUT.better, band)
    if lead is Lead.LEVEL:
        return f"level (within {band:.0%})"
    advantage = point.advantage(THROUGHPUT.better)
    ratio = advantage if lead is Lead.POSTGRESQL else 1.0 / advantage
    return f"{lead.shown} {ratio:.2f}x"


def _figure(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
