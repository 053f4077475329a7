"""The one place the queue reaches into aiosqlite.

aiosqlite runs every call on its connection's thread and each ``await`` costs a round trip
(~38 us on the reference machine). Its public API runs one statement per trip, so a claim in a
transaction would pay four. :func:`run` sends a whole function (one queue operation, any number
of statements) in one trip, through the same queue and thread aiosqlite uses for its own calls,
so ordering with ordinary aiosqlite calls on that connection is preserved.

``Connection._execute`` and ``Connection._conn`` are private; the dependency is pinned to the
versions tested (see pyproject.toml) and ``tests/unit/test_bridge.py`` checks the contract.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar, cast

import aiosqlite

from . import observe

T = TypeVar("T")


async def run(conn: aiosqlite.Connection, fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn(*args)`` on ``conn``'s thread and return its result (or raise its error).

    Observers (:mod:`taskqueue.observe`) hear of each call as it goes and comes back.
    """
    observers = observe.active
    if not observers:
        return cast(T, await conn._execute(fn, *args))  # type: ignore[no-untyped-call]
    for observer in observers:
        observer.thread_call(True)
    try:
        return cast(T, await conn._execute(fn, *args))  # type: ignore[no-untyped-call]
    finally:
        for observer in observers:
            observer.thread_call(False)


def raw_connection(conn: aiosqlite.Connection) -> sqlite3.Connection:
    """The ``sqlite3.Connection`` behind ``conn``; use it only from ``conn``'s thread."""
    return conn._conn
