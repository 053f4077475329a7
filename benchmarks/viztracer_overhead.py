"""The viztracer wrapper's trace size and overhead on a realistic drain, side by side.

    python -m benchmarks.viztracer_overhead [--tasks N] [--workers W] [--rounds R]
        [--enqueue-batch B] [--option key=value ...]

Each round runs the same work bare and then under :class:`VizTracerProfiler` (the order
alternates between rounds), in one process: open a queue (``capture_sql=true,
record_timings=true`` both times, so only the profiler differs), enqueue ``--tasks`` noop
tasks (in calls of ``--enqueue-batch``), drain them with ``--workers`` async engines. The
wall time of that work is compared; ``finish()`` (writing the trace) is reported apart. The
figures are medians over rounds; the size and event counts are from the last traced round.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from profilers.chrome_trace import check_trace, read_trace
from profilers.viztracer_wrapper import VizTracerOptions, VizTracerProfiler
from taskqueue import QueueConfig, TaskQueue, run_async_workers

SIZE_GOAL_MB = 20.0
OVERHEAD_GOAL = 1.5


async def drain(folder: Path, tasks: int, workers: int, enqueue_batch: int) -> float:
    """Seconds to enqueue ``tasks`` noop tasks and drain them with ``workers`` engines."""
    started = time.perf_counter()
    config = QueueConfig(capture_sql=True, record_timings=True)
    async with TaskQueue(folder / "queue.db", config) as queue:
        for first in range(0, tasks, enqueue_batch):
            count = min(enqueue_batch, tasks - first)
            if count == 1:
                await queue.enqueue("noop")
            else:
                await queue.enqueue_many([("noop", None)] * count)
        await run_async_workers(queue, workers)
    return time.perf_counter() - started


async def traced(profiler: VizTracerProfiler, *args: int) -> float:
    with profiler.session():
        return await drain(profiler.run_dir, *args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--enqueue-batch", type=int, default=10_000)
    parser.add_argument("--option", action="append", default=[], help="profiler option k=v")
    args = parser.parse_args(argv)
    options = VizTracerOptions.parse(args.option)
    work = (args.tasks, args.workers, args.enqueue_batch)
    bare: list[float] = []
    traced_s: list[float] = []
    finish_s: list[float] = []
    report: dict[str, object] = {}
    for round_ in range(args.rounds):
        order = ("bare", "traced") if round_ % 2 == 0 else ("traced", "bare")
        for kind in order:
            with tempfile.TemporaryDirectory() as folder:
                if kind == "bare":
                    bare.append(asyncio.run(drain(Path(folder), *work)))
                    continue
                profiler = VizTracerProfiler(options, Path(folder))
                traced_s.append(asyncio.run(traced(profiler, *work)))
                started = time.perf_counter()
                artifacts = profiler.finish()
                finish_s.append(time.perf_counter() - started)
                document = read_trace(Path(folder) / artifacts[0].path)
                events = document["traceEvents"]
                report = {
                    "bytes": profiler.summary["trace"]["bytes"],
                    "events": len(events),
                    "by_category": Counter(str(e.get("cat", e["ph"])) for e in events),
                    "problems": len(check_trace(document)),
                    "summary": profiler.summary,
                }
    # Load on a shared machine drifts: a ratio per round (its two runs back to back) is
    # steadier than the ratio of the two medians; both are printed.
    per_round = [t / b for t, b in zip(traced_s, bare, strict=True)]
    ratio = statistics.median(per_round)
    size_mb = int(report["bytes"]) / 1e6  # type: ignore[call-overload]
    summary: dict[str, object] = report["summary"]  # type: ignore[assignment]
    print(f"{args.tasks} tasks, {args.workers} workers, enqueue batch {args.enqueue_batch}")
    print(f"options: {options.to_dict()}")
    print(
        f"bare {statistics.median(bare):.2f} s, traced {statistics.median(traced_s):.2f} s "
        f"(medians of {args.rounds}; ratio of medians x"
        f"{statistics.median(traced_s) / statistics.median(bare):.2f})"
    )
    rounds = ", ".join(f"{b:.2f}/{t:.2f}" for b, t in zip(bare, traced_s, strict=True))
    print(f"rounds (bare/traced s): {rounds}")
    print(f"overhead: x{ratio:.2f} (median of per-round ratios; goal <= {OVERHEAD_GOAL})")
    print(f"finish() (write the trace): {statistics.median(finish_s):.2f} s")
    print(f"trace: {size_mb:.1f} MB (goal < {SIZE_GOAL_MB}), {report['events']} events")
    print(f"events by category: {dict(report['by_category'])}")  # type: ignore[call-overload]
    print(f"problems found by check_trace: {report['problems']}")
    print(f"buffer: {summary['buffer']}")
    print(f"python: {summary['python']}")
    ok = size_mb < SIZE_GOAL_MB and ratio <= OVERHEAD_GOAL and report["problems"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
