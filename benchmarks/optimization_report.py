"""Before/after evidence for an optimisation proposal, from queueprof's own comparison.

    python -m benchmarks.optimization_report --notes NOTES.md \\
        --pair NAME BEFORE_RUN AFTER_RUN [--pair ...] \\
        [--goals-before FILE --goals-after FILE] [--out results]

Each pair is two run folders of the same workload (the tree before and after the change,
run back to back on one machine); each is judged by :func:`analysis.compare.compare_folders`,
exactly as ``queueprof compare`` judges it (rank tests on every op sample, bootstrap
intervals for tails, a noise band for rates). Writes ``optimization_results.json`` (every
comparison as data, the two goal tables, the environment once) and ``comparison_report.md``:
the hand-written notes (what the profiles showed, what changed), then a goal table before
and after, then each comparison as ``queueprof compare`` renders it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from analysis.compare import Comparison, ComparisonOptions, compare_folders
from analysis.errors import AnalysisError
from analysis.render.comparison import comparison_markdown
from runs import now_iso, write_atomic
from workloads.environment import capture_environment

SCHEMA_VERSION = 1
RESULTS = "optimization_results.json"
REPORT = "comparison_report.md"


class ReportError(Exception):
    """A bad argument or input file; the message names it and the fix."""


@dataclass(frozen=True)
class Pair:
    name: str
    before: Path
    after: Path


def _goals(path: Path | None, which: str) -> dict[str, Any] | None:
    if path is None:
        return None
    try:
        document = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as error:
        raise ReportError(
            f"--goals-{which} {path}: cannot read it ({error}); "
            f"write it with `python -m benchmarks.goals --save {path}`"
        ) from None
    if not isinstance(document, dict) or document.get("kind") != "goals":
        raise ReportError(f"--goals-{which} {path}: not a goals file (`benchmarks.goals --save`)")
    return document


def goal_rows(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> list[str]:
    """A Markdown table: each goal row's measured figures and verdict, before and after."""
    old = {row["key"]: row for row in (before or {}).get("rows", [])}
    lines = [
        "| goal | target | before | after |",
        "|---|---|---|---|",
    ]
    for row in after["rows"]:
        then = old.get(row["key"])
        lines.append(
            f"| {row['metric']} | {row['goal']} | "
            f"{_checks(then) if then else 'not measured'} | {_checks(row)} |"
        )
    return lines


def _checks(row: Mapping[str, Any]) -> str:
    if row.get("error"):
        return f"ERROR: {row['error']}"
    parts = [
        f"{check['name']} {_number(check['measured'])}{_unit(check['unit'])}"
        + ("" if check["passed"] else " (fail)")
        for check in row["checks"]
    ]
    return f"**{row['verdict']}**: " + "; ".join(parts)


def _unit(unit: str) -> str:
    return unit if unit in ("", "x") else f" {unit}"


def _number(value: float) -> str:
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def build(
    pairs: Sequence[Pair],
    notes: str,
    goals_before: Mapping[str, Any] | None,
    goals_after: Mapping[str, Any] | None,
    options: ComparisonOptions,
) -> tuple[dict[str, Any], str]:
    """(results document, Markdown report)."""
    comparisons: list[tuple[Pair, Comparison]] = []
    for pair in pairs:
        comparisons.append((pair, compare_folders(pair.before, pair.after, options)))
    document: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "kind": "optimization-results",
        "created_at": now_iso(),
        "environment": capture_environment(),
        "comparisons": [
            {
                "name": pair.name,
                "before": str(pair.before),
                "after": str(pair.after),
                "regressions": [m.name for m in comparison.regressions],
                "improvements": [m.name for m in comparison.improvements],
                "comparison": comparison.to_dict(),
            }
            for pair, comparison in comparisons
        ],
        "goals": {"before": goals_before, "after": goals_after},
    }
    lines = [notes.rstrip(), ""]
    if goals_after is not None:
        lines += ["## The goal table, before and after", ""]
        lines += goal_rows(goals_before, goals_after)
        lines += ["", provenance(goals_before, goals_after), ""]
    for pair, comparison in comparisons:
        lines += [
            f"## {pair.name}",
            "",
            f"`queueprof compare {pair.before.name} {pair.after.name}` "
            f"({len(comparison.improvements)} better, {len(comparison.regressions)} worse):",
            "",
            _nested(comparison_markdown(comparison)).rstrip(),
            "",
        ]
    return document, "\n".join(lines) + "\n"


def _nested(markdown: str) -> str:
    """``queueprof compare``'s Markdown one heading level down, under this report's section."""
    return "\n".join("#" + line if line.startswith("#") else line for line in markdown.splitlines())


def provenance(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> str:
    """Where and when the two goal tables were measured, from their own records: the same
    machine only when both name the same CPU."""
    said = "Measured by `python -m benchmarks.goals --save FILE` on each tree"
    if before is None:
        return f"{said} (after: {_where(after)}; load average {_load(after)})."
    if _cpu(before) == _cpu(after):
        return (
            f"{said}, on the same machine ({_cpu(after)}; load average {_load(before)} "
            f"before, {_load(after)} after; before {_when(before)}, after {_when(after)})."
        )
    return (
        f"{said}, on different hosts: before {_where(before)}, after {_where(after)} (load "
        f"average {_load(before)} and {_load(after)}). The hosts' speeds differ, so compare "
        "the ratio rows (each measured against sqlite3 in its own run), not the rates."
    )


def _cpu(goals: Mapping[str, Any]) -> str:
    cpu = (goals.get("environment") or {}).get("cpu") or {}
    return f"{cpu.get('model', 'unknown CPU')}, {cpu.get('logical_cores', '?')} CPUs"


def _when(goals: Mapping[str, Any]) -> str:
    return str(goals.get("created_at", "at an unrecorded time"))


def _where(goals: Mapping[str, Any]) -> str:
    return f"{_cpu(goals)} at {_when(goals)}"


def _load(goals: Mapping[str, Any] | None) -> str:
    if not goals:
        return "-"
    load = goals.get("machine_load") or {}
    first, last = load.get("loadavg_1m_before"), load.get("loadavg_1m_after")
    if isinstance(first, int | float) and isinstance(last, int | float):
        return f"{first:.1f} -> {last:.1f}"
    return "not recorded"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.optimization_report", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--notes", type=Path, required=True, help="hand-written Markdown first")
    parser.add_argument(
        "--pair", nargs=3, action="append", required=True, metavar=("NAME", "BEFORE", "AFTER")
    )
    parser.add_argument("--goals-before", type=Path)
    parser.add_argument("--goals-after", type=Path)
    parser.add_argument("--noise", type=float, default=0.10, help="noise band (default 0.10)")
    parser.add_argument("--out", type=Path, default=Path("results"))
    args = parser.parse_args(argv)
    try:
        if not args.notes.is_file():
            raise ReportError(f"--notes {args.notes}: no such file; write the narrative first")
        pairs = [Pair(name, Path(before), Path(after)) for name, before, after in args.pair]
        document, report = build(
            pairs,
            args.notes.read_text(),
            _goals(args.goals_before, "before"),
            _goals(args.goals_after, "after"),
            ComparisonOptions(noise=args.noise),
        )
    except (ReportError, AnalysisError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    write_atomic(args.out / RESULTS, orjson.dumps(document, option=orjson.OPT_INDENT_2))
    write_atomic(args.out / REPORT, report.encode())
    print(f"wrote {args.out / RESULTS} and {args.out / REPORT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
