"""What is particular to the PostgreSQL backend: how it opens, fails and recovers.

The shared contract runs in test_queue_contract.py on both backends; here, the errors a
user meets (a missing database, someone else's tables, a text Postgres cannot store, the
server dropping the connection) and the strategies only Postgres has.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import orjson
import pytest

from taskqueue import (
    InvalidArgumentError,
    PgClaim,
    PgClaimCommit,
    QueueConfig,
    QueueDatabaseError,
    QueueOpenError,
    Task,
    TaskQueue,
    TaskState,
    WorkerEngine,
    pgsql,
)
from taskqueue.pgadmin import with_database
from taskqueue.pgqueue import PgTaskQueue
from tests.helpers.db import fetch


async def _execute(dsn: str, statement: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def test_a_url_opens_the_postgres_queue(pg_dsn: str) -> None:
    queue = TaskQueue(pg_dsn)
    assert isinstance(queue, PgTaskQueue)
    assert queue.target == pg_dsn


def test_a_missing_database_is_an_open_error_with_the_fix(pg_server: str) -> None:
    missing = with_database(pg_server, "qp_no_such_database")

    async def scenario() -> None:
        async with TaskQueue(missing):
            pass

    with pytest.raises(QueueOpenError, match="create the database first"):
        asyncio.run(scenario())


def test_another_applications_tasks_table_is_left_alone(pg_dsn: str) -> None:
    asyncio.run(_execute(pg_dsn, "CREATE TABLE tasks (name text); INSERT INTO tasks VALUES ('x')"))

    async def scenario() -> None:
        async with TaskQueue(pg_dsn):
            pass

    with pytest.raises(QueueOpenError, match="another application"):
        asyncio.run(scenario())
    assert fetch(pg_dsn, "SELECT name FROM tasks") == [("x",)]


def test_another_schema_version_is_refused(pg_dsn: str) -> None:
    async def scenario() -> None:
        async with TaskQueue(pg_dsn):
            pass

    asyncio.run(scenario())
    asyncio.run(_execute(pg_dsn, "UPDATE queueprof_meta SET schema_version = 99"))
    with pytest.raises(QueueOpenError, match="schema"):
        asyncio.run(scenario())


def test_a_nul_in_a_task_type_is_an_argument_error(pg_dsn: str) -> None:
    async def scenario() -> None:
        async with TaskQueue(pg_dsn) as queue:
            with pytest.raises(InvalidArgumentError, match="NUL"):
                await queue.enqueue("bad\x00type")
            # and the queue still works afterwards
            assert await queue.enqueue("good") == 1

    asyncio.run(scenario())


def _end_sessions(dsn: str) -> None:
    asyncio.run(
        _execute(
            dsn,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
    )


def test_sessions_the_server_ended_are_replaced(pg_dsn: str) -> None:
    async def scenario() -> None:
        async with TaskQueue(pg_dsn, QueueConfig(pg_pool=1)) as queue:
            await queue.enqueue_many([("noop", {}) for _ in range(3)])
            # GIVEN the server ended every session of the queue (an admin, a failover)
            await asyncio.to_thread(_end_sessions, pg_dsn)
            # WHEN the queue claims, enqueues and reads, THEN it works on new connections
            # (or says the outcome of an enqueue is unknown, never with asyncpg's error)
            assert len(await queue.claim("w", 3)) == 3
            outcomes = []
            for _ in range(3):
                try:
                    outcomes.append(str(await queue.enqueue("noop")))
                except QueueDatabaseError as error:
                    outcomes.append(str(error))
            assert all(o.isdigit() or "may or may not have been stored" in o for o in outcomes)
            assert (await queue.counts())[TaskState.RUNNING] == 3

    asyncio.run(scenario())


class _FailsOnce:
    """Wraps a store operation: the first call raises ``error`` (as the server would)."""

    def __init__(self, operation: Callable[..., Awaitable[Any]], error: Exception) -> None:
        self.operation = operation
        self.error = error
        self.calls = 0

    async def __call__(self, *args: Any) -> Any:
        self.calls += 1
        if self.calls == 1:
            raise self.error
        return await self.operation(*args)


def _lost() -> Exception:
    return asyncpg.ConnectionDoesNotExistError("connection was closed in the middle")


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.SerializationError("could not serialize access"),
        asyncpg.DeadlockDetectedError("deadlock detected"),
        asyncpg.LockNotAvailableError("canceling statement due to lock timeout"),
    ],
)
def test_contention_is_retried_and_counted_never_raised(pg_dsn: str, error: Exception) -> None:
    async def scenario() -> None:
        async with TaskQueue(pg_dsn) as queue:
            assert isinstance(queue, PgTaskQueue)
            await queue.enqueue_many([("noop", {}) for _ in range(3)])
            queue._pg.claim = _FailsOnce(queue._pg.claim, error)  # type: ignore[method-assign]
            assert len(await queue.claim("w", 3)) == 3
            assert queue.stats.busy_retries["claim"] == 1
            assert queue.stats.busy_wait_ns["claim"] > 0

    asyncio.run(scenario())


def test_a_claim_whose_connection_was_lost_is_sent_again(pg_dsn: str) -> None:
    async def scenario() -> None:
        async with TaskQueue(pg_dsn) as queue:
            assert isinstance(queue, PgTaskQueue)
            await queue.enqueue_many([("noop", {}) for _ in range(3)])
            queue._pg.claim = _FailsOnce(queue._pg.claim, _lost())  # type: ignore[method-assign]
            assert len(await queue.claim("w", 3)) == 3
            assert queue.stats.busy_retries["claim"] == 1

    asyncio.run(scenario())


def test_an_enqueue_whose_connection_was_lost_says_the_outcome_is_unknown(pg_dsn: str) -> None:
    async def scenario() -> None:
        async with TaskQueue(pg_dsn) as queue:
            assert isinstance(queue, PgTaskQueue)
            queue._pg.insert = _FailsOnce(queue._pg.insert, _lost())  # type: ignore[method-assign]
            with pytest.raises(QueueDatabaseError, match="may or may not have been stored"):
                await queue.enqueue("noop")

    asyncio.run(scenario())


@pytest.mark.parametrize("claim", list(PgClaim))
def test_ten_engines_on_one_queue_share_the_work_once(pg_dsn: str, claim: PgClaim) -> None:
    config = QueueConfig(pg_claim=claim, claim_batch=5, ack_batch=5, pg_pool=4)

    async def scenario() -> None:
        async with TaskQueue(pg_dsn, config) as queue:
            await queue.enqueue_many([("noop", {"i": i}) for i in range(500)])
            engines = [WorkerEngine(f"w{i}", queue) for i in range(10)]
            results = await asyncio.gather(*(e.run_until_empty() for e in engines))
            assert sum(r.completed for r in results) == 500
            counts = await queue.counts()
            assert counts[TaskState.DONE] == 500

    asyncio.run(scenario())
    rows = fetch(pg_dsn, "SELECT attempts, count(*) FROM tasks GROUP BY attempts")
    assert rows == [(1, 500)]


def _listening_sessions(dsn: str) -> int:
    rows = fetch(
        dsn,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND query LIKE 'LISTEN%'",
    )
    return int(rows[0][0])


def test_a_notification_from_another_queue_wakes_an_idle_engine(pg_dsn: str) -> None:
    # Polling every 10 s: only the LISTEN/NOTIFY wake-up can make this fast.
    config = QueueConfig(wakeup="notify:10000")

    async def scenario() -> tuple[float, float]:
        loop = asyncio.get_running_loop()
        async with TaskQueue(pg_dsn, config) as consumer, TaskQueue(pg_dsn, config) as producer:
            # The first wait starts listening and returns: the caller claims again first.
            started = loop.time()
            await asyncio.wait_for(consumer.wait_for_work(), 5)
            first = loop.time() - started
            waiting = asyncio.ensure_future(consumer.wait_for_work())
            await asyncio.sleep(0.2)
            assert not waiting.done()
            started = loop.time()
            await producer.enqueue("noop")
            await asyncio.wait_for(waiting, 5)
            return first, loop.time() - started

    first, woken = asyncio.run(scenario())
    assert first < 2.0
    assert woken < 2.0


def test_only_a_queue_that_waits_for_work_listens(pg_dsn: str) -> None:
    async def scenario() -> list[int]:
        seen = []
        async with TaskQueue(pg_dsn) as queue:
            # GIVEN a queue that enqueues, claims and completes without waiting (a producer,
            # a busy worker): no connection of its own listens, and no notification is sent
            # to it
            await queue.enqueue("noop")
            (task,) = await queue.claim("w0")
            await queue.complete(task, None)
            seen.append(await asyncio.to_thread(_listening_sessions, pg_dsn))
            # WHEN it first waits for work, THEN it listens from then on, on one connection
            await queue.wait_for_work(timeout=0.01)
            await queue.wait_for_work(timeout=0.01)
            seen.append(await asyncio.to_thread(_listening_sessions, pg_dsn))
        # AND closing the queue ends it (its server process may take a moment to go)
        for _ in range(50):
            if not await asyncio.to_thread(_listening_sessions, pg_dsn):
                break
            await asyncio.sleep(0.1)
        seen.append(await asyncio.to_thread(_listening_sessions, pg_dsn))
        return seen

    assert asyncio.run(scenario()) == [0, 1, 0]


def test_concurrent_first_waits_open_one_listener(pg_dsn: str) -> None:
    async def scenario() -> int:
        async with TaskQueue(pg_dsn) as queue:
            await asyncio.gather(*(queue.wait_for_work(timeout=0.01) for _ in range(5)))
            return await asyncio.to_thread(_listening_sessions, pg_dsn)

    assert asyncio.run(scenario()) == 1


def test_a_listener_that_cannot_connect_leaves_waits_polling(
    pg_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    tries: list[str] = []

    async def unreachable(dsn: str, **_: Any) -> asyncpg.Connection:
        tries.append(dsn)
        raise ConnectionRefusedError("connection refused")

    async def scenario() -> tuple[float, int]:
        loop = asyncio.get_running_loop()
        async with TaskQueue(pg_dsn, QueueConfig(wakeup="notify:100")) as queue:
            await queue.enqueue("noop")  # the pool's connection is open before the patch
            monkeypatch.setattr("taskqueue.pgqueue.asyncpg.connect", unreachable)
            started = loop.time()
            # WHEN the listener cannot be opened, THEN waiting neither fails nor spins: each
            # wait lasts the interval, and the next try comes a second later
            await queue.wait_for_work()
            await queue.wait_for_work()
            waited = loop.time() - started
            assert (await queue.claim("w0"))[0].type == "noop"
        return waited, len(tries)

    waited, tried = asyncio.run(scenario())
    assert waited >= 0.15
    assert tried == 1


async def _pooled_synchronous_commit(queue: TaskQueue) -> str:
    """``synchronous_commit`` as a connection of ``queue``'s pool has it."""
    assert isinstance(queue, PgTaskQueue)
    pool = queue._pool
    assert pool is not None
    conn = await pool.acquire()
    try:
        value: str = await conn.fetchval("SHOW synchronous_commit")
    finally:
        pool.release(conn, reusable=True)
    return value


def test_waits_poll_while_the_listener_is_being_opened(
    pg_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def slow(dsn: str, **_: Any) -> asyncpg.Connection:
        await asyncio.sleep(3)
        raise ConnectionRefusedError("connection refused")

    async def scenario() -> float:
        loop = asyncio.get_running_loop()
        async with TaskQueue(pg_dsn, QueueConfig(wakeup="notify:100")) as queue:
            await queue.enqueue("noop")  # the pool's connection is open before the patch
            monkeypatch.setattr("taskqueue.pgqueue.asyncpg.connect", slow)
            # GIVEN one engine's wait opening the listener on a server slow to answer
            opening = asyncio.ensure_future(queue.wait_for_work())
            await asyncio.sleep(0.05)
            # WHEN another engine waits, THEN it waits its interval, not for the listener
            started = loop.time()
            await asyncio.wait_for(queue.wait_for_work(), 2)
            waited = loop.time() - started
            opening.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await opening
        return waited

    assert asyncio.run(scenario()) < 1.0


def test_a_claim_reads_the_ready_index_in_order_on_a_fresh_table(pg_dsn: str) -> None:
    # GIVEN 2,000 tasks drained and 2,000 more pending, in a table never analysed (as a
    # queue's table is most of the time): the planner, left to itself, read every pending
    # row by bitmap and sorted them all to claim the first 100
    async def scenario() -> list[str]:
        async with TaskQueue(pg_dsn) as queue:
            await queue.enqueue_many([("noop", {"n": i}) for i in range(2_000)])
            while tasks := await queue.claim("w0", 100):
                await queue.complete_many([(task, None) for task in tasks])
            await queue.enqueue_many([("noop", {"n": i}) for i in range(2_000)])
            assert isinstance(queue, PgTaskQueue)
            assert queue._pool is not None
            # WHEN a session of the queue plans the claim
            conn = await queue._pool.acquire()
            try:
                claim = pgsql.claim_statement(PgClaim.SKIP_LOCKED, PgClaimCommit.ASYNC)
                for value, param in (("'w0'", "$1"), ("1e12", "$2"), ("1e11", "$3")):
                    claim = claim.replace(param, value)
                claim = claim.replace("$4", "100").replace("$5", "7")
                plan = [r[0] for r in await conn.fetch(f"EXPLAIN {claim}")]
            finally:
                queue._pool.release(conn, reusable=True)
        return plan

    # THEN it reads the ready index in order, and stops at the 100th row
    plan = "\n".join(asyncio.run(scenario()))
    assert "Index Scan using tasks_ready" in plan, plan
    assert "Sort" not in plan, plan
    assert "Bitmap" not in plan, plan


def test_synchronous_commit_is_set_on_the_sessions(pg_dsn: str) -> None:
    async def scenario() -> str:
        async with TaskQueue(pg_dsn, QueueConfig(pg_synchronous_commit="off")) as queue:
            return await _pooled_synchronous_commit(queue)

    assert asyncio.run(scenario()) == "off"


def test_an_async_claim_names_its_rows_by_a_token_and_leaves_the_session_as_it_was(
    pg_dsn: str,
) -> None:
    # GIVEN the default claim commit (async) on sessions with synchronous_commit=on
    assert QueueConfig().pg_claim_commit is PgClaimCommit.ASYNC

    async def scenario() -> tuple[list[Task], list[Task], str]:
        async with TaskQueue(pg_dsn, QueueConfig(pg_pool=1)) as queue:
            await queue.enqueue_many([("noop", {}) for _ in range(3)])
            # WHEN two claims take the tasks
            first = await queue.claim("w1", 2)
            second = await queue.claim("w2", 2)
            return first, second, await _pooled_synchronous_commit(queue)

    first, second, setting = asyncio.run(scenario())
    # THEN each claim's tasks carry its own token, written to their rows ...
    assert len({t.claim for t in first}) == 1
    assert {t.claim for t in first} != {t.claim for t in second}
    rows = dict(fetch(pg_dsn, "SELECT id, claim_token FROM tasks"))
    assert all(rows[t.id] == t.claim for t in [*first, *second])
    # ... and the claim's synchronous_commit=off ended with its transaction
    assert setting == "on"


def test_a_claim_commit_that_is_no_choice_is_refused_with_the_choices() -> None:
    with pytest.raises(InvalidArgumentError, match=r"pg_claim_commit.*async.*session"):
        QueueConfig.parse("pg_claim_commit=later")
    assert QueueConfig.parse("pg_claim_commit=session").pg_claim_commit is PgClaimCommit.SESSION


def test_a_full_batch_keeps_every_payload_and_result_text_as_given(pg_dsn: str) -> None:
    # GIVEN a batch as large as one document carries, payloads spaced as their writer spaced
    # them (the batch is split into its elements once, not re-parsed per element)
    count = 128
    payloads = [orjson.Fragment(f'{{"n": {n},  "z": [1, 2]}}') for n in range(count)]

    async def scenario() -> tuple[list[int], list[Any]]:
        async with TaskQueue(pg_dsn, QueueConfig(wakeup="poll:50")) as queue:
            ids = await queue.enqueue_many([("noop", p) for p in payloads])
            tasks = await queue.claim("w0", count)
            # WHEN every claimed task is completed in one statement, each with its own result
            await queue.complete_many([(t, {"seq": t.payload["n"]}) for t in tasks])
            return ids, tasks

    ids, tasks = asyncio.run(scenario())
    # THEN the ids come back in the order given, every task is done once, and each row
    # holds its payload's text and its own result
    assert ids == sorted(ids)
    assert len(set(ids)) == count
    assert [t.payload["n"] for t in tasks] == list(range(count))
    rows = fetch(pg_dsn, "SELECT id, payload, state, result FROM tasks ORDER BY id")
    assert [r[0] for r in rows] == ids
    assert [r[1] for r in rows] == [f'{{"n": {n},  "z": [1, 2]}}' for n in range(count)]
    assert {r[2] for r in rows} == {"done"}
    assert [orjson.loads(r[3]) for r in rows] == [{"seq": n} for n in range(count)]
