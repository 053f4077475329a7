"""Batches small and large: flat and nested JSON documents write the same rows."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest

from taskqueue import NewTask, QueueConfig, TaskQueue, sql
from tests.helpers.clock import FakeClock
from tests.helpers.db import scalar, task_rows

PAYLOADS = [None, 0, -1.5, "a, [b]", {"n": [1, {"x": None}]}, [], True]


@pytest.mark.parametrize(
    "size", [1, 2, sql.FLAT_ROWS_MOST, sql.FLAT_ROWS_MOST + 1, 3 * sql.FLAT_ROWS_MOST]
)
def test_a_batch_of_any_size_is_written_and_acked_exactly(
    db_path: Path, clock: FakeClock, size: int
) -> None:
    # GIVEN a batch of tasks with every kind of payload, priority, delay and attempts
    batch = [
        NewTask(
            "noop", PAYLOADS[i % len(PAYLOADS)], priority=i % 3, delay=i % 2, max_attempts=1 + i % 4
        )
        for i in range(size)
    ]

    async def scenario() -> tuple[list[int], int]:
        async with TaskQueue(db_path, QueueConfig(), clock=clock) as queue:
            # WHEN it is enqueued, then everything due is claimed and completed in one call
            ids = await queue.enqueue_many(batch)
            clock.advance(5)
            claimed = await queue.claim("w0", size)
            done = await queue.complete_many([(t, {"id": t.id, "text": "x,]"}) for t in claimed])
            return ids, done

    start = clock()
    ids, done = asyncio.run(scenario())
    # THEN every row holds what was given, due after its delay, and every ack landed
    rows = task_rows(db_path)
    assert [r.id for r in rows] == ids
    assert done == size
    for row, task in zip(rows, batch, strict=True):
        assert row.state == "done"
        assert row.priority == task.priority
        assert row.max_attempts == task.max_attempts
        assert row.run_at == pytest.approx(start + task.delay)
        assert row.result == f'{{"id":{row.id},"text":"x,]"}}'
    stored = [scalar(db_path, "SELECT payload FROM tasks WHERE id = ?", i) for i in ids]
    assert [orjson.loads(p) for p in stored] == [t.payload for t in batch]
