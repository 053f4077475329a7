"""Per-operation timings and SQL capture: recorded when asked for, absent by default."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from taskqueue import (
    OPERATIONS,
    ClaimStyle,
    Dispatch,
    QueueConfig,
    QueueStats,
    TaskQueue,
    WorkerEngine,
    sql,
)
from tests.helpers.clock import FakeClock


async def _one_of_each(queue: TaskQueue, clock: FakeClock) -> None:
    """enqueue x2 (3 tasks), claim, complete, fail, status, counts, reclaim."""
    first = await queue.enqueue("noop", 1)
    await queue.enqueue_many([("noop", 2), ("noop", 3)])
    done, failed, expiring = await queue.claim("w1", 3, lease=1.0)
    await queue.complete(done, "ok")
    await queue.fail(failed, "boom")
    await queue.status(first)
    await queue.counts()
    clock.advance(2.0)
    await queue.reclaim_expired()
    assert expiring.id != done.id


def test_timings_are_recorded_per_operation(db_path: Path, clock: FakeClock) -> None:
    async def scenario() -> QueueStats:
        async with TaskQueue(db_path, QueueConfig(record_timings=True), clock=clock) as queue:
            assert queue.timed
            await _one_of_each(queue, clock)
            return queue.stats

    stats = asyncio.run(scenario())
    calls = {"enqueue": 2, "claim": 1, "complete": 1, "fail": 1, "status": 1, "counts": 1}
    for op, count in {**calls, "reclaim": 1}.items():
        assert len(stats.timings_ns[op]) == count, op
        assert all(sample > 0 for sample in stats.timings_ns[op]), op
    assert set(stats.timings_ns) <= set(OPERATIONS)
    # Items count tasks, not calls.
    assert stats.items["enqueue"] == 3
    assert stats.items["claim"] == 3
    assert stats.items["reclaim"] == 1


def test_engines_time_their_handlers(db_path: Path) -> None:
    async def scenario() -> QueueStats:
        async with TaskQueue(db_path, QueueConfig(record_timings=True)) as queue:
            await queue.enqueue_many([("noop", i) for i in range(5)])
            await WorkerEngine("w1", queue).run_until_empty()
            return queue.stats

    stats = asyncio.run(scenario())
    assert len(stats.timings_ns["handler"]) == 5
    assert stats.items["claim"] == 5


@pytest.mark.parametrize("dispatch", list(Dispatch))
def test_sql_capture_names_the_operation_and_statement(
    db_path: Path, clock: FakeClock, dispatch: Dispatch
) -> None:
    config = QueueConfig(capture_sql=True, dispatch=dispatch)

    async def scenario() -> QueueStats:
        async with TaskQueue(db_path, config, clock=clock) as queue:
            await _one_of_each(queue, clock)
            return queue.stats

    stats = asyncio.run(scenario())
    by_op: dict[str, list[str]] = {}
    # Each statement ran where the dispatch sent its operation: inline on the event loop's
    # thread, or on the connection thread (auto: counts and the lease sweep, unbounded in size)
    on_thread = {
        Dispatch.THREAD: set(OPERATIONS),
        Dispatch.AUTO: {"counts", "reclaim"},
        Dispatch.INLINE: set(),
    }[dispatch]
    for sample in stats.sql:
        by_op.setdefault(sample.op, []).append(sample.sql)
        assert sample.duration_ns >= 0
        assert sample.start_ns > 0
        inline = sample.thread == threading.main_thread().name
        assert inline is (sample.op not in on_thread), sample
    assert by_op == {
        "enqueue": [sql.INSERT, sql.INSERT_MANY],
        "claim": [sql.CLAIM_RETURNING],
        "complete": [sql.COMPLETE],
        "fail": [sql.FAIL],
        "status": [sql.STATUS],
        "counts": [sql.COUNTS],
        "reclaim": [sql.EXPIRED_EXISTS, sql.RECLAIM],
    }
    claim = next(s for s in stats.sql if s.op == "claim")
    assert claim.rows == 3


def test_sql_capture_shows_every_statement_of_a_transaction(
    db_path: Path, clock: FakeClock
) -> None:
    config = QueueConfig(claim_style=ClaimStyle.IMMEDIATE, capture_sql=True)

    async def scenario() -> QueueStats:
        async with TaskQueue(db_path, config, clock=clock) as queue:
            await queue.enqueue("noop")
            await queue.claim("w1")
            return queue.stats

    stats = asyncio.run(scenario())
    claim = [s.sql for s in stats.sql if s.op == "claim"]
    assert claim == ["BEGIN IMMEDIATE", sql.SELECT_READY, sql.CLAIM_IDS, "COMMIT"]


def test_instrumentation_is_off_by_default(db_path: Path, clock: FakeClock) -> None:
    async def scenario() -> QueueStats:
        async with TaskQueue(db_path, clock=clock) as queue:
            assert not queue.timed
            await _one_of_each(queue, clock)
            await WorkerEngine("w2", queue).run_until_empty()
            return queue.stats

    stats = asyncio.run(scenario())
    assert stats.timings_ns == {}
    assert stats.sql == []


def test_reset_forgets_everything(db_path: Path, clock: FakeClock) -> None:
    config = QueueConfig(record_timings=True, capture_sql=True)

    async def scenario() -> QueueStats:
        async with TaskQueue(db_path, config, clock=clock) as queue:
            await _one_of_each(queue, clock)
            queue.stats.reset()
            await queue.counts()
            return queue.stats

    stats = asyncio.run(scenario())
    assert {op: len(samples) for op, samples in stats.timings_ns.items()} == {"counts": 1}
    assert [s.op for s in stats.sql] == ["counts"]
    assert stats.stale_acks == 0
