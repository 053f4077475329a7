"""ClaimGroup: claims that wait for a shared connection go to it together, each its own.

Claims wait for the connection only when they make the trip to its thread, so every queue
here runs with ``dispatch=thread`` (the default runs a claim that fits inline on the event
loop, where it never waits for another)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from taskqueue import ClaimStyle, Dispatch, QueueConfig, QueueDatabaseError, TaskQueue
from taskqueue.store import Store
from tests.helpers.db import task_rows

THREAD = Dispatch.THREAD


@pytest.mark.parametrize("style", [ClaimStyle.RETURNING, ClaimStyle.IMMEDIATE])
def test_concurrent_claims_share_trips_and_keep_their_own_worker(
    db_path: Path, style: ClaimStyle
) -> None:
    # GIVEN 100 tasks and ten callers claiming five each at the same moment
    async def scenario() -> tuple[dict[str, list[int]], int, int]:
        async with TaskQueue(db_path, QueueConfig(claim_style=style, dispatch=THREAD)) as queue:
            await queue.enqueue_many([("noop", i) for i in range(100)])
            names = [f"w{i}" for i in range(10)]
            claimed = await asyncio.gather(*(queue.claim(name, 5) for name in names))
            by_worker = {
                name: [t.id for t in tasks] for name, tasks in zip(names, claimed, strict=True)
            }
            return by_worker, queue.stats.claim_trips, queue.stats.grouped_claims

    by_worker, trips, grouped = asyncio.run(scenario())
    # THEN every caller got five tasks no other caller got, stamped with its own name
    ids = [i for got in by_worker.values() for i in got]
    assert all(len(got) == 5 for got in by_worker.values())
    assert len(set(ids)) == 50
    rows = {r.id: r for r in task_rows(db_path)}
    for name, got in by_worker.items():
        assert {rows[i].worker for i in got} == {name}
        assert {rows[i].state for i in got} == {"running"}
    # AND the claims that waited for the first one went together
    assert trips < 10
    assert grouped >= 2


def test_acks_riding_on_grouped_claims_are_applied_per_caller(db_path: Path) -> None:
    # GIVEN three workers that each hold two tasks, and acks for them
    async def scenario() -> list[tuple[int, int]]:
        async with TaskQueue(db_path, QueueConfig(dispatch=THREAD)) as queue:
            await queue.enqueue_many([("noop", i) for i in range(20)])
            held = [await queue.claim(f"w{i}", 2) for i in range(3)]
            outcomes = await asyncio.gather(
                *(
                    queue.complete_and_claim([(t, {"by": i}) for t in tasks], f"w{i}", 3)
                    for i, tasks in enumerate(held)
                )
            )
            assert queue.stats.grouped_claims >= 2
            return [(applied, len(tasks)) for applied, tasks in outcomes]

    # WHEN they ack and claim again at the same moment
    outcomes = asyncio.run(scenario())
    # THEN each caller's two acks were applied and it got three new tasks
    assert outcomes == [(2, 3)] * 3
    rows = task_rows(db_path)
    assert [r.state for r in rows[:6]] == ["done"] * 6
    assert [r.result for r in rows[:6]] == ['{"by":0}'] * 2 + ['{"by":1}'] * 2 + ['{"by":2}'] * 2


def test_a_failed_group_raises_to_every_caller_and_the_queue_goes_on(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a group transaction that fails with a database error once
    real = Store.claim_group
    failures = iter([sqlite3.OperationalError("disk I/O error")])

    def failing_once(self: Store, requests: list, immediate: bool):  # type: ignore[no-untyped-def,type-arg]
        error = next(failures, None)
        if error is not None:
            raise error
        return real(self, requests, immediate)

    monkeypatch.setattr(Store, "claim_group", failing_once)

    async def scenario() -> tuple[list[object], int]:
        async with TaskQueue(db_path, QueueConfig(dispatch=THREAD)) as queue:
            await queue.enqueue_many([("noop", i) for i in range(10)])
            results = await asyncio.gather(
                *(queue.claim(f"w{i}", 1) for i in range(4)), return_exceptions=True
            )
            after = await queue.claim("late", 10)
            return list(results), len(after)

    results, after = asyncio.run(scenario())
    # THEN the first claim (sent alone) succeeded, every claim of the failed trip raised the
    # queue's database error, nothing they asked for was taken, and later claims work
    assert not isinstance(results[0], BaseException)
    failed = [r for r in results[1:] if isinstance(r, BaseException)]
    assert failed
    assert all(isinstance(r, QueueDatabaseError) for r in failed)
    assert "disk I/O error" in str(failed[0])
    assert after == 10 - sum(1 for r in results if not isinstance(r, BaseException))
