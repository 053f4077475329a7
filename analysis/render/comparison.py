"""Formatting a :class:`~analysis.compare.Comparison` and USL fits: Markdown and a rich table.

Only formatting happens here: every number comes from the typed results. Every string from a
run goes through :func:`runs.text.markdown_text` / :func:`runs.text.markdown_code` in
Markdown and :func:`runs.text.terminal_text` in the rich table.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from rich.table import Table

from runs.text import markdown_code, markdown_text, terminal_text

from ..compare import Basis, ChangeVerdict, Comparison, MetricComparison
from ..scaling import UslFit


def format_value(value: float, unit: str) -> str:
    """A metric value with its unit, to a precision that fits its size."""
    if not math.isfinite(value):
        return str(value)
    if unit == "/s":
        return f"{value:,.0f}/s"
    if not unit and value.is_integer():
        return f"{value:,.0f}"
    if unit == "ms" and 0 < abs(value) < 0.1:
        return f"{value * 1e3:.3g} us"
    magnitude = abs(value)
    digits = 0 if magnitude >= 100 else 1 if magnitude >= 10 else 3 if magnitude >= 0.01 else 5
    text = f"{value:,.{digits}f}"
    return f"{text} {unit}" if unit else text


def format_ratio(row: MetricComparison) -> str:
    """``1.23x`` (candidate / baseline), or ``-`` without a ratio."""
    return "-" if row.ratio is None else f"{row.ratio:.2f}x"


def format_evidence(row: MetricComparison, noise: float) -> str:
    """What the verdict rests on, e.g. ``p=3e-31`` or ``band ±10%``."""
    if row.basis is Basis.RANK_TEST and row.p_value is not None:
        return f"Mann-Whitney p{format_p(row.p_value)}"
    if row.basis is Basis.BOOTSTRAP and row.ci is not None:
        low, high = row.ci
        return f"bootstrap CI {low:.2f}-{high:.2f}x"
    if row.basis is Basis.FROM_ZERO:
        return "baseline 0: no ratio"
    if row.baseline == row.candidate:
        return "equal"
    return f"band ±{noise:.0%}"


def format_p(p_value: float) -> str:
    """``=3.2e-05``, or ``<1e-300`` where the p-value underflowed to 0 (not certainty)."""
    return f"={p_value:.2g}" if p_value > 0 else "<1e-300"


def comparison_table(comparison: Comparison) -> Table:
    """Every compared metric as a rich table (regressions in red, improvements in green)."""
    table = Table(
        title=terminal_text(
            f"{comparison.candidate.run_id} vs {comparison.baseline.run_id} (baseline)"
        ),
        title_justify="left",
    )
    for header in ("metric", "baseline", "candidate", "ratio", "verdict", "evidence"):
        table.add_column(header, justify="left" if header in ("metric", "verdict") else "right")
    noise = comparison.options.noise
    for row in comparison.metrics:
        style = "red" if row.verdict.regressed else "green" if row.verdict.improved else None
        table.add_row(
            terminal_text(row.name),
            terminal_text(format_value(row.baseline, row.unit)),
            terminal_text(format_value(row.candidate, row.unit)),
            format_ratio(row),
            row.verdict.value,
            format_evidence(row, noise),
            style=style,
        )
    return table


def comparison_markdown(comparison: Comparison) -> str:
    """``comparison.md``: the verdicts first, then every metric, the caveats and the method."""
    base, cand, options = comparison.baseline, comparison.candidate, comparison.options
    lines = [
        f"# {_text(cand.run_id)} vs {_text(base.run_id)}",
        "",
        *(
            f"- {side}: {markdown_code(run.run_id)} ({_text(run.workload)}, size "
            f"{_text(run.size)}, profiler {_text(run.profiler)}, {_text(run.status)}, "
            f"{_text(run.started_at)})"
            for side, run in (("baseline", base), ("candidate", cand))
        ),
        "",
    ]
    if comparison.notes:
        lines += ["## Reading this comparison", "", *(f"- {_text(n)}" for n in comparison.notes)]
        lines.append("")
    lines += ["## Summary", ""]
    lines += _summary(comparison)
    if comparison.changes:
        lines += ["", "## What the candidate changed", ""]
        lines += [_difference(d.field, d.baseline, d.candidate) for d in comparison.changes]
    if comparison.warnings:
        lines += [
            "",
            "## Warnings: these differences may explain part of the result",
            "",
        ]
        lines += [_difference(d.field, d.baseline, d.candidate) for d in comparison.warnings]
    lines += [
        "",
        "## Every metric",
        "",
        "| metric | baseline | candidate | ratio | verdict | evidence |",
        "| --- | ---: | ---: | ---: | --- | --- |",
    ]
    for row in comparison.metrics:
        verdict = f"**{row.verdict.value}**" if row.verdict is not ChangeVerdict.NO_CHANGE else "-"
        lines.append(
            f"| {_text(row.name)} | {_text(format_value(row.baseline, row.unit))} | "
            f"{_text(format_value(row.candidate, row.unit))} | {format_ratio(row)} | {verdict} | "
            f"{format_evidence(row, options.noise)} |"
        )
    if comparison.tests:
        lines += [
            "",
            "## Latency samples",
            "",
            "| operation | samples (base / cand) | median ratio | "
            f"{options.confidence:.0%} CI | P(cand > base) | Mann-Whitney p |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for test in comparison.tests:
            low, high = test.median_ratio_ci
            lines.append(
                f"| {_text(test.operation)} | {test.baseline_count:,} / {test.candidate_count:,} | "
                f"{test.median_ratio:.2f}x | {low:.2f}-{high:.2f}x | {test.superiority:.2f} | "
                f"p{format_p(test.p_value)} |"
            )
    for title, names in (
        ("Only in the baseline", comparison.only_in_baseline),
        ("Only in the candidate", comparison.only_in_candidate),
    ):
        if names:
            lines += ["", f"## {title}", "", *(f"- {markdown_code(name)}" for name in names)]
    lines += ["", "## Method", "", *_method(comparison), ""]
    return "\n".join(lines)


def scaling_markdown(fits: Sequence[UslFit]) -> str:
    """The USL fits as a Markdown section: parameters, peak, and the contention in words."""
    lines = [
        "| mode | lambda (1 worker) | sigma | kappa | R^2 | peak N* | peak tasks/s | "
        "90 % of peak at | best measured |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for fit in fits:
        best = fit.best_measured
        lines.append(
            f"| {_text(fit.mode or '-')} | {fit.lambda_:,.0f}/s | {fit.sigma:.3f} | "
            f"{fit.kappa:.2g} | "
            f"{fit.r_squared:.3f} | {_workers(fit.peak_workers)} | "
            f"{_rate(fit.peak_throughput)} | {_workers(fit.workers_for_90pct)} | "
            f"{best.throughput:,.0f}/s at {best.workers} |"
        )
    lines.append("")
    lines += [f"- **{_text(fit.mode or 'workers')}**: {_text(fit.contention)}" for fit in fits]
    return "\n".join(lines)


def _summary(comparison: Comparison) -> list[str]:
    lines = []
    for title, rows in (
        ("Slower or worse", comparison.regressions),
        ("Faster or better", comparison.improvements),
    ):
        if rows:
            lines.append(f"{title}:")
            lines += [
                f"- {_text(row.name)}: {_text(format_value(row.baseline, row.unit))} → "
                f"{_text(format_value(row.candidate, row.unit))} ({format_ratio(row)}, "
                f"{format_evidence(row, comparison.options.noise)})"
                for row in rows
            ]
            lines.append("")
    unchanged = sum(row.verdict is ChangeVerdict.NO_CHANGE for row in comparison.metrics)
    lines.append(f"No significant change: {unchanged} of {len(comparison.metrics)} metrics.")
    return lines


def _method(comparison: Comparison) -> list[str]:
    options = comparison.options
    return [
        f"- Latency medians: Mann-Whitney U rank test on every sample, significant at "
        f"p < {options.alpha:g}.",
        f"- Latency p95/p99: {options.confidence:.0%} bootstrap interval of the percentile "
        f"ratio ({options.resamples} resamples, at most {options.max_bootstrap_samples:,} "
        "samples per side); significant when it excludes 1.",
        f"- Either way a change must also exceed the noise band (±{options.noise:.0%}) to "
        "count: a detectable but smaller shift is within run-to-run noise.",
        f"- Metrics without samples (rates, step metrics, counters): noise band ±"
        f"{options.noise:.0%} of the baseline; a baseline of 0 has no ratio and any change "
        "from it is reported.",
        "- Ratios are candidate / baseline; for rates higher is better, for latencies lower.",
    ]


def _text(text: object) -> str:
    return markdown_text(text)


def _difference(field: str, baseline: str, candidate: str) -> str:
    return f"- {markdown_code(field)}: {_text(baseline)} → {_text(candidate)}"


def _workers(value: float | None) -> str:
    if value is None:
        return "-"
    return "none (plateau)" if math.isinf(value) else f"{value:.1f}"


def _rate(value: float) -> str:
    return "unbounded" if math.isinf(value) else f"{value:,.0f}/s"
