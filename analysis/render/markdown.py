"""``report.md``: the analysis as Markdown, findings first, for an optimization proposal.

Every string that comes from a run (ids, names, parameters, functions, SQL, notes) goes
through :func:`runs.text.markdown_text` or :func:`runs.text.markdown_code`; only this
module's own markup (headings, bold, table rules) is written raw.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from runs.text import markdown_code, markdown_text

from ..attribution import Attribution, RoleAttribution
from ..latency import LatencyDistribution
from ..model import Analysis, Evidence, Finding, RunAnalysis, Standing
from ..pgserver import DatabaseSide
from .text import (
    ARTIFACT_HEADER,
    CROSSOVER_HEADER,
    MISSED,
    QUEUE_HEADER,
    SECTION_TITLES,
    SERVER_OP_HEADER,
    SERVER_STATEMENT_HEADER,
    SQL_TIMING_HEADERS,
    TARGET_HEADER,
    amount,
    artifact_href,
    artifact_rows,
    cost_line,
    crossover_rows,
    crossover_summaries,
    database_caption,
    evidence,
    evidence_figure,
    function,
    goal_notes,
    latency_section,
    ms,
    pct,
    queue_rows,
    server_op_rows,
    server_statement_rows,
    sql_timings,
    target_rows,
)


def render(analysis: Analysis) -> str:
    """The report; every section is present only when its data is."""
    out: list[str] = ["# queueprof analysis", ""]
    if not analysis.runs:
        return "\n".join([*out, "No runs were analysed.", ""])
    out += [
        "Runs: "
        + ", ".join(
            f"{markdown_code(r.run_id)} ({_inline(r.workload)}, {_inline(r.profiler)})"
            for r in analysis.runs
        ),
        "",
        "## Findings",
        "",
    ]
    if not analysis.findings:
        out += ["No finding: the runs hold no evidence that a rule fires on.", ""]
    number = 0
    for standing in Standing:
        section = [f for f in analysis.findings if f.standing is standing]
        if not section:
            continue
        out += [f"### {SECTION_TITLES[standing]}", ""]
        for finding in section:
            number += 1
            out += _finding(number, finding, analysis)
    if analysis.agreements:
        out += [
            "## Profiler agreement",
            "",
            *_table(
                ["runs", "thread role", "ranking (a)", "ranking (b)", "noise", "verdict"],
                [
                    [
                        f"{p.run_a} / {p.run_b}",
                        str(p.agreement.role),
                        " > ".join(p.agreement.ranking_a),
                        " > ".join(p.agreement.ranking_b),
                        pct(p.agreement.tolerance),
                        str(p.agreement.verdict).upper()
                        if p.agreement.verdict == "disagree"
                        else str(p.agreement.verdict),
                    ]
                    for p in analysis.agreements
                ],
            ),
            "",
        ]
    for run in analysis.runs:
        out += _run(run, analysis)
    return "\n".join(out).rstrip() + "\n"


def _finding(number: int, finding: Finding, analysis: Analysis) -> list[str]:
    where = f" — run {markdown_code(finding.run_id)}" if finding.run_id else ""
    lines = [
        f"#### {number}. {_inline(finding.title)}{where}",
        "",
        f"*{_inline(cost_line(finding))}*",
        "",
    ]
    lines += [_inline(line) for line in finding.detail.splitlines()]
    lines.append("")
    if finding.recommendation:
        lines += [f"**Recommendation:** {_inline(finding.recommendation)}", ""]
    if finding.evidence:
        lines += [
            "Evidence:",
            *(f"- {_evidence(e, finding.run_id, analysis)}" for e in finding.evidence),
            "",
        ]
    return lines


def _evidence(item: Evidence, run_id: str | None, analysis: Analysis) -> str:
    href = artifact_href(analysis, run_id, item.artifact)
    if href is None:
        return _inline(evidence(item))
    return f"{_inline(evidence_figure(item))} ([{_inline(item.artifact)}]({href}))"


def _artifacts(run: RunAnalysis, analysis: Analysis) -> list[str]:
    """Each artifact linked (relative: it works inside a bundle too) with how to open it."""
    rows = [
        [
            Markup(f"[{markdown_code(path)}]({href})" if href else markdown_code(path)),
            description,
            viewer,
        ]
        for path, href, description, viewer in artifact_rows(run, analysis)
    ]
    return ["### Artifacts", "", *_table(ARTIFACT_HEADER, rows), ""]


def _run(run: RunAnalysis, analysis: Analysis) -> list[str]:
    out = [f"## Run {markdown_code(run.run_id)}", ""]
    out += [
        f"- workload **{_inline(run.workload)}** ({_inline(run.size)}), profiler "
        f"**{_inline(run.profiler)}**, status {_inline(run.status)}, {run.duration_s:.2f} s",
        f"- folder: {markdown_code(run.folder)}",
        "- queue: " + ", ".join(_inline(f"{k}={v}") for k, v in sorted(run.queue.items())),
    ]
    if run.overhead is not None:
        goal = f" (goal <= {run.overhead.goal:g}x)" if run.overhead.goal else ""
        out.append(f"- profiler overhead: {run.overhead.ratio:.2f}x{goal}")
    if run.round_trips is not None:
        out.append(
            f"- operation calls per completed task: {run.round_trips.per_task:.2f} "
            f"({sum(run.round_trips.calls.values()):,} calls, {run.round_trips.tasks:,} tasks, "
            f"{run.round_trips.inline_share:.0%} inline)"
        )
    out.append("")
    if run.targets or run.goals:
        out += [
            "### Targets: the seed's and the project's goals",
            "",
            *_table(
                TARGET_HEADER,
                [
                    [Markup(f"**{c}**") if c in MISSED else c for c in row]
                    for row in target_rows(run)
                ],
            ),
            "",
        ]
        notes = goal_notes(run)
        if notes:
            out += [*(f"- {_inline(n)}: {markdown_code(c)}" for n, c in notes), ""]
    if run.crossover is not None:
        out += [
            "### SQLite against PostgreSQL by worker count (crossover)",
            "",
            f"**{_inline(run.crossover.finding)}**",
            "",
            *_table(CROSSOVER_HEADER, crossover_rows(run.crossover)),
            "",
            *(f"- {_inline(line)}" for line in crossover_summaries(run.crossover)),
            "",
        ]
    for attribution in run.attributions:
        out += _attribution(attribution)
    latency = latency_section(run)
    if latency is not None:
        title, latencies = latency
        out += [f"### {title}", "", *_latencies(latencies), ""]
    if run.sql:
        out += _sql(run)
    if run.database is not None:
        out += _database(run.database)
    if run.allocations is not None:
        a = run.allocations
        out += [
            f"### Memory by operation ({_inline(a.source)})",
            "",
            f"Peak {a.peak_memory_bytes / 2**20:.2f} MiB; the listed stacks cover "
            f"{pct(a.peak.coverage)} of it and {pct(a.leaked.coverage)} of the leaked bytes.",
            "",
            *_table(
                ["operation", "bytes at peak", "share", "allocations", "top allocation site"],
                [
                    [
                        str(c.category),
                        f"{c.bytes:,}",
                        pct(c.share),
                        f"{c.allocations:,}",
                        f"{c.top_sites[0].function} ({c.top_sites[0].file})"
                        if c.top_sites
                        else "-",
                    ]
                    for c in a.peak.categories
                ],
            ),
            "",
        ]
    if run.artifacts:
        out += _artifacts(run, analysis)
    if run.screenshots:
        # Listed, not embedded: report.html carries the images themselves.
        out += [
            "### In the viewers (queueprof view-check)",
            "",
            *(f"- {markdown_code(s.path)}: {_inline(s.description)}" for s in run.screenshots),
            "",
        ]
    if run.notes:
        out += ["### Notes", "", *(f"- {_inline(n)}" for n in run.notes), ""]
    return out


def _attribution(attribution: Attribution) -> list[str]:
    out = [
        f"### Where the time goes: {_inline(attribution.profiler)} ({_inline(attribution.source)})",
        "",
    ]
    if attribution.measure == "cpu":
        out += ["Traced running time only: waits are not recorded by this source.", ""]
    for role in attribution.roles:
        out += _role(role)
    return out


def _role(role: RoleAttribution) -> list[str]:
    excluded = (
        f"; {amount(role.excluded, role.unit)} sampled outside the workload run left out"
        if role.excluded
        else ""
    )
    out = [
        f"**{_inline(role.role)}** ({role.threads} thread(s), "
        f"{_inline(amount(role.total, role.unit))}, "
        f"{role.samples:,} samples{excluded})",
        "",
        *_table(
            ["category", "time", "share", "waiting", "running", "top functions (self time)"],
            [
                [
                    str(c.category),
                    amount(c.wall, role.unit),
                    pct(c.share),
                    amount(c.wait, role.unit) if c.wait is not None else "-",
                    amount(c.cpu, role.unit),
                    "; ".join(
                        f"{function(f)} {pct(f.self_time / c.wall if c.wall else 0)}"
                        for f in c.top_self[:3]
                    ),
                ]
                for c in sorted(role.categories, key=lambda c: -c.wall)
            ],
        ),
        "",
    ]
    if role.queues:
        out += [
            f"By queue ({_inline(role.role)}): each queue's time by operation.",
            "",
            *_table(QUEUE_HEADER, queue_rows(role)),
            "",
        ]
    return out


def _latencies(rows: Iterable[LatencyDistribution]) -> list[str]:
    return _table(
        ["operation", "calls", "p50", "p95", "p99", "p99.9", "max", "total"],
        [
            [
                d.op,
                f"{d.count:,}",
                ms(d.p50_ms),
                ms(d.p95_ms),
                ms(d.p99_ms),
                ms(d.p999_ms),
                ms(d.max_ms),
                ms(d.total_ms),
            ]
            for d in rows
        ],
    )


def _sql(run: RunAnalysis) -> list[str]:
    out = [
        "### SQL hotspots (sql-statements.json; plans on taskqueue.sql.SCHEMA)",
        "",
        *_table(
            ["#", "op", "statement", *SQL_TIMING_HEADERS, "plan"],
            [
                [
                    str(h.index),
                    h.op,
                    h.label,
                    *sql_timings(h),
                    "FLAGGED" if h.plan.flagged else "unplanned" if h.plan.error else "ok",
                ]
                for h in run.sql
            ],
        ),
        "",
    ]
    for h in run.sql:
        out += [f"{h.index}. {markdown_code(h.op)}: {markdown_code(h.sql)}"]
        if h.plan.lines:
            out += [f"   plan: {_inline(' / '.join(h.plan.lines))}"]
        if h.plan.error:
            out += [f"   not planned: {_inline(h.plan.error)}"]
    return [*out, ""]


def _database(side: DatabaseSide) -> list[str]:
    out = []
    if side.ops:
        out += [
            f"### The database side by operation ({_inline(side.source)})",
            "",
            f"{_inline(database_caption(side))}.",
            "",
            *_table(SERVER_OP_HEADER, server_op_rows(side)),
            "",
        ]
    out += [f"- sampling: {_inline(p)}" for p in side.problems]
    if side.statements:
        out += [
            f"### Statements in the server ({_inline(side.statements_source)}, diffed over the "
            "run)",
            "",
            *_table(SERVER_STATEMENT_HEADER, server_statement_rows(side)),
            "",
        ]
    elif side.statements_missing:
        out += [f"- no pg_stat_statements: {_inline(side.statements_missing)}", ""]
    return out


class Markup(str):
    """A table cell this module wrote as Markdown on purpose (not escaped)."""


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def _cell(text: str) -> str:
    return text if isinstance(text, Markup) else _inline(text)


def _inline(text: object) -> str:
    """Run-supplied text on a Markdown line or in a table cell, shown literally."""
    return markdown_text(text)
