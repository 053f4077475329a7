"""The deferred claim keeps a transaction open across awaits; nothing else may join it.

Any other operation on the same connection that ran inside that transaction would be
undone if the claim rolled back (cancelled, or failed), after having reported success.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from taskqueue import ClaimStyle, ConnectionMode, QueueConfig, Task, TaskQueue, TaskState
from tests.helpers.clock import FakeClock
from tests.helpers.db import task_rows


async def _beside_a_cancelled_claim(
    queue: TaskQueue, operation: Callable[[], Awaitable[Any]]
) -> Any:
    """Start a deferred claim, run ``operation`` while it is open, then cancel the claim."""
    claim = asyncio.ensure_future(queue.claim("w1"))
    await asyncio.sleep(0)  # the claim sends BEGIN and waits for it
    outcome = await operation()
    claim.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await claim
    return outcome


@pytest.mark.parametrize("connection", list(ConnectionMode))
def test_an_ack_made_during_a_cancelled_claim_stays(
    db_path: Path, clock: FakeClock, connection: ConnectionMode
) -> None:
    config = QueueConfig(connection=connection, claim_style=ClaimStyle.DEFERRED)

    async def scenario() -> Task:
        async with TaskQueue(db_path, config, clock=clock) as queue:
            await queue.enqueue_many([("noop", 1), ("noop", 2)])
            (task,) = await queue.claim("w1")
            # WHEN the worker's ack lands while its next claim is open, then that claim is
            # cancelled
            applied = await _beside_a_cancelled_claim(queue, lambda: queue.complete(task, "ok"))
            # THEN the ack that reported success is in the database
            assert applied is True
            found = await queue.status(task.id)
            assert found is not None
            assert (found.state, found.result) == (TaskState.DONE, "ok")
            return task

    task = asyncio.run(scenario())
    assert task_rows(db_path)[task.id - 1].state == "done"


def test_an_enqueue_made_during_a_cancelled_claim_stays(db_path: Path, clock: FakeClock) -> None:
    config = QueueConfig(connection=ConnectionMode.SHARED, claim_style=ClaimStyle.DEFERRED)

    async def scenario() -> int:
        async with TaskQueue(db_path, config, clock=clock) as queue:
            await queue.enqueue("noop", "first")
            task_id: int = await _beside_a_cancelled_claim(
                queue, lambda: queue.enqueue("noop", "second")
            )
            assert await queue.status(task_id) is not None
            return task_id

    task_id = asyncio.run(scenario())
    assert [r.id for r in task_rows(db_path)] == [1, task_id]


def test_a_cancelled_claim_leaves_its_tasks_pending(db_path: Path, clock: FakeClock) -> None:
    config = QueueConfig(claim_style=ClaimStyle.DEFERRED)

    async def scenario() -> None:
        async with TaskQueue(db_path, config, clock=clock) as queue:
            await queue.enqueue_many([("noop", i) for i in range(3)])
            claim = asyncio.ensure_future(queue.claim("w1", 3))
            await asyncio.sleep(0)
            claim.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await claim
            # The transaction was rolled back: everything is claimable again.
            assert len(await queue.claim("w2", 3)) == 3

    asyncio.run(scenario())
    assert {(r.state, r.worker) for r in task_rows(db_path)} == {("running", "w2")}
