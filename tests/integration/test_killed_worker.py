"""A worker process killed with SIGKILL mid-task: its lease expires, another worker runs it.

On SQLite and on PostgreSQL. Nothing in the killed process gets to clean up. The task it
held stays ``running`` until its lease (1 s) expires; a surviving worker in
``run_until_empty`` then reclaims it, runs it again, and it is completed once, on attempt 2.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from pathlib import Path

import pytest

from taskqueue import EngineOptions, NewTask, QueueConfig, TaskQueue, WorkerProcesses
from tests.helpers.db import fetch, task_row, task_rows
from tests.helpers.handlers import read_logs


def _running_worker(db_path: Path | str, task_id: int, timeout: float = 60.0) -> str:
    """The worker that holds ``task_id``, once one does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ((state, worker),) = fetch(db_path, "SELECT state, worker FROM tasks WHERE id = ?", task_id)
        if state == "running":
            return str(worker)
        time.sleep(0.01)
    raise AssertionError(f"task {task_id} was not claimed within {timeout} s")


@pytest.mark.slow
def test_a_task_of_a_killed_worker_is_reclaimed_and_completed_once(
    queue_target: Path | str, tmp_path: Path, importable_tests: str
) -> None:
    db_path = queue_target
    log = tmp_path / "executions"
    log.mkdir()
    config = QueueConfig(lease_s=1.0)

    async def fill() -> tuple[int, list[int]]:
        async with TaskQueue(db_path, config) as queue:
            # The long task goes first (priority), so a worker is inside it while the
            # others run the short ones.
            hanging = await queue.enqueue(
                "hang_first", {"seconds": 120, "log": str(log)}, priority=9
            )
            short = await queue.enqueue_many(
                [NewTask("record", {"log": str(log)}) for _ in range(300)]
            )
            return hanging, short

    hanging, short = asyncio.run(fill())
    pool = WorkerProcesses(db_path, config, 3, EngineOptions(handlers=importable_tests))
    pool.start()
    try:
        # GIVEN a worker process inside the long task
        holder = _running_worker(db_path, hanging)
        victim = next(p for p in pool.processes if p.name == holder)
        # WHEN it is killed with SIGKILL
        victim.kill()
        victim.join(30)
        assert victim.exitcode == -signal.SIGKILL
        result = pool.join(timeout=120)
    finally:
        pool.kill()

    # THEN the task was run again by a surviving worker and completed once, on attempt 2
    row = task_row(db_path, hanging)
    assert (row.state, row.attempts, row.result) == ("done", 2, '"finished"')
    assert row.worker != holder
    assert row.error == f"lease expired on worker {holder}"
    lines = read_logs(log)
    hang_events = sorted(
        (line.event, line.attempt, line.pid) for line in lines if line.task_id == hanging
    )
    rerun_pid = next(p.pid for p in pool.processes if p.name == row.worker)
    assert hang_events == [("done", 2, rerun_pid), ("start", 1, victim.pid)]
    # AND every other task ran exactly once, none lost
    assert {r.state for r in task_rows(db_path)} == {"done"}
    short_runs = Counter(line.task_id for line in lines if line.task_id != hanging)
    assert sorted(short_runs) == short
    assert set(short_runs.values()) == {1}
    # AND the pool reports the killed worker with an empty result, the others in full
    by_name = {engine.name: engine for engine in result.engines}
    assert by_name[holder].claims == 0
    survivors = [engine for name, engine in by_name.items() if name != holder]
    assert sum(engine.completed for engine in survivors) == len(short) + 1
    assert sum(engine.reclaimed for engine in survivors) == 1
    assert sum(engine.stale for engine in survivors) == 0
