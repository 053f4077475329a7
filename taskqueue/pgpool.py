"""The PostgreSQL queue's own connection pool: a list of idle connections and a size.

asyncpg's pool releases each connection through ``asyncio.shield`` and a task of its own:
a task, and passes of the event loop, for every queue operation (7 % of a one-at-a-time
cycle's time on the reference machine). Every queue operation is one statement on one
connection, started and finished within one call, so handing connections out needs no more
than this: take an idle one (or open one, up to the size, or wait for one), and put it back,
or close it when the call failed in a way that may have left it mid-protocol.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Awaitable, Callable

import asyncpg

from .errors import QueueClosedError


class ConnectionPool:
    """Up to ``size`` connections from ``connect``, opened when first needed."""

    def __init__(
        self, connect: Callable[[], Awaitable[asyncpg.Connection]], size: int, where: str
    ) -> None:
        self._connect = connect
        self._size = size
        self._where = where
        self._idle: list[asyncpg.Connection] = []
        self._opened = 0
        """Connections open or being opened, idle or in use."""
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._closed = False

    async def acquire(self) -> asyncpg.Connection:
        """An idle connection, a new one (up to the size), or the next one released."""
        while True:
            if self._closed:
                raise QueueClosedError(f"{self._where}: the queue is closed")
            while self._idle:
                conn = self._idle.pop()
                if not conn.is_closed():
                    return conn
                self._opened -= 1  # the server ended it while idle
            if self._opened < self._size:
                self._opened += 1
                try:
                    return await self._connect()
                except BaseException:
                    self._opened -= 1
                    self._wake_one()
                    raise
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)

    def release(self, conn: asyncpg.Connection, reusable: bool) -> None:
        """Give ``conn`` back: idle for the next call when ``reusable`` (the call ended with
        the connection between statements), otherwise closed at once."""
        if reusable and not self._closed and not conn.is_closed():
            self._idle.append(conn)
        else:
            self._opened -= 1
            if not conn.is_closed():
                conn.terminate()
        self._wake_one()

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def close(self, timeout: float = 5.0) -> None:
        """Close the idle connections (those in use close as they come back); callers
        waiting for one get :class:`QueueClosedError`."""
        self._closed = True
        idle, self._idle = self._idle, []
        self._opened -= len(idle)
        for conn in idle:
            try:
                await conn.close(timeout=timeout)
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
                conn.terminate()  # a server that went away
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
