"""Every adapter passes the same contract: what the comparison workload relies on.

Each contender of the catalog (our queue with two strategies, huey twice, persist-queue,
the plain-sqlite3 reference) is opened on a fresh folder and driven through its public
primitives only; the assertions count tasks, so an adapter that loses, repeats or invents
one fails here before any figure is measured on it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest

from taskqueue import QueueConfig
from workloads.adapters.base import AdapterSpec, Contender, QueueAdapter
from workloads.adapters.catalog import CONTENDER_NAMES, REFERENCE, contenders
from workloads.adapters.plugins import code_path_problems
from workloads.adapters.specs import SPECS
from workloads.tasks import payload

T = TypeVar("T")
CATALOG = contenders(QueueConfig())
NAMES = [REFERENCE, *CONTENDER_NAMES]


def run(body: Callable[[QueueAdapter], Awaitable[T]], contender: Contender, folder: Path) -> T:
    async def main() -> T:
        adapter = await contender.open(folder)
        try:
            return await body(adapter)
        finally:
            await adapter.close()

    return asyncio.run(main())


async def claim_all(adapter: QueueAdapter, batch: int) -> list[object]:
    claimed: list[object] = []
    while more := await adapter.claim(batch):
        claimed.extend(more)
    return claimed


@pytest.mark.parametrize("name", NAMES)
def test_an_empty_queue_hands_out_nothing(name: str, tmp_path: Path) -> None:
    # GIVEN a fresh queue WHEN a worker claims THEN it gets nothing
    assert run(lambda a: a.claim(5), CATALOG[name], tmp_path) == []


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("batch", [1, 3])
def test_every_task_is_handed_out_once_and_completes(name: str, batch: int, tmp_path: Path) -> None:
    contender = CATALOG[name]

    async def body(adapter: QueueAdapter) -> tuple[int, int, list[str | None], list[str | None]]:
        # GIVEN 7 tasks enqueued
        refs = [await adapter.enqueue(payload("noop", seq)) for seq in range(7)]
        # WHEN a worker claims until empty, holding what it claimed
        claimed = await claim_all(adapter, batch)
        before = [await adapter.status(r) for r in refs] if adapter.spec.has_status else []
        held = len(await adapter.claim(batch))
        # ... and completes them
        await adapter.complete(claimed)
        after = [await adapter.status(r) for r in refs] if adapter.spec.has_status else []
        return len(claimed), held, before, after

    claimed, held, before, after = run(body, contender, tmp_path)
    # THEN each task was handed out exactly once, a held task is not handed out again,
    # and every task reads done once completed (where the queue has a status)
    assert claimed == 7
    assert held == 0
    if contender.spec.has_status:
        assert "done" not in before
        assert after == ["done"] * 7


@pytest.mark.parametrize("name", NAMES)
def test_completed_tasks_stay_completed_across_a_reopen(name: str, tmp_path: Path) -> None:
    contender = CATALOG[name]

    async def fill_and_finish(adapter: QueueAdapter) -> None:
        for seq in range(4):
            await adapter.enqueue(payload("noop", seq))
        await adapter.complete(await claim_all(adapter, 2))

    # GIVEN a queue whose tasks were all completed, closed
    run(fill_and_finish, contender, tmp_path)
    # WHEN it is opened again on the same files THEN no task comes back
    assert run(lambda a: a.claim(10), contender, tmp_path) == []


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_every_declared_code_path_names_real_functions(spec: AdapterSpec) -> None:
    # GIVEN an adapter's declaration of which functions do which operation
    spec.load()
    # WHEN each named file is found and parsed THEN it defines every function named for it
    assert code_path_problems(spec) == []
