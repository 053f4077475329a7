"""No task lost, none completed twice: counted in the database and by the handlers.

Twenty async workers on one event loop, and eight worker processes, drain thousands of
tasks, on SQLite and on PostgreSQL. Afterwards the database is read with plain ``sqlite3``
or asyncpg: every task is ``done`` on its first attempt. The handler's own record of
executions says the same: each task ran once.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import pytest

from taskqueue import (
    ClaimStyle,
    ConnectionMode,
    Dispatch,
    EngineOptions,
    PgAcks,
    PgClaim,
    PoolResult,
    QueueConfig,
    TaskQueue,
    run_async_workers,
    run_process_workers,
)
from tests.helpers.db import task_rows
from tests.helpers.handlers import SPEC, read_logs

TASKS = 3000
DRAIN_DEADLINE_S = 120.0
PER_WORKER = ConnectionMode.PER_WORKER


def _assert_each_done_once(db_path: Path | str, ids: list[int]) -> None:
    rows = task_rows(db_path)
    assert [r.id for r in rows] == ids
    states = Counter((r.state, r.attempts) for r in rows)
    assert states == {("done", 1): len(ids)}, states
    assert all(r.result == str(r.id) for r in rows)


THREAD = Dispatch.THREAD
AUTO = Dispatch.AUTO


@pytest.mark.parametrize(
    ("connection", "style", "ack_batch", "dispatch"),
    [
        # On their own threads, twenty connections' writes collide on SQLite's lock.
        pytest.param(PER_WORKER, ClaimStyle.RETURNING, 1, THREAD, id="per-worker-returning"),
        pytest.param(PER_WORKER, ClaimStyle.IMMEDIATE, 1, THREAD, id="per-worker-immediate"),
        # Acks that ride on the next claim (complete_and_claim) under contention.
        pytest.param(PER_WORKER, ClaimStyle.RETURNING, 10, THREAD, id="per-worker-returning-ack10"),
        pytest.param(PER_WORKER, ClaimStyle.IMMEDIATE, 10, THREAD, id="per-worker-immediate-ack10"),
        # Inline, the twenty connections take turns on the event loop's thread.
        pytest.param(PER_WORKER, ClaimStyle.RETURNING, 10, AUTO, id="per-worker-inline"),
        pytest.param(ConnectionMode.SHARED, ClaimStyle.RETURNING, 1, AUTO, id="shared-returning"),
        pytest.param(ConnectionMode.SHARED, ClaimStyle.IMMEDIATE, 1, AUTO, id="shared-immediate"),
        pytest.param(ConnectionMode.SHARED, ClaimStyle.RETURNING, 1, THREAD, id="shared-thread"),
    ],
)
def test_twenty_async_workers_run_every_task_exactly_once(
    db_path: Path,
    executed: list[tuple[int, int, str]],
    connection: ConnectionMode,
    style: ClaimStyle,
    ack_batch: int,
    dispatch: Dispatch,
) -> None:
    config = QueueConfig(
        connection=connection, claim_style=style, ack_batch=ack_batch, dispatch=dispatch
    )
    result = _drain_with_twenty_workers(db_path, config, executed)
    if connection is PER_WORKER and dispatch is THREAD and ack_batch == 1:
        # Twenty writers on one file did collide: the queue retried SQLITE_BUSY itself. (With
        # acks riding on claims there are a tenth as many writes, and on a loaded machine the
        # threads can take turns without one collision: once in CI, 0 retries.)
        assert sum(result.stats.busy_retries.values()) > 0


RIDE, PARALLEL, BEHIND = PgAcks.RIDE, PgAcks.PARALLEL, PgAcks.BEHIND


@pytest.mark.parametrize(
    ("claim", "ack_batch", "wakeup", "pool", "acks"),
    [
        pytest.param(PgClaim.SKIP_LOCKED, 1, "notify", 10, RIDE, id="skip-locked"),
        pytest.param(PgClaim.SKIP_LOCKED, 10, "notify", 10, RIDE, id="skip-locked-ack10"),
        # Twenty engines on five connections: claims wait for a connection of the pool.
        pytest.param(PgClaim.SKIP_LOCKED, 10, "poll:10", 5, RIDE, id="skip-locked-pool5-poll"),
        # The naive claim waits on other claims' row locks, then finds their rows taken.
        pytest.param(PgClaim.FOR_UPDATE, 1, "notify", 10, RIDE, id="for-update"),
        # A connection of its own per engine (connection=per-worker), as each one would have
        # on its own host.
        pytest.param(PgClaim.SKIP_LOCKED, 10, "notify", 0, RIDE, id="per-worker"),
        # Acks beside the claims, on a second connection, or behind them, not waited for.
        pytest.param(PgClaim.SKIP_LOCKED, 10, "notify", 10, PARALLEL, id="acks-parallel"),
        pytest.param(PgClaim.SKIP_LOCKED, 10, "notify", 10, BEHIND, id="acks-behind"),
        pytest.param(PgClaim.SKIP_LOCKED, 1, "poll:10", 10, BEHIND, id="acks-behind-ack1-poll"),
    ],
)
def test_twenty_async_workers_on_postgres_run_every_task_exactly_once(
    pg_dsn: str,
    executed: list[tuple[int, int, str]],
    claim: PgClaim,
    ack_batch: int,
    wakeup: str,
    pool: int,
    acks: PgAcks,
) -> None:
    config = QueueConfig(
        pg_claim=claim,
        ack_batch=ack_batch,
        wakeup=wakeup,
        pg_pool=pool or 1,
        connection=ConnectionMode.PER_WORKER if pool == 0 else ConnectionMode.SHARED,
        pg_acks=acks,
    )
    _drain_with_twenty_workers(pg_dsn, config, executed)


def _drain_with_twenty_workers(
    db_path: Path | str, config: QueueConfig, executed: list[tuple[int, int, str]]
) -> PoolResult:
    """Twenty engines drain TASKS tasks fed in chunks; checks each ran and was done once."""

    async def scenario() -> tuple[list[int], PoolResult]:
        stop = asyncio.Event()
        async with TaskQueue(db_path, config) as queue:
            # GIVEN twenty workers already waiting, and a producer that feeds them in chunks
            workers = asyncio.ensure_future(
                run_async_workers(queue, 20, EngineOptions(handlers=SPEC), stop=stop)
            )
            ids: list[int] = []
            for start in range(0, TASKS, 100):
                ids += await queue.enqueue_many([("record", {}) for _ in range(start, start + 100)])
                await asyncio.sleep(0)
            # WHEN they have drained the queue (the deadline only turns a hang into a failure)
            deadline = time.monotonic() + DRAIN_DEADLINE_S
            while not await queue.is_drained():
                assert time.monotonic() < deadline, f"not drained: {await queue.counts()}"
                await asyncio.sleep(0.01)
            stop.set()
            return ids, await workers

    ids, result = asyncio.run(scenario())
    # THEN the database says: every task done, on its first attempt
    _assert_each_done_once(db_path, ids)
    # AND the handler ran each task once
    runs = Counter(task_id for task_id, _, _ in executed)
    assert sorted(runs) == ids
    assert set(runs.values()) == {1}
    # AND the engines' own counts agree, with no stale or failed acks
    total = result.total
    assert len(result.engines) == 20
    assert (total.claimed, total.completed, total.stale, total.failed) == (TASKS, TASKS, 0, 0)
    assert result.stats.stale_acks == 0
    return result


@pytest.mark.slow
def test_eight_worker_processes_run_every_task_exactly_once(
    queue_target: Path | str, tmp_path: Path, importable_tests: str
) -> None:
    db_path = queue_target
    log = tmp_path / "executions"
    log.mkdir()
    config = QueueConfig(claim_batch=5, ack_batch=5)

    async def fill() -> list[int]:
        async with TaskQueue(db_path, config) as queue:
            return await queue.enqueue_many([("record", {"log": str(log)}) for _ in range(TASKS)])

    ids = asyncio.run(fill())
    # WHEN eight processes drain it
    result = run_process_workers(db_path, config, 8, EngineOptions(handlers=importable_tests))
    # THEN every process reported, and together they completed each task once
    assert [e.name for e in result.engines] == [f"w{i}" for i in range(8)]
    total = result.total
    assert (total.completed, total.stale, total.failed) == (TASKS, 0, 0)
    _assert_each_done_once(db_path, ids)
    lines = read_logs(log)
    runs = Counter(line.task_id for line in lines)
    assert sorted(runs) == ids
    assert set(runs.values()) == {1}
    # Executions were recorded by the worker processes, not by this one.
    assert len({line.pid for line in lines}) >= 2
    assert {line.worker for line in lines} <= {e.name for e in result.engines}


@pytest.mark.slow
def test_four_processes_of_five_engines_run_every_task_exactly_once(
    queue_target: Path | str, tmp_path: Path, importable_tests: str
) -> None:
    # GIVEN 1,000 tasks and 20 engines over 4 processes, 5 sharing each process's queue
    log = tmp_path / "executions"
    log.mkdir()
    config = QueueConfig(claim_batch=5, ack_batch=5)
    tasks = 1000

    async def fill() -> list[int]:
        async with TaskQueue(queue_target, config) as queue:
            return await queue.enqueue_many([("record", {"log": str(log)}) for _ in range(tasks)])

    ids = asyncio.run(fill())
    # WHEN they drain it
    options = EngineOptions(handlers=importable_tests, engines=5)
    result = run_process_workers(queue_target, config, 4, options)
    # THEN every engine of every process reported under its own name, and together they
    # completed each task once
    assert [e.name for e in result.engines] == [f"w{p}.{e}" for p in range(4) for e in range(5)]
    total = result.total
    assert (total.completed, total.stale, total.failed) == (tasks, 0, 0)
    _assert_each_done_once(queue_target, ids)
    lines = read_logs(log)
    runs = Counter(line.task_id for line in lines)
    assert sorted(runs) == ids
    assert set(runs.values()) == {1}
    assert {line.worker for line in lines} <= {e.name for e in result.engines}
    # engines of one process worked side by side
    worked = {line.worker for line in lines}
    assert any(sum(w.startswith(f"w{p}.") for w in worked) >= 2 for p in range(4))
