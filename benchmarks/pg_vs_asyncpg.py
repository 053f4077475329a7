"""The PostgreSQL queue against plain asyncpg running the queue's own statements.

The counterpart of :mod:`benchmarks.queue_vs_sqlite` for the PostgreSQL backend: each side
gets a fresh database on the same server, the plain side runs :mod:`taskqueue.pgsql`'s strings
(as the queue builds them for its default strategy) on one asyncpg connection, so the ratio
is the queue's own overhead (the pool, engines, JSON, Task objects), not a different SQL.
The queue's side is the SQLite rows' own (:func:`benchmarks.goals.measure.engine_cycle` and
``pool_cycle``), given a database URL.

- :func:`raw_pg_cycle`: INSERT one task at a time, then claim one task at a time with the
  previous task's ack in the same statement (what one engine with ``claim_batch=1,
  ack_batch=1`` sends);
- :func:`raw_pg_batched`: INSERT_MANY in batches, then claims of ``batch`` with the previous
  batch's acks in the same statement.

The server is ``QUEUEPROF_PG`` or the local one (:func:`taskqueue.pgadmin.default_server`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg
import orjson

from taskqueue import QueueConfig, TaskQueue, pgadmin, pgsql, redact_dsn, sql
from taskqueue.config import PgClaim
from taskqueue.pgstore import new_claim_token

T = TypeVar("T")


async def on_scratch_database(server: str, label: str, work: Callable[[str], Awaitable[T]]) -> T:
    """``work(url)`` on a fresh database of ``server``, dropped afterwards."""
    name = pgadmin.scratch_name(label)
    dsn = await pgadmin.create_database(server, name)
    try:
        return await work(dsn)
    finally:
        await pgadmin.drop_database(server, name)


async def _schema(dsn: str) -> asyncpg.Connection:
    """A connection to ``dsn`` with the queue's schema created (as the queue creates it)."""
    async with TaskQueue(dsn, QueueConfig(wakeup="poll:50")):
        pass  # the schema, made by the queue's own open
    return await asyncpg.connect(dsn, server_settings=pgsql.SESSION_SETTINGS)


async def raw_pg_cycle(dsn: str, tasks: int) -> float:
    """Tasks/s: ``tasks`` single INSERTs, then claims of one with the ack riding along."""
    conn = await _schema(dsn)
    insert = pgsql.insert_statement(notify=True)
    claim = pgsql.claim_with_acks_statement(PgClaim.SKIP_LOCKED)
    first_claim = pgsql.claim_statement(PgClaim.SKIP_LOCKED, QueueConfig().pg_claim_commit)
    payload = orjson.dumps({"n": 0}).decode()
    try:
        started = time.perf_counter()
        for _ in range(tasks):
            now = time.time()
            await conn.fetch(insert, "noop", payload, 0, 0.0, 3, now, "raw 1")
        done = await _drain(conn, first_claim, claim, 1)
        elapsed = time.perf_counter() - started
    finally:
        await conn.close()
    _check(done, tasks, dsn)
    return tasks / elapsed


async def raw_pg_batched(dsn: str, tasks: int, batch: int) -> float:
    """Tasks/s: INSERT_MANY of ``batch`` rows, then claims of ``batch`` with acks along."""
    conn = await _schema(dsn)
    insert = pgsql.insert_many_statement(notify=True)
    claim = pgsql.claim_with_acks_statement(PgClaim.SKIP_LOCKED)
    first_claim = pgsql.claim_statement(PgClaim.SKIP_LOCKED, QueueConfig().pg_claim_commit)
    try:
        started = time.perf_counter()
        for first in range(0, tasks, batch):
            rows = min(batch, tasks - first)
            for document in sql.insert_documents([["noop", {"n": 0}, 0, 0.0, 3]] * rows):
                await conn.fetch(insert, document, time.time(), f"raw {rows}")
        done = await _drain(conn, first_claim, claim, batch)
        elapsed = time.perf_counter() - started
    finally:
        await conn.close()
    _check(done, tasks, dsn)
    return tasks / elapsed


async def _drain(conn: asyncpg.Connection, first_claim: str, claim: str, n: int) -> int:
    """Claim ``n`` at a time until none is left, acking each claim with the next; returns
    the tasks acked. Payloads are decoded as the queue does (one JSON array per claim)."""
    now, token = time.time(), new_claim_token()
    rows = await conn.fetch(first_claim, "w0", now + 30, now, n, token)
    acked = 0
    while rows:
        orjson.loads("[" + ",".join(r[2] for r in rows) + "]")
        ((ids, tokens, results), _), *_ = pgsql.ack_batches([(r[0], token, "null") for r in rows])
        now, token = time.time(), new_claim_token()
        found = await conn.fetch(claim, "w0", now + 30, now, n, token, ids, tokens, results, now)
        acked += found[0][0]
        rows = [tuple(r)[1:] for r in found if r[1] is not None]
    return acked


def _check(done: int, tasks: int, dsn: str) -> None:
    if done != tasks:  # a reference that skipped work would flatter every ratio
        raise RuntimeError(
            f"plain asyncpg completed {done} of the {tasks} tasks it inserted into "
            f"{redact_dsn(dsn)}; taskqueue/pgsql.py and this loop disagree"
        )


def run(work: Awaitable[T]) -> T:
    """``work`` on a new event loop (each round its own, as the SQLite rows do)."""

    async def main() -> T:
        return await work

    return asyncio.run(main())
