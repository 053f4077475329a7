"""How a worker engine's acks travel beside its claims on PostgreSQL (``pg_acks``).

``ride``: in the claim's own statement; ``parallel``: a statement of their own on a second
connection while the claim runs; ``behind``: a write the engine does not wait for. Each must
complete every task once and count it only once its ack has committed; a failure on either
side must reach the caller, never be dropped.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from taskqueue import (
    InvalidArgumentError,
    PgAcks,
    QueueConfig,
    QueueDatabaseError,
    TaskQueue,
    TaskState,
    WorkerEngine,
    pgsql,
)
from taskqueue.config import PgClaim
from taskqueue.pgqueue import PgTaskQueue
from tests.helpers.db import fetch

TASKS = 300


@pytest.mark.parametrize("acks", list(PgAcks))
def test_each_way_of_sending_acks_completes_every_task_once(pg_dsn: str, acks: PgAcks) -> None:
    # GIVEN five engines on one queue, sending their acks the given way
    config = QueueConfig(pg_acks=acks, claim_batch=10, ack_batch=10, capture_sql=True)

    async def scenario() -> tuple[int, list[str]]:
        async with TaskQueue(pg_dsn, config) as queue:
            await queue.enqueue_many([("noop", {"i": i}) for i in range(TASKS)])
            # WHEN they drain it
            engines = [WorkerEngine(f"w{i}", queue) for i in range(5)]
            results = await asyncio.gather(*(e.run_until_empty() for e in engines))
            return sum(r.completed for r in results), [s.sql for s in queue.stats.sql]

    completed, statements = asyncio.run(scenario())
    # THEN every task is done once, and the engines counted each once
    assert completed == TASKS
    assert fetch(pg_dsn, "SELECT state, attempts, count(*) FROM tasks GROUP BY 1, 2") == [
        (TaskState.DONE.value, 1, TASKS)
    ]
    # ... with the acks in the claims' statements only when they ride on them
    riding = statements.count(pgsql.claim_with_acks_statement(PgClaim.SKIP_LOCKED))
    alone = statements.count(pgsql.COMPLETE_MANY)
    if acks is PgAcks.RIDE:
        assert riding > 0
    else:
        assert riding == 0
        assert alone > 0


def _failing(error: Exception) -> Any:
    async def fail(*args: object) -> object:
        raise error

    return fail


# Either side's failure is raised, and the other side's commit stands: acks that landed
# beside a failed claim are done; the tasks a claim leased beside failed acks stay leased to
# the worker, with the unacked ones, until their lease ends (no task is lost).
SIDES = [
    pytest.param("claim", [(TaskState.DONE.value, 2), (TaskState.PENDING.value, 2)], id="claim"),
    pytest.param("complete_acks", [(TaskState.RUNNING.value, 4)], id="acks"),
]


@pytest.mark.parametrize(("side", "states"), SIDES)
def test_a_side_that_fails_beside_the_other_raises_and_the_other_stands(
    pg_dsn: str, side: str, states: list[tuple[str, int]]
) -> None:
    async def scenario() -> None:
        async with TaskQueue(pg_dsn, QueueConfig(pg_acks=PgAcks.PARALLEL)) as queue:
            assert isinstance(queue, PgTaskQueue)
            await queue.enqueue_many([("noop", {}) for _ in range(4)])
            first = await queue.claim("w1", 2)
            # GIVEN one of the two statements failing on the server
            setattr(queue._pg, side, _failing(asyncpg.DataError(f"{side} broke")))
            # WHEN the worker acks its tasks and claims more beside them
            with pytest.raises(QueueDatabaseError, match=f"{side} broke"):
                await queue.complete_and_claim([(t, None) for t in first], "w1", 2)

    asyncio.run(scenario())
    # THEN the call waited for both: the other side's commit is there
    assert fetch(pg_dsn, "SELECT state, count(*) FROM tasks GROUP BY 1 ORDER BY 1") == states
    running = fetch(pg_dsn, "SELECT DISTINCT worker FROM tasks WHERE state = 'running'")
    assert running in ([], [("w1",)])


def test_an_ack_write_behind_the_claims_that_fails_stops_the_engine_with_its_error(
    pg_dsn: str,
) -> None:
    async def scenario() -> None:
        config = QueueConfig(pg_acks=PgAcks.BEHIND, claim_batch=5, ack_batch=5)
        async with TaskQueue(pg_dsn, config) as queue:
            assert isinstance(queue, PgTaskQueue)
            await queue.enqueue_many([("noop", {}) for _ in range(20)])
            # GIVEN ack writes that fail on the server
            queue._pg.complete_acks = _failing(asyncpg.DataError("acks broke"))  # type: ignore[method-assign]
            # WHEN an engine drains the queue, THEN the write's error reaches its caller
            with pytest.raises(QueueDatabaseError, match="acks broke"):
                await WorkerEngine("w1", queue).run_until_empty()

    asyncio.run(scenario())


def test_acks_behind_a_stopped_engines_claims_have_landed_when_it_returns(pg_dsn: str) -> None:
    config = QueueConfig(pg_acks=PgAcks.BEHIND, claim_batch=10, ack_batch=10)

    async def scenario() -> int:
        async with TaskQueue(pg_dsn, config) as queue:
            await queue.enqueue_many([("noop", {}) for _ in range(TASKS)])
            stop = asyncio.Event()
            engine = WorkerEngine("w1", queue)
            running = asyncio.ensure_future(engine.run(stop))
            while (await queue.counts())[TaskState.DONE] < TASKS // 3:
                await asyncio.sleep(0.005)
            # WHEN the engine is stopped mid-run
            stop.set()
            stats = await running
            # THEN what it counted completed is what the database holds as done
            assert (await queue.counts())[TaskState.DONE] == stats.completed
            return stats.completed

    assert asyncio.run(scenario()) >= TASKS // 3


def test_a_way_of_sending_acks_that_is_no_choice_is_refused_with_the_choices() -> None:
    assert QueueConfig().pg_acks is PgAcks.RIDE
    with pytest.raises(InvalidArgumentError, match=r"pg_acks.*ride.*parallel.*behind"):
        QueueConfig.parse("pg_acks=later")
    assert QueueConfig.parse("pg_acks=behind").pg_acks is PgAcks.BEHIND


RESULTS = [
    {"quote": 'say "hi"', "backslash": "a\\b", "braces": "{1,2}", "comma": "x,y"},
    ["ünïcödé", "😀", "\u0001 control", None, True, 1e300, -0.5],
    "a string result",
    12345678901234567890,
    None,
]
"""Results whose JSON text holds what an array literal or a JSON split could mangle."""


@pytest.mark.parametrize("riding", [False, True], ids=["complete_many", "riding-on-a-claim"])
def test_acked_results_are_stored_as_the_json_they_were_given(pg_dsn: str, riding: bool) -> None:
    # GIVEN claimed tasks, each acked with one of the results above
    async def scenario() -> list[Any]:
        async with TaskQueue(pg_dsn) as queue:
            ids = await queue.enqueue_many([("noop", {"i": i}) for i in range(len(RESULTS))])
            tasks = sorted(await queue.claim("w", len(RESULTS)), key=lambda t: t.id)
            done = list(zip(tasks, RESULTS, strict=True))
            # WHEN they are acked in one statement, alone or riding on the next claim
            if riding:
                applied, more = await queue.complete_and_claim(done, "w", 1)
                assert more == []
            else:
                applied = await queue.complete_many(done)
            assert applied == len(RESULTS)
            found = [await queue.status(task_id) for task_id in ids]
            return [status.result for status in found if status is not None]

    # THEN each task holds its own result, whole
    assert asyncio.run(scenario()) == RESULTS


def test_ack_batches_are_array_literals_and_a_json_array_in_the_acks_order() -> None:
    acks = [(3, 2**63 - 1, '{"a": "}"}'), (1, 7, "null"), (2, 9, '"x,y"')]
    ((ids, tokens, results), count), *rest = pgsql.ack_batches(acks)
    assert (ids, tokens, count, rest) == ("{3,1,2}", f"{{{2**63 - 1},7,9}}", 3, [])
    assert results == '[{"a": "}"},null,"x,y"]'
