"""Every SQL statement the queue runs, in one place, and the JSON its batch statements read.

The raw-``sqlite3`` baseline of the benchmarks runs these same strings (and builds its batches
with :func:`insert_documents` and :func:`ack_documents`), so the ratio between the queue and the
baseline measures the queue's own overhead, not different SQL.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import chain
from typing import Any, TypeVar

import orjson

from .errors import InvalidPayloadError

APPLICATION_ID = 0x71707266  # "qprf": marks a database as ours
SCHEMA_VERSION = 1

PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA temp_store=MEMORY",
    # No checkpoint inside a commit: the queue's checkpoint connection does it on its own
    # thread (TaskQueue._start_checkpoints), and the sqlite3 baseline runs with the same
    # pragmas, so both sides of a ratio do the same work per statement.
    "PRAGMA wal_autocheckpoint=0",
)

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS tasks (
    id           INTEGER PRIMARY KEY,
    type         TEXT    NOT NULL,
    payload      TEXT    NOT NULL,
    priority     INTEGER NOT NULL,
    state        TEXT    NOT NULL CHECK (state IN ('pending', 'running', 'done', 'dead')),
    run_at       REAL    NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    worker       TEXT,
    lease_until  REAL,
    created_at   REAL    NOT NULL,
    started_at   REAL,
    finished_at  REAL,
    result       TEXT,
    error        TEXT
);
-- Partial indexes hold only live tasks, so they stay small however many tasks are done.
-- The claim is an ordered SEARCH on tasks_ready (state=?); no scan, no temp B-tree.
CREATE INDEX IF NOT EXISTS tasks_ready
    ON tasks (state, priority DESC, run_at, id) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS tasks_leased
    ON tasks (lease_until) WHERE state = 'running';
PRAGMA application_id = {APPLICATION_ID};
PRAGMA user_version = {SCHEMA_VERSION};
"""

INSERT = (
    "INSERT INTO tasks (type, payload, priority, state, run_at, max_attempts, created_at) "
    "VALUES (?, ?, ?, 'pending', ?, ?, ?)"
)

# One statement for a batch of up to FLAT_ROWS_MOST rows: their fields come one after
# another in one flat JSON array ([type, payload, priority, delay, max_attempts, type, ...]),
# read by index from the parameter, which SQLite parses once and keeps; due times are added
# here, not built row by row in Python. (An array of per-row arrays made SQLite re-parse
# each row's own JSON text: 7.7 allocations per row against 3.8, each one a call into any
# allocation profiler.) Finding `$[N]` walks the array, so a statement costs its size
# squared: bigger batches are several statements in one transaction (insert_documents).
INSERT_MANY = (
    "INSERT INTO tasks (type, payload, priority, state, run_at, max_attempts, created_at) "
    "SELECT j.value, :rows -> (j.key + 1), :rows ->> (j.key + 2), 'pending', "
    ":now + (:rows ->> (j.key + 3)), :rows ->> (j.key + 4), :now "
    "FROM json_each(:rows) AS j WHERE j.key % 5 = 0 RETURNING id"
)

_CLAIMED_COLUMNS = "id, type, payload, priority, attempts, max_attempts"

SELECT_READY = (
    "SELECT id FROM tasks WHERE state = 'pending' AND run_at <= :now "
    "ORDER BY priority DESC, run_at, id LIMIT :n"
)

CLAIM_RETURNING = (
    "UPDATE tasks SET state = 'running', worker = :worker, lease_until = :lease_until, "
    "attempts = attempts + 1, started_at = :now "
    f"WHERE id IN ({SELECT_READY}) RETURNING {_CLAIMED_COLUMNS}"
)

# Used after SELECT_READY by the two-step claim styles; `state = 'pending'` makes a task that
# another connection took in between drop out (a claim conflict) instead of being taken twice.
CLAIM_IDS = (
    "UPDATE tasks SET state = 'running', worker = :worker, lease_until = :lease_until, "
    "attempts = attempts + 1, started_at = :now "
    "WHERE id IN (SELECT value FROM json_each(:ids)) AND +state = 'pending' "
    f"RETURNING {_CLAIMED_COLUMNS}"
)

# (id, attempts) names one claim: an ack from a claim whose lease expired changes nothing.
COMPLETE = (
    "UPDATE tasks SET state = 'done', result = :result, finished_at = :now, lease_until = NULL "
    "WHERE id = :id AND state = 'running' AND attempts = :attempts"
)

# Acks as [id, attempts, result, id, ...], as INSERT_MANY reads its rows (19.3 allocations
# per ack as an array of arrays, 3.4 flat).
COMPLETE_MANY = (
    "UPDATE tasks SET state = 'done', result = :acks -> (j.key + 2), finished_at = :now, "
    "lease_until = NULL FROM json_each(:acks) AS j "
    "WHERE j.key % 3 = 0 AND tasks.id = j.value AND tasks.state = 'running' "
    "AND tasks.attempts = :acks ->> (j.key + 1)"
)

FLAT_ROWS_MOST = 128
"""The most rows one INSERT_MANY or COMPLETE_MANY statement carries (its cost grows with
the square of its size; at 100 rows it runs as fast as the array-of-arrays form did)."""


# Both builders below run once per batch with no Python bytecode per row (the rows are
# flattened and formatted by C iterators): under a profile hook on Python 3.11 every bytecode
# of the thread takes the slower tracing path, so per-row bytecode is what a profiled queue
# pays for most.


VALUE_BYTES_MOST = 1 << 29
"""The largest payload or result the queue stores, as JSON (512 MiB): SQLite refuses any one
value over 1,000,000,000 bytes (SQLITE_MAX_LENGTH), and a batch's document must hold one such
value and its row. Larger data belongs outside the queue, with its path or key in the payload."""

DOCUMENT_CHARS_MOST = 1 << 26
"""The most characters one INSERT_MANY or COMPLETE_MANY document holds (64 Mi) when it has
more than one row: a batch of large payloads is split further, so no document nears SQLite's
limit on one value even at 4 bytes a character."""


def insert_documents(rows: Sequence[Sequence[Any]]) -> list[str]:
    """INSERT_MANY's ``:rows`` documents for [type, payload, priority, delay, max_attempts]
    rows, FLAT_ROWS_MOST rows each (fewer when their payloads are large, see
    :data:`DOCUMENT_CHARS_MOST`). Payloads may be any JSON value or an ``orjson.Fragment``;
    raises TypeError (orjson's) for one that is not JSON, :class:`InvalidPayloadError` for
    one over :data:`VALUE_BYTES_MOST`."""
    return [document for document, _ in documents(rows, _insert_document)]


def insert_document_rows(document: str) -> int:
    """How many rows an :func:`insert_documents` document holds (five fields a row)."""
    return len(orjson.loads(document)) // 5


def _insert_document(rows: Sequence[Sequence[Any]]) -> str:
    return orjson.dumps(list(chain.from_iterable(rows))).decode()


def ack_documents(acks: list[tuple[int, int, str]]) -> list[str]:
    """COMPLETE_MANY's ``:acks`` documents for (task id, attempts, result JSON text) rows,
    FLAT_ROWS_MOST each (fewer when their results are large)."""
    return [document for document, _ in documents(acks, _ack_document)]


def _ack_document(acks: Sequence[tuple[int, int, str]]) -> str:
    return "[" + ",".join(map(_ACK.__mod__, acks)) + "]"


Row = TypeVar("Row")


def documents(
    rows: Sequence[Row], encode: Callable[[Sequence[Row]], str]
) -> list[tuple[str, Sequence[Row]]]:
    """``rows`` encoded FLAT_ROWS_MOST to a document, each document with the rows it holds
    (fewer when they are large, see :func:`_halved`)."""
    return [
        piece
        for at in range(0, len(rows), FLAT_ROWS_MOST)
        for piece in _halved(rows[at : at + FLAT_ROWS_MOST], encode)
    ]


def _halved(
    rows: Sequence[Row], encode: Callable[[Sequence[Row]], str]
) -> list[tuple[str, Sequence[Row]]]:
    """``rows`` encoded as one document, or halved until each document is under
    :data:`DOCUMENT_CHARS_MOST` characters or holds one row (under :data:`VALUE_BYTES_MOST`);
    each with the rows it holds."""
    document = encode(rows)
    if len(document) <= DOCUMENT_CHARS_MOST:
        return [(document, rows)]
    if len(rows) == 1:
        size = len(document.encode())
        if size > VALUE_BYTES_MOST:
            raise InvalidPayloadError(
                f"a task of {size:,} bytes as JSON is over the queue's limit of "
                f"{VALUE_BYTES_MOST:,} bytes per payload or result: keep large data outside "
                "the queue (a file, an object store) and put its path or key in the payload"
            )
        return [(document, rows)]
    half = len(rows) // 2
    return _halved(rows[:half], encode) + _halved(rows[half:], encode)


_ACK = "%d,%d,%s"


FAIL = (
    "UPDATE tasks SET "
    "state = CASE WHEN :retry AND attempts < max_attempts THEN 'pending' ELSE 'dead' END, "
    "finished_at = CASE WHEN :retry AND attempts < max_attempts THEN NULL ELSE :now END, "
    "run_at = :retry_at, error = :error, worker = NULL, lease_until = NULL "
    "WHERE id = :id AND state = 'running' AND attempts = :attempts RETURNING state"
)

# Read first: an UPDATE takes the write lock even when it matches nothing, so a sweep that
# finds nothing (the usual case) must not write.
EXPIRED_EXISTS = "SELECT 1 FROM tasks WHERE state = 'running' AND lease_until < :now LIMIT 1"

RECLAIM = (
    "UPDATE tasks SET "
    "state = CASE WHEN attempts < max_attempts THEN 'pending' ELSE 'dead' END, "
    "finished_at = CASE WHEN attempts < max_attempts THEN NULL ELSE :now END, "
    "error = 'lease expired on worker ' || worker, worker = NULL, lease_until = NULL, "
    "run_at = :now "
    "WHERE state = 'running' AND lease_until < :now RETURNING state"
)

STATUS = (
    "SELECT id, type, state, priority, attempts, max_attempts, worker, run_at, lease_until, "
    "created_at, started_at, finished_at, result, error FROM tasks WHERE id = ?"
)

COUNTS = "SELECT state, count(*) FROM tasks GROUP BY state"

# The pending half is a search; the running half walks the partial index of tasks in
# flight, which holds only claimed tasks, so it stays small however large the table is.
IS_DRAINED = (
    "SELECT NOT EXISTS (SELECT 1 FROM tasks WHERE state = 'pending') "
    "AND NOT EXISTS (SELECT 1 FROM tasks WHERE state = 'running')"
)

# Statements whose query plans the tests (and the analysis) check.
PLANNED = {
    "claim": CLAIM_RETURNING,
    "select_ready": SELECT_READY,
    "claim_ids": CLAIM_IDS,
    "complete": COMPLETE,
    "complete_many": COMPLETE_MANY,
    "fail": FAIL,
    "expired_exists": EXPIRED_EXISTS,
    "reclaim": RECLAIM,
    "status": STATUS,
    "is_drained": IS_DRAINED,
}
