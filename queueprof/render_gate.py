"""Terminal rendering of the regression gate's verdict: formatting only."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from runs.text import terminal_text

from .regress import GateReport, GateRow, verdict_text
from .render import number


def render_gate(console: Console, report: GateReport) -> None:
    """The gate table (regressions first), the calibrations, then the verdict line."""
    base, cand = report.baseline_calibration, report.candidate_calibration
    console.print(
        f"calibration (plain sqlite3, fastest of the invocation): baseline "
        f"{base.cycle_per_s:,.0f} cycles/s, {base.batched_per_s:,.0f} batched/s; this run "
        f"{cand.cycle_per_s:,.0f} cycles/s, {cand.batched_per_s:,.0f} batched/s"
    )
    table = Table(
        title=f"regression gate ({report.size}) against {terminal_text(report.baseline_path)}: "
        "costs in plain-sqlite3 cycles, lower is better",
        title_justify="left",
    )
    for header, right in (
        ("metric", False),
        ("baseline", True),
        ("this run", True),
        ("unit", False),
        ("change", True),
        ("band", True),
        ("margin", True),
        ("measured (base -> this)", True),
        ("verdict", False),
    ):
        table.add_column(header, justify="right" if right else "left")
    rows = sorted(report.rows, key=lambda r: (not r.regressed, not r.gated))
    for row in rows:
        table.add_row(*_cells(row))
    console.print(table)
    for difference in report.environment_differences:
        console.print(
            f"[yellow]warning:[/yellow] the baseline ran elsewhere: {terminal_text(difference)}",
            highlight=False,
        )
    if report.passed:
        gated = sum(1 for r in report.rows if r.gated)
        console.print(f"[green]gate passed[/green]: no gated metric of {gated} regressed")
    else:
        names = ", ".join(r.comparison.name for r in report.regressions)
        console.print(f"[red]gate FAILED[/red]: regressed beyond the noise band: {names}")


def _cells(row: GateRow) -> tuple[str, ...]:
    c = row.comparison
    change = c.relative_change
    verdict = verdict_text(row)
    styled = f"[red]{verdict}[/red]" if row.regressed else verdict
    return (
        c.name,
        number(c.baseline),
        number(c.candidate),
        c.unit,
        "-" if change is None else f"{change:+.0%}",
        "-" if row.band is None else f"+{row.band:.0%}",
        "-" if row.margin is None else f"{row.margin:+.0%}",
        f"{number(row.baseline_measured)} -> {number(row.candidate_measured)} {row.measured_unit}",
        styled,
    )
