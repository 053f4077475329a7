"""The queue's operations as plain functions of one ``sqlite3.Connection``.

One call per queue operation, however many statements it runs: on the connection's own
thread (aiosqlite's), one trip from the event loop and back, or, for short operations while
that thread is idle, on the event loop's thread itself (``QueueConfig.dispatch``), never on
both at once. Profilers see these function names wherever they run, which is how the
analysis attributes SQL time to enqueue, claim and status.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from time import perf_counter_ns
from typing import Any, TypeVar

import orjson

from . import sql
from .models import ReclaimResult, Task, TaskState, TaskStatus, claimed_tasks
from .stats import SqlSample, thread_label

Params = Sequence[Any] | dict[str, Any]
T = TypeVar("T")
AckRow = tuple[int, int, str]
"""One completion: (task id, the claim's key :attr:`Task.claim`, result as JSON text)."""
ClaimRequest = tuple[list[AckRow], str, int, float]
"""One engine's claim: (acks to write first, worker name, most tasks, lease seconds)."""


class Store:
    """One connection's operations. Not thread-safe: one call at a time (the connection's
    thread runs its calls one after another, and the queue runs a call inline only when none
    is in flight there)."""

    def __init__(
        self,
        db: sqlite3.Connection,
        clock: Callable[[], float],
        capture: list[SqlSample] | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.capture = capture

    # -- statement helpers: the one place SQL runs, so capture sees every statement --------

    def _rows(self, op: str, statement: str, params: Params = ()) -> list[Any]:
        if self.capture is None:
            return self.db.execute(statement, params).fetchall()
        start = perf_counter_ns()
        rows = self.db.execute(statement, params).fetchall()
        self._captured(op, statement, start, len(rows))
        return rows

    def _change(self, op: str, statement: str, params: Params = ()) -> sqlite3.Cursor:
        if self.capture is None:
            return self.db.execute(statement, params)
        start = perf_counter_ns()
        cursor = self.db.execute(statement, params)
        self._captured(op, statement, start, max(cursor.rowcount, 0))
        return cursor

    def _captured(self, op: str, statement: str, start: int, rows: int) -> None:
        assert self.capture is not None
        self.capture.append(
            SqlSample(op, statement, start, perf_counter_ns() - start, rows, thread_label())
        )

    def _transaction(self, op: str, begin: str, body: Callable[[], T]) -> T:
        self._change(op, begin)
        try:
            done = body()
            self._change(op, "COMMIT")
        except BaseException:
            self.rollback()
            raise
        return done

    # -- operations ------------------------------------------------------------------------

    def insert(self, type_: str, payload: str, priority: int, delay: float, attempts: int) -> int:
        now = self.clock()
        cursor = self._change(
            "enqueue", sql.INSERT, (type_, payload, priority, now + delay, attempts, now)
        )
        rowid = cursor.lastrowid
        assert rowid is not None
        return rowid

    def insert_many(self, documents: list[str]) -> list[int]:
        """INSERT_MANY for each of ``documents`` (:func:`sql.insert_documents`), in one
        transaction when there are several; the ids come back in order. The statement adds
        ``now`` to each delay, so the queue's busy retry sends the same documents again."""
        now = self.clock()

        def insert() -> list[int]:
            return [
                r[0]
                for rows in documents
                for r in self._rows("enqueue", sql.INSERT_MANY, {"now": now, "rows": rows})
            ]

        ids = insert() if len(documents) == 1 else self._transaction("enqueue", _BEGIN, insert)
        # RETURNING order is unspecified; rowids of one INSERT are allocated in input order.
        ids.sort()
        return ids

    def claim_returning(self, worker: str, n: int, lease_s: float) -> list[Task]:
        now = self.clock()
        params = {"worker": worker, "lease_until": now + lease_s, "now": now, "n": n}
        return self._tasks(self._rows("claim", sql.CLAIM_RETURNING, params), worker, now + lease_s)

    def claim_immediate(self, worker: str, n: int, lease_s: float) -> list[Task]:
        return self._transaction(
            "claim", "BEGIN IMMEDIATE", lambda: self._select_and_claim(worker, n, lease_s)
        )

    def _select_and_claim(self, worker: str, n: int, lease_s: float) -> list[Task]:
        now = self.clock()
        ids = [r[0] for r in self._rows("claim", sql.SELECT_READY, {"now": now, "n": n})]
        if not ids:
            return []
        lease_until = now + lease_s
        params = {
            "worker": worker,
            "lease_until": lease_until,
            "now": now,
            "ids": orjson.dumps(ids).decode(),
        }
        return self._tasks(self._rows("claim", sql.CLAIM_IDS, params), worker, lease_until)

    # The deferred claim is split into single statements the async side awaits one by one.
    def begin_deferred(self) -> None:
        self._change("claim", "BEGIN")

    def select_ready(self, n: int) -> list[int]:
        return [r[0] for r in self._rows("claim", sql.SELECT_READY, {"now": self.clock(), "n": n})]

    def claim_ids(self, worker: str, ids: list[int], lease_s: float) -> list[Task]:
        now = self.clock()
        params = {
            "worker": worker,
            "lease_until": now + lease_s,
            "now": now,
            "ids": orjson.dumps(ids).decode(),
        }
        return self._tasks(self._rows("claim", sql.CLAIM_IDS, params), worker, now + lease_s)

    def commit(self, op: str) -> None:
        if self.db.in_transaction:
            self._change(op, "COMMIT")

    def rollback(self) -> None:
        if self.db.in_transaction:
            self.db.rollback()

    def complete_acks(self, acks: list[AckRow]) -> int:
        """Complete (id, attempts, result JSON) claims; returns how many were still ours."""
        if len(acks) == 1:
            task_id, attempts, result = acks[0]
            params = {"id": task_id, "attempts": attempts, "result": result, "now": self.clock()}
            return self._change("complete", sql.COMPLETE, params).rowcount
        # Results are JSON text already: spliced in rather than decoded and re-encoded.
        documents = sql.ack_documents(acks)
        now = self.clock()

        def complete() -> int:
            return sum(
                self._change("complete", sql.COMPLETE_MANY, {"acks": d, "now": now}).rowcount
                for d in documents
            )

        if len(documents) == 1 or self.db.in_transaction:
            return complete()
        return self._transaction("complete", _BEGIN, complete)

    def complete_and_claim(
        self,
        acks: list[AckRow],
        worker: str,
        n: int,
        lease_s: float,
        immediate: bool,
    ) -> tuple[int, list[Task]]:
        """One engine's acks, then its claim, in one transaction."""
        return self.claim_group([(acks, worker, n, lease_s)], immediate)[0]

    def claim_group(
        self, requests: list[ClaimRequest], immediate: bool
    ) -> list[tuple[int, list[Task]]]:
        """Several engines' acks and claims, in order, in one transaction (see ClaimGroup)."""
        # One transaction: SQLITE_BUSY anywhere in it rolls back the acks too, so the queue's
        # busy retry never re-sends acks that already landed (and counts them as stale).
        claim = self._select_and_claim if immediate else self.claim_returning

        def body() -> list[tuple[int, list[Task]]]:
            return [
                (self.complete_acks(acks) if acks else 0, claim(worker, n, lease_s))
                for acks, worker, n, lease_s in requests
            ]

        return self._transaction("claim", "BEGIN IMMEDIATE", body)

    def _tasks(self, rows: list[Any], worker: str, lease_until: float) -> list[Task]:
        """Tasks from claimed rows (:func:`claimed_tasks`); a row whose payload is not JSON
        is dead-lettered with the reason, and the others are returned."""
        tasks, bad = claimed_tasks(rows, worker, lease_until)
        for row in bad:
            self.fail(row.id, row.claim, row.reason, retry=False, backoff_s=0.0)
        return tasks

    def fail(
        self, task_id: int, attempts: int, error: str, retry: bool, backoff_s: float
    ) -> TaskState | None:
        now = self.clock()
        params = {
            "id": task_id,
            "attempts": attempts,
            "error": error,
            "retry": retry,
            "retry_at": now + backoff_s,
            "now": now,
        }
        rows = self._rows("fail", sql.FAIL, params)
        return TaskState(rows[0][0]) if rows else None

    def status(self, task_id: int) -> TaskStatus | None:
        rows = self._rows("status", sql.STATUS, (task_id,))
        if not rows:
            return None
        (
            id_,
            type_,
            state,
            priority,
            attempts,
            max_attempts,
            worker,
            run_at,
            lease_until,
            created_at,
            started_at,
            finished_at,
            result,
            error,
        ) = rows[0]
        return TaskStatus(
            id_,
            type_,
            TaskState(state),
            priority,
            attempts,
            max_attempts,
            worker,
            run_at,
            lease_until,
            created_at,
            started_at,
            finished_at,
            None if result is None else orjson.loads(result),
            error,
        )

    def counts(self) -> dict[TaskState, int]:
        found = dict(self._rows("counts", sql.COUNTS))
        return {state: found.get(state.value, 0) for state in TaskState}

    def reclaim(self) -> ReclaimResult:
        now = self.clock()
        if not self._rows("reclaim", sql.EXPIRED_EXISTS, {"now": now}):
            return ReclaimResult(requeued=0, dead=0)
        states = [r[0] for r in self._rows("reclaim", sql.RECLAIM, {"now": now})]
        dead = states.count(TaskState.DEAD.value)
        return ReclaimResult(requeued=len(states) - dead, dead=dead)

    def is_drained(self) -> bool:
        return bool(self._rows("status", sql.IS_DRAINED)[0][0])


_BEGIN = "BEGIN IMMEDIATE"
