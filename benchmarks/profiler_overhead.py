"""Every profiler's overhead on the same queue work, measured side by side in one run.

    python -m benchmarks.profiler_overhead [--tasks N] [--workers W] [--rounds R]
        [--profilers pyinstrument,memray,viztracer,py-spy] [--option NAME:key=value ...]
        [--queue key=value,...] [--json PATH|-]

Each round runs the work bare and under each profiler, the order alternating between rounds
so drift on a shared machine spreads over both sides. The work: open a queue
(``capture_sql`` and ``record_timings`` on both sides, so only the profiler differs; other
strategy keys from ``--queue``), enqueue ``--tasks`` noop tasks in one batch, drain them
with ``--workers`` async engines. In-process profilers wrap it in their session inside the
event loop, as ``queueprof run`` does; py-spy runs it in a child process, compared with the
same child run bare, so both sides pay the same start-up (and both wait ``SETTLE_S`` before the
timed drain, so py-spy's attach is not inside it). Writing reports (``finish``) is
timed apart. The overhead is the median of per-round wall-time ratios (each ratio's two runs
are back to back).

Each run's process CPU time (every thread of the process running the drain: the profiler's
own threads in-process, not py-spy's separate process) is reported next to the wall time.
On a shared machine it is the steadier of the two: other processes delay this one's wake-ups
(wall time) far more than they change the work it does (CPU time). The goals are on wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from profilers import REGISTRY, Profiler, get_profiler
from taskqueue import InvalidArgumentError, QueueConfig, TaskQueue, run_async_workers

GOALS = {"pyinstrument": 1.3, "memray": 1.3, "viztracer": 1.5, "py-spy": 1.05}
VIZTRACER_SIZE_GOAL_MB = 20.0
JSON_SCHEMA_VERSION = 1

CHILD = """
import asyncio, sys, time
from pathlib import Path
sys.path.insert(0, {root!r})
from benchmarks.profiler_overhead import timed_drain
time.sleep({settle!r})
print("drain-seconds", *asyncio.run(timed_drain(Path({folder!r}), {tasks}, {workers}, {queue!r})))
"""
SETTLE_S = 0.5
"""The child waits this long before its timed drain, bare or profiled: py-spy reads the
interpreter's symbols as it attaches, and on 2 cores that start-up, taking turns with a
0.2 s drain, was most of py-spy's measured cost. In-process profilers start before the
timed part too (``_in_session``); what is compared is the cost while the work runs."""


def queue_config(options: str = "") -> QueueConfig:
    """The queue both sides run: ``options`` (``key=value,...``) with timings and SQL capture
    on, as every profiled run has them (``queueprof run`` forces timings; the profilers that
    attribute SQL ask for the capture), so only the profiler differs."""
    return QueueConfig.parse(options, base=QueueConfig(capture_sql=True, record_timings=True))


async def timed_drain(
    folder: Path, tasks: int, workers: int, queue_options: str = ""
) -> tuple[float, float]:
    """(wall s, process CPU s) to enqueue ``tasks`` noop tasks and drain them."""
    started, cpu_started = time.perf_counter(), time.process_time()
    async with TaskQueue(folder / "queue.db", queue_config(queue_options)) as queue:
        await queue.enqueue_many([("noop", None)] * tasks)
        await run_async_workers(queue, workers)
    return time.perf_counter() - started, time.process_time() - cpu_started


async def drain(folder: Path, tasks: int, workers: int, queue_options: str = "") -> float:
    """Seconds to enqueue ``tasks`` noop tasks and drain them with ``workers`` engines."""
    wall, _ = await timed_drain(folder, tasks, workers, queue_options)
    return wall


async def _in_session(
    profiler: Profiler, tasks: int, workers: int, queue_options: str
) -> tuple[float, float]:
    with profiler.session():
        return await timed_drain(profiler.run_dir, tasks, workers, queue_options)


def _child(
    profiler: Profiler | None, folder: Path, tasks: int, workers: int, queue_options: str
) -> tuple[float, float]:
    """(wall s, CPU s) of the drain in a child process, run bare or under ``profiler``."""
    root = str(Path(__file__).resolve().parents[1])
    script = CHILD.format(
        root=root,
        folder=str(folder),
        tasks=tasks,
        workers=workers,
        queue=queue_options,
        settle=SETTLE_S,
    )
    child = [sys.executable, "-c", script]
    done = subprocess.run(
        child if profiler is None else profiler.command(child),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"child failed ({done.returncode}): {done.stderr.strip()[-600:]}")
    # py-spy prints on stdout too: take the child's own line.
    found = [line for line in done.stdout.splitlines() if line.startswith("drain-seconds ")]
    if not found:
        raise SystemExit(f"child printed no timing: {done.stdout.strip()[-600:]}")
    wall, cpu = found[-1].split()[1:3]
    return float(wall), float(cpu)


def one_round(
    name: str,
    options: list[str],
    tasks: int,
    workers: int,
    swap: bool,
    queue_options: str = "",
) -> tuple[float, float, float, dict[str, object]]:
    """(bare s, profiled s, finish s, profiler summary) for one back-to-back pair.

    The summary also holds both sides' process CPU seconds (``bare_cpu_s``,
    ``profiled_cpu_s``) and, for viztracer, the trace's size (``trace_mb``).
    """
    cls = get_profiler(name)
    timings: dict[str, tuple[float, float]] = {}
    finish_s = 0.0
    summary: dict[str, object] = {}
    for kind in ("profiled", "bare") if swap else ("bare", "profiled"):
        with tempfile.TemporaryDirectory(prefix="queueprof-overhead-") as scratch:
            folder = Path(scratch)
            profiler = cls(cls.options_type.parse(options), folder)
            if cls.launcher:
                wrapper = None if kind == "bare" else profiler
                timings[kind] = _child(wrapper, folder, tasks, workers, queue_options)
                if kind == "profiled":
                    profiler.finish()
            elif kind == "bare":
                timings[kind] = asyncio.run(timed_drain(folder, tasks, workers, queue_options))
            else:
                timings[kind] = asyncio.run(_in_session(profiler, tasks, workers, queue_options))
                started = time.perf_counter()
                profiler.finish()
                finish_s = time.perf_counter() - started
            if kind == "profiled":
                summary = dict(profiler.manifest().get("summary", {}))
                trace = folder / "viztracer.trace.json"
                if trace.exists():
                    summary["trace_mb"] = trace.stat().st_size / 1e6
    summary["bare_cpu_s"] = timings["bare"][1]
    summary["profiled_cpu_s"] = timings["profiled"][1]
    return timings["bare"][0], timings["profiled"][0], finish_s, summary


@dataclass(frozen=True)
class Round:
    """One back-to-back pair of runs."""

    bare_s: float
    profiled_s: float
    bare_cpu_s: float
    profiled_cpu_s: float
    finish_s: float

    @property
    def ratio(self) -> float:
        """Wall time, profiled / bare."""
        return self.profiled_s / self.bare_s

    @property
    def cpu_ratio(self) -> float:
        """Process CPU time, profiled / bare."""
        return self.profiled_cpu_s / self.bare_cpu_s if self.bare_cpu_s > 0 else float("nan")

    def to_dict(self) -> dict[str, float]:
        return {
            "bare_s": self.bare_s,
            "profiled_s": self.profiled_s,
            "ratio": self.ratio,
            "bare_cpu_s": self.bare_cpu_s,
            "profiled_cpu_s": self.profiled_cpu_s,
            "cpu_ratio": self.cpu_ratio,
            "finish_s": self.finish_s,
        }


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--tasks", type=_positive, default=10_000)
    parser.add_argument("--workers", type=_positive, default=5)
    parser.add_argument("--rounds", type=_positive, default=3)
    parser.add_argument("--profilers", default=",".join(GOALS))
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="NAME:KEY=VALUE",
        help="a profiler option, e.g. pyinstrument:interval=0.01",
    )
    parser.add_argument(
        "--queue",
        default="",
        metavar="KEY=VALUE,...",
        help="queue strategy on both sides, e.g. claim_batch=100,ack_batch=100 "
        "(the keys of `queueprof run --queue`)",
    )
    parser.add_argument(
        "--json",
        metavar="PATH",
        help="also write the figures as JSON to PATH ('-': standard output, instead of the table)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.profilers.split(",") if n.strip()]
    for name in names:
        if name not in REGISTRY or name == "none":
            parser.error(
                f"--profilers: {name!r} is not a profiler; choose from "
                f"{', '.join(n for n in REGISTRY if n != 'none')}"
            )
    try:
        queue_config(args.queue)
    except InvalidArgumentError as error:
        parser.error(f"--queue {args.queue!r}: {error}")
    options: dict[str, list[str]] = defaultdict(list)
    for item in args.option:
        name, sep, pair = item.partition(":")
        if not sep or name not in names:
            parser.error(f"--option {item!r}: expected NAME:key=value with NAME in {names}")
        options[name].append(pair)
    for name in names:
        get_profiler(name).check_available()
        get_profiler(name).options_type.parse(options[name])  # bad options fail before round 1
    to_stdout = args.json == "-"

    def say(text: str) -> None:
        print(text, file=sys.stderr if to_stdout else sys.stdout, flush=True)

    rounds: dict[str, list[Round]] = defaultdict(list)
    summaries: dict[str, dict[str, object]] = {}
    say(
        f"{args.tasks} noop tasks, {args.workers} async workers, {args.rounds} rounds, "
        f"queue {args.queue or 'defaults'}"
    )
    for round_no in range(args.rounds):
        for name in names:
            bare, profiled, finish_s, summary = one_round(
                name,
                options[name],
                args.tasks,
                args.workers,
                swap=round_no % 2 == 1,
                queue_options=args.queue,
            )
            pair = Round(
                bare,
                profiled,
                float(summary.pop("bare_cpu_s")),  # type: ignore[arg-type]
                float(summary.pop("profiled_cpu_s")),  # type: ignore[arg-type]
                finish_s,
            )
            rounds[name].append(pair)
            summaries[name] = summary
            say(
                f"round {round_no + 1}: {name:<12} bare {bare:.2f} s, profiled "
                f"{profiled:.2f} s, x{pair.ratio:.2f} (CPU {pair.bare_cpu_s:.2f} -> "
                f"{pair.profiled_cpu_s:.2f} s, x{pair.cpu_ratio:.2f})"
            )
    report = _report(args, names, options, rounds, summaries)
    say(_table(report))
    if args.json:
        text = orjson.dumps(report, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
        if to_stdout:
            sys.stdout.write(text.decode() + "\n")
        else:
            Path(args.json).write_bytes(text + b"\n")
    return 0 if report["passed"] else 1


def _report(
    args: argparse.Namespace,
    names: list[str],
    options: dict[str, list[str]],
    rounds: dict[str, list[Round]],
    summaries: dict[str, dict[str, object]],
) -> dict[str, Any]:
    """Every figure of the run, as the ``--json`` document."""
    profilers: dict[str, Any] = {}
    for name in names:
        ratio = statistics.median(r.ratio for r in rounds[name])
        goal = GOALS.get(name)
        profilers[name] = {
            "overhead": ratio,
            "cpu_overhead": statistics.median(r.cpu_ratio for r in rounds[name]),
            "goal": goal,
            "passed": goal is None or ratio <= goal,
            "finish_s": statistics.median(r.finish_s for r in rounds[name]),
            "options": options[name],
            "rounds": [r.to_dict() for r in rounds[name]],
            "summary": summaries[name],
        }
    trace: dict[str, Any] | None = None
    if "trace_mb" in summaries.get("viztracer", {}):
        size = float(summaries["viztracer"]["trace_mb"])  # type: ignore[arg-type]
        trace = {
            "mb": size,
            "goal_mb": VIZTRACER_SIZE_GOAL_MB,
            "passed": size < VIZTRACER_SIZE_GOAL_MB,
        }
    return {
        "schema_version": JSON_SCHEMA_VERSION,
        "tasks": args.tasks,
        "workers": args.workers,
        "rounds": args.rounds,
        "queue": args.queue,
        "profilers": profilers,
        "viztracer_trace": trace,
        "passed": all(p["passed"] for p in profilers.values())
        and (trace is None or trace["passed"]),
    }


def _table(report: dict[str, Any]) -> str:
    lines = [
        f"\n{'profiler':<13}{'overhead':>9}  {'goal':<8}{'verdict':<8}{'CPU':>6}  finish  "
        "per-round ratios  options"
    ]
    for name, entry in report["profilers"].items():
        goal = entry["goal"]
        per_round = " ".join(f"{r['ratio']:.2f}" for r in entry["rounds"])
        lines.append(
            f"{name:<13}{entry['overhead']:>8.2f}x  <= {goal if goal is not None else '-':<4}"
            f"{'PASS' if entry['passed'] else 'FAIL':<8}{entry['cpu_overhead']:>5.2f}x"
            f"{entry['finish_s']:>6.1f}s  {per_round:<16}  {entry['options'] or 'defaults'}"
        )
    trace = report["viztracer_trace"]
    if trace is not None:
        lines.append(
            f"viztracer trace: {trace['mb']:.1f} MB for {report['tasks']} tasks "
            f"(goal < {trace['goal_mb']:.0f} MB) {'PASS' if trace['passed'] else 'FAIL'}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
