"""Properties: any sequence of queue operations keeps the queue consistent with a model.

A hypothesis state machine drives a real queue (its own event loop, a fake clock) through
enqueue, claim, complete, fail, time passing and lease reclaim, including acks of claims that
have since expired. A plain-Python model predicts which tasks each claim takes and every
task's state; after each step the database must match it exactly.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
)

from taskqueue import (
    ClaimStyle,
    ConnectionMode,
    InvalidPayloadError,
    NewTask,
    QueueConfig,
    Task,
    TaskQueue,
    TaskState,
)
from tests.helpers.clock import FakeClock

priorities = st.integers(min_value=0, max_value=3)
delays = st.sampled_from([0.0, 0.5, 2.0])
attempt_limits = st.integers(min_value=1, max_value=3)


@dataclass
class Expected:
    """What the model says one task's row holds."""

    priority: int
    run_at: float
    max_attempts: int
    state: TaskState = TaskState.PENDING
    attempts: int = 0
    lease_until: float | None = None


class QueueMachine(RuleBasedStateMachine):
    """The queue against its model, on one connection strategy."""

    config: ClassVar[QueueConfig] = QueueConfig(retry_backoff_s=0.5, retry_backoff_max_s=1.5)
    claims = Bundle("claims")

    def __init__(self) -> None:
        super().__init__()
        self.folder = Path(tempfile.mkdtemp(prefix="queueprof-property-"))
        self.clock = FakeClock()
        self.runner = asyncio.Runner()
        self.queue = TaskQueue(self.folder / "queue.db", self.config, clock=self.clock)
        self.run(self.queue.open())
        self.reader = sqlite3.connect(self.folder / "queue.db")
        self.model: dict[int, Expected] = {}
        self.finished: dict[int, tuple[Any, ...]] = {}
        self.stale = 0
        self.claimed = False
        """True once a claim has put a task in the ``claims`` bundle."""

    def run(self, coroutine: Any) -> Any:
        return self.runner.run(coroutine)

    def teardown(self) -> None:
        self.reader.close()
        self.run(self.queue.close())
        self.runner.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    # -- helpers -----------------------------------------------------------------------------

    def _is_current(self, task: Task) -> bool:
        expected = self.model[task.id]
        return expected.state is TaskState.RUNNING and expected.attempts == task.attempts

    def _finish(self, task_id: int, state: TaskState) -> None:
        expected = self.model[task_id]
        expected.state = state
        expected.lease_until = None

    # -- producers ---------------------------------------------------------------------------

    @rule(priority=priorities, delay=delays, max_attempts=attempt_limits)
    def enqueue(self, priority: int, delay: float, max_attempts: int) -> None:
        task_id = self.run(
            self.queue.enqueue(
                "noop",
                {"n": len(self.model)},
                priority=priority,
                delay=delay,
                max_attempts=max_attempts,
            )
        )
        assert task_id not in self.model
        self.model[task_id] = Expected(priority, self.clock.now + delay, max_attempts)

    @initialize(
        specs=st.lists(st.tuples(priorities, delays, attempt_limits), min_size=1, max_size=5)
    )
    def seed(self, specs: list[tuple[int, float, int]]) -> None:
        self.enqueue_many(specs)

    @rule(specs=st.lists(st.tuples(priorities, delays, attempt_limits), min_size=1, max_size=5))
    def enqueue_many(self, specs: list[tuple[int, float, int]]) -> None:
        ids = self.run(
            self.queue.enqueue_many(
                [
                    NewTask("noop", i, priority=p, delay=d, max_attempts=m)
                    for i, (p, d, m) in enumerate(specs)
                ]
            )
        )
        assert len(ids) == len(specs)
        assert ids == sorted(ids)
        assert not set(ids) & set(self.model)
        for task_id, (priority, delay, max_attempts) in zip(ids, specs, strict=True):
            self.model[task_id] = Expected(priority, self.clock.now + delay, max_attempts)

    # -- workers -----------------------------------------------------------------------------

    @rule(
        target=claims,
        worker=st.sampled_from(["w1", "w2"]),
        n=st.integers(min_value=1, max_value=4),
        lease=st.sampled_from([1.0, 3.0]),
    )
    def claim(self, worker: str, n: int, lease: float) -> Any:
        now = self.clock.now
        ready = sorted(
            (
                (-e.priority, e.run_at, task_id)
                for task_id, e in self.model.items()
                if e.state is TaskState.PENDING and e.run_at <= now
            )
        )
        expected_ids = {task_id for _, _, task_id in ready[:n]}
        tasks: list[Task] = self.run(self.queue.claim(worker, n, lease))
        assert {t.id for t in tasks} == expected_ids
        event(f"claim took {min(len(tasks), 2)}+")
        self.claimed = self.claimed or bool(tasks)
        for task in tasks:
            expected = self.model[task.id]
            expected.state = TaskState.RUNNING
            expected.attempts += 1
            expected.lease_until = now + lease
            assert (task.attempts, task.worker, task.lease_until) == (
                expected.attempts,
                worker,
                now + lease,
            )
        return multiple(*tasks)

    @precondition(lambda self: self.claimed)
    @rule(task=claims)
    def complete(self, task: Task) -> None:
        current = self._is_current(task)
        applied = self.run(self.queue.complete(task, {"by": task.worker, "try": task.attempts}))
        assert applied is current
        if current:
            self._finish(task.id, TaskState.DONE)
        else:
            event("stale complete")
            self.stale += 1

    @precondition(lambda self: self.claimed)
    @rule(tasks=st.lists(claims, min_size=1, max_size=4, unique_by=lambda t: (t.id, t.attempts)))
    def complete_many(self, tasks: list[Task]) -> None:
        # One call acks claims of one connection: every worker in shared mode, one otherwise.
        if self.config.connection is ConnectionMode.PER_WORKER:
            tasks = [t for t in tasks if t.worker == tasks[0].worker]
        current = [t for t in tasks if self._is_current(t)]
        applied = self.run(self.queue.complete_many([(t, t.attempts) for t in tasks]))
        assert applied == len(current)
        for task in current:
            self._finish(task.id, TaskState.DONE)
        self.stale += len(tasks) - len(current)

    @precondition(lambda self: self.claimed)
    @rule(task=claims, retry=st.booleans())
    def fail(self, task: Task, retry: bool) -> None:
        current = self._is_current(task)
        state = self.run(self.queue.fail(task, f"attempt {task.attempts} failed", retry=retry))
        if not current:
            event("stale fail")
            assert state is None
            self.stale += 1
            return
        expected = self.model[task.id]
        backoff = min(
            self.config.retry_backoff_s * 2 ** (task.attempts - 1),
            self.config.retry_backoff_max_s,
        )
        expected.run_at = self.clock.now + backoff  # written for dead tasks too; unused there
        if retry and expected.attempts < expected.max_attempts:
            assert state is TaskState.PENDING
            expected.state = TaskState.PENDING
            expected.lease_until = None
        else:
            assert state is TaskState.DEAD
            self._finish(task.id, TaskState.DEAD)
        event(f"fail -> {state}")

    # -- time --------------------------------------------------------------------------------

    @rule(seconds=st.sampled_from([0.25, 0.5, 1.0]))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @rule(seconds=st.sampled_from([0.5, 1.5, 3.5]))
    def expire_leases(self, seconds: float) -> None:
        """Time passes, then a sweep returns expired leases to the queue (or dead-letters)."""
        self.clock.advance(seconds)
        now = self.clock.now
        requeued = dead = 0
        for expected in self.model.values():
            lease_until = expected.lease_until
            if (
                expected.state is TaskState.RUNNING
                and lease_until is not None
                and lease_until < now
            ):
                expected.run_at = now
                expected.lease_until = None
                if expected.attempts < expected.max_attempts:
                    expected.state = TaskState.PENDING
                    requeued += 1
                else:
                    expected.state = TaskState.DEAD
                    dead += 1
        result = self.run(self.queue.reclaim_expired())
        assert (result.requeued, result.dead) == (requeued, dead)
        event(f"reclaim requeued {min(requeued, 2)}+, dead {min(dead, 1)}+")

    # -- invariants --------------------------------------------------------------------------

    @invariant()
    def database_matches_the_model(self) -> None:
        rows = self.reader.execute(
            "SELECT id, state, attempts, priority, run_at, max_attempts, lease_until FROM tasks"
        ).fetchall()
        assert len(rows) == len({row[0] for row in rows}) == len(self.model)
        actual = {row[0]: row[1:] for row in rows}
        expected = {
            task_id: (
                e.state.value,
                e.attempts,
                e.priority,
                e.run_at,
                e.max_attempts,
                e.lease_until,
            )
            for task_id, e in self.model.items()
        }
        assert actual == expected

    @invariant()
    def counts_add_up(self) -> None:
        counts = self.run(self.queue.counts())
        assert sum(counts.values()) == len(self.model)
        for state in TaskState:
            assert counts[state] == sum(e.state is state for e in self.model.values())

    @invariant()
    def finished_tasks_never_change(self) -> None:
        for task_id, expected in self.model.items():
            if expected.state not in (TaskState.DONE, TaskState.DEAD):
                continue
            row = self.reader.execute(
                "SELECT state, attempts, result, error, finished_at, run_at FROM tasks "
                "WHERE id = ?",
                (task_id,),
            ).fetchone()
            assert self.finished.setdefault(task_id, row) == row

    @invariant()
    def stale_acks_are_counted(self) -> None:
        assert self.queue.stats.stale_acks == self.stale


PROPERTY_SETTINGS = settings(
    max_examples=100,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


class SharedReturning(QueueMachine):
    config = QueueConfig(retry_backoff_s=0.5, retry_backoff_max_s=1.5)


class PerWorkerImmediate(QueueMachine):
    config = QueueConfig(
        connection=ConnectionMode.PER_WORKER,
        claim_style=ClaimStyle.IMMEDIATE,
        retry_backoff_s=0.5,
        retry_backoff_max_s=1.5,
    )


class SharedDeferred(QueueMachine):
    config = QueueConfig(
        claim_style=ClaimStyle.DEFERRED, retry_backoff_s=0.5, retry_backoff_max_s=1.5
    )


TestSharedReturning = SharedReturning.TestCase
TestSharedReturning.settings = PROPERTY_SETTINGS
TestPerWorkerImmediate = PerWorkerImmediate.TestCase
TestPerWorkerImmediate.settings = PROPERTY_SETTINGS
TestSharedDeferred = SharedDeferred.TestCase
TestSharedDeferred.settings = PROPERTY_SETTINGS


# -- payloads ------------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@pytest.mark.parametrize("batched", [False, True], ids=["enqueue", "enqueue_many"])
def test_every_json_payload_comes_back_as_given(tmp_path: Path, batched: bool) -> None:
    with asyncio.Runner() as runner:
        queue = runner.run(TaskQueue(tmp_path / "queue.db").open())

        @settings(max_examples=150, deadline=None)
        @given(payload=json_values)
        def round_trip(payload: Any) -> None:
            async def scenario() -> tuple[Any, Any]:
                if batched:
                    (task_id,) = await queue.enqueue_many([("noop", payload)])
                else:
                    task_id = await queue.enqueue("noop", payload)
                (task,) = await queue.claim("w1")
                assert task.id == task_id
                await queue.complete(task, payload)
                found = await queue.status(task_id)
                assert found is not None
                return task.payload, found.result

            assert runner.run(scenario()) == (payload, payload)

        try:
            round_trip()
        finally:
            runner.run(queue.close())


@settings(max_examples=60, deadline=None)
@given(
    payload=st.recursive(
        st.sampled_from([float("nan"), float("inf"), float("-inf")]),
        lambda children: (
            st.lists(children, min_size=1, max_size=3)
            | st.dictionaries(st.text(max_size=4), children, min_size=1, max_size=3)
        ),
        max_leaves=6,
    )
)
def test_non_finite_floats_anywhere_in_a_payload_are_refused(payload: Any) -> None:
    from taskqueue.payload import encode_json

    with pytest.raises(InvalidPayloadError, match="NaN or Infinity"):
        encode_json(payload, "payload")
