"""SQL capture for a profiled program's PostgreSQL statements, sent through asyncpg.

While :func:`asyncpg_timed` is installed, ``execute``, ``executemany``, ``fetch``,
``fetchrow`` and ``fetchval`` of :class:`asyncpg.Connection` are timed (from the call to the
result: the round trip, as the awaiting coroutine waits for it) and recorded into a
:class:`~workloads.sqlcapture.SqliteCapture` (the capture every statement of a program run
goes to) with the rows returned or changed, the database (the connection's DSN, password
redacted) and the program's function that awaited it: the wrapper starts on the event loop
inside that await, so the caller is on the stack, found by the same walk as sqlite3's
(:func:`~workloads.sqlcapture.statement_caller`, out of asyncpg's frames: a pool's
``pool.fetch`` is its caller's). A pool's connections are of the same class (its proxies
look the method up on the class at each call), so they are timed too. Statements that
taskqueue's own PostgreSQL store sends are left alone: taskqueue reports them itself.
Nothing happens when asyncpg is not installed.
"""

from __future__ import annotations

import sys
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from taskqueue.config import redact_dsn

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


@contextmanager
def asyncpg_timed(capture: SqliteCapture) -> Iterator[None]:
    """Time the program's asyncpg statements into ``capture`` while installed."""
    try:
        from asyncpg.connection import Connection
    except ImportError:
        yield
        return
    databases: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()
    originals = {name: Connection.__dict__[name] for name in TIMED_METHODS}
    for name, original in originals.items():
        setattr(Connection, name, _timed(capture, name, original, databases))
    try:
        yield
    finally:
        for name, original in originals.items():
            setattr(Connection, name, original)


def _timed(
    capture: SqliteCapture,
    name: str,
    original: Any,
    databases: weakref.WeakKeyDictionary[Any, str],
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
