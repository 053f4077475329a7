"""The WAL's peak size under back-to-back single enqueues with no reader (issue 16, item 7).

    python -m benchmarks.wal_bound [--tasks N] [--queue KEY=VALUE,...] [--every K]

One producer awaits ``enqueue`` one task at a time, as fast as it can, with nothing reading
the database; the WAL's size is read (one ``stat``) every ``--every`` enqueues. Prints the
peak, the size at the end, the enqueue rate and the queue's checkpoint counts. The goal is a
peak under 64 MiB through 1,000,000 enqueues (the default); before the queue restarted the
WAL from its writing connection, 100,000 enqueues left an 860 MiB WAL.

Exit status: 0 when the peak is under the goal, 1 when not, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from taskqueue import QueueConfig, TaskQueue, TaskQueueError

GOAL_PEAK_MIB = 64.0
MIB = 2**20


@dataclass(frozen=True)
class WalPeak:
    """What one run measured."""

    tasks: int
    peak_wal_mib: float
    end_wal_mib: float
    tasks_per_s: float
    checkpoints: int
    wal_restarts: int
    wal_restarts_blocked: int


def _wal_bytes(wal: Path) -> int:
    try:
        return wal.stat().st_size
    except FileNotFoundError:
        return 0


async def measure(path: Path, config: QueueConfig, tasks: int, every: int) -> WalPeak:
    """Enqueue ``tasks`` one at a time into a new queue at ``path``, reading the WAL's size
    every ``every`` enqueues."""
    wal = path.with_name(path.name + "-wal")
    peak = 0
    async with TaskQueue(path, config) as queue:
        started = time.perf_counter()
        for i in range(tasks):
            await queue.enqueue("noop", None)
            if i % every == 0:
                peak = max(peak, _wal_bytes(wal))
        elapsed = time.perf_counter() - started
        end = _wal_bytes(wal)
        peak = max(peak, end)
        stats = queue.stats
        return WalPeak(
            tasks=tasks,
            peak_wal_mib=peak / MIB,
            end_wal_mib=end / MIB,
            tasks_per_s=tasks / elapsed,
            checkpoints=stats.checkpoints,
            # Absent from queues older than the WAL restart: measured as 0 there.
            wal_restarts=getattr(stats, "wal_restarts", 0),
            wal_restarts_blocked=getattr(stats, "wal_restarts_blocked", 0),
        )


def main(argv: Sequence[str] | None = None) -> int:
    """Run once and print the figures; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.wal_bound", description=(__doc__ or "").split("\n\n")[0]
    )
    parser.add_argument("--tasks", type=int, default=1_000_000, help="enqueues (1,000,000)")
    parser.add_argument("--queue", default="", metavar="KEY=VALUE,...", help="queue strategy")
    parser.add_argument("--every", type=int, default=10, help="enqueues between size reads")
    parser.add_argument("--dir", type=Path, default=None, help="scratch folder (default: temp)")
    args = parser.parse_args(argv)
    if args.tasks < 1 or args.every < 1:
        parser.error("--tasks and --every must be >= 1")
    try:
        config = QueueConfig.parse(args.queue)
    except TaskQueueError as error:
        parser.error(str(error))
    scratch = Path(tempfile.mkdtemp(prefix="wal-bound-", dir=args.dir))
    try:
        result = asyncio.run(measure(scratch / "queue.db", config, args.tasks, args.every))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(
        f"{result.tasks:,} back-to-back single enqueues, no reader ({args.queue or 'defaults'}): "
        f"peak WAL {result.peak_wal_mib:.1f} MiB (goal < {GOAL_PEAK_MIB:g} MiB), at the end "
        f"{result.end_wal_mib:.1f} MiB; {result.tasks_per_s:,.0f} enqueues/s; "
        f"{result.checkpoints} passive checkpoints, {result.wal_restarts} WAL restarts "
        f"({result.wal_restarts_blocked} blocked)"
    )
    return 0 if result.peak_wal_mib < GOAL_PEAK_MIB else 1


if __name__ == "__main__":
    sys.exit(main())
