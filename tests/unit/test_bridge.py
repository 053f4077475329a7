"""The contract taskqueue/_bridge.py relies on in aiosqlite's private API.

``_bridge.run`` hands a function to ``Connection._execute`` and ``raw_connection`` reads
``Connection._conn``. These tests pin what the queue needs from them, so an aiosqlite upgrade
that breaks either fails here first.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import aiosqlite
import pytest

from taskqueue import _bridge


def _on_connection(db_path: Path, scenario: Any) -> Any:
    async def main() -> Any:
        async with aiosqlite.connect(db_path, isolation_level=None) as conn:
            return await scenario(conn)

    return asyncio.run(main())


def test_run_executes_on_the_connection_thread(db_path: Path) -> None:
    async def scenario(conn: aiosqlite.Connection) -> tuple[int, int, int]:
        # aiosqlite's own calls run on its thread: a SQL function reports where that is.
        await conn.create_function("thread_ident", 0, threading.get_ident)
        async with conn.execute("SELECT thread_ident()") as cursor:
            row = await cursor.fetchone()
        assert row is not None
        bridged = await _bridge.run(conn, threading.get_ident)
        return threading.get_ident(), row[0], bridged

    loop_thread, aiosqlite_thread, bridged_thread = _on_connection(db_path, scenario)
    assert bridged_thread == aiosqlite_thread
    assert bridged_thread != loop_thread


def test_run_passes_arguments_and_returns_the_result(db_path: Path) -> None:
    def insert_and_count(db: sqlite3.Connection, values: list[int]) -> int:
        db.execute("CREATE TABLE t (x INTEGER)")
        db.executemany("INSERT INTO t VALUES (?)", [(v,) for v in values])
        count: int = db.execute("SELECT count(*) FROM t").fetchone()[0]
        return count

    async def scenario(conn: aiosqlite.Connection) -> int:
        raw = _bridge.raw_connection(conn)
        assert isinstance(raw, sqlite3.Connection)
        return await _bridge.run(conn, insert_and_count, raw, [1, 2, 3])

    assert _on_connection(db_path, scenario) == 3


def test_the_raw_connection_is_usable_only_on_its_thread(db_path: Path) -> None:
    async def scenario(conn: aiosqlite.Connection) -> None:
        raw = _bridge.raw_connection(conn)
        with pytest.raises(sqlite3.ProgrammingError, match="thread"):
            raw.execute("SELECT 1")
        assert await _bridge.run(conn, lambda: raw.execute("SELECT 1").fetchone()) == (1,)

    _on_connection(db_path, scenario)


def test_run_propagates_the_functions_exception(db_path: Path) -> None:
    def boom() -> None:
        raise KeyError("from the connection thread")

    async def scenario(conn: aiosqlite.Connection) -> None:
        raw = _bridge.raw_connection(conn)
        with pytest.raises(KeyError, match="from the connection thread"):
            await _bridge.run(conn, boom)
        with pytest.raises(sqlite3.OperationalError, match="no such table"):
            await _bridge.run(conn, lambda: raw.execute("SELECT * FROM missing"))
        # The connection keeps working after both.
        assert await _bridge.run(conn, lambda: raw.execute("SELECT 2").fetchone()) == (2,)

    _on_connection(db_path, scenario)


def test_run_keeps_its_place_among_ordinary_aiosqlite_calls(db_path: Path) -> None:
    async def scenario(conn: aiosqlite.Connection) -> list[str]:
        await conn.execute("CREATE TABLE log (entry TEXT)")
        raw = _bridge.raw_connection(conn)

        def bridged(entry: str) -> None:
            raw.execute("INSERT INTO log VALUES (?)", (entry,))

        async def ordinary(entry: str) -> None:
            await conn.execute("INSERT INTO log VALUES (?)", (entry,))

        # Submitted in this order, without awaiting in between.
        calls: list[Awaitable[None]] = []
        for i in range(50):
            calls.append(ordinary(f"a{i}") if i % 2 else _bridge.run(conn, bridged, f"b{i}"))
        await asyncio.gather(*calls)
        async with conn.execute("SELECT entry FROM log ORDER BY rowid") as cursor:
            return [row[0] for row in await cursor.fetchall()]

    entries = _on_connection(db_path, scenario)
    assert entries == [f"a{i}" if i % 2 else f"b{i}" for i in range(50)]


def test_run_on_a_closed_connection_raises(db_path: Path) -> None:
    async def main() -> None:
        conn = await aiosqlite.connect(db_path)
        await conn.close()
        with pytest.raises(ValueError, match="closed"):
            await _bridge.run(conn, threading.get_ident)

    asyncio.run(main())
