"""The stress workload's database audit on PostgreSQL: the same questions as its SQLite one.

A trigger records every transition to ``done`` in ``stress_completions``, so the audit
counts, from the database itself, tasks lost, completed twice and run more than once; the
other reads find the workers holding tasks (the one to kill) and what is left unfinished.
Each function runs on a thread of its own with its own event loop and connection, as the
SQLite ones run on a thread with a ``sqlite3`` connection.
"""

from __future__ import annotations

import time
from typing import Any

AUDIT_SCHEMA = """
CREATE TABLE IF NOT EXISTS stress_completions (
    task_id BIGINT NOT NULL, attempts INTEGER, worker TEXT
);
CREATE OR REPLACE FUNCTION stress_audit_done() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO stress_completions (task_id, attempts, worker)
    VALUES (NEW.id, NEW.attempts, NEW.worker);
    RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS stress_audit_done ON tasks;
CREATE TRIGGER stress_audit_done AFTER UPDATE OF state ON tasks FOR EACH ROW
    WHEN (NEW.state = 'done' AND OLD.state <> 'done') EXECUTE FUNCTION stress_audit_done();
"""


def _rows(dsn: str, statement: str, *args: Any) -> list[tuple[Any, ...]]:
    import asyncpg

    from taskqueue.pgadmin import run_now

    async def fetch() -> list[tuple[Any, ...]]:
        conn = await asyncpg.connect(dsn, timeout=30)
        try:
            return [tuple(r) for r in await conn.fetch(statement, *args)]
        finally:
            await conn.close()

    return run_now(fetch())


def install(dsn: str) -> None:
    """Create the completion log and its trigger."""
    import asyncpg

    from taskqueue.pgadmin import run_now

    async def create() -> None:
        conn = await asyncpg.connect(dsn, timeout=30)
        try:
            await conn.execute(AUDIT_SCHEMA)
        finally:
            await conn.close()

    run_now(create())


def busy_workers(dsn: str) -> list[str]:
    """Workers holding tasks now."""
    rows = _rows(dsn, "SELECT DISTINCT worker FROM tasks WHERE state = 'running'")
    return [str(r[0]) for r in rows if r[0] is not None]


def held_by(dsn: str, workers: list[str]) -> list[int]:
    """The tasks any of ``workers`` holds."""
    rows = _rows(dsn, "SELECT id FROM tasks WHERE state = 'running' AND worker = ANY($1)", workers)
    return [int(r[0]) for r in rows]


def unfinished(dsn: str) -> list[tuple[str, str, int, float | None]]:
    """(state, worker, count, seconds until the earliest lease ends) of live tasks."""
    rows = _rows(
        dsn,
        "SELECT state, coalesce(worker, '-'), count(*), min(lease_until) - $1 "
        "FROM tasks WHERE state IN ('pending', 'running') GROUP BY 1, 2",
        time.time(),
    )
    return [
        (str(s), str(w), int(c), None if left is None else float(left)) for s, w, c, left in rows
    ]


def counts_by_state(dsn: str) -> dict[str, int] | None:
    """Tasks by state now; None when the server does not answer (a gap in a series)."""
    import asyncpg

    try:
        rows = _rows(dsn, "SELECT state, count(*) FROM tasks GROUP BY state")
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return None
    return {str(state): int(count) for state, count in rows}


def task_times(dsn: str) -> list[tuple[float, float | None, float | None]]:
    """Each task's created, last started and finished times (the queue's wall clock)."""
    rows = _rows(dsn, "SELECT created_at, started_at, finished_at FROM tasks")
    return [(float(c), s, f) for c, s, f in rows]


def completed_by_worker(dsn: str) -> dict[str, int]:
    """Tasks each worker completed, from the completion log."""
    rows = _rows(dsn, "SELECT worker, count(*) FROM stress_completions GROUP BY worker")
    return {str(worker): int(count) for worker, count in rows}


def audit(dsn: str, ids: list[int]) -> dict[str, int]:
    """Tasks lost, completed twice, run more than once, and done."""
    (row,) = _rows(
        dsn,
        "SELECT "
        "(SELECT count(*) FROM unnest($1::bigint[]) AS e(id) LEFT JOIN tasks t ON t.id = e.id "
        "WHERE t.id IS NULL OR t.state <> 'done'), "
        "(SELECT count(*) FROM (SELECT task_id FROM stress_completions GROUP BY task_id "
        "HAVING count(*) > 1) AS twice), "
        "(SELECT count(*) FROM tasks WHERE state = 'done' AND attempts > 1), "
        "(SELECT count(*) FROM tasks WHERE state = 'done')",
        ids,
    )
    lost, duplicated, rerun, done = (int(v) for v in row)
    return {"lost": lost, "duplicated": duplicated, "rerun_after_reclaim": rerun, "done": done}
