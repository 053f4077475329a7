"""The terminal summary: findings first, then each run's time by operation and SQL hotspots."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console
from rich.table import Table

from runs.text import terminal_text
from workloads.goals import headroom

from ..attribution import Attribution
from ..crossover import CrossoverReport
from ..model import Analysis, RunAnalysis, Standing
from .text import (
    CROSSOVER_HEADER,
    QUEUE_HEADER,
    SECTION_TITLES,
    SERVER_OP_HEADER,
    amount,
    cost_line,
    crossover_rows,
    function,
    ms,
    pct,
    queue_rows,
    server_op_rows,
    times,
)

SHOWN_FINDINGS = 12
SHOWN_STATEMENTS = 6
STYLES = {
    Standing.CAUSE: "bold red",
    Standing.INFORMATION: "dim",
    Standing.INSUFFICIENT: "cyan",
}


def render(analysis: Analysis) -> str:
    """The summary as plain text (120 columns), as :func:`print_summary` draws it."""
    buffer = io.StringIO()
    print_summary(Console(file=buffer, width=120, color_system=None, highlight=False), analysis)
    return buffer.getvalue()


def print_summary(console: Console, analysis: Analysis, report: Path | None = None) -> None:
    """Draw the summary on ``console`` (colours when it has them); ``report`` is the file that
    holds every finding (the combined report.md), named where the list is cut."""
    findings = analysis.findings
    console.print(
        f"[bold]queueprof analysis[/bold] of {len(analysis.runs)} run(s): "
        f"{len(findings)} finding(s)",
        highlight=False,
    )
    shown = 0
    for standing in Standing:
        section = [f for f in findings if f.standing is standing]
        if not section or shown >= SHOWN_FINDINGS:
            continue
        style = STYLES[standing]
        console.print(
            f"[{style}]{terminal_text(SECTION_TITLES[standing])}[/{style}]", highlight=False
        )
        for finding in section[: SHOWN_FINDINGS - shown]:
            shown += 1
            where = f" [dim]({terminal_text(finding.run_id)})[/dim]" if finding.run_id else ""
            console.print(f"{shown:>2}. {terminal_text(finding.title)}{where}", highlight=False)
            console.print(f"      [dim]{terminal_text(cost_line(finding))}[/dim]", highlight=False)
            if finding.recommendation and standing is Standing.CAUSE:
                console.print(f"      -> {terminal_text(finding.recommendation)}", highlight=False)
    if len(findings) > shown:
        where = str(report) if report is not None else "report.md (--format md or all)"
        console.print(f"    ... and {len(findings) - shown} more in {terminal_text(where)}")
    for run in analysis.runs:
        _run(console, run)


def _queues(console: Console, attribution: Attribution) -> None:
    """Time by queue, then operation, for runs that drove several queues (comparison)."""
    for role in attribution.roles:
        if not role.queues:
            continue
        table = Table(
            title=f"time by queue and operation: {terminal_text(str(role.role))}",
            title_justify="left",
        )
        for column in QUEUE_HEADER:
            table.add_column(column, justify="right" if column in ("time", "of queue") else "left")
        for row in queue_rows(role, min_share=0.01):
            table.add_row(*(terminal_text(cell) for cell in row))
        console.print(table)


def crossover_table(report: CrossoverReport) -> Table:
    """Both backends side by side at each worker count (text.CROSSOVER_HEADER)."""
    table = Table(title="SQLite against PostgreSQL (crossover)", title_justify="left")
    for column in CROSSOVER_HEADER:
        table.add_column(
            column, justify="left" if column in ("mode", "ahead on throughput") else "right"
        )
    for row in crossover_rows(report):
        table.add_row(*(terminal_text(cell) for cell in row))
    return table


def _run(console: Console, run: RunAnalysis) -> None:
    console.print()
    overhead = f", overhead {run.overhead.ratio:.2f}x" if run.overhead else ""
    console.print(
        f"[bold]{terminal_text(run.run_id)}[/bold]: {terminal_text(run.workload)} "
        f"({terminal_text(run.size)}) under "
        f"{terminal_text(run.profiler)}, {terminal_text(run.status)}{overhead}",
        highlight=False,
    )
    for attribution in run.attributions:
        table = Table(
            title=f"time by operation: {terminal_text(attribution.profiler)} "
            f"({terminal_text(attribution.source)})",
            title_justify="left",
        )
        table.add_column("thread role")
        table.add_column("category")
        table.add_column("share", justify="right")
        table.add_column("time", justify="right")
        table.add_column("waiting", justify="right")
        table.add_column("top self-time function")
        for role in attribution.roles:
            for entry in sorted(role.categories, key=lambda c: -c.wall):
                if entry.share < 0.01:
                    continue
                top = entry.top_self[0] if entry.top_self else None
                table.add_row(
                    str(role.role),
                    str(entry.category),
                    pct(entry.share),
                    amount(entry.wall, role.unit),
                    pct(entry.wait / entry.wall) if entry.wait is not None and entry.wall else "-",
                    terminal_text(function(top)) if top else "",
                )
        console.print(table)
        _queues(console, attribution)
    if run.crossover is not None:
        console.print(crossover_table(run.crossover))
        console.print(f"[bold]{terminal_text(run.crossover.finding)}[/bold]", highlight=False)
    if run.sql:
        table = Table(title="SQL hotspots", title_justify="left")
        for column in ("op", "statement", "calls", "total", "p99", "of op SQL", "plan"):
            table.add_column(
                column, justify="right" if column in ("calls", "total", "p99") else "left"
            )
        for h in run.sql[:SHOWN_STATEMENTS]:
            table.add_row(
                terminal_text(h.op),
                terminal_text(h.label),
                f"{h.count:,}",
                ms(h.total_ms),
                f"{h.p99_us:.3g} us",
                pct(h.share_of_op_sql),
                "[red]SCAN/TEMP B-TREE[/red]" if h.plan.flagged else "ok",
            )
        console.print(table)
    side = run.database
    if side is not None and side.ops:
        table = Table(
            title="The database side by operation (pg_stat_activity)", title_justify="left"
        )
        for column in SERVER_OP_HEADER:
            table.add_column(column)
        for row in server_op_rows(side):
            table.add_row(*(terminal_text(cell) for cell in row))
        console.print(table)
    if side is not None and side.statements_missing:
        console.print(
            f"no pg_stat_statements: {terminal_text(side.statements_missing)}", highlight=False
        )
    failed = [v for v in run.targets if not v.passed]
    if run.targets:
        console.print(
            f"targets: {len(run.targets) - len(failed)}/{len(run.targets)} met"
            + ("; missed: " + ", ".join(terminal_text(v.metric) for v in failed) if failed else ""),
            highlight=False,
        )
    if run.goals:
        missed = [v for v in run.goals if not v.passed]
        rooms = [(room, v.metric) for v in run.goals if (room := headroom(v)) is not None]
        least = f"; least headroom: {min(rooms)[1]} {times(min(rooms)[0])}" if rooms else ""
        console.print(
            f"project goals: {len(run.goals) - len(missed)}/{len(run.goals)} met"
            + ("; missed: " + ", ".join(terminal_text(v.metric) for v in missed) if missed else "")
            + terminal_text(least),
            highlight=False,
        )
