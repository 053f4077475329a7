"""The Postgres queue's connection pool: size, hand-over, replacement, close."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from taskqueue import QueueClosedError
from taskqueue.pgpool import ConnectionPool


def _pool(dsn: str, size: int, opened: list[asyncpg.Connection]) -> ConnectionPool:
    async def connect() -> asyncpg.Connection:
        conn: asyncpg.Connection = await asyncpg.connect(dsn)
        opened.append(conn)
        return conn

    return ConnectionPool(connect, size, "test")


def test_a_full_pool_hands_a_released_connection_to_the_next_caller(pg_dsn: str) -> None:
    async def scenario() -> None:
        opened: list[asyncpg.Connection] = []
        pool = _pool(pg_dsn, 1, opened)
        first = await pool.acquire()
        # GIVEN the one connection in use, WHEN another caller asks, THEN it waits ...
        waiting = asyncio.ensure_future(pool.acquire())
        await asyncio.sleep(0.05)
        assert not waiting.done()
        # ... until the connection comes back, and gets that same connection
        pool.release(first, reusable=True)
        assert await asyncio.wait_for(waiting, 5) is first
        assert len(opened) == 1
        # A connection given back as not reusable is closed, and its slot opens a new one
        pool.release(first, reusable=False)
        assert first.is_closed()
        second = await pool.acquire()
        assert second is not first
        assert len(opened) == 2
        pool.release(second, reusable=True)
        await pool.close()
        assert second.is_closed()

    asyncio.run(scenario())


def test_a_closed_pool_refuses_and_wakes_its_waiters(pg_dsn: str) -> None:
    async def scenario() -> None:
        pool = _pool(pg_dsn, 1, [])
        held = await pool.acquire()
        waiting = asyncio.ensure_future(pool.acquire())
        await asyncio.sleep(0.05)
        await pool.close()
        with pytest.raises(QueueClosedError):
            await asyncio.wait_for(waiting, 5)
        # a connection in use when the pool closed is closed as it comes back
        pool.release(held, reusable=True)
        assert held.is_closed()
        with pytest.raises(QueueClosedError):
            await pool.acquire()

    asyncio.run(scenario())


def test_an_idle_connection_the_server_ended_is_not_handed_out(pg_dsn: str) -> None:
    async def scenario() -> None:
        opened: list[asyncpg.Connection] = []
        pool = _pool(pg_dsn, 1, opened)
        conn = await pool.acquire()
        pool.release(conn, reusable=True)
        conn.terminate()  # as a server restart leaves it
        fresh = await pool.acquire()
        assert fresh is not conn
        assert not fresh.is_closed()
        pool.release(fresh, reusable=True)
        await pool.close()

    asyncio.run(scenario())
