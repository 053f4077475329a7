"""Fixtures for the profiler wrapper tests: a small real queue workload to wrap."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from profilers import Profiler, get_profiler
from taskqueue import QueueConfig, TaskQueue, run_async_workers

RunUnder = Callable[..., Profiler]
"""``run_under(name, options, queue="")``: the small workload under profiler ``name``."""


async def small_workload(db: Path, tasks: int = 600, workers: int = 3, queue: str = "") -> int:
    """Enqueue ``tasks`` noop tasks and drain them with ``workers`` engines.

    ``queue`` is a strategy in the CLI form (``claim_batch=1,ack_batch=1``).
    """
    config = QueueConfig.parse(queue, QueueConfig(capture_sql=True, record_timings=True))
    async with TaskQueue(db, config) as opened:
        await opened.enqueue_many([("noop", {"n": i}) for i in range(tasks)])
        await opened.enqueue("cpu", {"iterations": 20_000})
        result = await run_async_workers(opened, workers)
        for task_id in range(1, 20):
            await opened.status(task_id)
    return result.total.completed


@pytest.fixture
def run_under(tmp_path: Path) -> RunUnder:
    """Run the small workload inside ``name``'s session, as the runner does; returns it."""

    def run(name: str, options: list[str], queue: str = "") -> Profiler:
        cls = get_profiler(name)
        run_dir = tmp_path / "run"
        run_dir.mkdir(exist_ok=True)
        profiler = cls(cls.options_type.parse(options), run_dir)

        async def inside_loop() -> int:
            with profiler.session():
                return await small_workload(tmp_path / f"{name}.db", queue=queue)

        assert asyncio.run(inside_loop()) == 601
        return profiler

    return run
