"""The queue's operations on PostgreSQL, as coroutines of one asyncpg connection.

The counterpart of :class:`~taskqueue.store.Store`: one method per queue operation, each
one statement (so one round trip and one atomic commit), and one place where statements
run (:meth:`PgStore._fetch`, :meth:`PgStore._execute`), so the SQL capture sees them all.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from time import perf_counter_ns
from typing import Any

import asyncpg
import orjson

from . import pgsql, sql
from .config import PgClaim, PgClaimCommit
from .models import ReclaimResult, Task, TaskState, TaskStatus, claimed_tasks
from .stats import SqlSample
from .store import AckRow

PG_THREAD = "postgres"
"""The thread name SQL samples of this backend carry: the statements run in the server, and
the client only waits for them on the event loop."""


class PgStore:
    """The operations, given a connection per call (the queue's pool hands them out)."""

    def __init__(
        self,
        clock: Callable[[], float],
        claim: PgClaim,
        capture: list[SqlSample] | None = None,
        notify_payload: str | None = None,
        claim_commit: PgClaimCommit = PgClaimCommit.SESSION,
    ) -> None:
        self.clock = clock
        self.capture = capture
        self.notify_payload = notify_payload
        """Sent on :data:`pgsql.CHANNEL` with every enqueue (None: no notification)."""
        notify = notify_payload is not None
        self._insert = pgsql.insert_statement(notify)
        self._insert_many = pgsql.insert_many_statement(notify)
        self._claim = pgsql.claim_statement(claim, claim_commit)
        self._claim_with_acks = pgsql.claim_with_acks_statement(claim)

    # -- the one place statements run ------------------------------------------------------

    async def _fetch(
        self, conn: asyncpg.Connection, op: str, statement: str, *args: Any
    ) -> list[Any]:
        if self.capture is None:
            return list(await conn.fetch(statement, *args))
        start = perf_counter_ns()
        rows = list(await conn.fetch(statement, *args))
        self._captured(op, statement, start, len(rows))
        return rows

    async def _execute(self, conn: asyncpg.Connection, op: str, statement: str, *args: Any) -> int:
        """Run a statement that returns no rows; returns the rows it changed."""
        start = perf_counter_ns() if self.capture is not None else 0
        status: str = await conn.execute(statement, *args)
        changed = int(status.rpartition(" ")[2]) if status[-1:].isdigit() else 0
        if self.capture is not None:
            self._captured(op, statement, start, changed)
        return changed

    def _captured(self, op: str, statement: str, start: int, rows: int) -> None:
        assert self.capture is not None
        self.capture.append(
            SqlSample(op, statement, start, perf_counter_ns() - start, rows, PG_THREAD)
        )

    # -- operations ------------------------------------------------------------------------

    async def insert(
        self,
        conn: asyncpg.Connection,
        type_: str,
        payload: str,
        priority: int,
        delay: float,
        attempts: int,
    ) -> int:
        args: tuple[Any, ...] = (type_, payload, priority, delay, attempts, self.clock())
        if self.notify_payload is not None:
            args += (self.notify_payload + " 1",)
        rows = await self._fetch(conn, "enqueue", self._insert, *args)
        task_id: int = rows[0][0]
        return task_id

    async def insert_many(
        self, conn: asyncpg.Connection, documents: list[str], count: int
    ) -> list[int]:
        """The batch documents of :func:`payload.batch_document` (``count`` rows in all,
        ``sql.FLAT_ROWS_MOST`` a document), in one transaction when there are several; ids
        in the order given."""
        now = self.clock()
        if len(documents) == 1:
            return await self._insert_document(conn, documents[0], now, count)
        ids: list[int] = []
        # FLAT_ROWS_MOST rows a document, unless large payloads split them further (then
        # more documents than that makes, each counted: the wake-up says how many tasks).
        regular = len(documents) == -(-count // sql.FLAT_ROWS_MOST)
        async with conn.transaction():
            for at, document in enumerate(documents):
                rows = (
                    min(sql.FLAT_ROWS_MOST, count - at * sql.FLAT_ROWS_MOST)
                    if regular
                    else sql.insert_document_rows(document)
                )
                ids += await self._insert_document(conn, document, now, rows)
        return ids

    async def _insert_document(
        self, conn: asyncpg.Connection, document: str, now: float, rows: int
    ) -> list[int]:
        extra = () if self.notify_payload is None else (f"{self.notify_payload} {rows}",)
        found = await self._fetch(conn, "enqueue", self._insert_many, document, now, *extra)
        # Identities are drawn in the statement's row order (ORDER BY i), so sorted ids
        # are the input order.
        return sorted(r[0] for r in found)

    async def claim(
        self, conn: asyncpg.Connection, worker: str, n: int, lease_s: float
    ) -> list[Task]:
        now, token = self.clock(), new_claim_token()
        rows = await self._fetch(conn, "claim", self._claim, worker, now + lease_s, now, n, token)
        return await self._tasks(conn, rows, worker, now + lease_s, token)

    async def complete_and_claim(
        self, conn: asyncpg.Connection, acks: list[AckRow], worker: str, n: int, lease_s: float
    ) -> tuple[int, list[Task]]:
        """Write ``acks`` and claim up to ``n`` tasks, in one statement (see
        :func:`pgsql.claim_with_acks_statement`); acks beyond its first batch
        (:func:`pgsql.ack_batches`) are written first, in a statement of their own."""
        now, token = self.clock(), new_claim_token()
        (carried_acks, carried), *rest = pgsql.ack_batches(acks)
        # more than one statement's worth: write the rest first
        applied = await self.complete_acks(conn, acks[carried:]) if rest else 0
        rows = await self._fetch(
            conn,
            "claim",
            self._claim_with_acks,
            worker,
            now + lease_s,
            now,
            n,
            token,
            *carried_acks,
            now,
        )
        applied += rows[0][0]
        claimed = [tuple(r)[1:] for r in rows if r[1] is not None]
        return applied, await self._tasks(conn, claimed, worker, now + lease_s, token)

    async def complete_acks(self, conn: asyncpg.Connection, acks: list[AckRow]) -> int:
        """Complete (id, claim token, result JSON) claims; returns how many were still ours."""
        now = self.clock()
        if len(acks) == 1:
            task_id, token, result = acks[0]
            return await self._execute(
                conn, "complete", pgsql.COMPLETE, task_id, token, result, now
            )
        batches = pgsql.ack_batches(acks)
        if len(batches) == 1:
            ((parameters, _),) = batches
            return await self._execute(conn, "complete", pgsql.COMPLETE_MANY, *parameters, now)
        async with conn.transaction():
            applied = 0
            for parameters, _ in batches:
                applied += await self._execute(
                    conn, "complete", pgsql.COMPLETE_MANY, *parameters, now
                )
        return applied

    async def _tasks(
        self,
        conn: asyncpg.Connection,
        rows: list[Any],
        worker: str,
        lease_until: float,
        token: int,
    ) -> list[Task]:
        """Tasks from rows claimed with ``token`` (:func:`claimed_tasks`); a row whose
        payload is not JSON (changed outside the queue) is dead-lettered with the reason, and
        the others are returned."""
        tasks, bad = claimed_tasks(list(rows), worker, lease_until, token)
        for row in bad:
            await self.fail(conn, row.id, row.claim, row.reason, False, 0.0)
        return tasks

    async def fail(
        self,
        conn: asyncpg.Connection,
        task_id: int,
        token: int,
        error: str,
        retry: bool,
        backoff_s: float,
    ) -> TaskState | None:
        now = self.clock()
        rows = await self._fetch(
            conn, "fail", pgsql.FAIL, task_id, token, error, retry, now + backoff_s, now
        )
        return TaskState(rows[0][0]) if rows else None

    async def status(self, conn: asyncpg.Connection, task_id: int) -> TaskStatus | None:
        rows = await self._fetch(conn, "status", pgsql.STATUS, task_id)
        if not rows:
            return None
        row = rows[0]
        result = row["result"]
        return TaskStatus(
            id=row["id"],
            type=row["type"],
            state=TaskState(row["state"]),
            priority=row["priority"],
            attempts=row["attempts"],
            max_attempts=row["max_attempts"],
            worker=row["worker"],
            run_at=row["run_at"],
            lease_until=row["lease_until"],
            created_at=row["created_at"],
            started_at=row["started_at"],
            finished_at=row["finished_at"],
            result=None if result is None else orjson.loads(result),
            error=row["error"],
        )

    async def counts(self, conn: asyncpg.Connection) -> dict[TaskState, int]:
        found = {r[0]: r[1] for r in await self._fetch(conn, "counts", pgsql.COUNTS)}
        return {state: found.get(state.value, 0) for state in TaskState}

    async def reclaim(self, conn: asyncpg.Connection) -> ReclaimResult:
        now = self.clock()
        if not await self._fetch(conn, "reclaim", pgsql.EXPIRED_EXISTS, now):
            return ReclaimResult(requeued=0, dead=0)
        states = [r[0] for r in await self._fetch(conn, "reclaim", pgsql.RECLAIM, now)]
        dead = states.count(TaskState.DEAD.value)
        return ReclaimResult(requeued=len(states) - dead, dead=dead)

    async def is_drained(self, conn: asyncpg.Connection) -> bool:
        rows = await self._fetch(conn, "status", pgsql.IS_DRAINED)
        return bool(rows[0][0])


def new_claim_token() -> int:
    """A claim's token: 63 random bits from the operating system (``secrets``), never from a
    seeded generator, which forked worker processes would share, and never from the server's
    sequences or transaction ids, which a crash can hand out again after forgetting the claim
    that drew them."""
    return secrets.randbits(63)
