"""``report.html``: one self-contained page (inline CSS and SVG, no script, font or link).

Every name that comes from a run (functions, SQL, paths, notes) is escaped. Latency and
memory plots come from :mod:`analysis.plots` (matplotlib drawn to inline SVG); the time
shares are drawn by :mod:`analysis.render.svg`.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from runs.text import strip_controls

from ..attribution import Attribution
from ..crossover import METRICS, CrossoverReport
from ..latency import LatencyDistribution
from ..model import Analysis, Evidence, Finding, RunAnalysis, Standing
from ..pgserver import DatabaseSide
from ..plots import (
    allocations_svg,
    crossover_svg,
    latency_cdf_svg,
    memory_svg,
    scaling_svg,
    timeline_svg,
    workers_svg,
)
from ..timelines import worker_steps
from .svg import share_bars
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

CSS = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:72em;color:#222;line-height:1.4}
h1,h2,h3{line-height:1.2}
table{border-collapse:collapse;margin:.5em 0 1em;font-size:90%}
th,td{border:1px solid #ccc;padding:.2em .5em;text-align:left;vertical-align:top}
th{background:#f2f2f2}
td.n{text-align:right;font-variant-numeric:tabular-nums}
code,pre{font-family:ui-monospace,monospace;font-size:90%}
pre{white-space:pre-wrap;background:#f7f7f7;padding:.5em}
.finding{border-left:6px solid #999;padding:.3em .8em;margin:.8em 0;background:#fafafa}
.cause{border-color:#c62828}.information{border-color:#9e9e9e}
.insufficient{border-color:#1e88e5}
.sev{font-weight:bold;text-transform:uppercase;font-size:80%}
.fail{color:#c62828;font-weight:bold}.pass{color:#2e7d32}
.flag{color:#c62828;font-weight:bold}
.plot svg{max-width:100%;height:auto}
figure{margin:1em 0}figure img{max-width:100%;height:auto;border:1px solid #ccc}
figcaption{font-size:90%;color:#555}
"""


def render(analysis: Analysis) -> str:
    """The whole page."""
    body = ["<h1>queueprof analysis</h1>"]
    body.append(
        "<p>Runs: "
        + ", ".join(
            f"<code>{_e(r.run_id)}</code> ({_e(r.workload)}, {_e(r.profiler)})"
            for r in analysis.runs
        )
        + "</p>"
    )
    body.append("<h2>Findings</h2>")
    if not analysis.findings:
        body.append("<p>No finding: the runs hold no evidence that a rule fires on.</p>")
    number = 0
    for standing in Standing:
        section = [f for f in analysis.findings if f.standing is standing]
        if not section:
            continue
        body.append(f"<h3>{_e(SECTION_TITLES[standing])}</h3>")
        for finding in section:
            number += 1
            body.append(_finding(number, finding, analysis))
    if analysis.agreements:
        body.append("<h2>Profiler agreement</h2>")
        body.append(
            _table(
                ["runs", "thread role", "ranking (a)", "ranking (b)", "noise", "verdict"],
                [
                    [
                        f"{_e(p.run_a)} / {_e(p.run_b)}",
                        _e(p.agreement.role),
                        _e(" > ".join(p.agreement.ranking_a)),
                        _e(" > ".join(p.agreement.ranking_b)),
                        pct(p.agreement.tolerance),
                        '<span class="fail">disagree</span>'
                        if p.agreement.verdict == "disagree"
                        else p.agreement.verdict,
                    ]
                    for p in analysis.agreements
                ],
            )
        )
    for run in analysis.runs:
        body += _run(run, analysis)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>queueprof analysis</title><style>{CSS}</style></head><body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


def _e(value: object) -> str:
    # No control characters either: `cat report.html` would pass an escape sequence from a
    # run string (a clipboard write, OSC 52) to the terminal.
    return escape(strip_controls(str(value)), quote=True)


def _finding(number: int, finding: Finding, analysis: Analysis) -> str:
    parts = [
        f'<div class="finding {finding.standing.value.split()[0]}">',
        f'<p><span class="sev">{_e(finding.cause)}</span> {number}. '
        f"<strong>{_e(finding.title)}</strong>"
        + (f" — run <code>{_e(finding.run_id)}</code>" if finding.run_id else "")
        + "</p>",
        f"<p><em>{_e(cost_line(finding))}</em></p>",
        f"<p>{'<br>'.join(_e(line) for line in finding.detail.splitlines())}</p>",
    ]
    if finding.recommendation:
        parts.append(f"<p><strong>Recommendation:</strong> {_e(finding.recommendation)}</p>")
    if finding.evidence:
        parts.append(
            "<details><summary>evidence</summary><ul>"
            + "".join(
                f"<li>{_evidence(e, finding.run_id, analysis)}</li>" for e in finding.evidence
            )
            + "</ul></details>"
        )
    parts.append("</div>")
    return "".join(parts)


def _evidence(item: Evidence, run_id: str | None, analysis: Analysis) -> str:
    href = artifact_href(analysis, run_id, item.artifact)
    if href is None:
        return _e(evidence(item))
    return f'{_e(evidence_figure(item))} (<a href="{_e(href)}">{_e(item.artifact)}</a>)'


def _artifacts(run: RunAnalysis, analysis: Analysis) -> list[str]:
    """Each artifact linked (relative: it works inside a bundle too) with how to open it."""
    rows = [
        [
            f'<a href="{_e(href)}"><code>{_e(path)}</code></a>' if href else _e(path),
            _e(description),
            _e(viewer),
        ]
        for path, href, description, viewer in artifact_rows(run, analysis)
    ]
    return ["<h3>Artifacts</h3>", _table(ARTIFACT_HEADER, rows)]


def _run(run: RunAnalysis, analysis: Analysis) -> list[str]:
    out = [f"<h2>Run <code>{_e(run.run_id)}</code></h2>"]
    facts = [
        f"workload <strong>{_e(run.workload)}</strong> ({_e(run.size)}), profiler "
        f"<strong>{_e(run.profiler)}</strong>, status {_e(run.status)}, {run.duration_s:.2f} s",
        f"folder <code>{_e(run.folder)}</code>",
        "queue " + _e(", ".join(f"{k}={v}" for k, v in sorted(run.queue.items()))),
    ]
    if run.overhead is not None:
        goal = f" (goal &le; {run.overhead.goal:g}x)" if run.overhead.goal else ""
        facts.append(f"profiler overhead {run.overhead.ratio:.2f}x{goal}")
    if run.round_trips is not None:
        facts.append(
            f"operation calls per completed task {run.round_trips.per_task:.2f} "
            f"({run.round_trips.inline_share:.0%} inline)"
        )
    out.append("<ul>" + "".join(f"<li>{f}</li>" for f in facts) + "</ul>")
    if run.targets or run.goals:
        out.append("<h3>Targets: the seed's and the project's goals</h3>")
        out.append(
            _table(
                TARGET_HEADER,
                [
                    [f'<span class="fail">{c}</span>' if c in MISSED else _e(c) for c in row]
                    for row in target_rows(run)
                ],
            )
        )
        notes = goal_notes(run)
        if notes:
            out.append(
                "<ul>"
                + "".join(f"<li>{_e(n)}: <code>{_e(c)}</code></li>" for n, c in notes)
                + "</ul>"
            )
    if run.crossover is not None:
        out += _crossover(run.crossover)
    for attribution in run.attributions:
        out += _attribution(attribution)
    latency = latency_section(run)
    if latency is not None:
        title, latencies = latency
        out.append(f"<h3>{_e(title)}</h3>")
        out.append(_latency_table(latencies))
        out.append(_plot(_cdf(latencies)))
    out += _over_time(run)
    if run.sql:
        out += _sql(run)
    if run.database is not None:
        out += _database(run.database)
    if run.allocations is not None:
        a = run.allocations
        out.append(f"<h3>Memory by operation ({_e(a.source)})</h3>")
        out.append(
            f"<p>Peak {a.peak_memory_bytes / 2**20:.2f} MiB; the listed stacks cover "
            f"{pct(a.peak.coverage)} of it.</p>"
        )
        out.append(
            _table(
                ["operation", "bytes at peak", "share", "allocations", "top allocation site"],
                [
                    [
                        _e(c.category),
                        f"{c.bytes:,}",
                        pct(c.share),
                        f"{c.allocations:,}",
                        _e(f"{c.top_sites[0].function} ({c.top_sites[0].file})")
                        if c.top_sites
                        else "-",
                    ]
                    for c in a.peak.categories
                ],
            )
        )
        peak = {str(c.category): float(c.bytes) for c in a.peak.categories if c.bytes > 0}
        if peak:
            out.append(
                f'<div class="plot">{allocations_svg(peak, title="Bytes at peak by operation")}'
                "</div>"
            )
    if run.artifacts:
        out += _artifacts(run, analysis)
    if run.screenshots:
        out += _screenshots(run)
    if run.notes:
        out.append("<h3>Notes</h3><ul>" + "".join(f"<li>{_e(n)}</li>" for n in run.notes) + "</ul>")
    return out


def _crossover(report: CrossoverReport) -> list[str]:
    """The finding, both backends side by side at each worker count, each metric's lead in
    words, and a plot per metric."""
    out = [
        "<h3>SQLite against PostgreSQL by worker count (crossover)</h3>",
        f"<p><strong>{_e(report.finding)}</strong></p>",
        _table(CROSSOVER_HEADER, [[_e(cell) for cell in row] for row in crossover_rows(report)]),
        "<p>Per-task cost: the workers' busy time per task (claims, acks and handlers, with "
        "every wait on a lock or on the server). Full cycle: from the claim that took a task "
        f"to the ack that finished it. Level: within {report.band:.0%} of each other.</p>",
        "<ul>" + "".join(f"<li>{_e(line)}</li>" for line in crossover_summaries(report)) + "</ul>",
    ]
    for metric in METRICS:
        if any(c.metric == metric and c.points for c in report.crossovers):
            out.append(_plot(crossover_svg(report, metric)))
    return out


def _screenshots(run: RunAnalysis) -> list[str]:
    out = ["<h3>In the viewers (queueprof view-check, headless Chromium)</h3>"]
    for shot in run.screenshots:
        out.append(
            f'<figure><img alt="{_e(shot.path)}" src="data:image/png;base64,{shot.png_base64}">'
            f"<figcaption><code>{_e(shot.path)}</code>: {_e(shot.description)}</figcaption>"
            "</figure>"
        )
    return out


def _attribution(attribution: Attribution) -> list[str]:
    out = [f"<h3>Where the time goes: {_e(attribution.profiler)} ({_e(attribution.source)})</h3>"]
    if attribution.measure == "cpu":
        out.append("<p>Traced running time only: this source does not record waits.</p>")
    for role in attribution.roles:
        rows = [
            (str(c.category), c.share, (c.wait / c.wall) if c.wait is not None and c.wall else None)
            for c in sorted(role.categories, key=lambda c: -c.wall)
        ]
        title = f"{role.role}: {amount(role.total, role.unit)} in {role.threads} thread(s)"
        out.append(f'<div class="plot">{share_bars(rows, title)}</div>')
        out.append(
            _table(
                [
                    "category",
                    "time",
                    "share",
                    "waiting",
                    "top functions by self time",
                    "top functions by inclusive time",
                ],
                [
                    [
                        _e(c.category),
                        amount(c.wall, role.unit),
                        pct(c.share),
                        amount(c.wait, role.unit) if c.wait is not None else "-",
                        "<br>".join(
                            _e(f"{function(f)} {pct(f.self_time / c.wall if c.wall else 0)}")
                            for f in c.top_self[:5]
                        ),
                        # Inclusive time holds callees of other categories (and, in a
                        # trace, a coroutine's awaits): a share of this row would pass 100%.
                        "<br>".join(
                            _e(f"{function(f)} {amount(f.total_time, role.unit)}")
                            for f in c.top_total[:5]
                        ),
                    ]
                    for c in sorted(role.categories, key=lambda c: -c.wall)
                ],
            )
        )
        if role.queues:
            out.append(f"<p>By queue ({_e(role.role)}): each queue's time by operation.</p>")
            out.append(
                _table(QUEUE_HEADER, [[_e(cell) for cell in row] for row in queue_rows(role)])
            )
    return out


def _latency_table(latencies: Sequence[LatencyDistribution]) -> str:
    return _table(
        ["operation", "calls", "p50", "p95", "p99", "p99.9", "max", "total"],
        [
            [
                _e(d.op),
                f"{d.count:,}",
                ms(d.p50_ms),
                ms(d.p95_ms),
                ms(d.p99_ms),
                ms(d.p999_ms),
                ms(d.max_ms),
                ms(d.total_ms),
            ]
            for d in latencies
        ],
    )


def _cdf(latencies: Sequence[LatencyDistribution]) -> str:
    # Drawn from each distribution's histogram of every sample: the legend's n is the calls'.
    return latency_cdf_svg({d.op: d.histogram for d in latencies if d.count})


def _plot(svg: str) -> str:
    return f'<div class="plot">{svg}</div>'


def _over_time(run: RunAnalysis) -> list[str]:
    """Scaling, throughput and depth over time, memory over time, work per worker."""
    out = []
    if run.scaling:
        out.append("<h3>Throughput against worker count</h3>")
        out.append(_plot(scaling_svg(run.scaling)))
        out.append(
            "<ul>"
            + "".join(
                f"<li>{_e(fit.mode or 'workers')}: {_e(fit.contention)}</li>" for fit in run.scaling
            )
            + "</ul>"
        )
    for timeline in run.timelines:
        events = ", ".join(f"{kind} x{len(t)}" for kind, t in timeline.events.items() if t)
        what = "Throughput and queue depth" if timeline.queue_depth else "Throughput"
        out.append(f"<h3>{what} over time (series {_e(timeline.series)})</h3>")
        out.append(
            _plot(
                timeline_svg(
                    timeline.elapsed_s,
                    throughput=timeline.throughput,
                    queue_depth=timeline.queue_depth,
                    events=timeline.events,
                )
            )
        )
        out.append(
            f"<p>{timeline.completed:,} tasks completed over {len(timeline.elapsed_s)} "
            f"intervals{_e(f'; marked: {events}') if events else ''}.</p>"
        )
    if run.memory_timeline is not None:
        out.append("<h3>Memory over time</h3>")
        out.append(_plot(memory_svg(run.memory_timeline)))
    steps = worker_steps(run.steps)
    if steps:
        out.append("<h3>Work per worker</h3>")
        out += [_plot(workers_svg(step.workers, step.label)) for step in steps]
    return out


def _sql(run: RunAnalysis) -> list[str]:
    out = ["<h3>SQL hotspots (sql-statements.json; plans on taskqueue.sql.SCHEMA)</h3>"]
    out.append(
        _table(
            ["#", "op", "statement", *SQL_TIMING_HEADERS, "query plan"],
            [
                [
                    str(h.index),
                    _e(h.op),
                    f"<code>{_e(h.sql)}</code>",
                    *sql_timings(h),
                    ('<span class="flag">flagged</span><br>' if h.plan.flagged else "")
                    + "<br>".join(_e(line) for line in h.plan.lines)
                    + (_e(f"not planned: {h.plan.error}") if h.plan.error else ""),
                ]
                for h in run.sql
            ],
        )
    )
    return out


def _database(side: DatabaseSide) -> list[str]:
    out = []
    if side.ops:
        out.append(f"<h3>The database side by operation ({_e(side.source)})</h3>")
        out.append(f"<p>{_e(database_caption(side))}.</p>")
        out.append(_table(SERVER_OP_HEADER, [[_e(c) for c in row] for row in server_op_rows(side)]))
    if side.problems:
        out.append("<ul>" + "".join(f"<li>sampling: {_e(p)}</li>" for p in side.problems) + "</ul>")
    if side.statements:
        out.append(
            f"<h3>Statements in the server ({_e(side.statements_source)}, diffed over the run)</h3>"
        )
        out.append(
            _table(
                SERVER_STATEMENT_HEADER,
                [[_e(c) for c in row] for row in server_statement_rows(side)],
            )
        )
    elif side.statements_missing:
        out.append(f"<p>No pg_stat_statements: {_e(side.statements_missing)}</p>")
    return out


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A table; cells are HTML already escaped by the caller."""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
