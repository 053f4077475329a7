"""The task queue on PostgreSQL (asyncpg): ``TaskQueue("postgresql://...")`` opens one.

The same public API and guarantees as the SQLite queue, which this class extends: the
Python side (wake-ups, polls, argument checks, timings, observers) is shared, the storage
is :class:`~taskqueue.pgstore.PgStore` on a connection pool of its own
(:mod:`taskqueue.pgpool`). Every operation is one statement, so one round trip and one
atomic commit; a claim takes rows with ``FOR UPDATE
SKIP LOCKED`` (or the naive ``FOR UPDATE``: ``pg_claim``). Serialization failures,
deadlocks and lock timeouts are retried as SQLITE_BUSY is on SQLite; a lost connection is
retried for every operation that is safe to send again, and any other server error is a
:class:`QueueDatabaseError`: asyncpg's own errors never reach the caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from time import perf_counter_ns
from typing import Any, TypeVar

import asyncpg

from . import observe, pgsql
from .config import ConnectionMode, PgAcks, QueueConfig, redact_dsn
from .errors import (
    InvalidArgumentError,
    QueueBusyError,
    QueueClosedError,
    QueueDatabaseError,
    QueueOpenError,
)
from .models import NewTask, ReclaimResult, Task, TaskState, TaskStatus
from .payload import INT64_MAX, batch_document, validated_row
from .pgpool import ConnectionPool
from .pgstore import PgStore
from .queue import TaskQueue, _storable
from .store import AckRow

T = TypeVar("T")
type_of = type  # `type` is a parameter name of enqueue

_CONTENTION = (
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
    asyncpg.LockNotAvailableError,
)
"""Errors after which the server rolled the statement back and a retry can succeed."""
_LOST = (
    asyncpg.PostgresConnectionError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.AdminShutdownError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    # The client lost track of the connection's state (a server-ended session seen in the
    # middle of a call): as good as lost; the pool closes it and opens another.
    asyncpg.InternalClientError,
    asyncpg.ProtocolError,
    ConnectionError,
    OSError,
    TimeoutError,
)
"""The connection went away (or none could be had): whether the statement committed is
unknown."""
LISTEN_RETRY_S = 1.0
"""After the LISTEN connection could not be opened, how long waits poll before it is tried
again."""
LISTEN_CONNECT_TIMEOUT_S = 10.0
"""The longest an attempt to open the LISTEN connection may take (asyncpg's own default is
60 s); the engines' waits poll meanwhile."""
_BAD_TEXT = (asyncpg.CharacterNotInRepertoireError, asyncpg.UntranslatableCharacterError)
_SCHEMA_LOCK = 0x71707266  # "qprf": serializes schema creation between openers
RECONNECT_BACKOFF_MAX_S = 0.1
"""The longest step between tries to reach a server that went away (contention backs off
in steps of at most ``busy_backoff_max_ms``, as on SQLite): a restarting server takes
seconds, and a tight loop would only add connection attempts to its log."""


class PgTaskQueue(TaskQueue):
    """A PostgreSQL task queue; build it as ``TaskQueue(dsn, config)``."""

    def __init__(
        self,
        path: str | Path,
        config: QueueConfig | None = None,
        *,
        clock: Callable[[], float] = time.time,
        affinity_slot: int | None = None,
    ) -> None:
        super().__init__(path, config, clock=clock, affinity_slot=affinity_slot)
        self.target = str(path)
        self._where = redact_dsn(self.target)
        self._inline = False  # every call suspends on the network: no turns to give away
        self.acks_behind_claims = self.config.pg_acks is PgAcks.BEHIND
        self._pool: ConnectionPool | None = None
        self._worker_pools: dict[str, ConnectionPool] = {}
        """With ``connection=per-worker``: connections of its own per worker name (a pool of
        one, or two unless ``pg_acks=ride``, which replaces a connection when it is
        lost)."""
        self._listener: asyncpg.Connection | None = None
        """The LISTEN connection (``wakeup=notify``), opened by the first wait for work: a
        queue that only enqueues or claims without waiting (a producer, a busy worker) holds
        no connection for it, and is not sent every enqueue's notification, its own
        included (4-8% of a one-at-a-time cycle on the reference machine)."""
        self._opening_listener = False
        """A wait is opening the listener: the others poll meanwhile."""
        self._listen_again_at = 0.0
        """After a failed LISTEN, the next try waits until then (monotonic seconds)."""
        self._token = f"{os.getpid()}.{id(self)}"
        """This queue's notifications carry it, so the listener skips its own."""
        notify = self.config.wakeup.mode == "notify"
        self._pg = PgStore(
            self._clock,
            self.config.pg_claim,
            self.stats.sql if self.config.capture_sql else None,
            self._token if notify else None,
            self.config.pg_claim_commit,
        )

    @property
    def where(self) -> str:
        return self._where

    # -- lifecycle -------------------------------------------------------------------------

    async def open(self) -> PgTaskQueue:
        """Connect, check the database is ours (or empty) and create the schema. Raises
        :class:`QueueOpenError`. Other processes' enqueues are listened for from the first
        :meth:`wait_for_work` on (``wakeup=notify``)."""
        try:
            self._pool = pool = self._new_pool(self.config.pg_pool)
            conn = await pool.acquire()
            try:
                await _prepare(conn, self._where)
            finally:
                pool.release(conn, reusable=not conn.is_in_transaction())
        except BaseException as error:
            await self.close()
            if isinstance(error, QueueOpenError | asyncio.CancelledError | KeyboardInterrupt):
                raise
            if isinstance(error, Exception):
                raise QueueOpenError(_open_fix(self._where, error)) from None
            raise
        return self

    def _new_pool(self, size: int) -> ConnectionPool:
        settings = {
            **pgsql.SESSION_SETTINGS,
            "synchronous_commit": self.config.pg_synchronous_commit,
        }

        async def connect() -> asyncpg.Connection:
            conn: asyncpg.Connection = await asyncpg.connect(self.target, server_settings=settings)
            return conn

        return ConnectionPool(connect, size, self._where)

    def _pool_of(self, worker: str | None) -> ConnectionPool | None:
        """The pool ``worker``'s operations use: the shared one, or with
        ``connection=per-worker`` the worker's own; None once the queue is closed."""
        if self._closed or self._pool is None:
            return None
        if worker is None or self.config.connection is not ConnectionMode.PER_WORKER:
            return self._pool
        found = self._worker_pools.get(worker)
        if found is None:
            # pg_acks=parallel and =behind write a worker's acks beside its claims: on a
            # second connection.
            size = 1 if self.config.pg_acks is PgAcks.RIDE else 2
            found = self._worker_pools[worker] = self._new_pool(size)
        return found

    async def wait_for_work(self, timeout: float | None = None) -> None:
        """Sleep until an enqueue of this process or (``wakeup=notify``) a notification of
        another one signals work, or the wake-up interval passes.

        The first wait starts listening and returns at once: a task enqueued elsewhere
        between the caller's empty claim and the LISTEN was announced to no one, so the
        caller claims again before it sleeps. While the listener cannot be had (the server
        is away), waits last the interval, as ``wakeup=poll`` does, and listening is tried
        again a second later; so do the waits of other engines while one opens it."""
        if (
            self.config.wakeup.mode == "notify"
            and not self._opening_listener
            and (self._listener is None or self._listener.is_closed())
            and await self._listen()
        ):
            return
        await super().wait_for_work(timeout)

    async def _listen(self) -> bool:
        """Open the LISTEN connection; True when it was opened."""
        if self._closed or time.monotonic() < self._listen_again_at:
            return False
        self._opening_listener = True
        try:
            listener = await asyncpg.connect(self.target, timeout=LISTEN_CONNECT_TIMEOUT_S)
            try:
                await listener.add_listener(pgsql.CHANNEL, self._heard)
            except BaseException:
                listener.terminate()
                raise
        except (*_LOST, asyncpg.PostgresError, asyncpg.InterfaceError):
            self._listen_again_at = time.monotonic() + LISTEN_RETRY_S
            return False
        finally:
            self._opening_listener = False
        if self._closed:  # closed while connecting
            listener.terminate()
            return False
        self._listener = listener
        return True

    def _heard(self, conn: object, pid: int, channel: str, payload: str) -> None:
        token, _, count = payload.rpartition(" ")
        if token != self._token and count.isdigit():
            self._notify(int(count))

    async def close(self) -> None:
        """Close the pool and the listener. Idempotent."""
        self._closed = True
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(*_LOST, asyncpg.InterfaceError):
                await listener.close(timeout=5)
        pool, self._pool = self._pool, None
        if pool is not None:
            for observer in observe.active:
                observer.queue_closed(self.stats)
        pools, self._worker_pools = list(self._worker_pools.values()), {}
        for each in [*pools, *([pool] if pool is not None else [])]:
            await each.close()

    # -- operations ------------------------------------------------------------------------

    async def enqueue(
        self,
        type: str,
        payload: Any = None,
        *,
        priority: int = 0,
        delay: float = 0.0,
        max_attempts: int = 3,
    ) -> int:
        start = self._clock_start()
        try:
            row = validated_row(type, payload, priority, delay, max_attempts)
        except InvalidArgumentError as error:
            raise type_of(error)(f"enqueue ({type!r}): {error}") from None
        task_id = await self._run("enqueue", self._pg.insert, *row, resend=False)
        self._notify(1)
        if start:
            self._finish("enqueue", start, 1)
        return task_id

    async def enqueue_many(self, tasks: Iterable[NewTask | tuple[str, Any]]) -> list[int]:
        start = self._clock_start()
        items = tasks if isinstance(tasks, list | tuple) else list(tasks)
        if not items:
            return []
        documents = batch_document(items)
        ids = await self._run("enqueue", self._pg.insert_many, documents, len(items), resend=False)
        self._notify(len(ids))
        if start:
            self._finish("enqueue", start, len(ids))
        return ids

    async def claim(self, worker: str, n: int = 1, lease: float | None = None) -> list[Task]:
        lease_s = self._claim_args(worker, n, lease)
        start = self._clock_start()
        # A claim whose connection was lost may have committed: its tasks come back when
        # their lease expires, so sending it again loses nothing and runs nothing twice.
        tasks = await self._run("claim", self._pg.claim, worker, n, lease_s, worker=worker)
        self.stats.claim_trips += 1
        if start:
            self._finish("claim", start, len(tasks), worker)
        return tasks

    async def complete_acks(self, acks: list[AckRow], worker: str) -> int:
        if not acks:
            return 0
        start = self._clock_start()
        # (id, claim token) names one claim: an ack sent twice applies once, and an ack of
        # a claim a server crash forgot is refused.
        applied = await self._run("complete", self._pg.complete_acks, acks, worker=worker)
        self._acks_landed(acks, applied)
        if start:
            self._finish("complete", start, len(acks), worker)
        return applied

    async def complete_acks_and_claim(
        self, acks: list[AckRow], worker: str, n: int = 1, lease: float | None = None
    ) -> tuple[int, list[Task]]:
        if not acks:
            return 0, await self.claim(worker, n, lease)
        lease_s = self._claim_args(worker, n, lease)
        start = self._clock_start()
        if self.config.pg_acks is PgAcks.PARALLEL:
            applied, tasks = await self._acks_beside_claim(acks, worker, n, lease_s)
        else:
            applied, tasks = await self._run(
                "claim", self._pg.complete_and_claim, acks, worker, n, lease_s, worker=worker
            )
        self.stats.claim_trips += 1
        self._acks_landed(acks, applied)
        if start:
            self.stats.items["complete"] += len(acks)
            self._finish("claim", start, len(tasks), worker)
        return applied, tasks

    async def _acks_beside_claim(
        self, acks: list[AckRow], worker: str, n: int, lease_s: float
    ) -> tuple[int, list[Task]]:
        """``pg_acks=parallel``: the acks on one connection and the claim on another, at the
        same time; returns when both have committed. When the claim fails, the ack write is
        still awaited (nothing is left running behind the call) and the claim's error
        raised; when the acks fail, their error is raised and the claimed tasks stay leased
        until their lease ends (see :class:`PgAcks`)."""
        writing = asyncio.ensure_future(
            self._run("complete", self._pg.complete_acks, acks, worker=worker)
        )
        try:
            tasks = await self._run("claim", self._pg.claim, worker, n, lease_s, worker=worker)
        except BaseException:
            await asyncio.wait([writing])
            if not writing.cancelled():
                writing.exception()  # the claim's error is the one to raise
            raise
        return await writing, tasks

    async def fail(self, task: Task, error: str, *, retry: bool = True) -> TaskState | None:
        start = self._clock_start()
        cfg = self.config
        backoff = min(cfg.retry_backoff_s * 2 ** (task.attempts - 1), cfg.retry_backoff_max_s)
        state = await self._run(
            "fail",
            self._pg.fail,
            task.id,
            task.claim,
            _storable(str(error)),
            retry,
            backoff,
            worker=task.worker,
        )
        if state is None:
            self.stats.stale_acks += 1
        elif state is TaskState.DEAD:
            self._finished(((task.id, task.claim, ""),))
        if start:
            self._finish("fail", start, 1, task.worker)
        return state

    async def reclaim_expired(self) -> ReclaimResult:
        start = self._clock_start()
        result = await self._run("reclaim", self._pg.reclaim)
        if result.requeued:
            self._notify(result.requeued)
        if start:
            self._finish("reclaim", start, result.requeued + result.dead)
        return result

    async def status(self, task_id: int) -> TaskStatus | None:
        start = self._clock_start()
        if not (type(task_id) is int and -INT64_MAX <= task_id <= INT64_MAX):
            raise InvalidArgumentError(
                f"status task_id={task_id!r}: must be a task id, a whole number below 2**63"
            )
        found = await self._run("status", self._pg.status, task_id)
        if start:
            self._finish("status", start, 1)
        return found

    async def counts(self) -> dict[TaskState, int]:
        start = self._clock_start()
        found = await self._run("counts", self._pg.counts)
        if start:
            self._finish("counts", start, 1)
        return found

    async def is_drained(self) -> bool:
        return await self._run("status", self._pg.is_drained)

    # -- plumbing --------------------------------------------------------------------------

    async def _run(
        self,
        op: str,
        fn: Callable[..., Awaitable[T]],
        *args: Any,
        resend: bool = True,
        worker: str | None = None,
    ) -> T:
        """``fn(conn, *args)`` on a connection of ``worker``'s pool (:meth:`_pool_of`);
        contention retried in short jittered steps (as SQLITE_BUSY is), a lost connection
        retried when ``resend`` (the operation is safe to send twice), every other failure a
        queue error."""
        cfg = self.config
        delay = 0.0001
        deadline = 0.0
        while True:
            pool = self._pool_of(worker)
            if pool is None:
                raise QueueClosedError(f"{op} on {self._where}: the queue is closed")
            started = perf_counter_ns()
            try:
                conn = await pool.acquire()
                # Reused only when the call ended between statements: after a server error
                # outside a transaction, not after a lost connection or a cancellation.
                reusable = False
                try:
                    result = await fn(conn, *args)
                    reusable = True
                    return result
                except asyncpg.PostgresError:
                    reusable = not conn.is_in_transaction()
                    raise
                finally:
                    pool.release(conn, reusable)
            except _CONTENTION as error:
                self.stats.busy_retries[op] += 1
                # The failed attempt is lost to the contention, as the backoff below is.
                self.stats.busy_wait_ns[op] += perf_counter_ns() - started
                reason = f"kept failing on contention ({type(error).__name__})"
                most_s = cfg.busy_backoff_max_ms / 1000.0
            except _LOST as error:
                if self._closed:
                    raise QueueClosedError(f"{op} on {self._where}: the queue is closed") from None
                if not resend:
                    raise QueueDatabaseError(
                        f"{op} on {self._where}: the connection was lost ({error}) and the "
                        "task may or may not have been stored; check with status()/counts() "
                        "before enqueueing it again"
                    ) from None
                self.stats.busy_retries[op] += 1
                reason = f"could not reach the server ({error})"
                most_s = RECONNECT_BACKOFF_MAX_S
            except _BAD_TEXT as error:
                raise InvalidArgumentError(
                    f"{op}: a text value cannot be stored by PostgreSQL ({error}); remove NUL "
                    "characters from task types and worker names"
                ) from None
            except asyncpg.InterfaceError as error:
                if self._closed or "clos" in str(error):
                    raise QueueClosedError(f"{op} on {self._where}: the queue is closed") from None
                raise QueueDatabaseError(f"{op} on {self._where} failed: {error}") from None
            except asyncpg.PostgresError as error:
                raise QueueDatabaseError(
                    f"{op} on {self._where} failed: {type(error).__name__}: {error}. Check the "
                    "server's log; a database changed by hand may need a new one"
                ) from None
            now = time.monotonic()
            deadline = deadline or now + cfg.busy_deadline_s
            if now >= deadline:
                raise QueueBusyError(
                    f"{op} on {self._where}: {reason} for {cfg.busy_deadline_s} s; check the "
                    "server, or a longer busy_deadline_s"
                )
            slept = perf_counter_ns()
            await asyncio.sleep(delay * random.uniform(0.5, 1.5))
            self.stats.busy_wait_ns[op] += perf_counter_ns() - slept
            delay = min(delay * 2, most_s)


async def _prepare(conn: asyncpg.Connection, where: str) -> None:
    """Check the database holds our schema or no ``tasks`` table, and create the schema.

    Nothing is written to a database whose ``tasks`` table belongs to someone else.
    """
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _SCHEMA_LOCK)
        tables = {r[0] for r in await conn.fetch(pgsql.TABLES)}
        if "queueprof_meta" in tables:
            meta = await conn.fetchrow(pgsql.META)
            if meta is not None and tuple(meta) != (pgsql.APPLICATION, pgsql.SCHEMA_VERSION):
                raise QueueOpenError(
                    f"{where} has queue schema {tuple(meta)}, this code needs "
                    f"{(pgsql.APPLICATION, pgsql.SCHEMA_VERSION)}; drain it with the version "
                    "that wrote it, or use a new database"
                )
            if meta is not None:
                return
        elif "tasks" in tables:
            raise QueueOpenError(
                f"{where} already has a 'tasks' table of another application; use a separate "
                "database (or schema) for the queue. Nothing was changed"
            )
        await conn.execute(pgsql.SCHEMA)


def _open_fix(where: str, error: Exception) -> str:
    """The open error's message: what failed and what to do."""
    if isinstance(error, asyncpg.InvalidCatalogNameError):
        fix = "create the database first (createdb NAME) or name an existing one"
    elif isinstance(
        error, asyncpg.InvalidAuthorizationSpecificationError | asyncpg.InvalidPasswordError
    ):
        fix = "check the user and password in the URL (or PGUSER/PGPASSWORD)"
    elif isinstance(error, _LOST):
        fix = "check that the server runs and listens there (pg_isready -d URL)"
    else:
        fix = "check the URL and the server's log"
    return f"PostgreSQL queue {where} cannot be opened ({type(error).__name__}: {error}); {fix}"
