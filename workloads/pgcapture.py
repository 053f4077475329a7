"""SQL capture for a profiled program's PostgreSQL statements, sent through asyncpg.

While :func:`asyncpg_timed` is installed, ``execute``, ``executemany``, ``fetch``,
``fetchrow`` and ``fetchval`` of :class:`asyncpg.Connection` are timed (from the call to the
result: the round trip, as the awaiting coroutine waits for it) and recorded into a
:class:`~workloads.sqlcapture.SqliteCapture` (the capture every statement of a program run
goes to) with the rows returned or changed, the database (the connection's DSN, password
redacted) and the program's function that awaited it: the wrapper starts on the event loop
inside that await, so the caller is on the stack, found by the same walk as sqlite3's
(:func:`~workloads.sqlcapture.caller_frame`, out of asyncpg's frames: a pool's
``pool.fetch`` is its caller's). A pool's connections are of the same class (its proxies
look the method up on the class at each call), so they are timed too. Statements that
taskqueue's own PostgreSQL store sends are left alone: taskqueue reports them itself.
Nothing happens when asyncpg is not installed. Once the program has run,
:func:`snapshot_plans` reads the plans of its statements on its databases as it left them
(``schema-postgres.json``), for the analysis's scan and sort rules.
"""

from __future__ import annotations

import sys
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from runs import Artifact
from taskqueue.config import redact_dsn

from .pgschema import snapshot_program_databases
from .sqlcapture import (
    CURRENT_OPERATION,
    TASKQUEUE_FILES,
    UNATTRIBUTED,
    SqliteCapture,
    Statement,
)

ASYNCIO_FILES = "/asyncio/"
"""The event loop's own code: a statement whose first caller outside asyncpg is there was
sent by a task asyncpg made, not by the program."""

TIMED_METHODS = ("execute", "executemany", "fetch", "fetchrow", "fetchval")
"""The methods of ``asyncpg.Connection`` that send a statement and are timed."""


PgTargets = dict[str, dict[str, Any]]
"""Redacted DSN -> the asyncpg connect arguments of that database (password included), for
the plans read once the program has run."""

MAX_PLANNED = 100
"""The costliest distinct statements of a database planned at the end of a program's run."""


@contextmanager
def asyncpg_timed(capture: SqliteCapture) -> Iterator[PgTargets]:
    """Time the program's asyncpg statements into ``capture`` while installed; yields the
    databases they ran on, filled in as they run."""
    targets: PgTargets = {}
    try:
        from asyncpg.connection import Connection
    except ImportError:
        yield targets
        return
    databases: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()
    originals = {name: Connection.__dict__[name] for name in TIMED_METHODS}
    for name, original in originals.items():
        setattr(Connection, name, _timed(capture, name, original, databases, targets))
    try:
        yield targets
    finally:
        for name, original in originals.items():
            setattr(Connection, name, original)


def snapshot_plans(capture: SqliteCapture, targets: PgTargets, run_dir: Path) -> list[Artifact]:
    """Plans of the program's PostgreSQL statements on its databases as the run left them
    (``schema-postgres.json``, :func:`workloads.pgschema.snapshot_program_databases`): the
    database with the most statement time first (the one the analysis plans on), each one's
    costliest :data:`MAX_PLANNED` statements. A database that cannot be read leaves no plans
    and a message on stderr; the run goes on."""
    totals: dict[str, dict[str, int]] = {}
    for statement in capture.statements:
        if statement.database in targets:
            by_sql = totals.setdefault(statement.database, {})
            by_sql[statement.sql] = by_sql.get(statement.sql, 0) + statement.duration_ns
    if not totals:
        return []
    ordered = sorted(totals.items(), key=lambda item: -sum(item[1].values()))
    statements = {
        database: sorted(by_sql, key=lambda sql: -by_sql[sql])[:MAX_PLANNED]
        for database, by_sql in ordered
    }
    try:
        return snapshot_program_databases(targets, statements, run_dir)
    except Exception as error:  # noqa: BLE001 - plans are a bonus: the run stands without
        print(
            f"queueprof profile: the program's PostgreSQL plans were not read "
            f"({type(error).__name__}: {error})",
            file=sys.stderr,
        )
        return []


def _timed(
    capture: SqliteCapture,
    name: str,
    original: Any,
    databases: weakref.WeakKeyDictionary[Any, str],
    targets: PgTargets,
) -> Any:
    async def method(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
        # On the event loop, inside the program's await: its coroutine is the caller frame.
        frame = sys._getframe(1)
        caller = capture.call_of(frame)
        if caller is not None and TASKQUEUE_FILES in caller.file:
            return await original(self, query, *args, **kwargs)
        if caller is not None and ASYNCIO_FILES in caller.file:
            # asyncpg's own housekeeping in a task of its own (a pool's reset query when a
            # connection is released): SQL of the run, but no function of the program's.
            caller = None
        op = capture.operation_on_stack(frame)
        start = time.perf_counter_ns()
        result = await original(self, query, *args, **kwargs)
        duration = time.perf_counter_ns() - start
        database = databases.get(self)
        if database is None:
            database = databases.setdefault(self, connection_dsn(self))
            targets.setdefault(database, connect_arguments(self))
        capture.add(
            Statement(
                CURRENT_OPERATION.get() or op or UNATTRIBUTED,
                " ".join(str(query).split()),
                duration,
                database,
                caller,
                rows=_rows(name, result, args),
            )
        )
        return result

    method.__name__, method.__qualname__ = name, f"Connection.{name}"
    # Named as the method it wraps in profiles too (``Connection.fetch (pgcapture.py)``).
    method.__code__ = method.__code__.replace(co_name=name, co_qualname=f"Connection.{name}")
    method.__doc__ = original.__doc__
    return method


def connection_dsn(connection: Any) -> str:
    """The DSN of an asyncpg connection (host, port, user, database), password redacted."""
    params = getattr(connection, "_params", None)
    address = getattr(connection, "_addr", None)
    user = getattr(params, "user", None) or ""
    password = getattr(params, "password", None)
    database = getattr(params, "database", None) or ""
    auth = f"{user}:{password}@" if password else f"{user}@" if user else ""
    if isinstance(address, tuple) and len(address) >= 2:
        return redact_dsn(f"postgresql://{auth}{address[0]}:{address[1]}/{database}")
    if isinstance(address, str):  # a Unix socket's path
        return redact_dsn(f"postgresql://{auth}/{database}?host={address}")
    return redact_dsn(f"postgresql://{auth}/{database}")


def connect_arguments(connection: Any) -> dict[str, Any]:
    """``asyncpg.connect`` keyword arguments that reach ``connection``'s database again."""
    params = getattr(connection, "_params", None)
    address = getattr(connection, "_addr", None)
    found: dict[str, Any] = {
        key: value
        for key in ("user", "password", "database")
        if (value := getattr(params, key, None))
    }
    if isinstance(address, tuple) and len(address) >= 2:
        found.update(host=address[0], port=address[1])
    elif isinstance(address, str):
        found["host"] = address
    return found


def _rows(name: str, result: Any, args: tuple[Any, ...]) -> int:
    """Rows a call returned (fetch*) or changed (execute's status, executemany's argument
    rows)."""
    if name == "fetch":
        return len(result) if isinstance(result, list) else 0
    if name in ("fetchrow", "fetchval"):
        return 0 if result is None else 1
    if name == "executemany":
        rows = args[0] if args else None
        return len(rows) if isinstance(rows, list | tuple) else 0
    # execute: a status such as "INSERT 0 5", "UPDATE 3", "BEGIN".
    last = str(result).rsplit(" ", 1)[-1] if result else ""
    return int(last) if last.isdigit() else 0
