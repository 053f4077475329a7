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

import asyncio
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


async def connect(path: str, **kwargs: Any) -> aiosqlite.Connection:
    """``aiosqlite.connect(path, **kwargs)``; if it fails, wait for its thread to end first.

    On a failed connect aiosqlite queues the stop of its connection thread with a callback
    into the event loop, and does not wait for it: if the loop closed meanwhile (a failed
    ``asyncio.run`` ends at once), the thread printed "RuntimeError: Event loop is closed"
    (17 of 20 tries). Joining the thread (off the loop) before raising lets it call back
    while the loop still runs.
    """
    conn = aiosqlite.connect(path, **kwargs)
    try:
        return await conn
    except Exception:
        thread = conn._thread
        if thread.is_alive():
            await asyncio.to_thread(thread.join)
        raise


def raw_connection(conn: aiosqlite.Connection) -> sqlite3.Connection:
    """The ``sqlite3.Connection`` behind ``conn``; use it only from ``conn``'s thread."""
    return conn._conn
