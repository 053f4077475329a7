"""WorkerEngine: graceful stop, concurrent handlers, wake-up by notification or polling."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from taskqueue import (
    EngineStats,
    InvalidArgumentError,
    QueueConfig,
    Task,
    TaskQueue,
    TaskState,
    Wakeup,
    WorkerEngine,
)
from tests.helpers.clock import FakeClock
from tests.helpers.db import task_rows


async def _until(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.005)


def test_stop_finishes_the_claimed_batch_and_flushes_its_acks(db_path: Path) -> None:
    # Acks are buffered (ack_batch 100), so only the graceful stop can write them; a fixed
    # claim size (no budget) makes the first claim take all five.
    config = QueueConfig(claim_batch=5, ack_batch=100, claim_budget_ms=0)
    ran: list[int] = []

    async def scenario() -> EngineStats:
        stop = asyncio.Event()

        def work(task: Task) -> int:
            ran.append(task.id)
            stop.set()  # asked to stop during the first task of the batch
            return task.id

        async with TaskQueue(db_path, config) as queue:
            await queue.enqueue_many([("work", i) for i in range(20)])
            return await WorkerEngine("w1", queue, {"work": work}).run(stop)

    stats = asyncio.run(scenario())
    rows = task_rows(db_path)
    # THEN the five claimed tasks ran and are done; nothing else was claimed
    assert ran == [1, 2, 3, 4, 5]
    assert [r.state for r in rows] == ["done"] * 5 + ["pending"] * 15
    assert [r.result for r in rows[:5]] == ["1", "2", "3", "4", "5"]
    assert {r.attempts for r in rows[5:]} == {0}
    assert (stats.claimed, stats.completed, stats.stale) == (5, 5, 0)


def test_stop_waits_for_running_handlers(db_path: Path) -> None:
    config = QueueConfig(ack_batch=100)
    started: list[int] = []

    async def scenario() -> EngineStats:
        stop = asyncio.Event()
        release = asyncio.Event()

        async def work(task: Task) -> str:
            started.append(task.id)
            await release.wait()
            return "finished"

        async with TaskQueue(db_path, config) as queue:
            await queue.enqueue_many([("work", i) for i in range(10)])
            engine = WorkerEngine("w1", queue, {"work": work}, concurrency=3)
            running = asyncio.ensure_future(engine.run(stop))
            await _until(lambda: len(started) == 3, "three handlers to start")
            # WHEN asked to stop while three handlers are mid-task
            stop.set()
            await asyncio.sleep(0.05)
            assert not running.done()
            release.set()
            return await running

    stats = asyncio.run(scenario())
    rows = task_rows(db_path)
    # THEN the three finished and were acked; the rest were never claimed
    assert [r.state for r in rows] == ["done"] * 3 + ["pending"] * 7
    assert stats.completed == 3
    assert sorted(started) == [1, 2, 3]


@pytest.mark.parametrize("concurrency", [1, 4])
def test_concurrency_bounds_simultaneous_handlers(db_path: Path, concurrency: int) -> None:
    active = 0
    most = 0

    async def work(task: Task) -> None:
        nonlocal active, most
        active += 1
        most = max(most, active)
        await asyncio.sleep(0.002)
        active -= 1

    async def scenario() -> EngineStats:
        async with TaskQueue(db_path) as queue:
            await queue.enqueue_many([("work", i) for i in range(40)])
            engine = WorkerEngine("w1", queue, {"work": work}, concurrency=concurrency)
            return await engine.run_until_empty()

    stats = asyncio.run(scenario())
    assert most == concurrency
    assert stats.completed == 40
    assert {r.state for r in task_rows(db_path)} == {"done"}


def test_an_idle_engine_wakes_on_an_in_process_enqueue(db_path: Path) -> None:
    # The fallback interval (100 s) is far longer than the test may take: only the
    # notification from enqueue can wake the engine in time.
    config = QueueConfig(wakeup=Wakeup("notify", 100_000.0))

    async def scenario() -> EngineStats:
        stop = asyncio.Event()
        async with TaskQueue(db_path, config) as queue:
            engine = WorkerEngine("w1", queue, reclaim_interval=1000.0)
            running = asyncio.ensure_future(engine.run(stop))
            await _until(lambda: engine.stats.empty_claims >= 1, "the engine to go idle")
            await asyncio.sleep(0.2)  # it is now waiting for work
            task_id = await queue.enqueue("noop")
            found = await queue.poll(task_id, timeout=30.0)
            assert found.state is TaskState.DONE
            stop.set()
            return await running

    stats = asyncio.run(scenario())
    # One empty claim before the enqueue, one after the task: no wake-up without work.
    assert (stats.empty_claims, stats.completed) == (2, 1)


def test_an_idle_engine_polls_for_work(db_path: Path) -> None:
    config = QueueConfig(wakeup=Wakeup("poll", 5.0))

    async def scenario() -> EngineStats:
        stop = asyncio.Event()
        async with TaskQueue(db_path, config) as queue:
            engine = WorkerEngine("w1", queue)
            running = asyncio.ensure_future(engine.run(stop))
            await _until(lambda: engine.stats.empty_claims >= 3, "a few empty polls")
            task_id = await queue.enqueue("noop")
            assert (await queue.poll(task_id, timeout=30.0)).state is TaskState.DONE
            stop.set()
            return await running

    stats = asyncio.run(scenario())
    assert stats.completed == 1
    assert stats.empty_claims >= 3


def test_work_from_another_queue_instance_is_found_by_the_fallback_interval(
    db_path: Path,
) -> None:
    # Another TaskQueue on the same file stands for another process: no notification.
    config = QueueConfig(wakeup=Wakeup("notify", 10.0))

    async def scenario() -> EngineStats:
        stop = asyncio.Event()
        async with TaskQueue(db_path, config) as queue, TaskQueue(db_path) as producer:
            engine = WorkerEngine("w1", queue)
            running = asyncio.ensure_future(engine.run(stop))
            await _until(lambda: engine.stats.empty_claims >= 1, "the engine to go idle")
            task_id = await producer.enqueue("noop")
            assert (await producer.poll(task_id, timeout=30.0)).state is TaskState.DONE
            stop.set()
            return await running

    assert asyncio.run(scenario()).completed == 1


def test_ack_batching_writes_every_completion(db_path: Path) -> None:
    config = QueueConfig(claim_batch=7, ack_batch=10)

    async def scenario() -> EngineStats:
        async with TaskQueue(db_path, config) as queue:
            await queue.enqueue_many([("noop", i) for i in range(101)])
            return await WorkerEngine("w1", queue).run_until_empty()

    stats = asyncio.run(scenario())
    assert (stats.claimed, stats.completed, stats.stale) == (101, 101, 0)
    assert {(r.state, r.attempts) for r in task_rows(db_path)} == {("done", 1)}


def test_run_until_empty_reclaims_a_lease_left_by_another_worker(db_path: Path) -> None:
    # w1's own leases last 2 s (it sweeps every half second); the abandoned one 0.2 s. With
    # 0.2 s for both, a loaded machine once held w1 past its own lease: attempt 3, not 2.
    config = QueueConfig(lease_s=2.0)

    async def scenario() -> EngineStats:
        async with TaskQueue(db_path, config) as queue:
            task_id = await queue.enqueue("noop")
            # a worker that never comes back
            (abandoned,) = await queue.claim("gone", lease=0.2)
            stats = await WorkerEngine("w1", queue).run_until_empty()
            assert await queue.complete(abandoned) is False
            found = await queue.status(task_id)
            assert found is not None
            assert (found.state, found.attempts, found.worker) == (TaskState.DONE, 2, "w1")
            return stats

    stats = asyncio.run(scenario())
    assert (stats.reclaimed, stats.completed) == (1, 1)


def test_handlers_can_be_named_by_module(db_path: Path) -> None:
    async def scenario() -> EngineStats:
        async with TaskQueue(db_path) as queue:
            await queue.enqueue_many([("record", {}), ("record", {})])
            return await WorkerEngine(
                "w1", queue, "tests.helpers.handlers:HANDLERS"
            ).run_until_empty()

    assert asyncio.run(scenario()).completed == 2


@pytest.mark.parametrize(
    ("handlers", "named"),
    [
        ("tests.helpers.no_such_module:HANDLERS", "cannot import"),
        ("tests.helpers.handlers:NOTHING", "cannot import"),
        ("tests.helpers.handlers", "expected 'builtin' or 'package.module:attribute'"),
        ("tests.helpers.handlers:SPEC", "is not a mapping"),
    ],
)
def test_unresolvable_handlers_are_refused(db_path: Path, handlers: str, named: str) -> None:
    async def scenario() -> None:
        async with TaskQueue(db_path) as queue:
            with pytest.raises(InvalidArgumentError, match=named):
                WorkerEngine("w1", queue, handlers)

    asyncio.run(scenario())


def test_concurrency_must_be_positive(db_path: Path) -> None:
    async def scenario() -> None:
        async with TaskQueue(db_path) as queue:
            with pytest.raises(InvalidArgumentError, match="concurrency=0"):
                WorkerEngine("w1", queue, concurrency=0)

    asyncio.run(scenario())


def _drain(
    db_path: Path, config: QueueConfig, handler: Callable[[Task], object], n: int
) -> EngineStats:
    async def scenario() -> EngineStats:
        async with TaskQueue(db_path, config) as queue:
            await queue.enqueue_many([("work", i) for i in range(n)])
            return await WorkerEngine("w1", queue, {"work": handler}).run_until_empty()

    return asyncio.run(scenario())


def test_cheap_tasks_are_claimed_in_full_batches(db_path: Path) -> None:
    # GIVEN 300 tasks that take microseconds and a 10 ms claim budget
    config = QueueConfig(claim_batch=100, claim_budget_ms=10)
    # WHEN one engine drains them
    stats = _drain(db_path, config, lambda task: None, 300)
    # THEN after the first, measuring claim of one task, claims take (nearly) whole batches
    assert stats.completed == 300
    assert stats.claims - stats.empty_claims <= 6, stats


@pytest.mark.parametrize(
    ("claim_batch", "budget_ms", "claims"),
    [
        pytest.param(100, 10, 8, id="budget: one at a time"),
        pytest.param(4, 0, 2, id="no budget: whole batches"),
    ],
)
def test_slow_tasks_are_claimed_by_the_budget(
    db_path: Path, claim_batch: int, budget_ms: float, claims: int
) -> None:
    # GIVEN tasks that each take 20 ms, longer than a whole 10 ms claim budget
    config = QueueConfig(claim_batch=claim_batch, claim_budget_ms=budget_ms)

    async def slow(task: Task) -> None:
        await asyncio.sleep(0.02)

    # WHEN one engine drains eight of them
    stats = _drain(db_path, config, slow, 8)
    # THEN with a budget it claims one at a time (no claim holds work another worker could
    # run now); without one, it claims claim_batch each time
    assert stats.completed == 8
    assert stats.claims - stats.empty_claims == claims, stats


def test_a_buffered_task_whose_lease_ran_out_is_left_to_the_sweep(db_path: Path) -> None:
    # GIVEN three tasks claimed at once with a 1 s lease, and a first task that takes 2 s of
    # the queue's clock (so the other two wait in the buffer past their lease)
    clock = FakeClock()
    config = QueueConfig(claim_batch=3, claim_budget_ms=0, lease_s=1.0)
    runs: list[tuple[int, int]] = []

    def work(task: Task) -> int:
        runs.append((task.id, task.attempts))
        if task.id == 1:
            clock.advance(2.0)
        return task.id

    async def scenario() -> EngineStats:
        async with TaskQueue(db_path, config, clock=clock) as queue:
            await queue.enqueue_many([("work", i) for i in range(3)])
            engine = WorkerEngine("w1", queue, {"work": work}, reclaim_interval=0.05)
            return await engine.run_until_empty()

    stats = asyncio.run(scenario())
    # THEN the engine does not run the two it no longer holds; the sweep returns them and
    # they run once each, on their second claim
    assert stats.expired == 2
    assert sorted(runs) == [(1, 1), (2, 2), (3, 2)]
    assert [r.state for r in task_rows(db_path)] == ["done"] * 3
    assert stats.completed == 3


def test_claim_sizes_follow_the_budget_and_never_collapse_on_slow_statements() -> None:
    from taskqueue.worker import _ClaimSizer

    # GIVEN a 10 ms budget, batches of at most 100, and an engine whose tasks take 20 us
    sizer = _ClaimSizer(0.010, 100)
    assert sizer.size(engines=1, shared=True) == 1  # nothing measured yet
    sizer.claimed(0.0, 10)
    sizer.ran_out(0.0002)  # 10 tasks in 0.2 ms of its own time
    # THEN alone it claims whole batches; with 20 engines on the loop, its share of 10 ms
    assert sizer.size(engines=1, shared=True) == 100
    assert sizer.size(engines=20, shared=False) == 25
    # WHEN a shared connection's cycle (claim to claim) is 1 ms per task: SQL dominates
    sizer.claimed(0.010, 10)
    assert sizer.size(engines=20, shared=True) == 10
    # WHEN statements are so slow the cycle is 100 ms per task, claims shrink at most 4x
    sizer.claimed(2.0, 10)
    sizer.claimed(4.0, 10)
    assert sizer.size(engines=20, shared=True) == 25 // 4


def test_every_kind_of_handler_in_one_batch_runs_in_order_with_its_own_outcome(
    db_path: Path,
) -> None:
    # GIVEN one claim's worth of tasks whose handlers return None, JSON, an awaitable from a
    # plain function, a coroutine's result, raise, or return something that is not JSON
    ran: list[str] = []

    async def later(value: int) -> int:
        await asyncio.sleep(0)
        return value

    def record(kind: str, outcome: Callable[[Task], object]) -> Callable[[Task], object]:
        def handler(task: Task) -> object:
            ran.append(kind)
            return outcome(task)

        return handler

    def boom(task: Task) -> None:
        raise RuntimeError(f"boom {task.id}")

    async def coroutine(task: Task) -> dict[str, int]:
        ran.append("coroutine")
        return {"async": task.id}

    handlers = {
        "none": record("none", lambda task: None),
        "json": record("json", lambda task: {"id": task.id}),
        "awaitable": record("awaitable", lambda task: later(task.id * 10)),
        "coroutine": coroutine,
        "raises": record("raises", boom),
        "odd": record("odd", lambda task: {1, 2}),
    }
    kinds = ["none", "json", "awaitable", "coroutine", "raises", "odd", "json", "none"]

    async def scenario() -> EngineStats:
        async with TaskQueue(db_path) as queue:
            for kind in kinds:
                await queue.enqueue(kind, max_attempts=1)
            # WHEN one engine claims them all at once and runs them
            engine = WorkerEngine("w1", queue, handlers, claim_batch=100, claim_budget_ms=0)
            return await engine.run_until_empty()

    stats = asyncio.run(scenario())
    # THEN they ran in claim order, and each got the outcome its handler gave
    assert ran == kinds
    rows = task_rows(db_path)
    assert [(r.state, r.result) for r in rows] == [
        ("done", "null"),
        ("done", '{"id":2}'),
        ("done", "30"),
        ("done", '{"async":4}'),
        ("dead", None),
        ("dead", None),
        ("done", '{"id":7}'),
        ("done", "null"),
    ]
    assert rows[4].error == "RuntimeError: boom 5"
    assert rows[5].error is not None
    assert "result of odd task 6" in rows[5].error
    assert (stats.claims, stats.completed, stats.failed, stats.dead) == (2, 6, 2, 2)
