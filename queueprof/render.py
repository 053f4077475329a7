"""Terminal rendering of results with rich: formatting only, no measurement or analysis."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from rich.console import Console
from rich.table import Table

from profilers.base import OptionSpec
from runs import LatencySummary, Manifest, RunSummary, WorkloadResult
from runs.text import terminal_text
from workloads.params import Size, WorkloadParams

LATENCY_FIELDS = ("count", "p50_ms", "p95_ms", "p99_ms", "p999_ms", "max_ms")
LATENCY_HEADERS = ("n", "p50 ms", "p95 ms", "p99 ms", "p99.9 ms", "max ms")


def number(value: float | int | None) -> str:
    """A number with as many digits as its size deserves."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, int) or float(value).is_integer():
        return f"{int(value):,}"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def render_result(console: Console, result: WorkloadResult, status: str, run_dir: str) -> None:
    """Steps, latencies, counters, then the verdicts table."""
    title = terminal_text(f"{result.workload} ({result.size}) - {status}")
    console.print(f"\n[bold]{title}[/bold]  {terminal_text(run_dir)}")
    if result.steps:
        metric_names = list(dict.fromkeys(k for s in result.steps for k in s.metrics))
        counter_names = [
            n
            for n in dict.fromkeys(k for s in result.steps for k in s.counters)
            if any(s.counters.get(n) for s in result.steps)
        ]
        steps = Table(title="steps", title_justify="left")
        steps.add_column("step")
        for name in (*metric_names, *counter_names):
            steps.add_column(terminal_text(name), justify="right")
        for step in result.steps:
            steps.add_row(
                terminal_text(step.label),
                *(number(step.metrics.get(n)) for n in metric_names),
                *(number(step.counters.get(n)) for n in counter_names),
            )
        console.print(steps)
    latency_rows = [(name, summary) for name, summary in result.latencies.items()]
    for step in result.steps:
        latency_rows += [(f"{step.label}: {op}", s) for op, s in step.latencies.items()]
    if latency_rows:
        console.print(latency_table(latency_rows))
    if result.metrics:
        metrics = Table(title="metrics", title_justify="left")
        metrics.add_column("metric")
        metrics.add_column("value", justify="right")
        for name, value in result.metrics.items():
            metrics.add_row(terminal_text(name), number(value))
        console.print(metrics)
    nonzero = {k: v for k, v in result.counters.items() if v}
    if nonzero:
        console.print(
            "counters: " + ", ".join(terminal_text(f"{k}={v:,}") for k, v in nonzero.items())
        )
    for note in result.notes:
        console.print(f"[yellow]note:[/yellow] {terminal_text(note)}")
    render_verdicts(console, result)


def latency_table(rows: Sequence[tuple[str, LatencySummary]]) -> Table:
    """One row per operation: count and percentiles in ms."""
    table = Table(title="latency", title_justify="left")
    table.add_column("operation")
    for header in LATENCY_HEADERS:
        table.add_column(header, justify="right")
    for name, summary in rows:
        table.add_row(terminal_text(name), *(number(getattr(summary, f)) for f in LATENCY_FIELDS))
    return table


def render_verdicts(console: Console, result: WorkloadResult) -> None:
    """The targets table: metric, measured, comparator, target, unit, PASS/FAIL."""
    if not result.verdicts:
        console.print("targets: none apply to what this run measured")
        return
    table = Table(title="targets", title_justify="left")
    for header in ("metric", "measured", "target", "unit", "verdict"):
        table.add_column(header, justify="right" if header in ("measured", "target") else "left")
    for v in result.verdicts:
        verdict = "[green]PASS[/green]" if v.passed else "[red]FAIL[/red]"
        table.add_row(
            terminal_text(v.metric),
            number(v.measured),
            terminal_text(f"{v.comparator} {number(v.target)}"),
            terminal_text(v.unit),
            verdict,
        )
    console.print(table)


def render_workloads(
    console: Console,
    workloads: Sequence[tuple[str, str, Mapping[Size, WorkloadParams]]],
) -> None:
    """Each workload with its parameters: the value each ``--size`` runs with, the valid
    values and the meaning (a field's own default is not shown: no run uses it unless a size
    leaves it as it is, and then the size's column shows it)."""
    console.print(
        "workloads: a run takes the values of its --size column (smoke, default: the default, "
        "full); --param key=value replaces one"
    )
    for name, description, sizes in workloads:
        table = Table(title=f"{name}: {description}", title_justify="left")
        table.add_column("param")
        table.add_column("type")
        for size in sizes:
            table.add_column(str(size))
        table.add_column("valid")
        table.add_column("meaning")
        params_type = type(next(iter(sizes.values())))
        for param_name, type_name, spec, _ in params_type.specs():
            values = [_param_value(getattr(p, param_name)) for p in sizes.values()]
            table.add_row(param_name, type_name, *values, spec.valid(), spec.help)
        console.print(table)


def _param_value(value: object) -> str:
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)


def render_profilers(
    console: Console, profilers: Sequence[tuple[str, str, Sequence[OptionSpec]]]
) -> None:
    """Each profiler with its ``--profiler-option`` keys, defaults and meaning."""
    for name, description, options in profilers:
        if not options:
            console.print(f"{name}: {description} (no options)", highlight=False)
            continue
        table = Table(title=f"{name}: {description}", title_justify="left")
        for header in ("option", "type", "default", "meaning"):
            table.add_column(header)
        for option in options:
            table.add_row(option.name, option.type_name, str(option.default) or '""', option.help)
        console.print(table)


def render_runs(console: Console, runs: Sequence[RunSummary]) -> None:
    """Past run folders with their status."""
    if not runs:
        console.print("runs: none yet")
        return
    table = Table(title="runs", title_justify="left")
    for header in ("run id", "workload", "profiler", "status", "started"):
        table.add_column(header)
    for run in runs:
        status = run.status if run.problem is None else f"unreadable: {run.problem}"
        cells = (run.run_id, run.workload, run.profiler, status, run.started_at)
        table.add_row(*(terminal_text(cell) for cell in cells))
    console.print(table)


def render_artifacts(console: Console, run_dir: str, manifest: Manifest) -> None:
    """Where each artifact is and how to open it; the profiler's overhead and problems."""
    profiler = manifest.profiler
    if profiler.get("name", "none") == "none" and not manifest.artifacts:
        return
    table = Table(
        title=f"artifacts in {terminal_text(run_dir)}/ (run the commands there)",
        title_justify="left",
    )
    for header in ("file", "what", "open with"):
        table.add_column(header, overflow="fold")
    for artifact in manifest.artifacts:
        table.add_row(
            terminal_text(artifact["path"]),
            terminal_text(artifact.get("description", artifact["format"])),
            terminal_text(artifact["viewer"]),
        )
    console.print(table)
    overhead = profiler.get("overhead")
    if isinstance(overhead, dict) and overhead.get("ratio") is not None:
        console.print(
            f"overhead: {overhead['ratio']:.2f}x (profiled / bare, measured in this invocation; "
            f"bare run in {terminal_text(run_dir)}/{overhead.get('baseline', 'baseline')})"
        )
    for note in profiler.get("notes", ()):
        console.print(f"note: {terminal_text(str(note))}")
    for problem in profiler.get("problems", ()):
        console.print(f"[yellow]profiler problem:[/yellow] {terminal_text(str(problem))}")
