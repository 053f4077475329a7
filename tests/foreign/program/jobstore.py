"""A small SQLite job store of its own: push / pop / done / pending_count / backlog_of.

Not queueprof's code and not taskqueue's: the foreign queue the tests profile. A bottleneck
is planted by ``JOBSTORE_PLANT`` (see the test module for what each one is).
"""

from __future__ import annotations

import json
import os
import sqlite3
import time

PLANT = os.environ.get("JOBSTORE_PLANT", "clean")


class JobStore:
    def __init__(self, path: str) -> None:
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS jobs (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, "
            "body TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'ready', urgency INTEGER NOT NULL, "
            "queued_at REAL NOT NULL)"
        )
        if PLANT == "noindex":
            # Only the state is indexed: every pop sorts the ready rows.
            self.db.execute("CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state)")
        else:
            self.db.execute(
                "CREATE INDEX IF NOT EXISTS jobs_ready ON jobs (state, urgency DESC, queued_at)"
            )

    def push(self, kind: str, body: dict, urgency: int = 0) -> int:
        cur = self.db.execute(
            "INSERT INTO jobs (kind, body, urgency, queued_at) VALUES (?, ?, ?, ?)",
            (kind, encode_body(body), urgency, time.time()),
        )
        return int(cur.lastrowid or 0)

    def pop(self) -> tuple[int, str, dict] | None:
        row = self.db.execute(
            "UPDATE jobs SET state = 'taken' WHERE id = (SELECT id FROM jobs "
            "WHERE state = 'ready' ORDER BY urgency DESC, queued_at LIMIT 1) "
            "RETURNING id, kind, body"
        ).fetchone()
        if row is None:
            return None
        return row[0], row[1], json.loads(row[2])

    def done(self, job_id: int) -> None:
        self.db.execute("UPDATE jobs SET state = 'finished' WHERE id = ?", (job_id,))

    def pending_count(self) -> dict[str, int]:
        if PLANT == "nplus1":
            # One query per row: the state of every job, read one at a time.
            counts: dict[str, int] = {}
            for (job_id,) in self.db.execute("SELECT id FROM jobs").fetchall():
                (state,) = self.db.execute(
                    "SELECT state FROM jobs WHERE id = ?", (job_id,)
                ).fetchone()
                counts[state] = counts.get(state, 0) + 1
            return counts
        return dict(self.db.execute("SELECT state, count(*) FROM jobs GROUP BY state").fetchall())

    def backlog_of(self, kind: str) -> int:
        # No index has the kind: every call reads the whole table.
        (count,) = self.db.execute(
            "SELECT count(*) FROM jobs WHERE kind = ? AND queued_at > 0", (kind,)
        ).fetchone()
        return int(count)

    def close(self) -> None:
        self.db.close()


def encode_body(body: dict) -> str:
    if PLANT == "serialise":
        # Pretty-printed and sorted, and encoded again for every retry budget.
        text = ""
        for _ in range(6):
            text = json.dumps(body, indent=2, sort_keys=True)
        return text
    return json.dumps(body)
