"""The WAL stays bounded under back-to-back writes with no reader.

A PASSIVE checkpoint from another connection never catches up with a writer that keeps
appending, so the WAL never restarts from its beginning: 100,000 single enqueues left an
860 MiB WAL. The writer's own connection restarts it once it has grown past a limit (see
``TaskQueue._checkpoint_loop``); the 64 MiB goal through 1,000,000 enqueues is measured by
``python -m benchmarks.wal_bound``, this test checks the mechanism with a small limit.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from taskqueue import Dispatch, QueueConfig, TaskQueue
from taskqueue import queue as queue_module

SMALL_LIMIT = 256 * 1024


def _wal_bytes(db_path: Path) -> int:
    wal = db_path.with_name(db_path.name + "-wal")
    return wal.stat().st_size if wal.exists() else 0


@pytest.mark.parametrize(
    "config",
    [
        pytest.param(QueueConfig(), id="auto"),
        pytest.param(QueueConfig(dispatch=Dispatch.THREAD), id="thread"),
    ],
)
def test_back_to_back_single_enqueues_keep_the_wal_bounded(
    db_path: Path, config: QueueConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a queue whose WAL is restarted past a small limit
    monkeypatch.setattr(queue_module, "WAL_RESTART_BYTES", SMALL_LIMIT, raising=False)
    writes = 10_000  # about 88 MB of WAL if it never restarted

    async def scenario() -> tuple[int, int]:
        async with TaskQueue(db_path, config) as queue:
            peak = 0
            # WHEN a producer enqueues one task at a time, back to back, with no reader
            for i in range(writes):
                await queue.enqueue("noop", None)
                if i % 50 == 0:
                    peak = max(peak, _wal_bytes(db_path))
            return peak, queue.stats.wal_restarts

    peak, restarts = asyncio.run(scenario())
    # THEN the WAL was restarted by the writer, again and again, and stayed far below the
    # 88 MB it reaches unbounded (writes go on during each look's wait and its PASSIVE
    # checkpoint, which under disk contention takes tens of ms: peaks of 5-26 MB were seen)
    assert peak < 32 * 2**20, f"peak WAL {peak / 2**20:.1f} MiB"
    assert restarts >= 3
    # AND every task is in the database
    with sqlite3.connect(db_path) as db:
        assert db.execute("SELECT count(*) FROM tasks").fetchone() == (writes,)
