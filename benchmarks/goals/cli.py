"""``python -m benchmarks.goals``: measure the rows, print the table, save the JSON."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import orjson
from rich.console import Console
from rich.markup import escape

from benchmarks import goals
from runs import write_atomic

from . import PROG
from .measure import FULL, QUICK
from .table import (
    ERROR,
    FAIL,
    PASS,
    ROWS,
    RowResult,
    goals_document,
    parse_only,
    render_table,
    run_row,
)


def main(argv: Sequence[str] | None = None) -> int:
    """Measure the rows, print the table, optionally save the JSON; returns the exit status."""
    parser = argparse.ArgumentParser(prog=PROG, description=(goals.__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: about a minute in all")
    parser.add_argument(
        "--only", metavar="ROW,...", help=f"measure only these rows: {', '.join(ROWS)}"
    )
    parser.add_argument("--save", type=Path, metavar="FILE", help="write every figure as JSON")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a goal fails")
    args = parser.parse_args(argv)
    try:
        keys = parse_only(args.only)
    except ValueError as error:
        parser.error(str(error))
    if args.save is not None and args.save.is_dir():
        parser.error(f"--save {str(args.save)!r} is a folder; name a JSON file")
    sizes = QUICK if args.quick else FULL
    console = Console() if sys.stdout.isatty() else Console(width=180)
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    load_before = os.getloadavg()
    started = time.perf_counter()
    results: list[RowResult] = []
    interrupted = False
    for index, key in enumerate(keys, 1):
        row = ROWS[key]
        err.print(f"[bold]{index}/{len(keys)} {key}[/bold]: {escape(row.metric)}")
        try:
            result = run_row(row, sizes, args.quick, lambda line: err.print("  " + escape(line)))
        except KeyboardInterrupt:
            # Ctrl-C: the rows measured so far are still worth their table and file.
            err.print(f"  interrupted; {len(results)} of {len(keys)} rows measured")
            interrupted = True
            break
        before, after = result.loadavg
        err.print(
            f"  {result.verdict} in {result.seconds:.0f} s (load {before:.1f} -> {after:.1f})"
        )
        results.append(result)
    load = {
        "loadavg_1m_before": load_before[0],
        "loadavg_1m_after": os.getloadavg()[0],
        "cpus": os.cpu_count(),
        "wall_s": time.perf_counter() - started,
        "interrupted": interrupted,
    }
    title = (
        f"queueprof goals{' (--quick: small sizes, not the goals figures)' if args.quick else ''}"
        f" - {len(results)} rows in {load['wall_s']:.0f} s, load average "
        f"{load_before[0]:.1f} -> {load['loadavg_1m_after']:.1f} on {load['cpus']} CPUs"
    )
    console.print(render_table(results, title))
    for r in results:
        for note in r.measured.notes:
            console.print(f"[dim]{r.row.key}:[/dim] {escape(note)}", highlight=False)
    if args.save is not None:
        args.save.parent.mkdir(parents=True, exist_ok=True)
        document = goals_document(results, args.quick, sizes, load)
        write_atomic(
            args.save, orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
        )
        console.print(f"saved {args.save}")
    counts = {v: sum(r.verdict == v for r in results) for v in (PASS, FAIL, ERROR)}
    console.print(", ".join(f"{n} {v}" for v, n in counts.items()))
    if interrupted:
        return 130
    if counts[ERROR]:
        return 1
    return 1 if args.strict and counts[FAIL] else 0


if __name__ == "__main__":
    raise SystemExit(main())
