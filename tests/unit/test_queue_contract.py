"""The queue's contract, run against both backends and every strategy that changes how the
queue reaches its database.

SQLite: connection in {shared, per-worker} x claim_style in {returning, immediate,
deferred} x claim/ack batch in {1, 50}. PostgreSQL (a fresh database per test, see
tests/pg.py): pg_claim in {skip-locked, for-update} x batch in {1, 50}, with LISTEN/NOTIFY
and polling wake-ups, a pool of one connection, a connection per worker, and each way of
sending a worker engine's acks (pg_acks) among them. Time is a
:class:`FakeClock`: delays and leases move only when a test advances it.
"""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import orjson
import pytest

from taskqueue import (
    ClaimStyle,
    ConnectionMode,
    NewTask,
    PgAcks,
    PgClaim,
    QueueClosedError,
    QueueConfig,
    Task,
    TaskQueue,
    TaskState,
    WorkerEngine,
    sql,
)
from tests.helpers.clock import FakeClock
from tests.helpers.db import task_row, task_rows

STRATEGIES = [
    pytest.param(
        (
            "sqlite",
            QueueConfig(
                connection=connection,
                claim_style=style,
                claim_batch=batch,
                ack_batch=batch,
                retry_backoff_s=1.0,
            ),
        ),
        id=f"{connection}-{style}-batch{batch}",
    )
    for connection, style, batch in itertools.product(ConnectionMode, ClaimStyle, (1, 50))
] + [
    pytest.param(
        (
            "postgres",
            QueueConfig(
                pg_claim=claim,
                claim_batch=batch,
                ack_batch=batch,
                wakeup=wakeup,
                pg_pool=pool,
                connection=connection,
                pg_acks=acks,
                retry_backoff_s=1.0,
            ),
        ),
        id=f"pg-{claim}-batch{batch}-{wakeup.replace(':', '')}-pool{pool}-{connection}-{acks}",
    )
    for claim, batch, wakeup, pool, connection, acks in [
        (PgClaim.SKIP_LOCKED, 1, "notify", 10, ConnectionMode.SHARED, PgAcks.RIDE),
        (PgClaim.SKIP_LOCKED, 50, "poll:20", 1, ConnectionMode.SHARED, PgAcks.PARALLEL),
        (PgClaim.FOR_UPDATE, 1, "poll:20", 10, ConnectionMode.PER_WORKER, PgAcks.BEHIND),
        (PgClaim.FOR_UPDATE, 50, "notify", 10, ConnectionMode.SHARED, PgAcks.RIDE),
        (PgClaim.SKIP_LOCKED, 50, "notify", 10, ConnectionMode.PER_WORKER, PgAcks.PARALLEL),
        (PgClaim.SKIP_LOCKED, 50, "notify", 10, ConnectionMode.SHARED, PgAcks.BEHIND),
    ]
]


@pytest.fixture(params=STRATEGIES)
def backend_config(request: pytest.FixtureRequest) -> tuple[str, QueueConfig]:
    value: tuple[str, QueueConfig] = request.param
    return value


@pytest.fixture
def config(backend_config: tuple[str, QueueConfig]) -> QueueConfig:
    return backend_config[1]


@pytest.fixture
def db_path(
    backend_config: tuple[str, QueueConfig], tmp_path: Path, request: pytest.FixtureRequest
) -> Path | str:
    """The queue's database on the strategy's backend (overrides the SQLite-only one)."""
    if backend_config[0] == "sqlite":
        return tmp_path / "queue.db"
    dsn: str = request.getfixturevalue("pg_dsn")
    return dsn


def test_enqueue_stores_a_pending_task(
    config: QueueConfig, db_path: Path, clock: FakeClock
) -> None:
    async def scenario() -> None:
        async with TaskQueue(db_path, config, clock=clock) as queue:
            # WHEN a task is enqueued
            task_id = await queue.enqueue("noop", {"n": 1}, priority=2, delay=5.0, max_attempts=4)
            # THEN its status says what was asked, and nothing else happened to it yet
            found = await queue.status(task_id)
            assert found is not None
            assert (found.id, found.type, found.state) == (task_id, "noop", TaskState.PENDING)
            assert (found.priority, found.attempts, found.max_attempts) == (2, 0, 4)
            assert found.run_at == clock.now + 5.0
            assert found.created_at == clock.now
            assert (found.worker, found.lease_until, found.started_at) == (None, None, None)
            assert (found.result, found.error, found.finished_at) == (None, None, None)
            assert not found.finished
            assert await queue.status(task_id + 1000) is None

    asyncio.run(scenario())


def test_claim_leases_ready_tasks_to_one_worker(
    config: QueueConfig, db_path: Path, clock: FakeClock
) -> None:
    async def scenario() -> None:
        async with TaskQueue(db_path, config, clock=clock) as queue:
            # GIVEN one task
            task_id = await queue.enqueue("noop", {"n": 7})
            # WHEN a worker claims with a 5 s lease
            tasks = await queue.claim("w1", config.claim_batch, lease=5.0)
            # THEN it gets the task, first attempt, leased to it
            assert [t.id for t in tasks] == [task_id]
            task = tasks[0]
            assert (task.type, task.payload, task.attempts, task.max_attempts) == (
                "noop",
                {"n": 7},
                1,
                3,
            )
            assert (task.worker, task.lease_until) == ("w1", clock.now + 5.0)
            found = await queue.status(task_id)
            assert found is not None
            assert (found.state, found.worker, found.attempts) == (TaskState.RUNNING, "w1", 1)
            assert (found.lease_until, found.started_at) == (clock.now + 5.0, clock.now)
            # AND nobody else can claim it
            assert await queue.claim("w2", config.claim_batch) == []
            assert await queue.claim("w1", config.claim_batch) == []

    asyncio.run(scenario())


def test_claim_takes_at_most_n_and_every_task_once(
    config: QueueConfig, db_path: Path, clock: FakeClock
) -> None:
    async def scenario() -> None:
        async with TaskQueue(db_path, config, clock=clock) as queue:
            ids = await queue.enqueue_many([("noop", i) for i in range(120)])
            claimed: list[int] = []
            while batch := await queue.claim("w1", config.claim_batch):
                assert 1 <= len(batch) <= config.claim_batch
                claimed.extend(t.id for t in batch)
            assert sorted(claimed) == ids
            assert len(set(claimed)) == len(claimed)

    asyncio.run(scenario())


def test_concurrent_workers_never_share_a_task(
    config: QueueConfig, db_path: Path, clock: FakeClock
) -> None:
    async def scenario() -> None:
        async with TaskQueue(db_path, config, clock=clock) as queue:
            ids = await queue.enqueue_many([("noop", i) for i in range(300)])

            async def drain(worker: str) -> list[int]:
                taken: list[int] = []
                while batch := await queue.claim(worker, config.claim_batch):
                    assert all(t.worker == worker for t in batch)
                    taken.extend(t.id for t in batch)
                return taken

            # WHEN eight workers claim at once until nothing is left
            per_worker = await asyncio.gather(*(drain(f"w{i}") for i in range(8)))
            # THEN every task went to exactly one of them
            claimed = [task_id for taken in per_worker for task_id in taken]
            assert sorted(claimed) == ids
            rows = task_rows(db_path)
            assert {r.state for r in rows} == {"running"}
            assert {r.attempts for r in rows} == {1}

    asyncio.run(scenario())


def test_higher_priority_is_claimed_first_then_oldest(
    config: QueueConfig, db_path: Path, clock: FakeClock
) -> None:
    async def scenario() -> None:
        async with TaskQueue(db_path, config, clock=clock) as queue:
            priorities = [0, 5, 1, 5, 3, 0, 9]
            ids = [await queue.enqueue("noop", i, priority=p) for i, p in enumerate(priorities)]
            expected = [
                task_id
                for _, task_id in sorted(zip(priorities, ids, strict=True), key=_by_priority)
            ]
            # One at a time: strictly by priority, ties in enqueue order.
            one_by_one = [t.id for _ in ids for t in await queue.claim("w1", 1)]
            assert one_by_one == expected

    asyncio.run(scenario())


def _by_priority(pair: tuple[int, int]) -> tuple[int, int]:
    priority, task_id = pair
    return (-priority, task_id)


def test_a_batch_claim_takes_the_highest_priorities(
    config: QueueConfig, db_path: Path, clock: FakeClock
) -> None:
    async def scenario() -> None:
        async with TaskQueue(db_path, config, clock=clock) as queue:
            low = await queue.enqueue_many([NewTask("noop", i, priority=0) for i in range(60)])
            high = await queue.enqueue_many([NewTask("noop", i, priority=1) for i in range(10)])
            batch = await queue.claim("w1", config.claim_batch)
            taken = [t.id for t in batch]
            # The high-priority tasks come first, in order, whatever the batch size.
            assert taken == (high + low)[: config.claim_batch]

    asyncio.run(scenario())


def test_a_delayed_task_is_not_claimable_before_it_is_due(
    config: QueueConfig, db_path: Path, clock: FakeClock
) -> None:
    async def scenario() -> None:
        async with TaskQueue(db_path, config, clock=clock) as queue:
            later = await queue.enqueue("noop", "later", delay=10.0, priority=9)
            now = await queue.enqueue("noop", "now")
            # Only the task without delay is ready, despite its lower priority.
            assert [t.id for t in await queue.claim("w1", config.claim_batch)] == [now]
            clock.advance(9.5)
            assert await queue.claim("w1", config.claim_batch) == []
            clock.advance(0.5)  # exactly due: run_at <= now
            assert [t.id for t in await queue.claim("w1", config.claim_batch)] == [later]

    asyncio.run(scenario())


def test_enqueue_many_returns_ids_in_the_order_given(
    config: QueueConfig, db_path: Path, clock: FakeClock
) -> None:
    async def scenario() -> None:
        async with TaskQueue(db_path, config, clock=clock) as queue:
            assert await queue.enqueue_many([]) == []
            first = await queue.enqueue("noop", "before")
            items: list[NewTask | tuple[str, object]] = [
                ("noop", {"i": 0}),
                NewTask("cpu", {"i": 1}, priority=3, delay=2.0, max_attempts=5),
                ("sleep", [1, 2, 3]),
                NewTask("alloc", "text"),
            ]
            ids = await queue.enqueue_many(items)
            assert ids == sorted(ids)
            assert len(set(ids)) == len(items)
            assert ids[0] > first
            rows = {r.id: r for r in task_rows(db_path)}
            assert [rows[i].type for i in ids] == ["noop", "cpu", "sleep", "alloc"]
            special = rows[ids[1]]
            assert (special.priority, special.max_attempts) == (3, 5)
            assert special.run_at == clock.now + 2.0
            clock.advance(2.0)
            payloads = {t.id: t.payload for t in await queue.claim("w1", 10)}
            assert [payloads[i] for i in ids] == [{"i": 0}, {"i": 1}, [1, 2, 3], "text"]

    asyncio.run(scenario())


def test_complete_records_the_result_once(
    config: QueueConfig, db_path: Path, clock: FakeClock
) -> None:
    async def scenario() -> None:
        async with TaskQueue(db_path, config, clock=clock) as queue:
            task_id = await queue.enqueue("noop")
            (task,) = await queue.claim("w1", config.claim_batch)
            clock.advance(1.0)
            # WHEN the worker completes it
            assert await queue.complete(task, {"answer": 42}) is True
            # THEN it is done with the result, and leaves the claimable set
            found = await queue.status(task_id)
            assert found is not None
            assert (found.state, found.result, found.finished) == (
                TaskState.DONE,
                {"answer": 42},
                True,
            )
            assert (found.finished_at, found.lease_until) == (clock.now, None)
            assert await queue.claim("w2", config.claim_batch) == []
            # AND a second ack changes nothing and is counted as stale
            assert await queue.complete(task, "again") is False
            assert queue.stats.stale_acks == 1
            again = await queue.status(task_id)
            assert again == found

    asyncio.run(scenario())


def test_complete_many_acks_a_batch(config: QueueConfig, db_path: Path, clock: FakeClock) -> None:
    async def scenario() -> None:
        async with TaskQueue(db_path, config, clock=clock) as queue:
            assert await queue.complete_many([]) == 0
            await queue.enqueue_many([("noop", i) for i in range(5)])
            tasks = await queue.claim("w1", 5)
            applied = await queue.complete_many([(t, {"double": t.payload * 2}) for t in tasks])
            assert applied == 5
            rows = task_rows(db_path)
            assert [r.state for r in rows] == ["done"] * 5
            for task in tasks:
                found = await queue.status(task.id)
                assert found is not None
                assert found.result == {"double": task.payload * 2}
            assert queue.stats.stale_acks == 0

    asyncio.run(scenario())


def test_fail_retries_with_backoff_then_dead_letters(
    config: QueueConfig, db_path: Path, clock: FakeClock
) -> None:
    async def scenario() -> None:
        async with TaskQueue(db_path, config, clock=clock) as queue:
            task_id = await queue.enqueue("noop", max_attempts=2)
            (task,) = await queue.claim("w1", config.claim_batch)
            # First failure: back to pending, due after retry_backoff_s
            assert await queue.fail(task, "boom 1") is TaskState.PENDING
            row = task_row(db_path, task_id)
            assert (row.state, row.error, row.worker) == ("pending", "boom 1", None)
            assert row.run_at == clock.now + config.retry_backoff_s
            assert await queue.claim("w1", config.claim_batch) == []
            clock.advance(config.retry_backoff_s)
            (task,) = await queue.claim("w1", config.claim_batch)
            assert task.attempts == 2
            # Last attempt fails: dead, error kept, finished
            assert await queue.fail(task, "boom 2") is TaskState.DEAD
            found = await queue.status(task_id)
            assert found is not None
            assert (found.state, found.error, found.attempts) == (TaskState.DEAD, "boom 2", 2)
            assert found.finished
            assert found.finished_at == clock.now
            clock.advance(100.0)
            assert await queue.claim("w1", config.claim_batch) == []

    asyncio.run(scenario())


def test_fail_without_retry_dead_letters_at_once(
    config: QueueConfig, db_path: Path, clock: FakeClock
) -> None:
    async def scenario() -> None:
        async with TaskQueue(db_path, config, clock=clock) as queue:
            task_id = await queue.enqueue("noop", max_attempts=5)
            (task,) = await queue.claim("w1", config.claim_batch)
            assert await queue.fail(task, "fatal", retry=False) is TaskState.DEAD
            row = task_row(db_path, task_id)
            assert (row.state, row.attempts, row.error) == ("dead", 1, "fatal")

    asyncio.run(scenario())


def test_counts_cover_every_state(config: QueueConfig, db_path: Path, clock: FakeClock) -> None:
    async def scenario() -> None:
        async with TaskQueue(db_path, config, clock=clock) as queue:
            assert await queue.counts() == dict.fromkeys(TaskState, 0)
            assert await queue.is_drained()
            await queue.enqueue_many([NewTask("noop", i, max_attempts=1) for i in range(6)])
            done, dead, running = await queue.claim("w1", 3)
            await queue.complete(done, None)
            await queue.fail(dead, "no")
            assert await queue.counts() == {
                TaskState.PENDING: 3,
                TaskState.RUNNING: 1,
                TaskState.DONE: 1,
                TaskState.DEAD: 1,
            }
            assert running.id not in (done.id, dead.id)
            assert not await queue.is_drained()

    asyncio.run(scenario())


def test_poll_waits_until_the_task_is_finished(
    config: QueueConfig, db_path: Path, clock: FakeClock
) -> None:
    async def scenario() -> None:
        async with TaskQueue(db_path, config, clock=clock) as queue:
            task_id = await queue.enqueue("noop")
            with pytest.raises(TimeoutError, match=f"task {task_id} still pending"):
                await queue.poll(task_id, timeout=0.02)

            async def finish_soon() -> None:
                await asyncio.sleep(0.02)
                (task,) = await queue.claim("w1", config.claim_batch)
                await queue.complete(task, "finished")

            finisher = asyncio.create_task(finish_soon())
            found = await queue.poll(task_id, timeout=30.0)
            await finisher
            assert (found.state, found.result) == (TaskState.DONE, "finished")
            # A finished task polls at once.
            assert await queue.poll(task_id, timeout=0.001) == found

    asyncio.run(scenario())


@pytest.mark.parametrize("ending", ["complete", "dead-letter"])
def test_poll_wakes_when_this_queue_finishes_the_task(
    config: QueueConfig, db_path: Path, clock: FakeClock, ending: str
) -> None:
    # GIVEN a poll that reads the status only every 60 s
    async def scenario() -> TaskState:
        async with TaskQueue(db_path, config, clock=clock) as queue:
            task_id = await queue.enqueue("noop")

            async def finish_soon() -> None:
                await asyncio.sleep(0.02)
                (task,) = await queue.claim("w1", config.claim_batch)
                if ending == "complete":
                    await queue.complete(task, "finished")
                else:
                    await queue.fail(task, "boom", retry=False)

            finisher = asyncio.create_task(finish_soon())
            # WHEN the same queue object finishes the task, THEN the poll returns long
            # before its interval or its 10 s timeout
            found = await queue.poll(task_id, interval=60.0, timeout=10.0)
            await finisher
            assert not queue._poll_waiters  # nothing left waiting
            return found.state

    state = asyncio.run(scenario())
    assert state is (TaskState.DONE if ending == "complete" else TaskState.DEAD)


def test_expired_leases_are_reclaimed(config: QueueConfig, db_path: Path, clock: FakeClock) -> None:
    async def scenario() -> None:
        async with TaskQueue(db_path, config, clock=clock) as queue:
            task_id = await queue.enqueue("noop", max_attempts=2)
            (first,) = await queue.claim("w1", config.claim_batch, lease=5.0)
            assert first.id == task_id
            # A lease is held up to and including lease_until.
            clock.advance(5.0)
            assert (await queue.reclaim_expired()).requeued == 0
            clock.advance(0.001)
            result = await queue.reclaim_expired()
            assert (result.requeued, result.dead) == (1, 0)
            row = task_row(db_path, task_id)
            assert (row.state, row.worker, row.lease_until) == ("pending", None, None)
            assert row.error == "lease expired on worker w1"
            # Claimed again by another worker: second attempt
            (again,) = await queue.claim("w2", config.claim_batch, lease=5.0)
            assert (again.id, again.attempts, again.worker) == (task_id, 2, "w2")
            # Out of attempts when that lease expires too: dead
            clock.advance(6.0)
            result = await queue.reclaim_expired()
            assert (result.requeued, result.dead) == (0, 1)
            assert task_row(db_path, task_id).state == "dead"

    asyncio.run(scenario())


def test_acks_of_an_expired_lease_are_stale(
    config: QueueConfig, db_path: Path, clock: FakeClock
) -> None:
    async def scenario() -> None:
        async with TaskQueue(db_path, config, clock=clock) as queue:
            task_id = await queue.enqueue("noop")
            (old,) = await queue.claim("w1", config.claim_batch, lease=1.0)
            clock.advance(2.0)
            await queue.reclaim_expired()
            (new,) = await queue.claim("w2", config.claim_batch, lease=10.0)
            assert (new.id, new.attempts) == (task_id, 2)
            # WHEN the first worker acks or fails its expired claim
            assert await queue.complete(old, "from w1") is False
            assert await queue.fail(old, "w1 failed") is None
            assert await queue.complete_many([(old, "from w1")]) == 0
            # THEN nothing changed, and the stale acks are counted
            assert queue.stats.stale_acks == 3
            row = task_row(db_path, task_id)
            assert (row.state, row.worker, row.attempts) == ("running", "w2", 2)
            # AND the current claim still completes
            assert await queue.complete(new, "from w2") is True
            found = await queue.status(task_id)
            assert found is not None
            assert (found.state, found.result) == (TaskState.DONE, "from w2")
            assert queue.stats.stale_acks == 3

    asyncio.run(scenario())


def test_complete_and_claim_acks_then_claims(
    config: QueueConfig, db_path: Path, clock: FakeClock
) -> None:
    async def scenario() -> None:
        async with TaskQueue(db_path, config, clock=clock) as queue:
            ids = await queue.enqueue_many([("noop", i) for i in range(4)])
            first = await queue.claim("w1", 2)
            applied, second = await queue.complete_and_claim([(t, t.id) for t in first], "w1", 2)
            assert applied == 2
            assert [t.id for t in first + second] == ids
            assert [r.state for r in task_rows(db_path)] == ["done", "done", "running", "running"]
            assert queue.stats.stale_acks == 0

    asyncio.run(scenario())


def test_batches_too_large_for_one_document_are_split_and_kept_whole(
    config: QueueConfig, db_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN documents of at most 2,000 characters, and payloads and results of ~100 bytes
    monkeypatch.setattr(sql, "DOCUMENT_CHARS_MOST", 2000)
    text = "p" * 90

    async def scenario() -> None:
        async with TaskQueue(db_path, config, clock=clock) as queue:
            # WHEN 300 tasks go in one batch, 150 are acked riding on a claim of 150 more,
            # and those are acked in one call
            ids = await queue.enqueue_many([("noop", {"n": i, "t": text}) for i in range(300)])
            first = await queue.claim("w1", 150)
            done = [(t, {"r": t.payload["n"], "t": text}) for t in first]
            applied, second = await queue.complete_and_claim(done, "w1", 150)
            assert applied == 150
            assert await queue.complete_many([(t, {"r": t.payload["n"]}) for t in second]) == 150
            # THEN every task is stored whole, in order, and done once with its own result
            assert [t.id for t in first + second] == ids
            assert [t.payload for t in first + second] == [{"n": i, "t": text} for i in range(300)]
            rows = task_rows(db_path)
            assert {(r.state, r.attempts) for r in rows} == {("done", 1)}
            results = [orjson.loads(r.result or "null") for r in rows]
            assert results == [{"r": i, "t": text} for i in range(150)] + [
                {"r": i} for i in range(150, 300)
            ]
            assert queue.stats.stale_acks == 0

    asyncio.run(scenario())


def test_an_engine_drains_the_queue_exactly_once(
    config: QueueConfig, db_path: Path, clock: FakeClock
) -> None:
    async def scenario() -> None:
        async with TaskQueue(db_path, config, clock=clock) as queue:
            ids = await queue.enqueue_many([("noop", i) for i in range(230)])
            stats = await WorkerEngine("w1", queue).run_until_empty()
            assert (stats.claimed, stats.completed, stats.stale, stats.failed) == (230, 230, 0, 0)
            rows = task_rows(db_path)
            assert [r.id for r in rows] == ids
            assert {(r.state, r.attempts) for r in rows} == {("done", 1)}

    asyncio.run(scenario())


def test_a_closed_queue_refuses_work(config: QueueConfig, db_path: Path, clock: FakeClock) -> None:
    async def scenario() -> Task:
        queue = await TaskQueue(db_path, config, clock=clock).open()
        await queue.enqueue("noop")
        (task,) = await queue.claim("w1")
        await queue.close()
        await queue.close()  # idempotent
        with pytest.raises(QueueClosedError, match="closed"):
            await queue.enqueue("noop")
        with pytest.raises(QueueClosedError, match="closed"):
            await queue.claim("w1")
        return task

    task = asyncio.run(scenario())
    assert task_row(db_path, task.id).state == "running"
