"""Every profiler's overhead on the same queue work, measured side by side in one run.

    python -m benchmarks.profiler_overhead [--tasks N] [--workers W] [--rounds R]
        [--profilers pyinstrument,memray,viztracer,py-spy] [--option NAME:key=value ...]

Each round runs the work bare and under each profiler, the order alternating between rounds
so drift on a shared machine spreads over both sides. The work: open a queue
(``capture_sql`` and ``record_timings`` on both sides, so only the profiler differs),
enqueue ``--tasks`` noop tasks in one batch, drain them with ``--workers`` async engines.
In-process profilers wrap it in their session inside the event loop, as ``queueprof run``
does; py-spy runs it in a child process, compared with the same child run bare, so both
sides pay the same start-up. Writing reports (``finish``) is timed apart. The overhead is
the median of per-round ratios (each ratio's two runs are back to back).
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
from pathlib import Path

from profilers import REGISTRY, Profiler, get_profiler
from taskqueue import QueueConfig, TaskQueue, run_async_workers

GOALS = {"pyinstrument": 1.3, "memray": 1.3, "viztracer": 1.5, "py-spy": 1.05}
VIZTRACER_SIZE_GOAL_MB = 20.0

CHILD = """
import asyncio, sys, time
from pathlib import Path
sys.path.insert(0, {root!r})
from benchmarks.profiler_overhead import drain
print("drain-seconds", asyncio.run(drain(Path({folder!r}), {tasks}, {workers})))
"""


async def drain(folder: Path, tasks: int, workers: int) -> float:
    """Seconds to enqueue ``tasks`` noop tasks and drain them with ``workers`` engines."""
    started = time.perf_counter()
    config = QueueConfig(capture_sql=True, record_timings=True)
    async with TaskQueue(folder / "queue.db", config) as queue:
        await queue.enqueue_many([("noop", None)] * tasks)
        await run_async_workers(queue, workers)
    return time.perf_counter() - started


async def _in_session(profiler: Profiler, tasks: int, workers: int) -> float:
    with profiler.session():
        return await drain(profiler.run_dir, tasks, workers)


def _child(profiler: Profiler | None, folder: Path, tasks: int, workers: int) -> float:
    """Seconds the drain took in a child process, run bare or under ``profiler``."""
    root = str(Path(__file__).resolve().parents[1])
    script = CHILD.format(root=root, folder=str(folder), tasks=tasks, workers=workers)
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
    return float(found[-1].split()[1])


def one_round(
    name: str, options: list[str], tasks: int, workers: int, swap: bool
) -> tuple[float, float, float, dict[str, object]]:
    """(bare s, profiled s, finish s, profiler summary) for one back-to-back pair."""
    cls = get_profiler(name)
    timings: dict[str, float] = {}
    finish_s = 0.0
    summary: dict[str, object] = {}
    for kind in ("profiled", "bare") if swap else ("bare", "profiled"):
        with tempfile.TemporaryDirectory(prefix="queueprof-overhead-") as scratch:
            folder = Path(scratch)
            profiler = cls(cls.options_type.parse(options), folder)
            if cls.launcher:
                wrapper = None if kind == "bare" else profiler
                timings[kind] = _child(wrapper, folder, tasks, workers)
                if kind == "profiled":
                    profiler.finish()
            elif kind == "bare":
                timings[kind] = asyncio.run(drain(folder, tasks, workers))
            else:
                timings[kind] = asyncio.run(_in_session(profiler, tasks, workers))
                started = time.perf_counter()
                profiler.finish()
                finish_s = time.perf_counter() - started
            if kind == "profiled":
                summary = dict(profiler.manifest().get("summary", {}))
                trace = folder / "viztracer.trace.json"
                if trace.exists():
                    summary["trace_mb"] = trace.stat().st_size / 1e6
    return timings["bare"], timings["profiled"], finish_s, summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profilers", default=",".join(GOALS))
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="NAME:KEY=VALUE",
        help="a profiler option, e.g. pyinstrument:interval=0.01",
    )
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.profilers.split(",") if n.strip()]
    for name in names:
        if name not in REGISTRY or name == "none":
            parser.error(
                f"--profilers: {name!r} is not a profiler; choose from "
                f"{', '.join(n for n in REGISTRY if n != 'none')}"
            )
    options: dict[str, list[str]] = defaultdict(list)
    for item in args.option:
        name, sep, pair = item.partition(":")
        if not sep or name not in names:
            parser.error(f"--option {item!r}: expected NAME:key=value with NAME in {names}")
        options[name].append(pair)
    for name in names:
        get_profiler(name).check_available()
    ratios: dict[str, list[float]] = defaultdict(list)
    pairs: dict[str, list[tuple[float, float]]] = defaultdict(list)
    finishes: dict[str, list[float]] = defaultdict(list)
    summaries: dict[str, dict[str, object]] = {}
    print(
        f"{args.tasks} noop tasks, {args.workers} async workers, {args.rounds} rounds", flush=True
    )
    for round_no in range(args.rounds):
        for name in names:
            bare, profiled, finish_s, summary = one_round(
                name, options[name], args.tasks, args.workers, swap=round_no % 2 == 1
            )
            ratios[name].append(profiled / bare)
            pairs[name].append((bare, profiled))
            finishes[name].append(finish_s)
            summaries[name] = summary
            print(
                f"round {round_no + 1}: {name:<12} bare {bare:.2f} s, profiled "
                f"{profiled:.2f} s, x{profiled / bare:.2f}",
                flush=True,
            )
    print(f"\n{'profiler':<13}{'overhead':>9}  {'goal':<8}{'verdict':<8} finish  options")
    ok = True
    for name in names:
        ratio = statistics.median(ratios[name])
        goal = GOALS.get(name)
        passed = goal is None or ratio <= goal
        ok = ok and passed
        print(
            f"{name:<13}{ratio:>8.2f}x  <= {goal:<4}{'PASS' if passed else 'FAIL':<8}"
            f"{statistics.median(finishes[name]):>5.1f}s  {options[name] or 'defaults'}"
        )
    if "viztracer" in summaries and "trace_mb" in summaries["viztracer"]:
        size = float(summaries["viztracer"]["trace_mb"])  # type: ignore[arg-type]
        passed = size < VIZTRACER_SIZE_GOAL_MB
        ok = ok and passed
        print(
            f"viztracer trace: {size:.1f} MB for {args.tasks} tasks "
            f"(goal < {VIZTRACER_SIZE_GOAL_MB:.0f} MB) {'PASS' if passed else 'FAIL'}"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
