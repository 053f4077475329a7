"""SQLITE_BUSY is retried inside the queue and counted; it never reaches the caller.

A plain ``sqlite3`` connection holding ``BEGIN IMMEDIATE`` on the queue's file plays the
other writer, so the contention is certain rather than hoped for.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import pytest

from taskqueue import (
    ClaimStyle,
    ConnectionMode,
    NewTask,
    QueueBusyError,
    QueueConfig,
    TaskQueue,
    TaskState,
)
from taskqueue.store import Store
from tests.helpers.clock import FakeClock
from tests.helpers.db import row_count, task_rows


@contextmanager
def write_lock(path: Path) -> Iterator[sqlite3.Connection]:
    """Hold SQLite's write lock on ``path`` until the block ends (or the test commits)."""
    with closing(sqlite3.connect(path, isolation_level=None)) as holder:
        holder.execute("BEGIN IMMEDIATE")
        try:
            yield holder
        finally:
            if holder.in_transaction:
                holder.execute("ROLLBACK")


async def _until(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.002)


async def _blocked_then_released(
    queue: TaskQueue, db_path: Path, op: str, call: Callable[[], Awaitable[Any]]
) -> Any:
    """Run ``call`` while another connection writes; release once the queue retried."""
    with write_lock(db_path):
        pending = asyncio.ensure_future(call())
        await _until(lambda: queue.stats.busy_retries[op] > 0, f"a busy {op}")
        assert not pending.done()
    return await pending


def test_enqueue_waits_out_another_writer(db_path: Path) -> None:
    async def scenario() -> None:
        async with TaskQueue(db_path) as queue:
            task_id = await _blocked_then_released(
                queue, db_path, "enqueue", lambda: queue.enqueue("noop", "waited")
            )
            found = await queue.status(task_id)
            assert found is not None
            assert found.state is TaskState.PENDING

    asyncio.run(scenario())


@pytest.mark.parametrize("style", list(ClaimStyle))
@pytest.mark.parametrize("connection", list(ConnectionMode))
def test_claim_and_complete_wait_out_another_writer(
    db_path: Path, clock: FakeClock, style: ClaimStyle, connection: ConnectionMode
) -> None:
    config = QueueConfig(connection=connection, claim_style=style)

    async def scenario() -> None:
        async with TaskQueue(db_path, config, clock=clock) as queue:
            task_id = await queue.enqueue("noop")
            tasks = await _blocked_then_released(queue, db_path, "claim", lambda: queue.claim("w1"))
            assert [t.id for t in tasks] == [task_id]
            applied = await _blocked_then_released(
                queue, db_path, "complete", lambda: queue.complete(tasks[0], "done")
            )
            assert applied is True
            assert queue.stats.stale_acks == 0

    asyncio.run(scenario())
    assert [(r.state, r.attempts) for r in task_rows(db_path)] == [("done", 1)]


def test_a_lock_held_past_the_deadline_raises_queue_busy(db_path: Path) -> None:
    config = QueueConfig(busy_deadline_s=0.2)

    async def scenario() -> None:
        async with TaskQueue(db_path, config) as queue:
            with write_lock(db_path), pytest.raises(QueueBusyError) as caught:
                await queue.enqueue("noop")
            message = str(caught.value)
            assert "enqueue" in message
            assert "busy_deadline_s" in message
            assert queue.stats.busy_retries["enqueue"] > 0

    asyncio.run(scenario())
    assert row_count(db_path) == 0


@pytest.mark.parametrize("style", [ClaimStyle.RETURNING, ClaimStyle.IMMEDIATE])
def test_a_busy_claim_after_the_acks_does_not_ack_twice(
    db_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch, style: ClaimStyle
) -> None:
    """complete_and_claim retried after SQLITE_BUSY reports every ack it made, once."""
    busy_once = [True]
    original_rows = Store._rows

    def rows_with_one_busy_claim(self: Store, op: str, statement: str, params: Any = ()) -> Any:
        # The first claim statement after the acks fails the way a competing writer makes it.
        if op == "claim" and "SELECT" in statement and busy_once[0]:
            busy_once[0] = False
            raise sqlite3.OperationalError("database is locked")
        return original_rows(self, op, statement, params)

    async def scenario() -> None:
        async with TaskQueue(db_path, QueueConfig(claim_style=style), clock=clock) as queue:
            ids = await queue.enqueue_many([("noop", i) for i in range(4)])
            first = await queue.claim("w1", 2)
            monkeypatch.setattr(Store, "_rows", rows_with_one_busy_claim)
            applied, second = await queue.complete_and_claim([(t, "ok") for t in first], "w1", 2)
            monkeypatch.undo()
            assert not busy_once[0], "the busy claim was not provoked"
            assert queue.stats.busy_retries["claim"] == 1
            assert applied == 2
            assert queue.stats.stale_acks == 0
            assert [t.id for t in first + second] == ids

    asyncio.run(scenario())
    assert [r.state for r in task_rows(db_path)] == ["done", "done", "running", "running"]


def test_an_enqueue_many_retried_after_busy_stores_each_task_once_and_due_now(
    db_path: Path, clock: FakeClock
) -> None:
    async def scenario() -> list[int]:
        async with TaskQueue(db_path, clock=clock) as queue:
            ids: list[int] = await _blocked_then_released(
                queue,
                db_path,
                "enqueue",
                lambda: queue.enqueue_many([("noop", 1), NewTask("noop", 2, delay=5.0)]),
            )
            # Due when asked: the retry did not push them into the future.
            assert [t.id for t in await queue.claim("w1", 2)] == ids[:1]
            return ids

    ids = asyncio.run(scenario())
    rows = task_rows(db_path)
    assert [r.id for r in rows] == ids
    assert [r.run_at for r in rows] == [clock.now, clock.now + 5.0]


def test_sqlite_busy_handler_waits_count_as_lock_wait(db_path: Path) -> None:
    # GIVEN SQLite's own busy handler (busy_timeout_ms=40): each attempt sleeps inside sqlite3
    # for up to 40 ms before it gives up with SQLITE_BUSY, where the retry loop cannot see it
    config = QueueConfig(busy_timeout_ms=40, busy_backoff_max_ms=1)

    async def scenario() -> tuple[int, int]:
        async with TaskQueue(db_path, config) as queue:
            # WHEN another writer holds the lock through at least two such attempts
            with write_lock(db_path):
                pending = asyncio.ensure_future(queue.enqueue("noop", "waited"))
                await _until(lambda: queue.stats.busy_retries["enqueue"] >= 2, "two retries")
            await pending
            return queue.stats.busy_retries["enqueue"], queue.stats.busy_wait_ns["enqueue"]

    retries, waited_ns = asyncio.run(scenario())
    # THEN the handler's sleeps are in the lock wait: about 40 ms per attempt given up, far
    # above the retry loop's own sleeps (at most 1 ms each)
    assert retries >= 2
    assert waited_ns >= retries * 35_000_000, (retries, waited_ns)


def test_an_attempt_that_ends_in_sqlite_busy_counts_whole_as_lock_wait(db_path: Path) -> None:
    # GIVEN an attempt that takes 30 ms (its trip to a busy connection thread, say) and then
    # fails with SQLITE_BUSY, once; no busy handler (busy_timeout_ms=0, the default)
    attempts: list[float] = []

    async def attempt() -> str:
        attempts.append(time.perf_counter())
        if len(attempts) == 1:
            await asyncio.sleep(0.03)
            raise sqlite3.OperationalError("database is locked")
        return "done"

    async def scenario() -> tuple[str, int, int]:
        async with TaskQueue(db_path, QueueConfig(busy_backoff_max_ms=1)) as queue:
            # WHEN the retry loop runs it
            done = await queue._retry_busy("claim", attempt)
            return done, queue.stats.busy_retries["claim"], queue.stats.busy_wait_ns["claim"]

    done, retries, waited_ns = asyncio.run(scenario())
    # THEN the failed attempt's 30 ms are lock wait with the backoff, not only the backoff
    assert done == "done"
    assert retries == 1
    assert waited_ns >= 30_000_000, waited_ns
