"""dispatch: which thread runs an operation's SQL, and that moving it loses no ordering."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from taskqueue import ClaimStyle, Dispatch, QueueConfig, TaskQueue, TaskStatus, WorkerEngine
from taskqueue.queue import INLINE_ROWS_MOST

MAIN = threading.main_thread().name


def _threads_by_op(queue: TaskQueue) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for sample in queue.stats.sql:
        found.setdefault(sample.op, set()).add("inline" if sample.thread == MAIN else "thread")
    return found


def test_auto_runs_short_calls_inline_and_big_batches_on_the_thread(db_path: Path) -> None:
    # GIVEN the default dispatch
    async def scenario() -> dict[str, set[str]]:
        async with TaskQueue(db_path, QueueConfig(capture_sql=True)) as queue:
            # WHEN a small batch, one task, and a batch over the inline bound are enqueued
            await queue.enqueue_many([("noop", i) for i in range(10)])
            await queue.enqueue("noop", None)
            big = await queue.enqueue_many([("noop", i) for i in range(INLINE_ROWS_MOST + 1)])
            assert len(big) == INLINE_ROWS_MOST + 1
            await queue.status(1)
            await queue.counts()
            assert queue.stats.inline_calls >= 3
            return _threads_by_op(queue)

    where = asyncio.run(scenario())
    # THEN the short calls ran on the event loop's thread, the big batch and counts did not
    assert where["enqueue"] == {"inline", "thread"}
    assert where["status"] == {"inline"}
    assert where["counts"] == {"thread"}


def test_a_call_behind_one_in_flight_on_the_thread_waits_its_turn(db_path: Path) -> None:
    # GIVEN a batch too big to run inline, in flight on the connection thread
    async def scenario() -> tuple[list[int], TaskStatus | None, set[str]]:
        async with TaskQueue(db_path, QueueConfig(capture_sql=True)) as queue:
            batch = [("noop", i) for i in range(INLINE_ROWS_MOST * 5)]
            writing = asyncio.ensure_future(queue.enqueue_many(batch))
            await asyncio.sleep(0)  # the batch is now on its way to the thread
            # WHEN a status read is made meanwhile (short: it could run inline)
            found = await queue.status(1)
            ids = await writing
            return ids, found, _threads_by_op(queue)["status"]

    ids, found, where = asyncio.run(scenario())
    # THEN it went to the thread behind the batch (never on the connection at the same time)
    # and saw the batch's first task
    assert where == {"thread"}
    assert found is not None
    assert found.id == ids[0]


@pytest.mark.parametrize(
    "config",
    [
        pytest.param(QueueConfig(dispatch=Dispatch.THREAD), id="thread"),
        pytest.param(QueueConfig(busy_timeout_ms=100), id="busy-timeout"),
        pytest.param(QueueConfig(claim_style=ClaimStyle.DEFERRED), id="deferred-claims"),
    ],
)
def test_nothing_runs_inline_where_it_could_block_the_loop(
    db_path: Path, config: QueueConfig
) -> None:
    # GIVEN dispatch=thread, a SQLite busy timeout (a locked database would block the loop
    # in SQLite's busy handler), or deferred claims (transactions across awaits)
    async def scenario() -> int:
        async with TaskQueue(db_path, config) as queue:
            # WHEN tasks are enqueued, read and drained
            await queue.enqueue_many([("noop", i) for i in range(20)])
            await queue.status(1)
            await WorkerEngine("w0", queue).run_until_empty()
            return queue.stats.inline_calls

    # THEN no call ran inline
    assert asyncio.run(scenario()) == 0


def test_an_inline_write_on_a_locked_database_retries_without_blocking_the_loop(
    db_path: Path,
) -> None:
    # GIVEN another connection holding the write lock for 100 ms
    async def scenario() -> tuple[int, int, int]:
        async with TaskQueue(db_path) as queue:
            other = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
            other.execute("BEGIN IMMEDIATE")
            ticks = 0

            async def ticker() -> None:
                nonlocal ticks
                while True:
                    ticks += 1
                    await asyncio.sleep(0.005)

            def release() -> None:
                other.execute("COMMIT")
                other.close()

            running = asyncio.ensure_future(ticker())
            asyncio.get_running_loop().call_later(0.1, release)
            # WHEN the queue enqueues (inline: a short call on an idle connection)
            task_id = await queue.enqueue("noop", None)
            running.cancel()
            return task_id, queue.stats.busy_retries["enqueue"], ticks

    task_id, retries, ticks = asyncio.run(scenario())
    # THEN it was retried until the lock was free, and the loop ran other work meanwhile
    assert task_id == 1
    assert retries > 0
    assert ticks >= 5


def test_the_wal_is_checkpointed_off_the_queue_s_own_connections(db_path: Path) -> None:
    # GIVEN a queue that writes steadily for a while
    async def scenario() -> tuple[int, int, int]:
        async with TaskQueue(db_path) as queue:
            for _ in range(30):
                await queue.enqueue_many([("noop", {"n": i}) for i in range(200)])
                await asyncio.sleep(0.02)
            await WorkerEngine("w0", queue).run_until_empty()
            await asyncio.sleep(0.25)
            conn, _ = queue._stores["__main__"]
            (auto,) = await (await conn.execute("PRAGMA wal_autocheckpoint")).fetchone()
            return auto, queue.stats.checkpoints, queue.stats.checkpoint_errors

    auto, checkpoints, errors = asyncio.run(scenario())
    # THEN its own connections never checkpoint inside a commit (which could hold the event
    # loop), and the checkpoint connection did, with no error
    assert auto == 0
    assert checkpoints >= 3
    assert errors == 0
    # AND after close the file holds every task, with no WAL left to replay
    assert not db_path.with_name(db_path.name + "-wal").exists()
    with sqlite3.connect(db_path) as db:
        assert db.execute("SELECT count(*) FROM tasks WHERE state = 'done'").fetchone() == (6000,)
