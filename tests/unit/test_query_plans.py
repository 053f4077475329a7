"""Every planned statement is an index search: no full scan of tasks, no temp B-tree.

Checked with ``EXPLAIN QUERY PLAN`` on a file holding thousands of tasks in every state, as
SQLite plans it fresh and again after ``ANALYZE`` gave it statistics.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from taskqueue import NewTask, TaskQueue, sql

# Values for every named parameter the statements use.
PARAMETERS: dict[str, Any] = {
    "now": 2_000_000.0,
    "n": 100,
    "worker": "w1",
    "lease_until": 2_000_030.0,
    "ids": "[1, 2, 3]",
    "acks": '[[1, 1, null], [2, 1, "x"]]',
    "id": 1,
    "attempts": 1,
    "result": "null",
    "error": "boom",
    "retry": 1,
    "retry_at": 2_000_001.0,
    "rows": "[]",
}

# Partial indexes hold only live tasks, so walking one is bounded by the tasks in flight,
# not by the table; every other SCAN of tasks reads the whole table.
PARTIAL_INDEXES = ("tasks_ready", "tasks_leased")


@pytest.fixture(scope="module")
def populated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A queue file with 6000 tasks: pending (some delayed), running, done and dead."""
    path = tmp_path_factory.mktemp("plans") / "queue.db"

    async def fill() -> None:
        async with TaskQueue(path) as queue:
            await queue.enqueue_many(
                [NewTask("noop", i, priority=i % 7, delay=float(i % 3)) for i in range(6000)]
            )
            claimed = await queue.claim("w1", 3000)
            await queue.complete_many([(t, None) for t in claimed[:2000]])
            for task in claimed[2000:2200]:
                await queue.fail(task, "boom", retry=False)

    asyncio.run(fill())
    return path


def _bindings(statement: str) -> dict[str, Any] | tuple[Any, ...]:
    if "?" in statement:
        return (1,) * statement.count("?")
    return {name: PARAMETERS[name] for name in re.findall(r":(\w+)", statement)}


def _plan(path: Path, statement: str, analyzed: bool) -> list[str]:
    with closing(sqlite3.connect(path)) as db:
        if analyzed:
            db.execute("ANALYZE")
        rows = db.execute(f"EXPLAIN QUERY PLAN {statement}", _bindings(statement)).fetchall()
        if analyzed:
            db.execute("DROP TABLE IF EXISTS sqlite_stat1")
            db.commit()
    return [row[3] for row in rows]


CASES = [
    pytest.param(statement, analyzed, id=f"{name}-{'analyzed' if analyzed else 'fresh'}")
    for name, statement in sql.PLANNED.items()
    for analyzed in (False, True)
]


@pytest.mark.parametrize(("statement", "analyzed"), CASES)
def test_planned_statements_search_indexes(populated: Path, statement: str, analyzed: bool) -> None:
    plan = _plan(populated, statement, analyzed)
    text = "\n".join(plan)
    assert "TEMP B-TREE" not in text, text
    on_tasks = [line for line in plan if re.search(r"\b(SEARCH|SCAN) tasks\b", line)]
    assert on_tasks, text
    assert any(line.startswith("SEARCH tasks") for line in on_tasks), text
    for line in on_tasks:
        if line.startswith("SCAN tasks"):
            assert any(f"INDEX {index}" in line for index in PARTIAL_INDEXES), text


@pytest.mark.parametrize("analyzed", [False, True], ids=["fresh", "analyzed"])
def test_the_claim_is_an_ordered_search_of_the_ready_index(populated: Path, analyzed: bool) -> None:
    # The statement the queue runs per claim (and the benchmarks' sqlite3 baseline too).
    plan = _plan(populated, sql.CLAIM_RETURNING, analyzed)
    assert any("SEARCH tasks USING COVERING INDEX tasks_ready (state=?)" in line for line in plan)
    assert not any(line.startswith("SCAN tasks") for line in plan), plan
    assert not any("TEMP B-TREE" in line for line in plan), plan


def test_planned_covers_the_claim_and_every_hot_statement() -> None:
    assert sql.PLANNED["claim"] == sql.CLAIM_RETURNING
    hot = {
        sql.SELECT_READY,
        sql.CLAIM_IDS,
        sql.COMPLETE,
        sql.COMPLETE_MANY,
        sql.FAIL,
    }
    hot |= {sql.RECLAIM, sql.STATUS, sql.IS_DRAINED}
    assert hot <= set(sql.PLANNED.values())
