"""Failed attempts: exponential backoff, dead-lettering, and handlers that misbehave."""

from __future__ import annotations

import asyncio
import math
import sqlite3
from pathlib import Path

import pytest

from taskqueue import EngineStats, QueueConfig, Task, TaskQueue, TaskState, WorkerEngine
from tests.helpers.clock import FakeClock
from tests.helpers.db import task_row, task_rows


def test_retry_delays_double_per_attempt_up_to_the_cap(db_path: Path, clock: FakeClock) -> None:
    config = QueueConfig(retry_backoff_s=0.25, retry_backoff_max_s=1.5)

    async def scenario() -> list[float]:
        delays: list[float] = []
        async with TaskQueue(db_path, config, clock=clock) as queue:
            task_id = await queue.enqueue("noop", max_attempts=6)
            for attempt in range(1, 6):
                (task,) = await queue.claim("w1")
                assert task.attempts == attempt
                clock.advance(0.125)  # the attempt takes a while
                failed_at = clock.now
                assert await queue.fail(task, f"boom {attempt}") is TaskState.PENDING
                row = task_row(db_path, task_id)
                delays.append(row.run_at - failed_at)
                # Not claimable a moment before it is due; claimable when due.
                clock.now = row.run_at - 0.001
                assert await queue.claim("w1") == []
                clock.now = row.run_at
            (last,) = await queue.claim("w1")
            assert await queue.fail(last, "boom 6") is TaskState.DEAD
        return delays

    assert asyncio.run(scenario()) == [0.25, 0.5, 1.0, 1.5, 1.5]
    row = task_row(db_path, 1)
    assert (row.state, row.attempts, row.error) == ("dead", 6, "boom 6")


def _drain(db_path: Path, config: QueueConfig, *tasks: tuple[str, object, int]) -> EngineStats:
    """Enqueue (type, payload, max_attempts) tasks and run one builtin engine until empty."""

    async def scenario() -> EngineStats:
        async with TaskQueue(db_path, config) as queue:
            for type_, payload, max_attempts in tasks:
                await queue.enqueue(type_, payload, max_attempts=max_attempts)
            return await WorkerEngine("w1", queue).run_until_empty()

    return asyncio.run(scenario())


FAST_RETRIES = QueueConfig(retry_backoff_s=0.005, retry_backoff_max_s=0.02)


def test_a_task_that_fails_then_recovers_is_done_on_a_later_attempt(db_path: Path) -> None:
    stats = _drain(db_path, FAST_RETRIES, ("fail", {"times": 2}, 3))
    row = task_row(db_path, 1)
    assert (row.state, row.attempts, row.result) == ("done", 3, '"recovered"')
    assert row.error == "RuntimeError: planned failure on attempt 2 of task 1"
    assert (stats.failed, stats.retried, stats.dead, stats.completed) == (2, 2, 0, 1)


def test_a_task_that_always_fails_is_dead_lettered_after_max_attempts(db_path: Path) -> None:
    stats = _drain(db_path, FAST_RETRIES, ("fail", None, 4), ("noop", None, 3))
    failing, fine = task_rows(db_path)
    assert (failing.state, failing.attempts) == ("dead", 4)
    assert failing.error == "RuntimeError: planned failure on attempt 4 of task 1"
    assert failing.finished_at is not None
    assert (fine.state, fine.attempts) == ("done", 1)
    assert (stats.failed, stats.retried, stats.dead, stats.completed) == (4, 3, 1, 1)
    assert len(stats.errors) == 4


def test_an_unknown_task_type_is_dead_lettered_at_once(db_path: Path) -> None:
    stats = _drain(db_path, FAST_RETRIES, ("mystery", None, 3), ("noop", None, 3))
    unknown, fine = task_rows(db_path)
    assert (unknown.state, unknown.attempts) == ("dead", 1)
    assert unknown.error is not None
    assert "'mystery'" in unknown.error
    assert "registered: alloc, cpu, fail, noop, sleep" in unknown.error
    assert fine.state == "done"
    assert (stats.dead, stats.completed) == (1, 1)


def test_a_raising_handler_fails_its_task_and_the_worker_keeps_going(db_path: Path) -> None:
    def picky(task: Task) -> int:
        if task.payload % 3 == 0:
            raise ValueError(f"cannot take {task.payload}")
        return int(task.payload) * 10

    async def scenario() -> EngineStats:
        async with TaskQueue(db_path) as queue:
            for i in range(1, 10):
                await queue.enqueue("picky", i, max_attempts=1)
            return await WorkerEngine("w1", queue, {"picky": picky}).run_until_empty()

    stats = asyncio.run(scenario())
    rows = task_rows(db_path)
    assert [r.state for r in rows] == ["done", "done", "dead"] * 3
    assert [r.error for r in rows if r.state == "dead"] == [
        f"ValueError: cannot take {i}" for i in (3, 6, 9)
    ]
    assert [r.result for r in rows if r.state == "done"] == ["10", "20", "40", "50", "70", "80"]
    assert (stats.completed, stats.failed, stats.dead) == (6, 3, 3)


@pytest.mark.parametrize(
    ("result", "named"),
    [
        pytest.param(object(), "object", id="object"),
        pytest.param({1, 2}, "set", id="set"),
        pytest.param({"score": math.nan}, "NaN", id="nan"),
    ],
)
def test_a_result_that_is_not_json_fails_the_task(
    db_path: Path, result: object, named: str
) -> None:
    async def scenario() -> EngineStats:
        async with TaskQueue(db_path) as queue:
            await queue.enqueue("odd", max_attempts=3)
            await queue.enqueue("noop")
            return await WorkerEngine(
                "w1", queue, {"odd": lambda task: result, "noop": lambda task: None}
            ).run_until_empty()

    stats = asyncio.run(scenario())
    odd, fine = task_rows(db_path)
    # Running it again would give the same result: dead at once, reason recorded.
    assert (odd.state, odd.attempts) == ("dead", 1)
    assert odd.error is not None
    assert "result of odd task 1" in odd.error
    assert named in odd.error
    assert odd.result is None
    assert fine.state == "done"
    assert (stats.dead, stats.completed) == (1, 1)


@pytest.mark.parametrize(
    "stored",
    [
        pytest.param("{not json", id="garbage"),
        pytest.param("1,2", id="two-values"),
        pytest.param(b"\xff\xfe", id="blob"),
    ],
)
def test_a_payload_changed_outside_the_queue_dead_letters_only_its_task(
    db_path: Path, stored: str | bytes
) -> None:
    # GIVEN three tasks, the middle one's payload overwritten in the file by something else
    async def fill() -> None:
        async with TaskQueue(db_path) as queue:
            await queue.enqueue_many([("noop", {"n": i}) for i in range(3)])

    asyncio.run(fill())
    with sqlite3.connect(db_path) as db:
        db.execute("UPDATE tasks SET payload = ? WHERE id = 2", (stored,))

    # WHEN an engine drains the queue
    async def drain() -> EngineStats:
        async with TaskQueue(db_path) as queue:
            return await WorkerEngine("w1", queue).run_until_empty()

    stats = asyncio.run(drain())
    # THEN that task is dead with the reason, and the others ran
    first, bad, last = task_rows(db_path)
    assert (first.state, last.state) == ("done", "done")
    assert (bad.state, bad.attempts) == ("dead", 1)
    assert bad.error is not None
    assert "stored payload is not JSON" in bad.error
    assert stats.completed == 2


@pytest.mark.parametrize("stored", ["{not json", "1,2"], ids=["garbage", "two-values"])
def test_a_payload_changed_outside_a_postgres_queue_dead_letters_only_its_task(
    pg_dsn: str, stored: str
) -> None:
    # GIVEN the same three tasks on PostgreSQL, the middle one's payload overwritten there
    import asyncpg

    async def scenario() -> tuple[list[tuple[str, int, str | None]], EngineStats]:
        async with TaskQueue(pg_dsn) as queue:
            await queue.enqueue_many([("noop", {"n": i}) for i in range(3)])
        conn = await asyncpg.connect(pg_dsn)
        try:
            await conn.execute("UPDATE tasks SET payload = $1 WHERE id = 2", stored)
            # WHEN an engine drains the queue
            async with TaskQueue(pg_dsn) as queue:
                stats = await WorkerEngine("w1", queue).run_until_empty()
            rows = await conn.fetch("SELECT state, attempts, error FROM tasks ORDER BY id")
        finally:
            await conn.close()
        return [(r["state"], r["attempts"], r["error"]) for r in rows], stats

    rows, stats = asyncio.run(scenario())
    # THEN that task is dead with the reason, and the others ran
    (first, _, _), (state, attempts, error), (last, _, _) = rows
    assert (first, last) == ("done", "done")
    assert (state, attempts) == ("dead", 1)
    assert error is not None
    assert "stored payload is not JSON" in error
    assert stats.completed == 2
