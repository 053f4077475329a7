"""Run every planted bottleneck and print the table: plant, expected, #1 finding, OK/MISS.

``python -m tests.diagnosis.run_all [--repeat N] [--out DIR] [--only NAME ...] [--mode M]``
from the repository root. Each plant runs through the real ``queueprof run`` + ``queueprof
analyze`` (:mod:`tests.diagnosis.harness`): ``--mode tailored`` (the default) runs the
plant's own run; ``--mode default-job`` runs the commands of the tox env a user runs for it
(``profile-cpu``, or ``profile-mem`` for memray plants), read from ``tox.ini``, at the
default size (``--size smoke`` to append one), and judges the combined report's #1;
``--mode both`` runs both. ``--reanalyse --out DIR`` runs nothing: it analyses the run
folders an earlier ``run_all`` left in DIR again, with this checkout's rules, and judges
them. The table is printed and written as Markdown to ``<out>/plants-table.md``. Exit
status 1 when any run's #1 finding is a MISS.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .harness import DEFAULT_JOB_SIZE, PlantOutcome, reanalyse, run_default_job, run_plant
from .plants import PLANTS


def main(argv: list[str] | None = None) -> int:
    """Run the plants; 0 when every #1 finding is OK."""
    parser = argparse.ArgumentParser(prog="python -m tests.diagnosis.run_all")
    parser.add_argument("--repeat", type=int, default=1, help="runs per plant (default 1)")
    parser.add_argument("--out", type=Path, help="where run folders go (default: a temp dir)")
    parser.add_argument("--only", nargs="*", choices=sorted(PLANTS), help="these plants only")
    parser.add_argument(
        "--mode",
        choices=("tailored", "default-job", "both"),
        default="tailored",
        help="the plant's own run, the tox env's default job, or both (default tailored)",
    )
    parser.add_argument(
        "--size",
        default=DEFAULT_JOB_SIZE,
        help=f"size appended to the default job's commands (default {DEFAULT_JOB_SIZE})",
    )
    parser.add_argument(
        "--reanalyse",
        action="store_true",
        help="run nothing: analyse again the run folders an earlier run_all left in --out, "
        "with this checkout's rules, and judge them",
    )
    args = parser.parse_args(argv)
    if args.reanalyse and args.out is None:
        parser.error("--reanalyse needs --out, the folder of an earlier run_all")
    modes = ("tailored", "default-job") if args.mode == "both" else (args.mode,)
    out = args.out or Path(tempfile.mkdtemp(prefix="queueprof-plants-"))
    console = Console(width=200)
    outcomes: list[PlantOutcome] = []
    for name in args.only or list(PLANTS):
        for mode in modes:
            for attempt in range(args.repeat):
                if args.reanalyse:
                    job = mode == "default-job"
                    if not (
                        out / (f"{name}-job-{attempt}" if job else f"{name}-{attempt}")
                    ).is_dir():
                        continue
                    outcome = reanalyse(PLANTS[name], out, attempt=attempt, job=job)
                elif mode == "tailored":
                    outcome = run_plant(PLANTS[name], out, attempt=attempt)
                else:
                    outcome = run_default_job(PLANTS[name], out, attempt=attempt, size=args.size)
                outcomes.append(outcome)
                verdict = "OK" if outcome.ok else "MISS"
                console.print(
                    f"{_label(outcome)}: {verdict} ({outcome.seconds:.1f} s) {outcome.top_text}",
                    markup=False,
                    highlight=False,
                )
    table = Table(title=f"planted bottlenecks ({out})", show_lines=True)
    for column in ("plant", "expected", "#1 finding", "OK/MISS"):
        table.add_column(column, overflow="fold")
    for o in outcomes:
        cells = (_label(o), o.expected_text, o.top_text, "OK" if o.ok else "MISS")
        table.add_row(*map(escape, cells))
    console.print(table)
    markdown = _markdown(outcomes)
    (out / "plants-table.md").write_text(markdown, encoding="utf-8")
    misses = sum(not o.ok for o in outcomes)
    console.print(
        f"{len(outcomes) - misses}/{len(outcomes)} OK; table in {out / 'plants-table.md'}"
    )
    return 1 if misses else 0


def _label(outcome: PlantOutcome) -> str:
    plant = outcome.plant
    after = " (written after the rules)" if plant.after_rules else ""
    if plant.first_miss:
        after = " (written after the rules; MISSED first, rules changed since)"
    elif plant.known_miss:
        after += " (known miss)"
    elif plant.negligible:
        after += " (planted cost not real)"
    if outcome.job and plant.job_miss:
        after += " (known miss in the default job)"
    job = f" [{outcome.job}]" if outcome.job else ""
    return f"{plant.name} #{outcome.attempt}{job}{after}"


def _markdown(outcomes: list[PlantOutcome]) -> str:
    rows = [
        "| plant | expected | #1 finding (verbatim) | OK/MISS | history |",
        "|---|---|---|---|---|",
    ]
    for o in outcomes:
        plant = o.plant
        history = "; ".join(
            f"{what}: {text}"
            for what, text in (
                ("revised", plant.revised),
                ("first run", plant.first_miss),
                ("known miss", plant.known_miss),
                ("planted cost not real", plant.negligible),
                ("default job", plant.job_miss if o.job else None),
            )
            if text
        )
        cells = (_label(o), o.expected_text, o.top_text, "OK" if o.ok else "MISS", history)
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    sys.exit(main())
