"""Proof of the regression gate: unchanged runs in a row, then planted regressions.

    python -m benchmarks.gate_proof [--size smoke] [--unchanged 20] [--planted 3]
                                    [--busy-from 11] [--out DIR]

Runs ``queueprof regress --size SIZE --quiet`` against the committed baseline ``--unchanged``
times on the unchanged tree (from run ``--busy-from`` on, with one busy-looping process of its
own beside it, so the other core is taken), then ``--planted`` times each with a planted
``sitecustomize.py`` on the gate's ``PYTHONPATH`` (as ``tests/regress/test_cli.py`` plants;
nothing ships it): the claim running 10% and 20% more CPU instructions (a Python loop after
each claim statement), and the claim sleeping 10% of its time (40 us per claim of 100 tasks
on the reference VM: a wait, which instructions cannot see). The planted runs judge the
instruction gate only, except the sleep, which runs both gates.

Prints one line per run and the table: each metric's spread over the unchanged runs
(min..max of its change against the baseline, and max/min - 1 of its figure), false alarms,
the smallest planted regression each gate caught, and the gate's time. Exit 0 when every
unchanged run passed and every planted CPU regression failed naming the claim.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from runs.files import REGRESS_REPORT

ROOT = Path(__file__).resolve().parents[1]

PLANT_CPU = """
from taskqueue.store import Store

_claim_returning = Store.claim_returning


def _busy(count):
    total = 0
    for i in range(count):
        total += i
    return total


def _costly_claim(self, *args, **kwargs):
    claimed = _claim_returning(self, *args, **kwargs)
    _busy({iterations})
    return claimed


Store.claim_returning = _costly_claim
"""
PLANT_SLEEP = """
import time

from taskqueue.store import Store

_claim_returning = Store.claim_returning


def _slow_claim(self, *args, **kwargs):
    claimed = _claim_returning(self, *args, **kwargs)
    time.sleep({seconds})
    return claimed


Store.claim_returning = _slow_claim
"""
INSTRUCTIONS_PER_ITERATION = 456
"""Callgrind's count for one ``total += i`` loop step on the reference interpreter."""


@dataclass
class GateRun:
    """One gate invocation: exit status, wall time, its regress.json."""

    label: str
    returncode: int
    seconds: float
    report: dict[str, Any]
    callgrind_seconds: float | None


def run_gate(
    label: str, size: str, out: Path, extra: list[str], plant: str | None = None
) -> GateRun:
    """``queueprof regress`` once into ``out``; the plant (sitecustomize text) if given."""
    out.mkdir(parents=True)
    path = [str(ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    if plant is not None:
        (out / "plant").mkdir()
        (out / "plant" / "sitecustomize.py").write_text(plant)
        path.insert(0, str(out / "plant"))
    baseline = (
        ROOT / "results" / ("baseline_smoke.json" if size == "smoke" else "baseline_results.json")
    )
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "queueprof", "regress", "--size", size, "--quiet",
         "--baseline", str(baseline), "--out", str(out / "traces"), *extra],
        capture_output=True, text=True, check=False,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(path), "COLUMNS": "200"},
    )  # fmt: skip
    seconds = time.monotonic() - started
    reports = list((out / "traces").glob(f"*-gate-*/{REGRESS_REPORT}"))
    if not reports:
        raise SystemExit(f"{label}: no {REGRESS_REPORT} (exit {done.returncode}):\n{done.stderr}")
    report = orjson.loads(reports[0].read_bytes())
    callgrind = None
    if report.get("instruction_folder"):
        results = orjson.loads((Path(report["instruction_folder"]) / "results.json").read_bytes())
        callgrind = float(results["duration_s"])
    (out / "stdout.txt").write_text(done.stdout + done.stderr)
    return GateRun(label, done.returncode, seconds, report, callgrind)


def describe(run: GateRun) -> str:
    """One line: verdict, times, regressed metrics with their change and top function."""
    regressed = []
    for row in run.report.get("instructions", []):
        if row["regressed"]:
            top = row["functions"][0]["function"] if row["functions"] else "-"
            regressed.append(f"{row['name']} {row['relative_change']:+.1%} (top: {top})")
    for row in run.report.get("metrics", []):
        if row["regressed"]:
            regressed.append(f"{row['name']} {row['relative_change']:+.0%}")
    verdict = "PASS" if run.returncode == 0 else f"FAIL({run.returncode})"
    cg = "-" if run.callgrind_seconds is None else f"{run.callgrind_seconds:.0f}s"
    return f"{run.label}: {verdict} gate {run.seconds:.0f}s callgrind {cg}; " + (
        "; ".join(regressed) or "nothing regressed"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="smoke")
    parser.add_argument("--unchanged", type=int, default=20)
    parser.add_argument("--planted", type=int, default=3)
    parser.add_argument("--busy-from", type=int, default=11)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="gate-proof-"))
    print(f"gate proof into {out}", flush=True)
    unchanged: list[GateRun] = []
    busy: subprocess.Popen[bytes] | None = None
    try:
        for index in range(1, args.unchanged + 1):
            if index == args.busy_from and busy is None:
                busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
            label = f"unchanged {index}" + (" (+busy loop)" if busy else "")
            unchanged.append(run_gate(label, args.size, out / f"u{index}", []))
            print(describe(unchanged[-1]), flush=True)
    finally:
        if busy is not None:
            busy.kill()
            busy.wait()
    base_claim = None
    planted: list[tuple[str, GateRun]] = []
    for percent in (10, 20):
        for index in range(1, args.planted + 1):
            if base_claim is None:
                base_claim = _claim_per_call(unchanged[0].report)
            iterations = round(base_claim * percent / 100 / INSTRUCTIONS_PER_ITERATION)
            run = run_gate(
                f"+{percent}% claim CPU #{index} ({iterations} loop steps per claim)",
                args.size,
                out / f"cpu{percent}-{index}",
                ["--only", "instructions"],
                PLANT_CPU.format(iterations=iterations),
            )
            planted.append((f"cpu{percent}", run))
            print(describe(run), flush=True)
    sleep = run_gate(
        "claim +40 us sleep (about +10% of a 100-task claim's time)",
        args.size,
        out / "sleep",
        [],
        PLANT_SLEEP.format(seconds=0.00004),
    )
    print(describe(sleep), flush=True)
    print_table(unchanged, planted, sleep)
    alarms = sum(run.returncode != 0 for run in unchanged)
    caught = all(
        run.returncode == 1 and "claim_instructions_per_task" in run.report["regressions"]
        for _, run in planted
    )
    return 0 if alarms == 0 and caught else 1


def _claim_per_call(report: dict[str, Any]) -> float:
    row = next(r for r in report["instructions"] if r["name"] == "claim_instructions_per_task")
    return float(row["baseline"]) * 100  # a claim call takes 100 tasks


def print_table(
    unchanged: list[GateRun], planted: list[tuple[str, GateRun]], sleep: GateRun
) -> None:
    """The closing table: metric, spread, smallest regression caught, gate time."""
    alarms = sum(r.returncode != 0 for r in unchanged)
    print(f"\n{len(unchanged)} unchanged runs: {alarms} false alarms")
    print(f"{'metric':40} {'change vs baseline (min..max)':>30} {'figure spread':>14}")
    names = [row["name"] for row in unchanged[0].report.get("instructions", [])]
    for name in names:
        rows = [
            next(r for r in run.report["instructions"] if r["name"] == name) for run in unchanged
        ]
        changes = [r["relative_change"] for r in rows]
        figures = [r["candidate"] for r in rows]
        print(
            f"{name:40} {min(changes):+.3%}..{max(changes):+.3%}"
            f" {max(figures) / min(figures) - 1:>13.3%}"
        )
    for name in [row["name"] for row in unchanged[0].report.get("metrics", []) if row["gated"]]:
        rows = [next(r for r in run.report["metrics"] if r["name"] == name) for run in unchanged]
        changes = [r["relative_change"] for r in rows]
        print(f"{name:40} {min(changes):+.0%}..{max(changes):+.0%} (band {rows[0]['band']:+.0%})")
    for label in ("cpu10", "cpu20"):
        runs = [run for kind, run in planted if kind == label]
        if not runs:
            continue
        changes = [
            next(
                r for r in run.report["instructions"] if r["name"] == "claim_instructions_per_task"
            )["relative_change"]
            for run in runs
        ]
        failed = sum(run.returncode == 1 for run in runs)
        print(
            f"planted {label}: {failed}/{len(runs)} failed, claim "
            f"{min(changes):+.1%}..{max(changes):+.1%}"
        )
    claim = next(
        r for r in sleep.report["instructions"] if r["name"] == "claim_instructions_per_task"
    )
    wall = [r for r in sleep.report["metrics"] if r["gated"]]
    print(
        f"planted sleep: exit {sleep.returncode}; instructions claim "
        f"{claim['relative_change']:+.2%}; "
        + ", ".join(
            f"{r['name']} {r['relative_change']:+.0%} (band {r['band']:+.0%})" for r in wall
        )
    )
    seconds = [run.seconds for run in unchanged]
    callgrind = [run.callgrind_seconds for run in unchanged if run.callgrind_seconds is not None]
    print(
        f"gate time: {min(seconds):.0f}..{max(seconds):.0f} s per run (median "
        f"{sorted(seconds)[len(seconds) // 2]:.0f} s), of which callgrind "
        f"{min(callgrind):.0f}..{max(callgrind):.0f} s"
    )


if __name__ == "__main__":
    raise SystemExit(main())
