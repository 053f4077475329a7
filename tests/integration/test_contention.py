"""Twenty writers on one file: SQLITE_BUSY is absorbed and counted, never raised.

``returning`` and ``immediate`` under the same load are covered by test_exactly_once.py;
here the naive ``deferred`` claim, which exists to provoke SQLITE_BUSY, must still finish
every task, with its busy errors and conflicts counted and no worker lost.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

from taskqueue import (
    ClaimStyle,
    ConnectionMode,
    EngineOptions,
    PoolResult,
    QueueConfig,
    TaskQueue,
    run_async_workers,
)
from tests.helpers.db import task_rows
from tests.helpers.handlers import SPEC

TASKS = 600


def test_deferred_claims_at_twenty_workers_count_busy_and_finish_everything(
    db_path: Path, executed: list[tuple[int, int, str]]
) -> None:
    config = QueueConfig(connection=ConnectionMode.PER_WORKER, claim_style=ClaimStyle.DEFERRED)

    async def scenario() -> tuple[list[int], PoolResult]:
        async with TaskQueue(db_path, config) as queue:
            ids = await queue.enqueue_many([("record", {}) for _ in range(TASKS)])
            # Engines of concurrency 1 on one event loop take turns, one claim at a time, so
            # their deferred claims rarely overlap; with two tasks in flight each, an engine
            # claims without waiting for a turn and the read-then-write claims collide.
            options = EngineOptions(handlers=SPEC, concurrency=2)
            return ids, await run_async_workers(queue, 20, options)

    ids, result = asyncio.run(scenario())
    # No worker died: all twenty returned their stats, and they account for every task.
    assert len(result.engines) == 20
    total = result.total
    assert (total.completed, total.stale, total.failed) == (TASKS, 0, 0)
    # Contention happened and was absorbed.
    stats = result.stats
    assert stats.busy_retries["claim"] + stats.claim_conflicts > 0
    assert stats.stale_acks == 0
    # Every task done once, on its first attempt.
    rows = task_rows(db_path)
    assert [r.id for r in rows] == ids
    assert Counter((r.state, r.attempts) for r in rows) == {("done", 1): TASKS}
    runs = Counter(task_id for task_id, _, _ in executed)
    assert sorted(runs) == ids
    assert set(runs.values()) == {1}
