"""The async task queue: an aiosqlite front over :class:`~taskqueue.store.Store`."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import math
import os
import random
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from time import perf_counter, perf_counter_ns
from types import TracebackType
from typing import Any, TypeVar

import aiosqlite

from . import _bridge, affinity, observe, sql
from .claimgroup import ClaimGroup
from .config import ClaimStyle, ConnectionMode, Dispatch, QueueConfig, is_dsn, redact_dsn
from .errors import (
    InvalidArgumentError,
    QueueBusyError,
    QueueClosedError,
    QueueDatabaseError,
    QueueOpenError,
)
from .models import NewTask, ReclaimResult, Task, TaskState, TaskStatus
from .payload import (
    INT64_MAX,
    ack_rows,
    batch_document,
    check_count,
    utf8,
    validated_row,
)
from .stats import QueueStats
from .store import AckRow, Store

T = TypeVar("T")
type_of = type  # `type` is a parameter name of enqueue

_MAIN = "__main__"  # connection key of producers and readers
CHECKPOINT_EVERY_S = 0.1
"""How often the checkpoint connection copies the WAL into the database (when anything was
written): about 3 MB of WAL at 80,000 tasks/s."""
WAL_CHECK_EVERY_S = 0.01
"""How often the checkpoint task looks at the WAL's size (one ``stat``), when anything was
written: back-to-back single enqueues add about 9 KB each, 2-4 MB per look on the reference
machine."""
WAL_RESTART_BYTES = 16 * 2**20
"""A WAL past this size is checkpointed by the writing connection itself, so that it
restarts from its beginning (``TaskQueue._restart_wal``); also the ``journal_size_limit``
the file is cut back to after a restart. With ``WAL_CHECK_EVERY_S``
between looks, the WAL stays well under 64 MiB however fast a writer appends."""
WAL_HOLD_MOST_S = 5.0
"""The longest the main connection's thread is held for a slow checkpoint (see
``TaskQueue._hold_writer_past``); a safety bound, far above the slowest seen (0.45 s)."""
WAL_RESTART_WAIT_MS = 20
"""How long the restarting checkpoint waits (SQLite's busy handler, on the connection's
thread, never on the event loop) for writers and readers of other processes to let go."""
INLINE_ROWS_MOST = 1000
"""With ``dispatch=auto``, the most rows a call may touch and still run on the event loop:
about 5 ms of SQL on the reference machine, the longest one call holds the loop."""
TURN_S = QueueConfig().turn_ms / 1000
"""The default turn (``QueueConfig.turn_ms``): the longest a run of inline calls keeps the
event loop before the next call gives it away (:meth:`TaskQueue.give_way`). An inline call
completes without suspending, so a loop of awaits on them (a producer's enqueues, a lone
engine's claims) never let timers, signal handlers, other engines or the checkpoint task run:
a 0.5 s timer never fired during a 4.9 s drain and Ctrl-C waited 41.5 s. One give-way costs
one pass of the event loop (a few us): every 2 ms that is about 0.2 % of a drain, and timers
run within a turn plus one call."""


class TaskQueue:
    """A SQLite task queue with leases, retries and dead-lettering.

    Use as ``async with TaskQueue(path, config) as queue:``. All methods are coroutines and
    safe to call from any number of tasks on one event loop. Strategies (shared vs per-worker
    connections, claim style, batch sizes, wake-up) come from ``config``; see
    :class:`~taskqueue.config.QueueConfig`.
    """

    def __new__(
        cls,
        path: str | Path,
        config: QueueConfig | None = None,
        *,
        clock: Callable[[], float] = time.time,
        affinity_slot: int | None = None,
    ) -> TaskQueue:
        """The backend goes by ``path``: a ``postgresql://`` URL opens the PostgreSQL queue
        (:class:`~taskqueue.pgqueue.PgTaskQueue`, same API), anything else a SQLite file."""
        if cls is TaskQueue and is_dsn(path):
            try:
                from .pgqueue import PgTaskQueue  # asyncpg is needed only for PostgreSQL
            except ImportError as error:
                raise QueueOpenError(
                    f"PostgreSQL queue {redact_dsn(str(path))}: {error}; install asyncpg "
                    "(pip install 'queueprof[test]' or pip install asyncpg)"
                ) from None
            return object.__new__(PgTaskQueue)
        return object.__new__(cls)

    def __init__(
        self,
        path: str | Path,
        config: QueueConfig | None = None,
        *,
        clock: Callable[[], float] = time.time,
        affinity_slot: int | None = None,
    ) -> None:
        self.path = Path(path)
        self.target = str(path)
        """What the queue was opened on: a file path, or a PostgreSQL URL (whose password
        only worker processes see; messages show :attr:`where`)."""
        self.config = config or QueueConfig()
        self.stats = QueueStats()
        self._clock = clock
        self._stores: dict[str, tuple[aiosqlite.Connection, Store]] = {}
        self._opening: dict[str, asyncio.Lock] = {}
        # The deferred claim spans several awaits; on a shared connection other coroutines
        # must not run statements inside its transaction.
        self._txn_locks: dict[str, asyncio.Lock] = {}
        # Idle engines waiting for work, oldest first: an enqueue of k tasks wakes at most k.
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        # Polls waiting for a task to finish, by task id: a completion here wakes them.
        self._poll_waiters: dict[int, list[asyncio.Future[None]]] = {}
        self._closed = False
        self._timed = self.config.record_timings
        self._affinity_slot = affinity_slot
        self._restore_affinity: set[int] | None = None
        # Claims waiting for a connection go to it together (see taskqueue.claimgroup).
        self._claim_groups: dict[str, ClaimGroup] = {}
        # Calls on each connection's thread now: 0 means the thread is idle and a call may
        # run on the event loop's thread instead (config.dispatch).
        self._in_thread: collections.Counter[str] = collections.Counter()
        self._inline = (
            self.config.dispatch is not Dispatch.THREAD
            and self.config.claim_style is not ClaimStyle.DEFERRED
            and self.config.busy_timeout_ms == 0
        )
        self._inline_all = self.config.dispatch is Dispatch.INLINE
        self._turn_s = self.config.turn_ms / 1000 if self.config.turn_ms > 0 else math.inf
        self._turn_ends = 0.0 if self.config.turn_ms > 0 else math.inf
        """``perf_counter()`` time after which the next inline call first gives way."""
        self.engines = 0
        """Worker engines running on this queue object now (they share its event loop)."""
        self.acks_behind_claims = False
        """True when worker engines should write their acks behind their claims, without
        waiting for them (PostgreSQL's ``pg_acks=behind``); on SQLite acks ride on claims."""
        self.turn_holder: object | None = None
        """The worker engine that last took :attr:`turns`."""
        self._turns: asyncio.Lock | None = None
        self._checkpointer: aiosqlite.Connection | None = None
        self._checkpoints: asyncio.Task[None] | None = None
        self._calls = 0
        """Operation calls so far: the checkpoint task skips a round when none was made."""

    @property
    def where(self) -> str:
        """The queue's database, as messages name it."""
        return str(self.path)

    @property
    def clock(self) -> Callable[[], float]:
        """The wall clock (seconds) that stamps leases and due times."""
        return self._clock

    @property
    def timed(self) -> bool:
        """True when operations are being timed into :attr:`stats`."""
        return self._timed

    # -- lifecycle -------------------------------------------------------------------------

    async def open(self) -> TaskQueue:
        """Open (creating if needed) the database; raises :class:`QueueOpenError`."""
        if str(self.path) == ":memory:" or str(self.path).startswith("file:"):
            raise QueueOpenError(
                f"database path {str(self.path)!r}: the queue needs a file (WAL, several "
                "connections, several processes); pass a path such as /tmp/queue.db"
            )
        folder = self.path.parent
        if not folder.is_dir():
            raise QueueOpenError(
                f"database path {str(self.path)!r}: folder {str(folder)!r} does not exist; "
                "create it first or choose another path"
            )
        if self.path.is_dir():
            raise QueueOpenError(
                f"database path {str(self.path)!r} is a folder; name a file inside it"
            )
        self._restore_affinity = affinity.pin_current_thread(
            self.config.cpu_affinity, slot=self._affinity_slot
        )
        try:
            await self._store(_MAIN)
            await self._start_checkpoints()
        except BaseException:
            await self.close()  # whatever opened; restores the affinity too
            raise
        return self

    async def _start_checkpoints(self) -> None:
        """Open the connection that checkpoints the WAL, and the task that runs it.

        The queue's own connections never checkpoint (``wal_autocheckpoint=0``): SQLite runs
        an automatic checkpoint inside the commit that crosses the threshold, which, for a
        call run inline, held the event loop 10-70 ms (claim max 13-72 ms at 20 engines
        against 2-11 ms without). A PASSIVE checkpoint from a connection of its own runs on
        that connection's thread beside the queue's reads and writes, waiting for none.
        """
        self._checkpointer = await self._open_connection()
        self._checkpoints = asyncio.get_running_loop().create_task(self._checkpoint_loop())

    async def _checkpoint_loop(self) -> None:
        """Copy the WAL into the database beside the writers; restart it when it grew big.

        The PASSIVE checkpoint copies the frames written so far but, with a writer appending
        meanwhile, never all of them, and SQLite only starts the WAL over from its beginning
        once every frame is copied: under back-to-back writes the file grew without end (860
        MiB after 100,000 single enqueues). So when the file is past ``WAL_RESTART_BYTES``,
        a PASSIVE checkpoint copies what it can beside the writer, then the writing connection
        checkpoints the rest itself (:meth:`_restart_wal`): the writer stalls for that rest
        only (median 13-18 ms, at most about 30 ms per restart on the reference machine under
        back-to-back single enqueues, against 26-59 ms when it copied everything itself).
        """
        assert self._checkpointer is not None
        checkpointer = self._checkpointer
        db = _bridge.raw_connection(checkpointer)
        wal = self.path.with_name(self.path.name + "-wal")
        seen = -1
        next_passive = 0.0
        while True:
            await asyncio.sleep(WAL_CHECK_EVERY_S)
            if self._calls == seen:
                continue  # nothing written since the last look
            seen = self._calls
            try:
                restart = _file_bytes(wal) > WAL_RESTART_BYTES
                if restart or time.monotonic() >= next_passive:
                    # Beside the writers: most of the copying, with no one waiting for it.
                    next_passive = time.monotonic() + CHECKPOINT_EVERY_S
                    passive = asyncio.ensure_future(
                        _bridge.run(checkpointer, _checkpoint, db, "PASSIVE")
                    )
                    # Keep looking while it runs, slow as it may be (see _hold_writer_past).
                    await self._hold_writer_past(wal, passive)
                    self.stats.checkpoints += 1
                if restart:
                    await self._restart_wal()  # the writer stalls for what is left
            except sqlite3.Error:
                self.stats.checkpoint_errors += 1  # the next one tries again

    async def _hold_writer_past(
        self, wal: Path, passive: asyncio.Future[tuple[int, int, int]]
    ) -> tuple[int, int, int]:
        """Wait for ``passive``; should the WAL pass twice ``WAL_RESTART_BYTES`` meanwhile,
        hold the main connection's thread (so its writes queue, off the event loop) until
        the checkpoint is done.

        A PASSIVE checkpoint waits on the disk (two fsyncs): on the loaded reference machine
        one took up to 450 ms, while a writer beside it added 40 MB to the WAL.
        """
        while not passive.done():
            await asyncio.wait({passive}, timeout=WAL_CHECK_EVERY_S)
            if not passive.done() and _file_bytes(wal) > 2 * WAL_RESTART_BYTES:
                await self._hold_writer_until(passive)
        return await passive

    async def _hold_writer_until(self, done: asyncio.Future[Any]) -> None:
        """Block the main connection's thread until ``done`` is (at most WAL_HOLD_MOST_S)."""
        found = self._stores.get(_MAIN)
        if found is None:
            return
        released = threading.Event()
        done.add_done_callback(lambda _: released.set())
        self.stats.wal_holds += 1
        await self._dispatch(_MAIN, found[0], released.wait, (WAL_HOLD_MOST_S,), inline=False)

    async def _restart_wal(self) -> None:
        """Checkpoint the whole WAL from the main (writing) connection, on its thread.

        While it runs, that connection's calls queue behind it on its thread (none runs
        inline meanwhile: see :meth:`_dispatch`), so no frame is appended from this process
        and the checkpoint completes; the next write then starts the WAL over, and cuts the
        file back to ``journal_size_limit``. The event loop is free all the while.
        """
        found = self._stores.get(_MAIN)
        if found is None:
            return
        conn, store = found
        busy, _, _ = await self._dispatch(
            _MAIN,
            conn,
            _restart_wal,
            (store.db, WAL_RESTART_WAIT_MS, int(self.config.busy_timeout_ms)),
            inline=False,
        )
        if busy:
            self.stats.wal_restarts_blocked += 1  # another process held on: the next look
        else:
            self.stats.wal_restarts += 1

    async def close(self) -> None:
        """Close every connection. Idempotent."""
        self._closed = True
        checkpoints, self._checkpoints = self._checkpoints, None
        if checkpoints is not None:
            checkpoints.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await checkpoints
        checkpointer, self._checkpointer = self._checkpointer, None
        if checkpointer is not None:
            await checkpointer.close()
        stores, self._stores = self._stores, {}
        self._claim_groups = {}
        for observer in observe.active:
            observer.queue_closed(self.stats)
        for key, (conn, _) in stores.items():
            for observer in observe.active:
                await _bridge.run(conn, observer.connection_closing, key)
            await conn.close()
        affinity.restore(self._restore_affinity)
        self._restore_affinity = None

    async def __aenter__(self) -> TaskQueue:
        return await self.open()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- producers -------------------------------------------------------------------------

    async def enqueue(
        self,
        type: str,
        payload: Any = None,
        *,
        priority: int = 0,
        delay: float = 0.0,
        max_attempts: int = 3,
    ) -> int:
        """Add one task; returns its id. Higher ``priority`` runs first; ``delay`` in seconds."""
        start = self._clock_start()
        try:
            row = validated_row(type, payload, priority, delay, max_attempts)
        except InvalidArgumentError as error:
            raise type_of(error)(f"enqueue ({type!r}): {error}") from None
        _, store = await self._store(_MAIN)
        task_id = await self._call(_MAIN, "enqueue", store.insert, *row)
        self._notify(1)
        if start:
            self._finish("enqueue", start, 1)
        return task_id

    async def enqueue_many(self, tasks: Iterable[NewTask | tuple[str, Any]]) -> list[int]:
        """Add many tasks in one statement; returns their ids in the order given.

        Items are :class:`NewTask` or ``(type, payload)`` pairs. Nothing is written if any
        item is invalid.
        """
        start = self._clock_start()
        items = tasks if isinstance(tasks, list | tuple) else list(tasks)
        if not items:
            return []
        document = batch_document(items)
        _, store = await self._store(_MAIN)
        ids = await self._call(_MAIN, "enqueue", store.insert_many, document, rows=len(items))
        self._notify(len(ids))
        if start:
            self._finish("enqueue", start, len(ids))
        return ids

    # -- workers ---------------------------------------------------------------------------

    async def claim(self, worker: str, n: int = 1, lease: float | None = None) -> list[Task]:
        """Take up to ``n`` ready tasks for ``worker``, leased for ``lease`` seconds.

        A claim first gives the event loop away if its caller's turn is over (``TURN_S``);
        its timing starts after that, as the engines' own turn-taking is outside it too: it
        measures the claim, not the other engines' turns on the loop.
        """
        lease_s = self._claim_args(worker, n, lease)
        key = self._key(worker)
        _, store = await self._store(key)
        await self._take_turn()
        start = self._clock_start()
        if self.config.claim_style is not ClaimStyle.DEFERRED:
            _, tasks = await self._claim_group(key, store).claim([], worker, n, lease_s)
        else:
            tasks = await self._retry_busy(
                "claim", lambda: self._claim_deferred(key, store, worker, n, lease_s)
            )
        if start:
            self._finish("claim", start, len(tasks), worker)
        return tasks

    def _claim_args(self, worker: str, n: int, lease: float | None) -> float:
        if not isinstance(worker, str) or not worker or not utf8(worker):
            raise InvalidArgumentError(
                f"claim worker={worker!r}: must be a non-empty name of text SQLite can store "
                "(no lone surrogates)"
            )
        check_count("claim n", n)
        return self.config.lease_s if lease is None else _check_positive("claim lease", lease)

    async def _claim_deferred(
        self, key: str, store: Store, worker: str, n: int, lease_s: float
    ) -> list[Task]:
        # The naive pattern on purpose: read in a deferred transaction, then write. Another
        # connection's commit in between makes the write fail with SQLITE_BUSY (the caller's
        # retry loop counts it), and a task it took first drops out as a claim conflict.
        conn, _ = self._stores[key]
        async with self._txn_locks.setdefault(key, asyncio.Lock()):
            try:
                await _bridge.run(conn, store.begin_deferred)
                ids = await _bridge.run(conn, store.select_ready, n)
                tasks = (
                    await _bridge.run(conn, store.claim_ids, worker, ids, lease_s) if ids else []
                )
                await _bridge.run(conn, store.commit, "claim")
            except BaseException:
                await _bridge.run(conn, store.rollback)
                raise
        self.stats.claim_conflicts += len(ids) - len(tasks)
        return tasks

    async def complete(self, task: Task, result: Any = None) -> bool:
        """Mark ``task`` done with ``result``. False if its lease had expired and moved on."""
        return bool(await self.complete_many([(task, result)]))

    async def complete_many(self, done: Sequence[tuple[Task, Any]]) -> int:
        """Mark tasks done in one statement; returns how many were still ours to complete.

        ``done`` holds ``(task, result)`` pairs, all claimed through the same connection (one
        worker, or any workers with ``connection=shared``). A result wrapped in
        :class:`JSONText` is taken as already-encoded JSON.
        """
        if not done:
            return 0
        return await self.complete_acks(ack_rows(done), done[0][0].worker)

    async def complete_acks(self, acks: list[AckRow], worker: str) -> int:
        """:meth:`complete_many` for acks already encoded: ``(task id, claim, result JSON)``
        rows of tasks ``worker`` claimed (the worker engine's path)."""
        if not acks:
            return 0
        start = self._clock_start()
        key = self._key(worker)
        _, store = await self._store(key)
        applied = await self._call(key, "complete", store.complete_acks, acks, rows=len(acks))
        self._acks_landed(acks, applied)
        if start:
            self._finish("complete", start, len(acks), worker)
        return applied

    async def complete_and_claim(
        self, done: Sequence[tuple[Task, Any]], worker: str, n: int = 1, lease: float | None = None
    ) -> tuple[int, list[Task]]:
        """:meth:`complete_many` then :meth:`claim`, in one trip to the connection thread.

        A worker that has finished its tasks always claims next; doing both in one trip saves
        a round trip per cycle, the main cost of an unbatched worker. Returns (completed,
        claimed). With ``claim_style=deferred`` the two run as separate calls. Timed as one
        ``claim`` call; the SQL capture still labels each statement with its own operation.
        """
        if done and self._key(done[0][0].worker) != self._key(worker):
            raise InvalidArgumentError(
                f"complete_and_claim: tasks of worker {done[0][0].worker!r} cannot be acked on "
                f"worker {worker!r}'s connection; use complete_many for them"
            )
        return await self.complete_acks_and_claim(ack_rows(done), worker, n, lease)

    async def complete_acks_and_claim(
        self, acks: list[AckRow], worker: str, n: int = 1, lease: float | None = None
    ) -> tuple[int, list[Task]]:
        """:meth:`complete_and_claim` for acks already encoded (see :meth:`complete_acks`) of
        tasks claimed on ``worker``'s connection."""
        if not acks or self.config.claim_style is ClaimStyle.DEFERRED:
            applied = await self.complete_acks(acks, worker)
            return applied, await self.claim(worker, n, lease)
        lease_s = self._claim_args(worker, n, lease)
        key = self._key(worker)
        _, store = await self._store(key)
        await self._take_turn()  # before the clock starts, as in claim()
        start = self._clock_start()
        applied, tasks = await self._claim_group(key, store).claim(acks, worker, n, lease_s)
        self._acks_landed(acks, applied)
        if start:
            self.stats.items["complete"] += len(acks)
            self._finish("claim", start, len(tasks), worker)
        return applied, tasks

    async def fail(self, task: Task, error: str, *, retry: bool = True) -> TaskState | None:
        """Record a failed attempt of ``task``.

        With ``retry`` and attempts left, the task goes back to ``pending`` after an
        exponential backoff (``retry_backoff_s * 2**(attempts-1)``, capped); otherwise it is
        dead-lettered (state ``dead``). Returns the new state, or None if the lease had
        expired and the task moved on.
        """
        start = self._clock_start()
        cfg = self.config
        backoff = min(cfg.retry_backoff_s * 2 ** (task.attempts - 1), cfg.retry_backoff_max_s)
        key = self._key(task.worker)
        _, store = await self._store(key)
        state = await self._call(
            key, "fail", store.fail, task.id, task.claim, _storable(str(error)), retry, backoff
        )
        if state is None:
            self.stats.stale_acks += 1
        elif state is TaskState.DEAD:
            self._finished(((task.id, task.claim, ""),))
        if start:
            self._finish("fail", start, 1, task.worker)
        return state

    async def reclaim_expired(self) -> ReclaimResult:
        """Return tasks whose lease expired to ``pending`` (or ``dead`` if out of attempts)."""
        start = self._clock_start()
        _, store = await self._store(_MAIN)
        result = await self._call(_MAIN, "reclaim", store.reclaim, rows=None)
        if result.requeued:
            self._notify(result.requeued)
        if start:
            self._finish("reclaim", start, result.requeued + result.dead)
        return result

    async def wait_for_work(self, timeout: float | None = None) -> None:
        """Sleep until an in-process enqueue signals work, or the wake-up interval passes."""
        wakeup = self.config.wakeup
        interval = wakeup.interval_ms / 1000.0
        if timeout is not None:
            interval = min(interval, timeout)
        if wakeup.mode == "poll":
            await asyncio.sleep(interval)
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter, interval)
        finally:
            if not waiter.done():
                waiter.cancel()

    # -- readers ---------------------------------------------------------------------------

    async def status(self, task_id: int) -> TaskStatus | None:
        """The task's current row, or None if there is no such task."""
        start = self._clock_start()
        if not (type(task_id) is int and -INT64_MAX <= task_id <= INT64_MAX):
            raise InvalidArgumentError(
                f"status task_id={task_id!r}: must be a task id, a whole number below 2**63"
            )
        _, store = await self._store(_MAIN)
        found = await self._call(_MAIN, "status", store.status, task_id)
        if start:
            self._finish("status", start, 1)
        return found

    async def poll(
        self, task_id: int, *, timeout: float | None = None, interval: float = 0.005
    ) -> TaskStatus:
        """Wait until the task is ``done`` or ``dead`` and return its status.

        Between reads it waits ``interval`` seconds, or less: an engine of this queue object
        that completes or dead-letters the task wakes the poll at once (work done in other
        processes is seen at the next read). Raises :class:`InvalidArgumentError` for an
        unknown id and ``TimeoutError`` after ``timeout`` seconds.
        """
        _check_positive("poll interval", interval)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            found = await self.status(task_id)
            if found is None:
                raise InvalidArgumentError(f"poll task {task_id}: no such task in {self.where}")
            if found.finished:
                return found
            wait = interval
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"task {task_id} still {found.state} after {timeout} s (attempt "
                        f"{found.attempts}/{found.max_attempts})"
                    )
                wait = min(wait, left)
            await self._wait_finished(task_id, wait)

    async def counts(self) -> dict[TaskState, int]:
        """How many tasks are in each state (every state present, zero included)."""
        start = self._clock_start()
        _, store = await self._store(_MAIN)
        found = await self._call(_MAIN, "counts", store.counts, rows=None)
        if start:
            self._finish("counts", start, 1)
        return found

    async def is_drained(self) -> bool:
        """True when no task is pending or running."""
        _, store = await self._store(_MAIN)
        return await self._call(_MAIN, "status", store.is_drained)

    # -- plumbing --------------------------------------------------------------------------

    def _clock_start(self) -> int:
        return perf_counter_ns() if self._timed or observe.active else 0

    def _finish(self, op: str, start: int, items: int, worker: str | None = None) -> None:
        end = perf_counter_ns()
        if self._timed:
            self.stats.record(op, end - start, items)
        for observer in observe.active:
            observer.operation(op, worker, start, end, items)

    def _claim_group(self, key: str, store: Store) -> ClaimGroup:
        group = self._claim_groups.get(key)
        if group is None:
            immediate = self.config.claim_style is ClaimStyle.IMMEDIATE
            call = functools.partial(self._call, key, turn=False)  # see _take_turn
            group = self._claim_groups[key] = ClaimGroup(
                call, store, self.stats, immediate=immediate
            )
        return group

    async def _wait_finished(self, task_id: int, seconds: float) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self._poll_waiters.setdefault(task_id, []).append(waiter)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter, seconds)
        finally:
            waiting = self._poll_waiters.get(task_id)
            if waiting is not None:
                with contextlib.suppress(ValueError):
                    waiting.remove(waiter)
                if not waiting:
                    del self._poll_waiters[task_id]

    def _acks_landed(self, acks: list[AckRow], applied: int) -> None:
        """The bookkeeping once acks are written, whichever call carried them (a complete, or
        a claim they rode on): its own method so that a profile counts it, and whatever is
        added to it, as completion work (``analysis.operations`` maps it to complete)."""
        self.stats.stale_acks += len(acks) - applied
        self._finished(acks)

    def _finished(self, acks: Iterable[AckRow]) -> None:
        # Wake polls of tasks this queue object just completed or dead-lettered; the poll
        # reads the status again, so a stale ack that woke it costs one read, not a wrong answer.
        if not self._poll_waiters:
            return
        for task_id, _, _ in acks:
            for waiter in self._poll_waiters.get(task_id, ()):
                if not waiter.done():
                    waiter.set_result(None)

    def _key(self, worker: str) -> str:
        return worker if self.config.connection is ConnectionMode.PER_WORKER else _MAIN

    def wake_all(self) -> None:
        """Wake every engine waiting for work (e.g. to see that the queue is drained)."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)

    def _notify(self, tasks: int) -> None:
        # Wake one idle engine per new task, not all of them: waking every engine on each
        # enqueue made N-1 of them claim nothing (the analysis of a dbops run showed claim
        # storms). A waiter that timed out or was cancelled is skipped.
        while tasks > 0 and self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                tasks -= 1

    async def _store(self, key: str) -> tuple[aiosqlite.Connection, Store]:
        found = self._stores.get(key)
        if found is not None:
            return found
        if self._closed:
            raise QueueClosedError(f"queue {self.path} is closed; open a new TaskQueue")
        async with self._opening.setdefault(key, asyncio.Lock()):
            found = self._stores.get(key)
            if found is None:
                found = self._stores[key] = await self._connect(key)
        return found

    async def _open_connection(self) -> aiosqlite.Connection:
        """An aiosqlite connection to the file; :class:`QueueOpenError` when it cannot open.

        ``check_same_thread=False``: the statements of an inline call run on the event loop's
        thread (when the connection's own thread is idle, never at the same time): see
        config.Dispatch.
        """
        try:
            return await _bridge.connect(
                str(self.path), isolation_level=None, check_same_thread=False
            )
        except (sqlite3.Error, ValueError) as error:  # ValueError: a NUL in the path
            raise QueueOpenError(
                f"database {str(self.path)!r} cannot be opened ({error}); "
                + (
                    _READ_ONLY_FIX
                    if _read_only(self.path)
                    else "check the path and its permissions"
                )
            ) from None

    async def _connect(self, key: str) -> tuple[aiosqlite.Connection, Store]:
        conn = await self._open_connection()
        capture = self.stats.sql if self.config.capture_sql else None
        store = Store(_bridge.raw_connection(conn), self._clock, capture)
        try:
            await _bridge.run(conn, _prepare, store.db, self.path, self.config)
        except BaseException:
            await conn.close()
            raise
        for observer in observe.active:
            await _bridge.run(conn, observer.connection_opened, key)
        return conn, store

    async def _call(
        self,
        key: str,
        op: str,
        fn: Callable[..., T],
        *args: Any,
        rows: int | None = 1,
        turn: bool = True,
    ) -> T:
        """``fn(*args)`` on ``key``'s connection, SQLITE_BUSY retried.

        ``rows`` is about how many rows the call reads or writes, None for "unbounded": with
        ``dispatch=auto`` only calls of at most ``INLINE_ROWS_MOST`` rows run inline.
        ``turn=False``: do not give way first, for the claims of a :class:`ClaimGroup`, which
        take their turn before joining it (a claim waiting for its turn while "in flight"
        would gather every other engine's claim into one big trip to the thread).
        """
        found = self._stores.get(key)
        if found is None:
            raise QueueClosedError(f"{op} on {self.path}: the queue is closed")
        conn = found[0]
        self._calls += 1
        if self._inline:
            if turn and perf_counter() >= self._turn_ends:
                await self.give_way()
            inline = self._inline_all or (rows is not None and rows <= INLINE_ROWS_MOST)
            return await self._retry_busy(op, lambda: self._dispatch(key, conn, fn, args, inline))
        if self.config.claim_style is not ClaimStyle.DEFERRED:
            return await self._retry_busy(op, lambda: _bridge.run(conn, fn, *args))
        # A deferred claim holds a transaction open across awaits: a statement sent meanwhile
        # would join it, report success, and vanish if the claim rolls back. Wait for it.
        lock = self._txn_locks.setdefault(key, asyncio.Lock())

        async def outside_claims() -> T:
            async with lock:
                return await _bridge.run(conn, fn, *args)

        return await self._retry_busy(op, outside_claims)

    @property
    def turns(self) -> asyncio.Lock:
        """The lock the worker engines of this queue take turns with (see WorkerEngine)."""
        if self._turns is None:
            self._turns = asyncio.Lock()
        return self._turns

    async def _take_turn(self) -> None:
        """Give way if this turn is over: before a claim joins its :class:`ClaimGroup`, so it
        never waits for its turn while in flight there."""
        if self._inline and perf_counter() >= self._turn_ends:
            await self.give_way()

    def turn_left(self) -> bool:
        """True while the current turn on the event loop (``TURN_S``) has time left, for an
        engine deciding whether to keep the engines' turn lock (:attr:`turns`) for its next
        claim: only with inline calls, as a call sent to a thread suspends anyway."""
        return self._inline and perf_counter() < self._turn_ends

    def turn_started(self) -> None:
        """The caller just waited at least one pass of the event loop (for :attr:`turns`):
        that gave way as :meth:`give_way` does, so a new turn of ``TURN_S`` starts now."""
        self._turn_ends = perf_counter() + self._turn_s

    async def give_way(self) -> None:
        """Let every other task ready on the event loop run once (timers, signal handlers,
        other engines), then start a new turn of ``TURN_S``.

        Calls that run inline never suspend, so the queue gives way by itself once a turn is
        over (worker engines sharing the queue also take turns with :attr:`turns`).
        """
        await asyncio.sleep(0)
        self._turn_ends = perf_counter() + self._turn_s

    async def _dispatch(
        self,
        key: str,
        conn: aiosqlite.Connection,
        fn: Callable[..., T],
        args: tuple[Any, ...],
        inline: bool,
    ) -> T:
        if inline and not self._in_thread[key]:
            self.stats.inline_calls += 1
            return fn(*args)
        self._in_thread[key] += 1
        try:
            return await _bridge.run(conn, fn, *args)
        finally:
            self._in_thread[key] -= 1

    async def _retry_busy(self, op: str, attempt: Callable[[], Awaitable[T]]) -> T:
        # SQLITE_BUSY is retried here, on the event loop, in short jittered steps: sleeping in
        # SQLite's own busy handler would block the connection thread in steps of up to 100 ms.
        cfg = self.config
        delay = 0.0001
        deadline = 0.0
        # An attempt that ends in SQLITE_BUSY is time lost to the lock, whole: its trip to the
        # connection thread and back, and with busy_timeout_ms > 0 what SQLite's own busy
        # handler slept inside the call before it gave up. So every attempt is timed.
        while True:
            started = perf_counter_ns()
            try:
                return await attempt()
            except sqlite3.OperationalError as error:
                if not _is_busy(error):
                    raise self._database_error(op, error) from error
                self.stats.busy_wait_ns[op] += perf_counter_ns() - started
                self.stats.busy_retries[op] += 1
                now = time.monotonic()
                deadline = deadline or now + cfg.busy_deadline_s
                if now >= deadline:
                    raise QueueBusyError(
                        f"{op} on {self.path}: database stayed locked for "
                        f"{cfg.busy_deadline_s} s; fewer writers (connection=shared) or a "
                        "longer busy_deadline_s"
                    ) from error
                slept = perf_counter_ns()
                await asyncio.sleep(delay * random.uniform(0.5, 1.5))
                self.stats.busy_wait_ns[op] += perf_counter_ns() - slept
                delay = min(delay * 2, cfg.busy_backoff_max_ms / 1000.0)
            except sqlite3.Error as error:
                raise self._database_error(op, error) from error
            except ValueError as error:
                if "closed" in str(error).lower():
                    raise QueueClosedError(f"{op} on {self.path}: the queue is closed") from None
                raise

    def _database_error(self, op: str, error: sqlite3.Error) -> QueueDatabaseError:
        if getattr(error, "sqlite_errorcode", None) == _SQLITE_TOOBIG:
            return QueueDatabaseError(
                f"{op} on {self.path} failed: {error}: a value is over this SQLite's length "
                f"limit (built with a lower SQLITE_MAX_LENGTH than the queue's "
                f"{sql.VALUE_BYTES_MOST:,} bytes per payload or result); keep large data "
                "outside the queue and put its path or key in the payload"
            )
        return QueueDatabaseError(
            f"{op} on {self.path} failed: {error}. If the file is damaged, check it with "
            f"`sqlite3 {self.path} 'PRAGMA integrity_check'` or start from a new file"
        )


_SQLITE_TOOBIG = 18
"""SQLite's result code for a string or blob over its length limit."""


def _prepare(db: sqlite3.Connection, path: Path, config: QueueConfig) -> None:
    """Check the file is ours (or empty) and create the schema; runs on the connection thread.

    Nothing is written to a file that is not SQLite or belongs to another application.
    """
    db.execute("PRAGMA busy_timeout = 10000")  # opening races with other openers: wait here
    try:
        app_id = db.execute("PRAGMA application_id").fetchone()[0]
        version = db.execute("PRAGMA user_version").fetchone()[0]
        objects: dict[str, list[str]] = {}  # "tables": [...], "views": [...]
        for kind, name in db.execute(
            "SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' "
            "ORDER BY type <> 'table', type, name"
        ):
            objects.setdefault(f"{kind}s", []).append(name)
    except sqlite3.DatabaseError as error:
        raise _unreadable(path, error) from None
    if app_id not in (0, sql.APPLICATION_ID):
        raise QueueOpenError(
            f"{str(path)!r} belongs to another application (application_id {app_id:#x}); "
            "use a separate file for the queue"
        )
    if app_id == sql.APPLICATION_ID and version != sql.SCHEMA_VERSION:
        raise QueueOpenError(
            f"{str(path)!r} has queue schema version {version}, this code needs "
            f"{sql.SCHEMA_VERSION}; drain it with the version that wrote it, or use a new file"
        )
    if app_id == 0 and (objects or version):
        # Ours always has its application_id; anything else someone put there (tables,
        # views, triggers, or just a user_version) marks another application's file.
        found = "; ".join(f"{kind}: {', '.join(names[:5])}" for kind, names in objects.items()) or (
            f"user_version {version}"
        )
        raise QueueOpenError(
            f"{str(path)!r} is a SQLite database of another application ({found}); "
            "use a separate file for the queue"
        )
    try:
        for pragma in sql.PRAGMAS:
            db.execute(pragma)
        if app_id == 0:
            db.executescript(f"BEGIN IMMEDIATE;{sql.SCHEMA}COMMIT;")
    except sqlite3.Error as error:
        if db.in_transaction:
            db.rollback()
        fix = f"; {_READ_ONLY_FIX}" if _read_only(path) else ""
        raise QueueOpenError(f"{str(path)!r}: cannot set up the queue ({error}){fix}") from None
    # After the queue restarts a grown WAL (TaskQueue._restart_wal), the next commit cuts the
    # file back to this size instead of leaving it at its peak.
    db.execute(f"PRAGMA journal_size_limit = {int(WAL_RESTART_BYTES)}")
    db.execute(f"PRAGMA busy_timeout = {int(config.busy_timeout_ms)}")


_READ_ONLY_FIX = (
    "its folder is read-only (a read-only mount, or no write permission), and the queue "
    "writes to the file and to the -wal and -shm files beside it even to read it: copy the "
    "file to a writable folder, or remount read-write. The file was not changed"
)


def _read_only(path: Path) -> bool:
    """True when ``path``'s folder (or the file) cannot be written: SQLite in WAL mode cannot
    even read a database whose -shm file it cannot create."""
    folder = path.parent
    try:
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            return True
    except OSError:
        pass
    return not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK))


def _unreadable(path: Path, error: sqlite3.DatabaseError) -> QueueOpenError:
    """The open error for a file SQLite could not read: not a database, or not readable
    here (a read-only folder looked to SQLite like a file it cannot open)."""
    code = getattr(error, "sqlite_errorcode", None)
    if code is not None and code & 0xFF == sqlite3.SQLITE_NOTADB:
        return QueueOpenError(
            f"{str(path)!r} is not a SQLite database ({error}); point the queue at a new file "
            "(this one is left as it is)"
        )
    if _read_only(path):
        return QueueOpenError(
            f"{str(path)!r} cannot be read as a queue ({error}): {_READ_ONLY_FIX}"
        )
    return QueueOpenError(
        f"{str(path)!r} cannot be read ({error}); check the file's permissions and the disk "
        "(the file was not changed)"
    )


def _storable(text: str) -> str:
    """``text`` with any lone surrogate written as a ``\\udcff`` escape: failure messages
    come from any exception, and one that SQLite cannot store must not stop the engine."""
    return text if utf8(text) else text.encode("utf-8", "backslashreplace").decode()


def _checkpoint(db: sqlite3.Connection, mode: str) -> tuple[int, int, int]:
    """``PRAGMA wal_checkpoint(mode)``: (busy, frames in the WAL, frames copied); the row is
    read here so that no statement is left open on the connection."""
    row = db.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
    return (int(row[0]), int(row[1]), int(row[2]))


def _restart_wal(
    db: sqlite3.Connection, wait_ms: int, busy_timeout_ms: int
) -> tuple[int, int, int]:
    """Checkpoint every frame of the WAL and have the next write start it over
    (``wal_checkpoint(RESTART)``), waiting up to ``wait_ms`` for other processes' writers and
    readers, then put the connection's busy timeout back to ``busy_timeout_ms``. Returns
    SQLite's (busy, frames in the WAL, frames copied): busy 1 when it could not finish. Only
    while nothing else runs on this connection (TaskQueue._restart_wal's thread call). Not a
    Store operation: it is the queue's housekeeping, not one of its operations."""
    db.execute(f"PRAGMA busy_timeout = {int(wait_ms)}")
    try:
        return _checkpoint(db, "RESTART")
    finally:
        db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")


def _file_bytes(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _is_busy(error: sqlite3.OperationalError) -> bool:
    code = getattr(error, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return "locked" in str(error) or "busy" in str(error)


def _check_positive(what: str, value: object) -> float:
    if (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or not value > 0
        or not math.isfinite(value)
    ):
        raise InvalidArgumentError(f"{what}={value!r} must be a number of seconds > 0")
    return float(value)
