"""Read a queue's database with plain ``sqlite3``, independently of the queue's own code."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any, NamedTuple


class TaskRow(NamedTuple):
    """The columns of one ``tasks`` row the tests check."""

    id: int
    type: str
    state: str
    attempts: int
    max_attempts: int
    priority: int
    run_at: float
    worker: str | None
    lease_until: float | None
    finished_at: float | None
    result: str | None
    error: str | None


_COLUMNS = ", ".join(TaskRow._fields)


def task_rows(path: Path) -> list[TaskRow]:
    """Every task, in id order."""
    with closing(sqlite3.connect(path)) as db:
        rows = db.execute(f"SELECT {_COLUMNS} FROM tasks ORDER BY id").fetchall()
    return [TaskRow(*row) for row in rows]


def task_row(path: Path, task_id: int) -> TaskRow:
    """One task's row (the task must exist)."""
    with closing(sqlite3.connect(path)) as db:
        row = db.execute(f"SELECT {_COLUMNS} FROM tasks WHERE id = ?", (task_id,)).fetchone()
    assert row is not None, f"task {task_id} is not in {path}"
    return TaskRow(*row)


def row_count(path: Path) -> int:
    """How many tasks the file holds."""
    with closing(sqlite3.connect(path)) as db:
        count: int = db.execute("SELECT count(*) FROM tasks").fetchone()[0]
    return count


def scalar(path: Path, query: str, *params: Any) -> Any:
    """The first column of the first row of ``query``."""
    with closing(sqlite3.connect(path)) as db:
        return db.execute(query, params).fetchone()[0]
