"""Read a queue's database independently of the queue's own code: plain ``sqlite3`` for a
file, plain asyncpg (on a thread of its own, so callers may be inside an event loop) for a
``postgresql://`` URL. Queries are written with ``?`` placeholders for both."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import threading
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


Target = Path | str
"""A SQLite file path or a PostgreSQL URL."""


def fetch(target: Target, query: str, *params: Any) -> list[tuple[Any, ...]]:
    """Every row of ``query`` (``?`` placeholders) on ``target``."""
    if isinstance(target, str) and target.startswith("postgresql://"):
        return _pg_fetch(target, _numbered(query), params)
    with closing(sqlite3.connect(target)) as db:
        return db.execute(query, params).fetchall()


def task_rows(path: Target) -> list[TaskRow]:
    """Every task, in id order."""
    return [TaskRow(*row) for row in fetch(path, f"SELECT {_COLUMNS} FROM tasks ORDER BY id")]


def task_row(path: Target, task_id: int) -> TaskRow:
    """One task's row (the task must exist)."""
    rows = fetch(path, f"SELECT {_COLUMNS} FROM tasks WHERE id = ?", task_id)
    assert rows, f"task {task_id} is not in {path}"
    return TaskRow(*rows[0])


def row_count(path: Target) -> int:
    """How many tasks the database holds."""
    count: int = fetch(path, "SELECT count(*) FROM tasks")[0][0]
    return count


def scalar(path: Target, query: str, *params: Any) -> Any:
    """The first column of the first row of ``query``."""
    return fetch(path, query, *params)[0][0]


def _numbered(query: str) -> str:
    counter = iter(range(1, 1000))
    return re.sub(r"\?", lambda _: f"${next(counter)}", query)


def _pg_fetch(dsn: str, query: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    import asyncpg

    async def run() -> list[tuple[Any, ...]]:
        conn = await asyncpg.connect(dsn)
        try:
            return [tuple(r) for r in await conn.fetch(query, *params)]
        finally:
            await conn.close()

    out: list[list[tuple[Any, ...]]] = []
    failed: list[BaseException] = []

    def thread() -> None:
        try:
            out.append(asyncio.run(run()))
        except BaseException as error:  # noqa: BLE001 - re-raised on the caller's thread
            failed.append(error)

    worker = threading.Thread(target=thread)
    worker.start()
    worker.join()
    if failed:
        raise failed[0]
    return out[0]
