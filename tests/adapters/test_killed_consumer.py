"""A consumer SIGKILLed after it claimed a task and before it completed it.

The consumer is a real child process driving the adapter's public primitives; it claims one
task, says so, and is killed where it stands. What happens next is each queue's delivery
guarantee, shown next to its figures in the comparison: huey dequeues by deleting, so the
task is gone (at-most-once); our queue's lease expires and the task is reclaimed and completed
once; persist-queue puts it back only when a queue object is opened again (auto_resume).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from taskqueue import QueueConfig, TaskQueue
from workloads.adapters.base import QueueAdapter
from workloads.adapters.catalog import contenders
from workloads.adapters.specs import HUEY, PERSIST_QUEUE, TASKQUEUE
from workloads.tasks import payload

PROJECT_ROOT = Path(__file__).resolve().parents[2]
LEASE_S = 0.5
CONSUMER = """
import asyncio, sys, time
from pathlib import Path
from taskqueue import QueueConfig
from workloads.adapters.catalog import contenders

async def main():
    contender = contenders(QueueConfig(lease_s=float(sys.argv[3])))[sys.argv[1]]
    adapter = await contender.open(Path(sys.argv[2]))
    print(len(await adapter.claim(1)), flush=True)
    time.sleep(600)  # killed here, with the task claimed and not completed

asyncio.run(main())
"""


def opened(name: str, folder: Path) -> QueueAdapter:
    async def main() -> QueueAdapter:
        return await contenders(QueueConfig(lease_s=LEASE_S))[name].open(folder)

    return asyncio.run(main())


def enqueue_one(name: str, folder: Path) -> object:
    async def main() -> object:
        adapter = await contenders(QueueConfig(lease_s=LEASE_S))[name].open(folder)
        try:
            return await adapter.enqueue(payload("noop", 0))
        finally:
            await adapter.close()

    return asyncio.run(main())


def kill_after_claim(name: str, folder: Path) -> None:
    """Run the consumer until it has claimed one task, then SIGKILL it."""
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-c", CONSUMER, name, str(folder), str(LEASE_S)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "1", "the consumer claimed nothing"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL


def claim_and_complete(name: str, folder: Path, ref: object) -> tuple[int, str | None]:
    async def main() -> tuple[int, str | None]:
        adapter = await contenders(QueueConfig(lease_s=LEASE_S))[name].open(folder)
        try:
            claimed = await adapter.claim(5)
            await adapter.complete(claimed)
            state = await adapter.status(ref) if adapter.spec.has_status else None
            return len(claimed), state
        finally:
            await adapter.close()

    return asyncio.run(main())


@pytest.mark.slow
def test_huey_loses_the_task_of_a_consumer_killed_after_dequeue(tmp_path: Path) -> None:
    # GIVEN one task in huey, and a consumer that dequeued it
    ref = enqueue_one("huey", tmp_path)
    # WHEN the consumer is killed before it ran the task
    kill_after_claim("huey", tmp_path)
    # THEN no consumer will ever get it, and it never gets a result: the task is lost
    assert claim_and_complete("huey", tmp_path, ref) == (0, "unknown")
    assert not HUEY.exactly_once


@pytest.mark.slow
def test_our_queue_reclaims_the_task_of_a_killed_worker_and_completes_it_once(
    tmp_path: Path,
) -> None:
    # GIVEN one task in our queue, and a worker that claimed it with a 0.5 s lease
    ref = enqueue_one("taskqueue", tmp_path)
    kill_after_claim("taskqueue", tmp_path)

    async def reclaim() -> tuple[int, int]:
        async with TaskQueue(tmp_path / "taskqueue.db", QueueConfig()) as queue:
            await asyncio.sleep(LEASE_S * 2)
            # WHEN the lease has expired and the queue sweeps expired leases
            reclaimed = await queue.reclaim_expired()
            status = await queue.status(int(str(ref)))
            assert status is not None
            return reclaimed.requeued, status.attempts

    requeued, attempts = asyncio.run(reclaim())
    # THEN the task is back, another worker completes it, and it was run once more only
    assert requeued == 1
    assert attempts == 1
    assert claim_and_complete("taskqueue", tmp_path, ref) == (1, "done")
    assert TASKQUEUE.exactly_once


@pytest.mark.slow
def test_persist_queue_gives_the_task_back_only_when_reopened(tmp_path: Path) -> None:
    # GIVEN one task in persist-queue, and a consumer killed after it got it
    enqueue_one("persist-queue", tmp_path)
    live = opened("persist-queue", tmp_path)  # a consumer that stays open throughout
    kill_after_claim("persist-queue", tmp_path)
    # THEN a consumer that was already open does not see it again ...
    assert len(asyncio.run(live.claim(5))) == 0
    # ... and a queue opened afterwards (auto_resume) hands it out again
    assert claim_and_complete("persist-queue", tmp_path, None)[0] == 1
    asyncio.run(live.close())
    assert not PERSIST_QUEUE.exactly_once
