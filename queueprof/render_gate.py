"""Terminal rendering of the regression gate's verdict: formatting only."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from analysis.compare import ChangeVerdict
from runs.text import terminal_text

from .regress import GateReport, GateRow, InstructionRow, verdict_text
from .render import number


def render_gate(console: Console, report: GateReport) -> None:
    """The wall-clock table, the instruction table (regressions first, each with the functions
    that grew), then the verdict line."""
    if report.baseline_calibration is not None and report.candidate_calibration is not None:
        _render_wall(console, report)
    if report.instruction_rows:
        _render_instructions(console, report)
    if report.passed:
        gated = sum(1 for r in report.rows if r.gated) + len(report.instruction_rows)
        console.print(f"[green]gate passed[/green]: no gated metric of {gated} regressed")
    else:
        names = ", ".join(report.regressed_names)
        console.print(f"[red]gate FAILED[/red]: regressed beyond the noise band: {names}")


def _render_wall(console: Console, report: GateReport) -> None:
    base, cand = report.baseline_calibration, report.candidate_calibration
    assert base is not None
    assert cand is not None
    console.print(
        f"calibration (plain sqlite3, fastest of the invocation): baseline "
        f"{base.cycle_per_s:,.0f} cycles/s, {base.batched_per_s:,.0f} batched/s; this run "
        f"{cand.cycle_per_s:,.0f} cycles/s, {cand.batched_per_s:,.0f} batched/s"
    )
    table = _table(
        f"regression gate ({report.size}) against {terminal_text(report.baseline_path)}: "
        "costs in plain-sqlite3 cycles, lower is better",
        ("metric", "baseline", "this run", "unit", "change", "band", "margin"),
        ("measured (base -> this)", "verdict"),
    )
    rows = sorted(report.rows, key=lambda r: (not r.regressed, not r.gated))
    for row in rows:
        table.add_row(*_cells(row))
    console.print(table)
    for difference in report.environment_differences:
        console.print(
            f"[yellow]warning:[/yellow] the baseline ran elsewhere: {terminal_text(difference)}",
            highlight=False,
        )


def _render_instructions(console: Console, report: GateReport) -> None:
    table = _table(
        f"instruction gate ({report.size}): CPU instructions under callgrind, one phase per "
        "operation, lower is better",
        ("metric", "operation", "baseline", "this run", "unit", "change", "band", "margin"),
        ("verdict",),
    )
    for row in sorted(report.instruction_rows, key=lambda r: not r.regressed):
        table.add_row(*_instruction_cells(row))
    console.print(table)
    for row in report.instruction_regressions:
        if not row.functions:
            continue
        unit = row.comparison.unit.partition("/")[2]
        console.print(
            f"[red]{terminal_text(row.operation)}[/red] costs {_change(row)} more instructions per "
            f"{unit}; the C functions whose own instructions per {unit} grew most:",
            highlight=False,
        )
        for change in row.functions:
            console.print(
                f"  {terminal_text(change.function)}: {change.baseline:,.0f} -> "
                f"{change.candidate:,.0f} ({change.added:+,.0f})",
                highlight=False,
            )
    console.print(
        "instructions cannot see waits (sleeps, lock waits, thread hand-offs, I/O): the "
        "wall-clock gate judges those. Profiles: "
        f"{terminal_text(report.instruction_folder)}/callgrind.speedscope.json (speedscope) and "
        "callgrind.<operation>.out (callgrind_annotate)",
        highlight=False,
    )


_LEFT = frozenset({"metric", "operation", "unit", "verdict"})


def _table(title: str, columns: tuple[str, ...], last: tuple[str, ...]) -> Table:
    """A gate table: text columns left-aligned, figures right-aligned."""
    table = Table(title=title, title_justify="left")
    for header in (*columns, *last):
        table.add_column(header, justify="left" if header in _LEFT else "right")
    return table


def _change(row: InstructionRow) -> str:
    change = row.comparison.relative_change
    return "-" if change is None else f"{change:+.1%}"


def _instruction_cells(row: InstructionRow) -> tuple[str, ...]:
    c = row.comparison
    if row.regressed:
        verdict = "REGRESSED"
    elif c.verdict is ChangeVerdict.NO_CHANGE:
        verdict = "ok"
    else:
        verdict = f"ok ({c.verdict.value})"
    return (
        c.name,
        row.operation,
        f"{c.baseline:,.0f}",
        f"{c.candidate:,.0f}",
        c.unit,
        _change(row),
        f"+{row.band:.0%}",
        "-" if row.margin is None else f"{row.margin:+.1%}",
        f"[red]{verdict}[/red]" if row.regressed else verdict,
    )


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
