"""The plain-``sqlite3`` reference: taskqueue's own statements, without the queue.

Every comparison figure is also given as a ratio to this row, measured in the same run: it
runs :mod:`taskqueue.sql`'s strings (INSERT, CLAIM_RETURNING, COMPLETE / COMPLETE_MANY,
STATUS) on one ``sqlite3`` connection with the queue's pragmas, directly on the calling
thread, so what it costs is SQLite's work and the sqlite3 module's, and nothing else. The
same bodies as ``workloads.calibration``'s one-at-a-time cycle, driven one primitive at a time.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from taskqueue import sql

from ..calibration import batch_statements, raw_connection
from .base import AdapterSpec
from .specs import SQLITE3

LEASE_S = 30.0
MAX_ATTEMPTS = 3


class Sqlite3Reference:
    """The four primitives as the queue's SQL on a plain connection (no thread, no objects)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    @property
    def spec(self) -> AdapterSpec:
        """:data:`~workloads.adapters.specs.SQLITE3`."""
        return SQLITE3

    async def enqueue(self, payload: Mapping[str, Any]) -> object:
        """One INSERT; the row id is the reference."""
        now = time.time()
        cursor = self._db.execute(
            sql.INSERT, ("noop", orjson.dumps(payload).decode(), 0, now, MAX_ATTEMPTS, now)
        )
        return cursor.lastrowid

    async def claim(self, n: int) -> Sequence[object]:
        """One CLAIM_RETURNING of up to ``n`` rows: (id, type, payload, priority, attempts, max)."""
        now = time.time()
        claim = {"worker": "w0", "lease_until": now + LEASE_S, "now": now, "n": n}
        return self._db.execute(sql.CLAIM_RETURNING, claim).fetchall()

    async def complete(self, claimed: Sequence[object]) -> None:
        """COMPLETE for one row, COMPLETE_MANY for several (as the queue does)."""
        now = time.time()
        rows: Sequence[Any] = claimed
        if len(rows) == 1:
            task_id, attempts = rows[0][0], rows[0][4]
            done = {"id": task_id, "attempts": attempts, "result": "null", "now": now}
            self._db.execute(sql.COMPLETE, done)
        elif rows:
            acks = sql.ack_documents([(row[0], row[4], "null") for row in rows])
            batch_statements(self._db, sql.COMPLETE_MANY, "acks", acks, now)

    async def status(self, ref: object) -> str | None:
        """The row's state column."""
        row = self._db.execute(sql.STATUS, (ref,)).fetchone()
        return None if row is None else str(row[2])

    async def close(self) -> None:
        """Close the connection."""
        self._db.close()


async def open_sqlite3_reference(folder: Path) -> Sqlite3Reference:
    """The reference on ``folder/reference.db``."""
    return Sqlite3Reference(raw_connection(folder / "reference.db"))
