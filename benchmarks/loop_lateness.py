"""How late timers fire on the queue's event loop under load (issue 16, item 7).

    python -m benchmarks.loop_lateness [--tasks N] [--workers W] [--period-ms MS]

Three loads, each with a ticker that sleeps ``--period-ms`` again and again on the same
event loop and records how late each wake-up is: ``drain`` (W engines, default strategy),
``drain-one-task-calls`` (W engines, claim_batch=1, ack_batch=1) and ``enqueue`` (one
producer awaiting single enqueues back to back). Prints the ticks and the median and worst
lateness of each, against the 50 ms goal. Before the queue gave the loop away, the ticker
never fired during any of them. The machine's own share of lateness shows in the ``idle``
row: the same ticker with nothing else on the loop.

Exit status: 0 when every worst lateness is under the goal, 1 when not.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from taskqueue import QueueConfig, TaskQueue, run_async_workers

GOAL_MS = 50.0


async def _ticked(load: Callable[[], Awaitable[None]], period_s: float) -> list[float]:
    """Run ``load`` with a ticker beside it; the ticker's lateness in seconds."""
    lateness: list[float] = []

    async def tick() -> None:
        while True:
            asked = time.perf_counter()
            await asyncio.sleep(period_s)
            lateness.append(time.perf_counter() - asked - period_s)

    ticker = asyncio.ensure_future(tick())
    await asyncio.sleep(0)  # the ticker asks for its first sleep before the load starts
    try:
        await load()
    finally:
        ticker.cancel()
    return lateness


async def _drain(
    path: Path, config: QueueConfig, tasks: int, workers: int
) -> Callable[[], Awaitable[None]]:
    queue = TaskQueue(path, config)
    await queue.open()
    for first in range(0, tasks, 1000):
        await queue.enqueue_many([("noop", i) for i in range(first, min(tasks, first + 1000))])

    async def load() -> None:
        try:
            await run_async_workers(queue, workers)
        finally:
            await queue.close()

    return load


async def measure(
    scratch: Path, tasks: int, workers: int, period_s: float
) -> dict[str, list[float]]:
    """Every load's lateness samples, in seconds."""
    found: dict[str, list[float]] = {}
    found["idle"] = await _ticked(lambda: asyncio.sleep(2.0), period_s)
    found["drain"] = await _ticked(
        await _drain(scratch / "drain.db", QueueConfig(), tasks, workers), period_s
    )
    one_task = QueueConfig(claim_batch=1, ack_batch=1)
    found["drain-one-task-calls"] = await _ticked(
        await _drain(scratch / "one.db", one_task, tasks // 10, workers), period_s
    )
    queue = TaskQueue(scratch / "enqueue.db")
    await queue.open()

    async def enqueue() -> None:
        try:
            for i in range(tasks // 10):
                await queue.enqueue("noop", i)
        finally:
            await queue.close()

    found["enqueue"] = await _ticked(enqueue, period_s)
    return found


def main(argv: Sequence[str] | None = None) -> int:
    """Measure and print; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.loop_lateness", description=(__doc__ or "").split("\n\n")[0]
    )
    parser.add_argument("--tasks", type=int, default=200_000, help="tasks of the drain")
    parser.add_argument("--workers", type=int, default=5, help="engines of the drains")
    parser.add_argument("--period-ms", type=float, default=10.0, help="the ticker's sleep")
    args = parser.parse_args(argv)
    if args.tasks < 10 or args.workers < 1 or not args.period_ms > 0:
        parser.error("--tasks >= 10, --workers >= 1, --period-ms > 0")
    with tempfile.TemporaryDirectory(prefix="loop-lateness-") as scratch:
        found = asyncio.run(measure(Path(scratch), args.tasks, args.workers, args.period_ms / 1000))
    worst_all = 0.0
    for load, lateness in found.items():
        if not lateness:
            print(f"{load:22s} the ticker never fired")
            worst_all = float("inf")
            continue
        worst = max(lateness) * 1000
        if load != "idle":
            worst_all = max(worst_all, worst)
        print(
            f"{load:22s} {len(lateness):5d} ticks: lateness median "
            f"{statistics.median(lateness) * 1000:.2f} ms, worst {worst:.1f} ms"
        )
    print(f"worst under load {worst_all:.1f} ms (goal < {GOAL_MS:g} ms)")
    return 0 if worst_all < GOAL_MS else 1


if __name__ == "__main__":
    sys.exit(main())
