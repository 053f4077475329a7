"""Planted bottlenecks: small monkeypatches of the queue (``taskqueue/``), never of the analysis.

Each :class:`Plant` names the bottleneck, the run that shows it (workload, size, parameters,
profiler) and what the #1 finding of ``findings.json`` must say: the operation (``op``) and
the cause (``cause``), in the vocabulary of the analysis (``.coord`` notes; causes such as
``sql-scan``, ``n-plus-one``, ``hot-subtree``, ``contention``, ``memory-growth``,
``worker-imbalance``, ``loop-hold``, ``round-trips``).

A plant is applied inside every Python process of the run (the ``queueprof run`` process,
py-spy's child, worker processes) by ``tests/diagnosis/site/sitecustomize.py``, which Python
imports at start-up when that folder is on ``PYTHONPATH``; it reads the plant's name from
``QUEUEPROF_PLANT``. queueprof itself has no hook for this and needs none.

Patches change what the queue does, as a developer's edit would; they do not change the
run's configuration, so the manifest records the strategy the run was asked for.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from taskqueue import handlers, payload, pgsql, pgstore, queue, sql, store, worker
from taskqueue.config import ClaimStyle, ConnectionMode, PgClaim
from taskqueue.models import TaskState, TaskStatus, new_task


@dataclass(frozen=True)
class Plant:
    """One planted bottleneck and the diagnosis it must get."""

    name: str
    family: str
    """Which cause family of issue 14 it exercises."""
    summary: str
    """What was planted, in a developer's words: the table's "expected" column."""
    apply: Callable[[], None] | None
    """The monkeypatch; None for the clean control."""
    workload: str
    profiler: str
    expected_ops: frozenset[str | None]
    """The #1 finding's ``op`` must be one of these."""
    expected_causes: frozenset[str]
    """The #1 finding's ``cause`` must be one of these."""
    params: tuple[str, ...] = ()
    queue: str = ""
    size: str = "smoke"
    after_rules: bool = False
    """Written after the ranking rules landed, without running it against them first."""
    baseline: bool = False
    """Also run the bare baseline (``queueprof run``'s default) so the profiler's overhead
    is measured: on for the control, where an overhead finding must not lead; off for the
    plants to halve the suite's time."""
    slow: bool = False
    """Takes over ~15 s: marked ``slow`` in pytest (still run by default)."""
    known_miss: str | None = None
    """Why this plant's #1 is a known MISS (kept in the suite and the table, xfail in pytest)."""
    negligible: str | None = None
    """Why the planted cost is not real in any run the suite makes (measured): the plant is
    judged as the control is (its #1 no false alarm), and its own finding, the expected op
    and cause, must still be in the report, below the floors. A rule that blew a 1% cost up
    to #1 would fail it, as would one that stopped seeing it."""
    job_miss: str | None = None
    """Why this plant's #1 is a known MISS in the default job (``run_all --mode default-job``,
    what ``tox -e profile-cpu`` runs) while its own run passes: what the default job does not
    exercise. Shown in the table; pytest runs the plant's own run only."""
    revised: str | None = None
    """What was changed after the plant's first run, and why (None: as first written)."""
    first_miss: str | None = None
    """For a plant written after the rules that MISSED on its first run and passes now: what
    the first run said, and that the rules changed after it (so it no longer counts as a
    plant the rules were not tuned on)."""

    postgres: bool = False
    """Runs on the PostgreSQL server of tests/pg.py: the harness adds ``backend=<server>``
    (``QUEUEPROF_PG``, else the local one) to ``queue``."""

    @property
    def control(self) -> bool:
        """The clean run: no patch, and its #1 finding must not be a false alarm."""
        return self.apply is None


# -- the patches ----------------------------------------------------------------------------


def pg_claim_waits_for_locks() -> None:
    """The PostgreSQL claim loses ``SKIP LOCKED``: every claim locks the head of the queue
    with a plain ``FOR UPDATE``, so concurrent claims wait on each other's row locks in the
    server (the run still says pg_claim=skip-locked: the code changed, not the setting)."""
    original = pgsql._picked

    def picked(style: PgClaim) -> str:
        return original(PgClaim.FOR_UPDATE)

    pgsql._picked = picked


# -- a PostgreSQL round, written after the rules (committed before their first run) --------


def pg_status_per_column() -> None:
    """Written after the rules. On PostgreSQL, ``status`` reads the task one column per
    statement ("so a column that is missing fails on its own"): 14 round trips to the server
    per call where one SELECT would do."""

    async def status(self: pgstore.PgStore, conn: Any, task_id: int) -> Any:
        values = []
        for column in _STATUS_COLUMNS:
            statement = f"SELECT {column} FROM tasks WHERE id = $1"
            rows = await self._fetch(conn, "status", statement, task_id)
            if not rows:
                return None
            values.append(rows[0][0])
        result = values[12]
        values[2] = TaskState(values[2])
        values[12] = None if result is None else json.loads(result)
        return TaskStatus(*values)

    pgstore.PgStore.status = status  # type: ignore[method-assign]


def pg_claim_index_dropped() -> None:
    """Written after the rules. The PostgreSQL schema loses ``tasks_ready`` (a migration
    dropped it as "unused" after reading the wrong statistics): each claim reads the whole
    ``tasks`` table, finished tasks included, and sorts the pending ones."""
    start = pgsql.SCHEMA.index("CREATE INDEX IF NOT EXISTS tasks_ready")
    end = pgsql.SCHEMA.index(";", start) + 1
    pgsql.SCHEMA = pgsql.SCHEMA[:start] + pgsql.SCHEMA[end:]


def pg_acks_row_by_row() -> None:
    """Written after the rules. On PostgreSQL the acks that ride on a claim are written one
    UPDATE each, in a transaction before the claim ("the JSON document was hard to read"),
    instead of one statement for the batch: a statement and a round trip per finished task."""

    async def complete_and_claim(
        self: pgstore.PgStore, conn: Any, acks: list[Any], worker: str, n: int, lease_s: float
    ) -> tuple[int, list[Any]]:
        applied = 0
        async with conn.transaction():
            for task_id, token, result in acks:
                applied += await self._execute(
                    conn, "complete", pgsql.COMPLETE, task_id, token, result, self.clock()
                )
        return applied, await self.claim(conn, worker, n, lease_s)

    pgstore.PgStore.complete_and_claim = complete_and_claim  # type: ignore[method-assign]


def drop_claim_index() -> None:
    """The schema loses ``tasks_ready``: the claim's ORDER BY ... LIMIT scans every row of
    ``tasks`` (done ones included) and sorts the pending ones in a temp B-tree, per claim."""
    start = sql.SCHEMA.index("CREATE INDEX IF NOT EXISTS tasks_ready")
    end = sql.SCHEMA.index(";", start) + 1
    sql.SCHEMA = sql.SCHEMA[:start] + sql.SCHEMA[end:]


_STATUS_COLUMNS = (
    "id",
    "type",
    "state",
    "priority",
    "attempts",
    "max_attempts",
    "worker",
    "run_at",
    "lease_until",
    "created_at",
    "started_at",
    "finished_at",
    "result",
    "error",
)


def status_per_column() -> None:
    """``status`` reads the task one column at a time: 14 statements per call (N+1)."""

    def status(self: store.Store, task_id: int) -> Any:
        values = []
        for column in _STATUS_COLUMNS:
            rows = self._rows("status", f"SELECT {column} FROM tasks WHERE id = ?", (task_id,))
            if not rows:
                return None
            values.append(rows[0][0])
        result = values[12]
        values[2] = TaskState(values[2])
        values[12] = None if result is None else json.loads(result)
        return TaskStatus(*values)

    store.Store.status = status  # type: ignore[method-assign]


def canonical_json_enqueue() -> None:
    """``enqueue`` also writes each payload as canonical, indented JSON (the pure-Python
    encoder: ``indent`` turns the C one off), decodes it back to check the round trip and
    hashes it, several times over "to be sure", before the real encoding."""
    real = payload.encode_json

    def encode_json(value: Any, what: str) -> str:
        for _ in range(6):
            text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)
            if json.loads(text) != value:
                raise ValueError(f"{what}: does not survive a JSON round trip")
            hashlib.sha256(text.encode()).hexdigest()
        return real(value, what)

    payload.encode_json = encode_json


def deferred_per_worker_claims() -> None:
    """The queue claims with the naive read-then-write transaction on a connection per
    worker, whatever its configuration says: writers collide on SQLite's lock."""
    init = queue.TaskQueue.__init__

    @functools.wraps(init)
    def __init__(self: queue.TaskQueue, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        self.config = _replace(
            self.config, claim_style=ClaimStyle.DEFERRED, connection=ConnectionMode.PER_WORKER
        )
        self._inline = False  # as __init__ decides for a deferred claim

    queue.TaskQueue.__init__ = __init__  # type: ignore[method-assign]


def _replace(config: Any, **changes: Any) -> Any:
    import dataclasses

    return dataclasses.replace(config, **changes)


def workers_keep_finished_tasks() -> None:
    """Every worker engine keeps each task it has run (an "audit trail" list on the engine),
    released only when the engine goes away: invisible to a leak report at teardown."""
    init = worker.WorkerEngine.__init__

    @functools.wraps(init)
    def __init__(self: worker.WorkerEngine, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        kept: list[Any] = []
        self.finished_tasks = kept  # type: ignore[attr-defined]
        self.handlers = {name: _keeping(h, kept) for name, h in self.handlers.items()}

    worker.WorkerEngine.__init__ = __init__  # type: ignore[method-assign]


def _keeping(handler: Any, kept: list[Any]) -> Any:
    if asyncio.iscoroutinefunction(handler):

        async def run_async(task: Any) -> Any:
            result = await handler(task)
            kept.append(task)
            return result

        return run_async

    def run(task: Any) -> Any:
        result = handler(task)
        kept.append(task)
        return result

    return run


def greedy_first_worker() -> None:
    """Worker ``w0``'s claims ignore the claim size and take every ready task; the other
    workers find nothing left and wait."""
    claim = queue.TaskQueue.claim
    both = queue.TaskQueue.complete_acks_and_claim

    @functools.wraps(claim)
    async def greedy_claim(
        self: queue.TaskQueue, worker: str, n: int = 1, lease: float | None = None
    ) -> Any:
        return await claim(self, worker, 10_000 if worker == "w0" else n, lease)

    @functools.wraps(both)
    async def greedy_both(
        self: queue.TaskQueue, acks: Any, worker: str, n: int = 1, lease: float | None = None
    ) -> Any:
        return await both(self, acks, worker, 10_000 if worker == "w0" else n, lease)

    queue.TaskQueue.claim = greedy_claim  # type: ignore[method-assign]
    queue.TaskQueue.complete_acks_and_claim = greedy_both  # type: ignore[method-assign]


def blocking_rate_limit_in_enqueue() -> None:
    """``enqueue`` waits for a rate-limit token with ``time.sleep`` (a blocking call) on the
    event loop, where it wakes idle workers: every other coroutine (workers, status readers)
    stalls meanwhile. Planted in the queue's own code path (``TaskQueue._notify``, which only
    enqueue calls), where a developer's edit would be."""
    notify = queue.TaskQueue._notify

    @functools.wraps(notify)
    def _notify(self: queue.TaskQueue, tasks: int) -> None:
        time.sleep(0.0015)  # the token bucket's refill wait, written as a blocking sleep
        notify(self, tasks)

    queue.TaskQueue._notify = _notify  # type: ignore[method-assign]


def ack_one_trip_each() -> None:
    """Workers acknowledge each finished task in its own call, sent to the connection thread
    (an UPDATE and a commit each), before claiming: one extra round trip per task."""

    async def complete_acks_and_claim(
        self: queue.TaskQueue,
        acks: list[Any],
        worker: str,
        n: int = 1,
        lease: float | None = None,
    ) -> tuple[int, list[Any]]:
        applied = 0
        key = self._key(worker)
        _, st = await self._store(key)
        for ack in acks:
            start = self._clock_start()
            # rows=None: "unbounded", so even dispatch=auto sends it to the thread.
            applied += await self._call(key, "complete", st.complete_acks, [ack], rows=None)
            if start:
                self._finish("complete", start, 1, worker)
        return applied, await self.claim(worker, n, lease)

    queue.TaskQueue.complete_acks_and_claim = complete_acks_and_claim  # type: ignore[method-assign]


def checksum_in_noop_handler() -> None:
    """The ``noop`` handler checksums its payload in pure Python (a CRC loop over the bytes of
    its JSON), about a millisecond of CPU per task on the event loop."""

    def noop(task: Any) -> int:
        data = json.dumps(task.payload).encode() * 40
        crc = 0
        for byte in data:
            crc = ((crc << 5) ^ (crc >> 27) ^ byte) & 0xFFFFFFFF
        return crc

    table = dict(handlers.BUILTIN)
    table["noop"] = noop
    handlers.BUILTIN = table


# -- written after the ranking rules landed (not run against them before this commit) -------


def claim_index_without_priority() -> None:
    """Written after the rules. ``tasks_ready`` indexes (state, run_at) only: the claim
    finds the pending rows by index but must sort all of them by priority in a temp B-tree
    for every claim."""
    start = sql.SCHEMA.index("CREATE INDEX IF NOT EXISTS tasks_ready")
    end = sql.SCHEMA.index(";", start) + 1
    sql.SCHEMA = (
        sql.SCHEMA[:start]
        + "CREATE INDEX IF NOT EXISTS tasks_ready ON tasks (state, run_at) "
        + "WHERE state = 'pending';"
        + sql.SCHEMA[end:]
    )


def status_by_text_id() -> None:
    """Written after the rules. ``status`` looks the task up by its id as text (ids arrive
    as strings from an HTTP API), so the primary key cannot be used: a full scan per call."""
    sql.STATUS = sql.STATUS.replace("WHERE id = ?", "WHERE CAST(id AS TEXT) = CAST(? AS TEXT)")


def replay_log_of_enqueued_batches() -> None:
    """Written after the rules. ``enqueue_many`` keeps each batch's encoded JSON documents
    in a replay log "to re-send after a crash", cleared only when the queue closes."""
    real_batch_document = queue.batch_document
    close = queue.TaskQueue.close
    replay: list[list[str]] = []

    @functools.wraps(real_batch_document)
    def batch_document(items: Any) -> list[str]:
        documents = real_batch_document(items)
        replay.append(documents)
        return documents

    @functools.wraps(close)
    async def closing(self: queue.TaskQueue) -> None:
        replay.clear()
        await close(self)

    queue.batch_document = batch_document
    queue.TaskQueue.close = closing  # type: ignore[method-assign]


def ack_then_verify_each() -> None:
    """Written after the rules. After writing a batch of acks, the store reads every acked
    task's state back, one SELECT per task, "to verify" (N+1 inside complete)."""
    complete_acks = store.Store.complete_acks

    @functools.wraps(complete_acks)
    def verified(self: store.Store, acks: list[Any]) -> int:
        applied = complete_acks(self, acks)
        for task_id, _, _ in acks:
            self._rows("complete", "SELECT state FROM tasks WHERE id = ?", (task_id,))
        return applied

    store.Store.complete_acks = verified  # type: ignore[method-assign]


def connection_per_worker_always() -> None:
    """Written after the rules. The queue opens a connection per worker name whatever
    ``connection`` says (a refactor lost the shared-writer branch): ten writers and the
    producer take turns on SQLite's write lock."""

    def _key(self: queue.TaskQueue, worker: str) -> str:
        return worker

    queue.TaskQueue._key = _key  # type: ignore[method-assign]


def connection_per_worker_on_its_thread() -> None:
    """Revision of :func:`connection_per_worker_always`: the same refactor also lost inline
    dispatch (it keyed the "is the thread idle" check by the shared connection), so every
    worker's statements run on its own connection's thread: ten writers really overlap."""
    connection_per_worker_always()
    init = queue.TaskQueue.__init__

    @functools.wraps(init)
    def __init__(self: queue.TaskQueue, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        self._inline = False

    queue.TaskQueue.__init__ = __init__  # type: ignore[method-assign]


def blocking_sleep_handler() -> None:
    """Written after the rules. The ``sleep`` handler is still ``async def`` but calls
    ``time.sleep``: each task blocks the event loop for its whole sleep, so the other
    workers cannot run theirs concurrently."""

    async def sleep(task: Any) -> None:
        time.sleep(float(task.payload.get("seconds", 0.001)))

    table = dict(handlers.BUILTIN)
    table["sleep"] = sleep
    handlers.BUILTIN = table


def claim_validates_each_payload() -> None:
    """Written after the rules. The claim decodes each task's payload on its own and checks
    it by a deep copy and a recursive walk in pure Python ("defensive" validation), instead
    of decoding the claim's payloads as one JSON array."""
    import copy

    def walk(value: Any, depth: int = 0) -> int:
        if isinstance(value, dict):
            return sum(walk(v, depth + 1) for v in value.values()) + len(value)
        if isinstance(value, list):
            return sum(walk(v, depth + 1) for v in value) + len(value)
        if isinstance(value, str):
            return sum(1 for ch in value if ch.isprintable())
        return 1

    def _tasks(self: store.Store, rows: list[Any], worker: str, lease_until: float) -> Any:
        tasks = []
        for id_, type_, text, priority, attempts, max_attempts in rows:
            payload = json.loads(text)
            walk(copy.deepcopy(payload))
            tasks.append(
                new_task(
                    (
                        id_,
                        type_,
                        payload,
                        priority,
                        attempts,
                        max_attempts,
                        worker,
                        lease_until,
                        attempts,
                    )
                )
            )
        return tasks

    store.Store._tasks = _tasks  # type: ignore[method-assign]


# -- written blind to the ranking rules, in a second round (committed before any run) -------


def dedup_enqueue_by_payload_key() -> None:
    """Written after the rules. ``enqueue`` refuses a duplicate: it first looks for a live
    task of the same type whose payload has the same ``seq`` (the producer's idempotency
    key), with ``json_extract`` on the payload column, which no index covers: a full scan of
    ``tasks`` (done rows included) per enqueue."""
    insert = store.Store.insert

    @functools.wraps(insert)
    def deduplicated(
        self: store.Store, type_: str, payload: str, priority: int, delay: float, attempts: int
    ) -> int:
        key = _idempotency_key(payload)
        if key is not None:
            found = self._rows(
                "enqueue",
                "SELECT id FROM tasks WHERE type = ? AND json_extract(payload, '$.seq') = ? "
                "AND state IN ('pending', 'running') LIMIT 1",
                (type_, key),
            )
            if found:
                return int(found[0][0])
        return insert(self, type_, payload, priority, delay, attempts)

    store.Store.insert = deduplicated  # type: ignore[method-assign]


def _idempotency_key(payload: str) -> Any:
    value = json.loads(payload)
    return value.get("seq") if isinstance(value, dict) else None


def status_counts_tasks_ahead() -> None:
    """Written after the rules. ``status`` of a live task also counts the live tasks of its
    type created before it (a "position in line" for a progress page): ``type`` and
    ``created_at`` have no index and ``state IN (...)`` cannot use the pending-only one, so
    each such call scans the whole table."""
    status = store.Store.status
    positions: dict[int, int] = {}

    @functools.wraps(status)
    def with_position(self: store.Store, task_id: int) -> Any:
        found = status(self, task_id)
        if found is not None and found.state in (TaskState.PENDING, TaskState.RUNNING):
            rows = self._rows(
                "status",
                "SELECT count(*) FROM tasks WHERE type = ? AND created_at < ? "
                "AND state IN ('pending', 'running')",
                (found.type, found.created_at),
            )
            positions[task_id] = int(rows[0][0])
        return found

    store.Store.status = with_position  # type: ignore[method-assign]


_ORDER = "ORDER BY priority DESC, run_at, id"
_AGED_ORDER = "ORDER BY priority + (:now - run_at) / 60.0 DESC, id"


def claim_orders_by_aged_priority() -> None:
    """Written after the rules. Anti-starvation "aging": the claim orders ready tasks by
    ``priority + waiting minutes``, an expression no index can give in order, so every claim
    sorts all pending tasks in a temp B-tree to take the first few."""
    for name in ("SELECT_READY", "CLAIM_RETURNING"):
        text = getattr(sql, name)
        if _ORDER not in text:
            raise RuntimeError(f"sql.{name} no longer orders by {_ORDER!r}: update the plant")
        setattr(sql, name, text.replace(_ORDER, _AGED_ORDER))
    sql.PLANNED["claim"] = sql.CLAIM_RETURNING  # type: ignore[index]
    sql.PLANNED["select_ready"] = sql.SELECT_READY  # type: ignore[index]


def claim_sorts_ready_rows_in_python() -> None:
    """Written after the rules. The claim fetches every ready task with its payload and
    picks the first ``n`` in Python (a sort key "easier to change than SQL"), then claims
    those ids: each claim reads and sorts the whole ready set to take a few."""

    def claim_returning(self: store.Store, worker: str, n: int, lease_s: float) -> Any:
        rows = self._rows(
            "claim",
            "SELECT id, priority, run_at, payload FROM tasks "
            "WHERE state = 'pending' AND run_at <= :now",
            {"now": self.clock()},
        )
        rows.sort(key=lambda row: (-row[1], row[2], row[0]))
        ids = [row[0] for row in rows[:n]]
        return self.claim_ids(worker, ids, lease_s) if ids else []

    store.Store.claim_returning = claim_returning  # type: ignore[method-assign]


_TASK_LOG = (
    "CREATE TABLE IF NOT EXISTS task_log "
    "(task_id INTEGER NOT NULL, payload TEXT NOT NULL, result TEXT, at REAL NOT NULL);"
)


def complete_logs_each_task_in_savepoint() -> None:
    """Written after the rules. Completing a batch of acks also copies each task (payload and
    result) into a ``task_log`` table, one row at a time, each in its own savepoint (its own
    transaction when the acks are not already in one): three statements per acked task."""
    marker = "PRAGMA application_id"
    sql.SCHEMA = sql.SCHEMA.replace(marker, _TASK_LOG + "\n" + marker, 1)
    complete_acks = store.Store.complete_acks

    @functools.wraps(complete_acks)
    def logged(self: store.Store, acks: list[Any]) -> int:
        applied = complete_acks(self, acks)
        now = self.clock()
        for task_id, _, result in acks:
            self._change("complete", "SAVEPOINT task_log")
            try:
                self._change(
                    "complete",
                    "INSERT INTO task_log (task_id, payload, result, at) "
                    "SELECT id, payload, ?, ? FROM tasks WHERE id = ?",
                    (result, now, task_id),
                )
            except BaseException:
                self._change("complete", "ROLLBACK TO task_log")
                raise
            finally:
                self._change("complete", "RELEASE task_log")
        return applied

    store.Store.complete_acks = logged  # type: ignore[method-assign]


def status_checks_schema_first() -> None:
    """Written after the rules. Before each ``status`` read the queue checks, in a call of
    its own sent to the connection thread, that the schema is still the one it knows
    (``PRAGMA schema_version`` and ``table_info``, "in case a migration ran"): one more
    trip and three statements per status call."""

    def check_schema(self: store.Store) -> bool:
        self._rows("status", "PRAGMA schema_version")
        columns = self._rows("status", "PRAGMA table_info(tasks)")
        self._rows("status", "PRAGMA index_list(tasks)")
        return len(columns) == len(_STATUS_COLUMNS) + 1  # + payload

    status = queue.TaskQueue.status

    @functools.wraps(status)
    async def checked(self: queue.TaskQueue, task_id: int) -> Any:
        _, st = await self._store(queue._MAIN)
        # rows=None: "unbounded", so it always goes to the connection's thread.
        if not await self._call(queue._MAIN, "status", st.check_schema, rows=None):
            raise RuntimeError(f"{self.path}: the tasks table changed under the queue")
        return await status(self, task_id)

    store.Store.check_schema = check_schema  # type: ignore[attr-defined]
    queue.TaskQueue.status = checked  # type: ignore[method-assign]


_RUN_LOG: list[str] = []


def handlers_log_every_run() -> None:
    """Written after the rules. Every built-in handler is wrapped to keep a line per run in a
    module-level list (task, attempt, time taken, payload and result as ``repr``) for a debug
    page; nothing ever trims it."""

    def logging(handler: Any) -> Any:
        if asyncio.iscoroutinefunction(handler):

            async def run_async(task: Any) -> Any:
                started = time.perf_counter()
                result = await handler(task)
                _RUN_LOG.append(_run_line(task, started, result))
                return result

            return run_async

        def run(task: Any) -> Any:
            started = time.perf_counter()
            result = handler(task)
            _RUN_LOG.append(_run_line(task, started, result))
            return result

        return run

    handlers.BUILTIN = {name: logging(h) for name, h in handlers.BUILTIN.items()}


def _run_line(task: Any, started: float, result: Any) -> str:
    took = time.perf_counter() - started
    return (
        f"task {task.id} ({task.type}) attempt {task.attempts} on {task.worker}: "
        f"{took * 1e6:.0f} us, payload={task.payload!r}, result={result!r}"
    )


_RAW_PAYLOADS: dict[int, str] = {}


def claim_caches_raw_payloads() -> None:
    """Written after the rules. The claim keeps each claimed row's payload text in a
    module-level dict by task id ("so a retried task need not be read again"); entries are
    never removed, not even when the task is done or the queue closes."""
    tasks = store.Store._tasks

    @functools.wraps(tasks)
    def caching(self: store.Store, rows: list[Any], worker: str, lease_until: float) -> Any:
        for row in rows:
            _RAW_PAYLOADS[row[0]] = row[2]
        return tasks(self, rows, worker, lease_until)

    store.Store._tasks = caching  # type: ignore[method-assign]


def engines_serialise_async_handlers() -> None:
    """Written after the rules. Engines run coroutine handlers under one asyncio lock per
    queue ("handlers are not re-entrant"): the engines of an event loop, meant to overlap
    their awaits, run their tasks one at a time."""
    execute = worker.WorkerEngine._execute
    locks: dict[int, asyncio.Lock] = {}

    @functools.wraps(execute)
    async def serialised(self: worker.WorkerEngine, task: Any) -> None:
        lock = locks.setdefault(id(self.queue), asyncio.Lock())
        async with lock:
            await execute(self, task)

    worker.WorkerEngine._execute = serialised  # type: ignore[method-assign]


def fsynced_ack_journal() -> None:
    """Written after the rules. Once acks land, the queue appends each completed task to a
    journal file beside the database and ``fsync``s it per line ("durable audit"), on the
    event loop: every ack blocks the loop for a disk flush."""
    finished = queue.TaskQueue._finished
    close = queue.TaskQueue.close
    journals: dict[int, Any] = {}

    @functools.wraps(finished)
    def journaled(self: queue.TaskQueue, acks: Any) -> None:
        journal = journals.get(id(self))
        if journal is None:
            path = self.path.with_name(self.path.name + ".acks")
            journal = journals[id(self)] = open(path, "a", encoding="utf-8")  # noqa: SIM115
        for task_id, attempts, _ in acks:
            journal.write(f"{task_id} {attempts} {time.time():.6f}\n")
            journal.flush()
            os.fsync(journal.fileno())
        finished(self, acks)

    @functools.wraps(close)
    async def closing(self: queue.TaskQueue) -> None:
        journal = journals.pop(id(self), None)
        if journal is not None:
            journal.close()
        await close(self)

    queue.TaskQueue._finished = journaled  # type: ignore[method-assign]
    queue.TaskQueue.close = closing  # type: ignore[method-assign]


def claim_sizer_always_full() -> None:
    """Written after the rules. The claim sizer lost its budget (a refactor returns the
    most before measuring): every claim asks for ``claim_batch`` tasks, so the first engines
    take the whole queue in a few claims and the rest find it empty."""

    def size(self: Any, engines: int, shared: bool) -> int:
        return int(self.most)

    worker._ClaimSizer.size = size  # type: ignore[method-assign]


# -- a third round, written blind to the rules (committed before any run) -------------------


def synchronous_full() -> None:
    """Written after the rules. A developer sets ``PRAGMA synchronous=FULL`` "to be safe": in
    WAL mode every commit now waits for an fsync of the WAL (NORMAL syncs only at
    checkpoints), so each single enqueue, claim and ack waits for the disk."""
    sql.PRAGMAS = tuple(
        "PRAGMA synchronous=FULL" if p.startswith("PRAGMA synchronous") else p for p in sql.PRAGMAS
    )


def enqueue_connects_per_call() -> None:
    """Written after the rules. ``insert`` opens a connection of its own for each enqueue
    ("so a producer thread never shares one"), sets the queue's pragmas on it, inserts,
    commits and closes it: a connect, a schema read and four pragmas per task."""
    import sqlite3

    insert = store.Store.insert
    paths: dict[int, str] = {}

    @functools.wraps(insert)
    def connecting(
        self: store.Store, type_: str, payload: str, priority: int, delay: float, attempts: int
    ) -> int:
        path = paths.get(id(self))
        if path is None:
            path = paths[id(self)] = self.db.execute("PRAGMA database_list").fetchone()[2]
        db = sqlite3.connect(path, isolation_level=None)
        try:
            db.execute("PRAGMA busy_timeout = 10000")
            for pragma in sql.PRAGMAS:
                db.execute(pragma)
            return insert(
                store.Store(db, self.clock, self.capture), type_, payload, priority, delay, attempts
            )
        finally:
            db.close()

    store.Store.insert = connecting  # type: ignore[method-assign]


_PENDING_COUNT = "SELECT count(*) FROM tasks WHERE state = 'pending'"


def claim_counts_backlog_first() -> None:
    """Written after the rules. Each claim first counts the pending tasks ("to log the
    backlog and skip the claim when it is empty"): a count over every pending row, per
    claim, before the claim proper."""
    returning = store.Store.claim_returning
    immediate = store.Store._select_and_claim

    def counting(original: Any) -> Any:
        @functools.wraps(original)
        def claim(self: store.Store, worker: str, n: int, lease_s: float) -> Any:
            if not self._rows("claim", _PENDING_COUNT)[0][0]:
                return []
            return original(self, worker, n, lease_s)

        return claim

    store.Store.claim_returning = counting(returning)  # type: ignore[method-assign]
    store.Store._select_and_claim = counting(immediate)  # type: ignore[method-assign]


def drained_reads_every_state() -> None:
    """Written after the rules. ``is_drained`` reads every task's state and checks them in
    Python ("clearer than SQL"): each check reads the whole table, done rows included."""

    def is_drained(self: store.Store) -> bool:
        states = [row[0] for row in self._rows("status", "SELECT state FROM tasks")]
        return not any(state in ("pending", "running") for state in states)

    store.Store.is_drained = is_drained  # type: ignore[method-assign]


def complete_normalises_payloads() -> None:
    """Written after the rules. Completing a task also re-reads its row and rewrites its
    payload as canonical JSON (sorted keys, indented) "for the archive": a SELECT, a decode,
    an encode and an UPDATE per acked task inside complete."""
    complete_acks = store.Store.complete_acks

    @functools.wraps(complete_acks)
    def normalising(self: store.Store, acks: list[Any]) -> int:
        applied = complete_acks(self, acks)
        for task_id, _, _ in acks:
            rows = self._rows("complete", "SELECT payload FROM tasks WHERE id = ?", (task_id,))
            if rows:
                canonical = json.dumps(json.loads(rows[0][0]), sort_keys=True, indent=2)
                self._change(
                    "complete", "UPDATE tasks SET payload = ? WHERE id = ?", (canonical, task_id)
                )
        return applied

    edited = _as_edited(store, "Store.complete_acks", normalising)
    store.Store.complete_acks = edited  # type: ignore[method-assign]


def acks_checked_against_a_list() -> None:
    """Written after the rules. Once acks land, the queue drops duplicate acks by looking
    each one up in a list of every ack it has seen (``ack in seen``, then ``append``): a
    linear scan per ack, over a list as long as the tasks completed so far."""
    landed = queue.TaskQueue._acks_landed
    seen: dict[int, list[Any]] = {}

    @functools.wraps(landed)
    def _acks_landed(self: queue.TaskQueue, acks: list[Any], applied: int) -> None:
        known = seen.setdefault(id(self), [])
        fresh = []
        for ack in acks:
            if ack not in known:
                known.append(ack)
                fresh.append(ack)
        landed(self, fresh, applied - (len(acks) - len(fresh)))

    edited = _as_edited(queue, "TaskQueue._acks_landed", _acks_landed)
    queue.TaskQueue._acks_landed = edited  # type: ignore[method-assign]


def idle_engines_poll() -> None:
    """Written after the rules. ``wait_for_work`` polls instead of waiting for a wake-up
    ("futures were flaky"): an idle engine sleeps half a millisecond and claims again, so
    idle engines claim thousands of times and find nothing."""

    async def wait_for_work(self: queue.TaskQueue, timeout: float | None = None) -> None:
        await asyncio.sleep(0.0005)

    queue.TaskQueue.wait_for_work = wait_for_work  # type: ignore[method-assign]


def checkpoint_every_commit() -> None:
    """Written after the rules. ``wal_autocheckpoint`` set to 1 page ("keep the WAL small")
    instead of the queue's own checkpoint thread: every commit also checkpoints the WAL into
    the database and syncs the database file, inside the committing statement."""
    sql.PRAGMAS = tuple(
        "PRAGMA wal_autocheckpoint=1" if p.startswith("PRAGMA wal_autocheckpoint") else p
        for p in sql.PRAGMAS
    )


# -- a fourth round, written blind to the rules (committed before any run) ------------------


def claim_index_in_wrong_order() -> None:
    """Written after the rules. ``tasks_ready`` is rebuilt with the state last and without its
    ``WHERE state = 'pending'`` ("one index for every state"): the claim walks the index in
    priority order and skips every done and running row ahead of the first pending one, so
    each claim passes over all the tasks finished before it."""
    start = sql.SCHEMA.index("CREATE INDEX IF NOT EXISTS tasks_ready")
    end = sql.SCHEMA.index(";", start) + 1
    sql.SCHEMA = (
        sql.SCHEMA[:start]
        + "CREATE INDEX IF NOT EXISTS tasks_ready ON tasks (priority DESC, run_at, id, state);"
        + sql.SCHEMA[end:]
    )


def enqueue_reads_back_each_row() -> None:
    """Written after the rules. ``insert`` reads the row it just inserted back in full ("to
    return what was stored, defaults included"), a second statement per enqueue whose answer
    the caller already had."""
    insert = store.Store.insert

    def insert_and_read(
        self: store.Store, type_: str, payload: str, priority: int, delay: float, attempts: int
    ) -> int:
        task_id = insert(self, type_, payload, priority, delay, attempts)
        self._rows("enqueue", "SELECT * FROM tasks WHERE id = ?", (task_id,))
        return task_id

    edited = _as_edited(store, "Store.insert", insert_and_read)
    store.Store.insert = edited  # type: ignore[method-assign]


_PRETTY_STATUS = sql.STATUS.replace(" FROM tasks", ", payload FROM tasks")


def status_pretty_prints_payload() -> None:
    """Written after the rules. ``status`` also reads the payload and keeps it pretty-printed
    for a dashboard: it decodes it and encodes it again as indented JSON with sorted keys
    (the pure-Python encoder: ``indent`` turns the C one off), then checks the text decodes
    back to the same value, on every call."""
    if _PRETTY_STATUS == sql.STATUS:
        raise RuntimeError("sql.STATUS no longer reads ' FROM tasks': update the plant")
    status = store.Store.status
    shown: dict[int, str] = {}

    def status_with_payload(self: store.Store, task_id: int) -> Any:
        rows = self._rows("status", _PRETTY_STATUS, (task_id,))
        if rows:
            value = json.loads(rows[0][-1])
            pretty = json.dumps(value, indent=2, sort_keys=True)
            if json.loads(pretty) != value:
                raise ValueError(f"task {task_id}: payload does not survive pretty-printing")
            shown[task_id % 64] = pretty
        return status(self, task_id)

    edited = _as_edited(store, "Store.status", status_with_payload)
    store.Store.status = edited  # type: ignore[method-assign]


def enqueue_many_row_by_row() -> None:
    """Written after the rules. ``insert_many`` inserts its rows one statement each ("the
    JSON statement was hard to read"), each committing on its own: a batch of 100 tasks is
    100 INSERTs and 100 commits instead of one statement."""

    def insert_many(self: store.Store, documents: list[str]) -> list[int]:
        ids = []
        for document in documents:
            flat = json.loads(document)
            for at in range(0, len(flat), 5):
                type_, value, priority, delay, attempts = flat[at : at + 5]
                text = json.dumps(value, separators=(",", ":"))
                ids.append(store.Store.insert(self, type_, text, priority, delay, attempts))
        return ids

    edited = _as_edited(store, "Store.insert_many", insert_many)
    store.Store.insert_many = edited  # type: ignore[method-assign]


def complete_counts_every_state() -> None:
    """Written after the rules. After each batch of acks, ``complete_acks`` refreshes a
    progress gauge with the count of tasks in every state (``GROUP BY state``): no index
    covers done rows, so each completing call scans the whole table."""
    complete_acks = store.Store.complete_acks
    gauge: dict[str, int] = {}

    def complete_and_count(self: store.Store, acks: list[Any]) -> int:
        applied = complete_acks(self, acks)
        gauge.update(dict(self._rows("complete", sql.COUNTS)))
        return applied

    edited = _as_edited(store, "Store.complete_acks", complete_and_count)
    store.Store.complete_acks = edited  # type: ignore[method-assign]


def handlers_get_a_deep_copy() -> None:
    """Written after the rules. Every built-in handler receives its task with a deep copy of
    the payload ("so a handler that mutates it cannot change what a retry sees"): a
    ``copy.deepcopy`` and a new task per task run."""
    import copy

    def isolated(handler: Any) -> Any:
        if asyncio.iscoroutinefunction(handler):

            async def run_async(task: Any) -> Any:
                return await handler(task._replace(payload=copy.deepcopy(task.payload)))

            return _as_edited(handlers, "isolated.<locals>.run_async", run_async)

        def run(task: Any) -> Any:
            return handler(task._replace(payload=copy.deepcopy(task.payload)))

        return _as_edited(handlers, "isolated.<locals>.run", run)

    handlers.BUILTIN = {name: isolated(h) for name, h in handlers.BUILTIN.items()}


def acks_keep_results_for_polls() -> None:
    """Written after the rules. Once acks land, the queue keeps each completed task's
    decoded result with its attempt and time in a dict on the queue ("so poll() need not
    read the row"); nothing ever removes an entry."""
    landed = queue.TaskQueue._acks_landed

    def _acks_landed(self: queue.TaskQueue, acks: list[Any], applied: int) -> None:
        results = self.__dict__.setdefault("_results", {})
        for task_id, attempts, result in acks:
            results[task_id] = dict(attempts=attempts, result=json.loads(result), at=time.time())
        landed(self, acks, applied)

    edited = _as_edited(queue, "TaskQueue._acks_landed", _acks_landed)
    queue.TaskQueue._acks_landed = edited  # type: ignore[method-assign]


# -- a fifth round, written blind to the rules (committed before any run) -------------------


_CLAIMED_ROW = "SELECT id, type, payload, priority, attempts, max_attempts FROM tasks WHERE id = ?"


def claim_rereads_each_row() -> None:
    """Written after the rules. The claim reads each claimed task's row again by id before
    making its task ("RETURNING's values are the statement's, read the committed row"): one
    more SELECT per claimed task, inside the claim's transaction."""
    tasks = store.Store._tasks

    def _tasks(self: store.Store, rows: list[Any], worker: str, lease_until: float) -> Any:
        fresh: list[Any] = []
        for row in rows:
            fresh += self._rows("claim", _CLAIMED_ROW, (row[0],))
        return tasks(self, fresh, worker, lease_until)

    edited = _as_edited(store, "Store._tasks", _tasks)
    store.Store._tasks = edited  # type: ignore[method-assign]


def claims_of_one_task() -> None:
    """Written after the rules. The claim sizer is "simplified" to one task per claim ("so
    no engine hoards tasks another could start, and a slow task holds up no other"): every
    task costs a claim of its own, a trip through the claim path and its transaction."""

    def size(self: Any, engines: int, shared: bool) -> int:
        return 1

    edited = _as_edited(worker, "_ClaimSizer.size", size)
    worker._ClaimSizer.size = edited  # type: ignore[method-assign]


def poll_spins_on_status() -> None:
    """Written after the rules. ``poll``'s wait between two reads of the task's status
    becomes a bare yield (``asyncio.sleep(0)``): "the wake-up only helps for tasks this
    process completes, and the interval added its length to every poll's latency". Each
    waiting poll now reads the status again on every pass of the event loop."""

    async def _wait_finished(self: queue.TaskQueue, task_id: int, seconds: float) -> None:
        await asyncio.sleep(0)

    edited = _as_edited(queue, "TaskQueue._wait_finished", _wait_finished)
    queue.TaskQueue._wait_finished = edited  # type: ignore[method-assign]


def status_checks_known_ids() -> None:
    """Written after the rules. ``status`` first checks that the id is one the queue issued,
    against the set of every task id (``SELECT id FROM tasks``), "to tell an unknown id
    apart from a task that vanished": each status call reads every row's id."""
    status = store.Store.status

    def status_of_known(self: store.Store, task_id: int) -> Any:
        known = {row[0] for row in self._rows("status", "SELECT id FROM tasks")}
        if task_id not in known:
            return None
        return status(self, task_id)

    edited = _as_edited(store, "Store.status", status_of_known)
    store.Store.status = edited  # type: ignore[method-assign]


_NEWEST_CREATED = "SELECT created_at FROM tasks ORDER BY created_at DESC LIMIT 1"


def enqueue_keeps_created_monotonic() -> None:
    """Written after the rules. ``insert`` stamps a new task no earlier than the newest task's
    ``created_at`` ("the wall clock may step back, and FIFO by time must hold"), which it
    reads with ``ORDER BY created_at DESC LIMIT 1``: no index has ``created_at``, so every
    enqueue reads the whole table to find the newest row."""

    def insert(
        self: store.Store, type_: str, payload: str, priority: int, delay: float, attempts: int
    ) -> int:
        now = self.clock()
        newest = self._rows("enqueue", _NEWEST_CREATED)
        if newest and newest[0][0] > now:
            now = newest[0][0]
        cursor = self._change(
            "enqueue", sql.INSERT, (type_, payload, priority, now + delay, attempts, now)
        )
        rowid = cursor.lastrowid
        assert rowid is not None
        return rowid

    edited = _as_edited(store, "Store.insert", insert)
    store.Store.insert = edited  # type: ignore[method-assign]


_SAFE_KEY = r"[A-Za-z_][A-Za-z0-9_]*"
_SAFE_TEXT = r"(?:[^\x00-\x1f\x7f]|\\u[0-9a-fA-F]{4})*"


def enqueue_validates_payload_text() -> None:
    """Written after the rules. ``enqueue`` checks its payload before encoding it ("reject
    control characters and odd keys before they reach the database"): every key against a
    name pattern and every string value against a printable-text pattern, with ``re``, one
    regular-expression match per key and value, character by character through the text."""
    import re

    validated = queue.validated_row

    def check(value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if not re.fullmatch(_SAFE_KEY, str(key)):
                    raise payload.InvalidArgumentError(f"payload key {key!r} is not a name")
                check(item)
        elif isinstance(value, list):
            for item in value:
                check(item)
        elif isinstance(value, str) and not re.fullmatch(_SAFE_TEXT, value):
            raise payload.InvalidArgumentError("payload text holds control characters")

    def validated_row(
        type_: str, value: Any, priority: int, delay: float, max_attempts: int
    ) -> list[Any]:
        check(value)
        return validated(type_, value, priority, delay, max_attempts)

    queue.validated_row = _as_edited(payload, "validated_row", validated_row)


# -- a sixth round, written blind to the rules (committed before any run) -------------------


def enqueue_remembers_payloads() -> None:
    """Written after the rules. ``enqueue_many`` refuses a task already enqueued ("a
    producer that retries after a timeout must not enqueue twice"): it keeps the type and
    canonical JSON of every payload it has enqueued, as the key of a dict on the queue
    holding the task's id, and checks each new item against it. Nothing ever removes a key:
    the dict holds a copy of every payload the queue object has seen."""
    enqueue_many = queue.TaskQueue.enqueue_many

    async def remembering(self: queue.TaskQueue, tasks: Any) -> list[int]:
        items = tasks if isinstance(tasks, list | tuple) else list(tasks)
        seen: dict[str, int] = self.__dict__.setdefault("_enqueued", {})
        keys = [
            f"{t.type if hasattr(t, 'type') else t[0]}:"
            + json.dumps(t.payload if hasattr(t, "payload") else t[1], sort_keys=True)
            for t in items
        ]
        if any(key in seen for key in keys):
            raise payload.InvalidArgumentError("enqueue_many: a task was already enqueued")
        ids = await enqueue_many(self, items)
        seen.update(zip(keys, ids, strict=True))
        return ids

    edited = _as_edited(queue, "TaskQueue.enqueue_many", remembering)
    queue.TaskQueue.enqueue_many = edited  # type: ignore[method-assign]


def first_worker_prefetches() -> None:
    """Written after the rules. A per-worker override left in from a benchmark: the engine
    named ``w0`` ("the prefetching worker") has its claim sizing turned off, the documented
    ``claim_budget_ms=0``, so its every claim asks for a whole ``claim_batch`` while the
    other workers' claims stay sized to about 10 ms of work. In process mode ``w0`` is the
    first worker process: its first claim takes most of the queue, and the others run out
    and wait while it works through its batch alone."""
    init = worker.WorkerEngine.__init__

    @functools.wraps(init)
    def __init__(self: worker.WorkerEngine, name: str, *args: Any, **kwargs: Any) -> None:
        init(self, name, *args, **kwargs)
        if name == "w0":
            self._sizer.budget_s = 0.0  # claim_budget_ms=0: always claim_batch

    worker.WorkerEngine.__init__ = __init__  # type: ignore[method-assign]


_RESOLVER: list[Any] = []


def status_waits_for_resolver() -> None:
    """Written after the rules. ``status`` tags its answer with the database host's address
    for the dashboard, looked up on a small resolver thread pool ("so lookups are bounded")
    whose answer the coroutine waits for with ``Future.result()``: a blocking wait on the
    event loop, for a thread's DNS round trip (a 1 ms resolver stood in by a sleep in the
    pool's thread), on every status call. Nothing else runs on the loop meanwhile."""
    import concurrent.futures
    import socket

    status = queue.TaskQueue.status

    def lookup(host: str) -> Any:
        time.sleep(0.001)  # the resolver's round trip
        return socket.getaddrinfo(host, None)

    async def resolving(self: queue.TaskQueue, task_id: int) -> Any:
        if not _RESOLVER:
            _RESOLVER.append(concurrent.futures.ThreadPoolExecutor(2, "resolver"))
        found = await status(self, task_id)
        address = _RESOLVER[0].submit(lookup, "localhost").result()
        self.__dict__["_host"] = address[0][4][0]
        return found

    edited = _as_edited(queue, "TaskQueue.status", resolving)
    queue.TaskQueue.status = edited  # type: ignore[method-assign]


def claims_commit_lazily() -> None:
    """Written after the rules. "One commit fewer per cycle": a claim's transaction is left
    open and committed by the connection's next call (the next claim, or any other call),
    instead of at its end. A worker then holds SQLite's write lock for as long as it runs
    the tasks it claimed, and in process mode every other worker's claim finds the database
    locked (SQLITE_BUSY) and retries until the holder's next claim commits, and that claim
    takes the lock again at once."""
    returning = store.Store.claim_returning

    def open_claim(self: store.Store, body: Callable[[], Any]) -> Any:
        if self.db.in_transaction:
            self._change("claim", "COMMIT")  # the previous claim's, at last
        self._change("claim", "BEGIN IMMEDIATE")
        try:
            return body()  # no COMMIT: the next call commits it
        except BaseException:
            self.rollback()
            raise

    def claim_group(self: store.Store, requests: list[Any], immediate: bool) -> Any:
        claim = self._select_and_claim if immediate else functools.partial(returning, self)
        return open_claim(
            self,
            lambda: [
                (self.complete_acks(acks) if acks else 0, claim(worker, n, lease_s))
                for acks, worker, n, lease_s in requests
            ],
        )

    def claim_returning(self: store.Store, worker: str, n: int, lease_s: float) -> Any:
        return open_claim(self, lambda: returning(self, worker, n, lease_s))

    def claim_immediate(self: store.Store, worker: str, n: int, lease_s: float) -> Any:
        return open_claim(self, lambda: self._select_and_claim(worker, n, lease_s))

    def committing_first(original: Any) -> Any:
        @functools.wraps(original)
        def call(self: store.Store, *args: Any) -> Any:
            self.commit("claim")  # a claim left open by the last call
            return original(self, *args)

        return call

    close = queue.TaskQueue.close

    @functools.wraps(close)
    async def closing(self: queue.TaskQueue) -> None:
        for conn, st in list(self._stores.values()):
            await queue._bridge.run(conn, st.commit, "claim")
        await close(self)

    store.Store.claim_group = claim_group  # type: ignore[method-assign]
    store.Store.claim_returning = claim_returning  # type: ignore[method-assign]
    store.Store.claim_immediate = claim_immediate  # type: ignore[method-assign]
    for name in ("insert", "insert_many", "status", "counts", "fail", "reclaim", "is_drained"):
        setattr(store.Store, name, committing_first(getattr(store.Store, name)))
    queue.TaskQueue.close = closing  # type: ignore[method-assign]


_QUEUE_SIZE = "SELECT count(*) FROM tasks"


def pg_status_counts_the_table() -> None:
    """Written after the rules. On PostgreSQL, ``status`` also reports how many tasks the
    queue holds ("the dashboard shows it beside each task"): a ``count(*)`` over the whole
    ``tasks`` table, done rows included, per status call, which PostgreSQL answers by
    reading every row (MVCC: no count is kept)."""
    status = pgstore.PgStore.status

    async def status_and_size(self: pgstore.PgStore, conn: Any, task_id: int) -> Any:
        found = await status(self, conn, task_id)
        rows = await self._fetch(conn, "status", _QUEUE_SIZE)
        self.__dict__["queue_size"] = rows[0][0]
        return found

    edited = _as_edited(pgstore, "PgStore.status", status_and_size)
    pgstore.PgStore.status = edited  # type: ignore[method-assign]


def pg_enqueue_connects_per_call() -> None:
    """Written after the rules. On PostgreSQL, ``enqueue`` opens a connection of its own for
    each task instead of taking one from the queue's pool ("the pool was exhausted under
    load once"), inserts, and closes it: a connection setup (TCP, startup, authentication,
    the server forking a backend) and its teardown per task."""
    import asyncpg

    from taskqueue import pgqueue

    async def enqueue(
        self: Any,
        type: str,
        payload: Any = None,
        *,
        priority: int = 0,
        delay: float = 0.0,
        max_attempts: int = 3,
    ) -> int:
        start = self._clock_start()
        row = pgqueue.validated_row(type, payload, priority, delay, max_attempts)
        conn = await asyncpg.connect(self.target)
        try:
            task_id: int = await self._pg.insert(conn, *row)
        finally:
            await conn.close()
        self._notify(1)
        if start:
            self._finish("enqueue", start, 1)
        return task_id

    edited = _as_edited(pgqueue, "PgTaskQueue.enqueue", enqueue)
    pgqueue.PgTaskQueue.enqueue = edited  # type: ignore[method-assign]


# -- blind4: a PostgreSQL round, written blind to the rules (committed before any run) -----


def pg_status_in_read_only_transaction() -> None:
    """Written after the rules. On PostgreSQL, ``status`` reads the task inside a
    ``REPEATABLE READ READ ONLY`` transaction ("a status must be one consistent snapshot,
    and read-only so it can never write by mistake"): the one SELECT is already a snapshot
    of its own, and the transaction adds a BEGIN and a COMMIT, two more round trips to the
    server per call."""
    status = pgstore.PgStore.status

    async def status_in_snapshot(self: pgstore.PgStore, conn: Any, task_id: int) -> Any:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            return await status(self, conn, task_id)

    edited = _as_edited(pgstore, "PgStore.status", status_in_snapshot)
    pgstore.PgStore.status = edited  # type: ignore[method-assign]


def pg_enqueue_rejects_control_characters() -> None:
    """Written after the rules. On PostgreSQL, ``enqueue`` checks the payload's JSON text
    character by character for control characters ("PostgreSQL refuses NUL in text, and the
    dashboard's terminal view is garbled by the others: say where the bad one is before the
    INSERT"), with ``unicodedata.category`` per character: pure-Python work proportional to
    the payload's size on every enqueue, for text the JSON encoder has already escaped."""
    import unicodedata

    from taskqueue import pgqueue
    from taskqueue.errors import InvalidArgumentError

    def _reject_control_characters(text: str, what: str) -> None:
        for at, char in enumerate(text):
            if unicodedata.category(char) == "Cc" and char not in "\t\n\r":
                raise InvalidArgumentError(f"{what}: control character {char!r} at {at}")

    check = _as_edited(pgqueue, "_reject_control_characters", _reject_control_characters)
    validated_row = pgqueue.validated_row

    def checked_row(*args: Any) -> Any:
        row = validated_row(*args)
        check(row[0], "task type")
        check(row[1], "payload")
        return row

    # The enqueue's own row check, extended where enqueue calls it (PgTaskQueue.enqueue as is).
    pgqueue.validated_row = _as_edited(pgqueue, "validated_row", checked_row)


def pg_claims_in_serializable() -> None:
    """Written after the rules. On PostgreSQL, every claim (and the acks riding on it) runs
    in a ``SERIALIZABLE`` transaction ("the rows we pick and the rows we lease must come
    from one snapshot, and serializable is the safe default"): concurrent claims read the
    same head of the ready index and write rows the others read, so the server aborts them
    with serialization failures (read/write dependencies, or a row leased and committed
    since the snapshot) instead of reading on past, and the queue retries them with
    backoff: concurrent workers at the head of the queue keep failing each other's claims."""
    claim = pgstore.PgStore.claim
    complete_and_claim = pgstore.PgStore.complete_and_claim

    async def claim_in_snapshot(
        self: pgstore.PgStore, conn: Any, worker: str, n: int, lease_s: float
    ) -> Any:
        async with conn.transaction(isolation="serializable"):
            return await claim(self, conn, worker, n, lease_s)

    async def complete_and_claim_in_snapshot(
        self: pgstore.PgStore, conn: Any, acks: list[Any], worker: str, n: int, lease_s: float
    ) -> Any:
        async with conn.transaction(isolation="serializable"):
            return await complete_and_claim(self, conn, acks, worker, n, lease_s)

    pgstore.PgStore.claim = _as_edited(  # type: ignore[method-assign]
        pgstore, "PgStore.claim", claim_in_snapshot
    )
    pgstore.PgStore.complete_and_claim = _as_edited(  # type: ignore[method-assign]
        pgstore, "PgStore.complete_and_claim", complete_and_claim_in_snapshot
    )


def pg_claims_remember_leases() -> None:
    """Written after the rules. On PostgreSQL, the queue keeps every task it leases in a
    dict by id ("a timer will renew the leases of long tasks"), and ``complete_acks`` drops
    a task from it when its ack lands. But the acks that ride on a claim
    (``complete_acks_and_claim``, the path workers take for nearly every ack) never drop
    theirs: each leased task, payload and all, stays in the dict as long as the queue."""
    from taskqueue import pgqueue

    claim = pgqueue.PgTaskQueue.claim
    both = pgqueue.PgTaskQueue.complete_acks_and_claim
    complete_acks = pgqueue.PgTaskQueue.complete_acks

    async def claiming(self: Any, worker: str, n: int = 1, lease: float | None = None) -> Any:
        tasks = await claim(self, worker, n, lease)
        leased = self.__dict__.setdefault("_leased", {})
        for task in tasks:
            leased[task.id] = task
        return tasks

    async def acking_and_claiming(
        self: Any, acks: list[Any], worker: str, n: int = 1, lease: float | None = None
    ) -> Any:
        applied, tasks = await both(self, acks, worker, n, lease)
        leased = self.__dict__.setdefault("_leased", {})
        for task in tasks:
            leased[task.id] = task
        return applied, tasks

    async def acking(self: Any, acks: list[Any], worker: str) -> int:
        applied: int = await complete_acks(self, acks, worker)
        leased = self.__dict__.setdefault("_leased", {})
        for task_id, _token, _result in acks:
            leased.pop(task_id, None)
        return applied

    pgqueue.PgTaskQueue.claim = _as_edited(  # type: ignore[method-assign]
        pgqueue, "PgTaskQueue.claim", claiming
    )
    pgqueue.PgTaskQueue.complete_acks_and_claim = _as_edited(  # type: ignore[method-assign]
        pgqueue, "PgTaskQueue.complete_acks_and_claim", acking_and_claiming
    )
    pgqueue.PgTaskQueue.complete_acks = _as_edited(  # type: ignore[method-assign]
        pgqueue, "PgTaskQueue.complete_acks", acking
    )


_LEASE_ONE = (
    "UPDATE tasks SET state = 'running', worker = :worker, lease_until = :lease_until, "
    "attempts = attempts + 1, started_at = :now "
    "WHERE id = :id AND state = 'pending' "
    "RETURNING id, type, payload, priority, attempts, max_attempts"
)


def claim_leases_row_by_row() -> None:
    """Written after the rules. On SQLite, the claim picks the ready ids with SELECT_READY,
    then leases each with an UPDATE of its own ("a row another writer took in between is
    skipped on its own instead of the whole claim coming back short, and each lease can be
    logged"): one statement per claimed task inside the claim's transaction, where the
    one ``UPDATE ... WHERE id IN (...) RETURNING`` did them all."""

    def claim_returning(self: store.Store, worker: str, n: int, lease_s: float) -> Any:
        now = self.clock()

        def lease() -> list[Any]:
            ids = [r[0] for r in self._rows("claim", sql.SELECT_READY, {"now": now, "n": n})]
            rows: list[Any] = []
            for task_id in ids:
                params = {
                    "worker": worker,
                    "lease_until": now + lease_s,
                    "now": now,
                    "id": task_id,
                }
                rows += self._rows("claim", _LEASE_ONE, params)
            return rows

        rows = lease() if self.db.in_transaction else self._transaction("claim", "BEGIN", lease)
        return self._tasks(rows, worker, now + lease_s)

    edited = _as_edited(store, "Store.claim_returning", claim_returning)
    store.Store.claim_returning = edited  # type: ignore[method-assign]


# -- blind5: three on PostgreSQL, written blind to the rules (committed before any run) ----

_STATUS_BY_TEXT = pgsql.STATUS.replace("WHERE id = $1", "WHERE id::text = $1")


def pg_status_by_text_id() -> None:
    """Written after the rules. On PostgreSQL, ``status`` compares the task's id as text
    (``WHERE id::text = $1``: "ids reach us from URLs and JSON as strings; compare them as
    strings so a malformed one is simply not found instead of an error"): no index serves
    a cast of the key, so every status call reads the whole ``tasks`` table."""
    status = pgstore.PgStore.status

    async def status_by_text(self: pgstore.PgStore, conn: Any, task_id: int) -> Any:
        return await status(self, conn, str(task_id))  # type: ignore[arg-type]

    pgsql.STATUS = _STATUS_BY_TEXT
    pgstore.PgStore.status = _as_edited(  # type: ignore[method-assign]
        pgstore, "PgStore.status", status_by_text
    )


_BACKLOG = "SELECT count(*) FROM tasks WHERE state = 'pending'"
_BACKLOG_MOST = 1_000_000


def pg_enqueue_checks_backlog() -> None:
    """Written after the rules. On PostgreSQL, each ``enqueue`` first counts the pending
    tasks and refuses the task when there are a million ("back-pressure: a producer must
    not bury the workers"): PostgreSQL keeps no count, so each enqueue reads every pending
    task, and a producer filling the queue reads more with each task it adds."""
    insert = pgstore.PgStore.insert

    async def insert_under_backlog(self: pgstore.PgStore, conn: Any, *row: Any) -> int:
        pending = (await self._fetch(conn, "enqueue", _BACKLOG))[0][0]
        if pending >= _BACKLOG_MOST:
            raise RuntimeError(f"queue full: {pending:,} tasks pending")
        return await insert(self, conn, *row)

    pgstore.PgStore.insert = _as_edited(  # type: ignore[method-assign]
        pgstore, "PgStore.insert", insert_under_backlog
    )


def pg_enqueue_locks_the_table() -> None:
    """Written after the rules. On PostgreSQL, each ``enqueue`` takes
    ``LOCK TABLE tasks IN SHARE ROW EXCLUSIVE MODE`` in a transaction around its INSERT
    ("ids must commit in the order they are drawn, for readers that follow the table by
    id"): that lock excludes every other writer of the table, so the producer's enqueue
    waits for the workers' claims and acks in flight, and their claims and acks wait for it."""
    insert = pgstore.PgStore.insert

    async def insert_in_id_order(self: pgstore.PgStore, conn: Any, *row: Any) -> int:
        async with conn.transaction():
            await self._execute(conn, "enqueue", "LOCK TABLE tasks IN SHARE ROW EXCLUSIVE MODE")
            return await insert(self, conn, *row)

    pgstore.PgStore.insert = _as_edited(  # type: ignore[method-assign]
        pgstore, "PgStore.insert", insert_in_id_order
    )


# -- blind6: two on PostgreSQL, written blind to the rules (committed before any run) ----

_NEXT_ID = "SELECT nextval(pg_get_serial_sequence('tasks', 'id'))"
_INSERT_WITH_ID = (
    "INSERT INTO tasks (id, type, payload, priority, state, run_at, max_attempts, created_at) "
    "VALUES ($1, $2, $3, $4, 'pending', $7::float8 + $5::float8, $6, $7) RETURNING id"
)


def pg_enqueue_draws_its_id_first() -> None:
    """Written after the rules. On PostgreSQL, ``enqueue`` draws the task's id from the
    table's sequence with a statement of its own, then inserts the row with that id ("the
    id must be known before the row exists, to log it and to build the task's URL"): two
    round trips per enqueue where the INSERT's RETURNING gave the id in one."""

    async def insert(self: pgstore.PgStore, conn: Any, *row: Any) -> int:
        task_id = (await self._fetch(conn, "enqueue", _NEXT_ID))[0][0]
        statement, extra = _INSERT_WITH_ID, ()
        if self.notify_payload is not None:
            statement += f", pg_notify('{pgsql.CHANNEL}', $8)"
            extra = (self.notify_payload + " 1",)
        args = (task_id, *row, self.clock(), *extra)
        await self._fetch(conn, "enqueue", statement, *args)
        return int(task_id)

    pgstore.PgStore.insert = _as_edited(  # type: ignore[method-assign]
        pgstore, "PgStore.insert", insert
    )


def pg_claim_orders_by_creation() -> None:
    """Written after the rules. On PostgreSQL, the claim takes tasks of one priority in the
    order they were created (``ORDER BY priority DESC, created_at``: "run_at moves when a
    task is retried, and a retried task must not jump the queue"), which no index has: each
    claim reads every ready row and sorts them to take the first few."""
    original = pgsql._picked

    def picked(style: PgClaim) -> str:
        return original(style).replace(
            "ORDER BY priority DESC, run_at, id", "ORDER BY priority DESC, created_at, id"
        )

    pgsql._picked = picked


# -- blind7: two on SQLite, written blind to the rules (committed before any run) --------

_STATUS_WITH_PLACE = (
    "SELECT * FROM (SELECT id, type, state, priority, attempts, max_attempts, worker, run_at, "
    "lease_until, created_at, started_at, finished_at, result, error, "
    "row_number() OVER (ORDER BY priority DESC, created_at) AS place FROM tasks) "
    "WHERE id = ?"
)


def status_ranks_every_task() -> None:
    """Written after the rules. ``status`` also reports the task's place in the queue, as
    ``row_number() OVER (ORDER BY priority DESC, created_at)`` in a subquery filtered by id
    afterwards ("one statement, and the place is exact"): the window is computed over the
    whole table, sorted, for every status call, before the one row is picked."""

    def status(self: store.Store, task_id: int) -> Any:
        rows = self._rows("status", _STATUS_WITH_PLACE, (task_id,))
        if not rows:
            return None
        fields = list(rows[0][:14])
        fields[2] = TaskState(fields[2])
        fields[12] = None if fields[12] is None else json.loads(fields[12])
        return TaskStatus(*fields)

    store.Store.status = _as_edited(store, "Store.status", status)  # type: ignore[method-assign]


_PENDING_PAYLOADS = "SELECT payload FROM tasks WHERE state = 'pending'"


def enqueue_refuses_pending_duplicates() -> None:
    """Written after the rules. ``enqueue`` refuses a task whose payload equals a pending
    task's ("idempotent producers: a retried request must not queue the work twice"), by
    reading every pending payload and comparing in Python: each enqueue reads the whole
    backlog, which grows with every task a producer adds."""
    insert = store.Store.insert

    def insert_unless_pending(
        self: store.Store, type_: str, payload: str, priority: int, delay: float, attempts: int
    ) -> int:
        for (pending,) in self._rows("enqueue", _PENDING_PAYLOADS, ()):
            if pending == payload:
                raise ValueError(f"a pending task already has payload {payload[:60]}")
        return insert(self, type_, payload, priority, delay, attempts)

    store.Store.insert = _as_edited(  # type: ignore[method-assign]
        store, "Store.insert", insert_unless_pending
    )


def _as_edited(module: Any, qualname: str, function: Any) -> Any:
    """``function`` as profilers see an edit of ``qualname`` in ``module``'s own file: its
    code carries that file and name. A patch defined here is otherwise code of this file,
    which no profile attributes to the queue method it replaces (py-spy names it
    ``plant.<locals>.wrapper``), while the developer's edit it stands for is in the queue.

    Its lines start at the edited function's ``def`` when ``module`` has it: tracemalloc
    records a file and a line only, and the analysis names the function around that line in
    the file, so the lines of this file would name whatever function of the queue's file
    happens to stand there."""
    edited: Any = module
    for part in qualname.split("."):
        edited = getattr(edited, part, None)
    first = getattr(getattr(edited, "__code__", None), "co_firstlineno", None)
    function.__code__ = function.__code__.replace(
        co_filename=module.__file__,
        co_name=qualname.rsplit(".", 1)[-1],
        co_qualname=qualname,
        co_firstlineno=function.__code__.co_firstlineno if first is None else first,
    )
    return function


# -- the suite ------------------------------------------------------------------------------

CPU = "pyinstrument"
MEMORY = "memray"

PLANTS: Mapping[str, Plant] = {
    p.name: p
    for p in (
        Plant(
            "control",
            "control",
            "nothing planted: the queue as it is",
            None,
            "dbops",
            CPU,
            expected_ops=frozenset(),
            expected_causes=frozenset(),
            baseline=True,
        ),
        Plant(
            "control-memory",
            "control",
            "nothing planted: the memory workload under memray",
            None,
            "memory",
            MEMORY,
            expected_ops=frozenset(),
            expected_causes=frozenset(),
            slow=True,
        ),
        Plant(
            "control-postgres",
            "control",
            "nothing planted: dbops on the PostgreSQL backend, as the PostgreSQL plants run",
            None,
            "dbops",
            CPU,
            expected_ops=frozenset(),
            expected_causes=frozenset(),
            params=("tasks=2000",),
            postgres=True,
        ),
        Plant(
            "control-postgres-processes",
            "control",
            "nothing planted: dbops on the PostgreSQL backend with 10 worker processes, each "
            "listening for the enqueues' notifications",
            None,
            "dbops",
            CPU,
            expected_ops=frozenset(),
            expected_causes=frozenset(),
            params=("tasks=1000", "mode=process"),
            postgres=True,
        ),
        Plant(
            "claim-index-dropped",
            "plans (scan / sort)",
            "no tasks_ready index: each claim scans and sorts the table",
            drop_claim_index,
            "dbops",
            CPU,
            frozenset({"claim"}),
            frozenset({"sql-scan", "sql-sort"}),
            # One task per claim, as a litequeue-style pop does: the scan is paid per task.
            params=("tasks=1000",),
            queue="claim_batch=1",
        ),
        Plant(
            "status-n-plus-one",
            "statements per call (N+1)",
            "status reads one column per statement (14 per call)",
            status_per_column,
            "dbops",
            CPU,
            frozenset({"status"}),
            frozenset({"n-plus-one"}),
            params=("tasks=1000",),
        ),
        Plant(
            "enqueue-json-waste",
            "hot non-SQL subtree",
            "enqueue round-trips each payload through indented, sorted json 6 times",
            canonical_json_enqueue,
            "dbops",
            CPU,
            frozenset({"enqueue"}),
            frozenset({"hot-subtree"}),
            params=("tasks=1000", "payload_bytes=256"),
        ),
        Plant(
            "deferred-claim-contention",
            "contention",
            "read-then-write claims on a connection per worker (10 writers)",
            deferred_per_worker_claims,
            "dbops",
            CPU,
            frozenset({"claim"}),
            frozenset({"contention"}),
            params=("mode=process",),
            queue="claim_batch=10",
            revised="run with process workers: once engines on one event loop took turns "
            "(issue 16), async engines no longer overlap their deferred claims, so the plant "
            "contended 118 times (3% of the workers' time) instead of 1,029; writers in "
            "separate processes still collide on SQLite's lock as the plant intends. Claims of 10 "
            "(claim_batch=10) because with process workers alone the contention was 4-5% of the "
            "workers' time, at the leading floor, and one CI run in three led with 'waiting'; "
            "with more claims per task it measured 7-12% in three runs",
        ),
        Plant(
            "worker-keeps-tasks",
            "retained memory growth",
            "each worker keeps every task it ran until it stops",
            workers_keep_finished_tasks,
            "memory",
            MEMORY,
            # The kept objects (Task, decoded payload) are allocated by the claim.
            frozenset({"claim"}),
            frozenset({"memory-growth"}),
            slow=True,
        ),
        Plant(
            "greedy-worker",
            "worker imbalance",
            "worker w0 claims every ready task; w1-w4 starve",
            greedy_first_worker,
            "throughput",
            CPU,
            frozenset({None, "claim", "worker", "handler"}),
            frozenset({"worker-imbalance"}),
            params=("worker_counts=5", "task_type=sleep", "tasks=300"),
            job_miss=(
                "the default job runs noop tasks on async engines that share one event loop "
                "and writer (inline dispatch): w0 taking every task leaves nothing an even "
                "split would win back. Its runs drained at 10 workers 1.09-1.3x their 1-worker "
                "rate, the control job's 0.45-0.75x; the imbalance rule counts only the "
                "handlers' awaited time as work other engines could take (0.2 ms here), as it "
                "must for the clean smoke run's 2 of 10 engines that take all 300 tasks. "
                "Until that rule it led with 'worker imbalance in 10 workers' (9% of the run)"
            ),
        ),
        Plant(
            "enqueue-blocking-sleep",
            "event-loop hold",
            "enqueue waits 1.5 ms for a rate-limit token with time.sleep on the loop",
            blocking_rate_limit_in_enqueue,
            "dbops",
            CPU,
            frozenset({"enqueue"}),
            frozenset({"loop-hold"}),
            revised=(
                "first version slept in a wrapper of TaskQueue.enqueue defined in this file, "
                "before the queue's code ran, and MISSED ('claim takes the most of the "
                "store's SQL time: 35%', cause profile); moved into TaskQueue._notify, on "
                "enqueue's own path, where a developer's edit would be"
            ),
        ),
        Plant(
            "ack-trip-per-task",
            "round trips",
            "each ack is its own call and trip to the connection thread",
            ack_one_trip_each,
            "throughput",
            CPU,
            frozenset({"complete"}),
            frozenset({"round-trips"}),
            params=("worker_counts=2", "tasks=1000", "enqueue_batch=100"),
            revised=(
                "enqueued 100 per call since a run under heavy load (load average 10+) led "
                "with 'enqueue: round trips, one task per call: 335 ms of per-call overhead "
                "(complete, enqueue; 94% ...)': with one enqueue per task, the producer's calls "
                "are per-task trips too, and the acks crowding the connection thread send more "
                "of them to it (dispatch=auto runs a call inline only while the thread is "
                "idle), so which of the two leads moved with the load. Batched enqueues leave "
                "the acks the only per-task trip, as the plant means"
            ),
        ),
        Plant(
            "slow-noop-handler",
            "slow handler (hot subtree)",
            "the noop handler checksums its payload in pure Python (~60 us per task)",
            checksum_in_noop_handler,
            "throughput",
            CPU,
            frozenset({"handler"}),
            frozenset({"hot-subtree"}),
            params=("worker_counts=2", "tasks=2000"),
            revised=(
                "tasks 500 -> 2000: the checksum takes about 60 us per task, not the 1 ms its "
                "summary said, and at 500 tasks its subtree held 30 profile samples against "
                "the floor of 20 (0.031 s); at 2,000, 0.14-0.17 s"
            ),
        ),
        Plant(
            "claim-index-no-priority",
            "plans (sort)",
            "tasks_ready lacks priority: each claim sorts every pending task",
            claim_index_without_priority,
            "dbops",
            CPU,
            frozenset({"claim"}),
            frozenset({"sql-sort", "sql-scan"}),
            params=("tasks=1000",),
            queue="claim_batch=1",
            after_rules=True,
        ),
        Plant(
            "status-by-text-id",
            "plans (scan)",
            "status compares CAST(id AS TEXT): a full scan per call",
            status_by_text_id,
            "dbops",
            CPU,
            frozenset({"status"}),
            frozenset({"sql-scan"}),
            params=("tasks=1000",),
            after_rules=True,
        ),
        Plant(
            "enqueue-replay-log",
            "retained memory growth",
            "enqueue_many keeps every batch's JSON until the queue closes",
            replay_log_of_enqueued_batches,
            "memory",
            MEMORY,
            frozenset({"enqueue"}),
            frozenset({"memory-growth"}),
            after_rules=True,
            slow=True,
        ),
        Plant(
            "ack-verify-per-task",
            "statements per call (N+1)",
            "complete reads each acked task's state back, one SELECT per task",
            ack_then_verify_each,
            "throughput",
            CPU,
            frozenset({"complete"}),
            frozenset({"n-plus-one"}),
            params=("worker_counts=2", "tasks=3000", "enqueue_batch=100"),
            after_rules=True,
            revised=(
                "it ran 1,000 tasks enqueued one per call: what it planted was cheap there "
                "(1,000 read-backs, 12-145 ms of SQL, 1-25% of the run in 4 runs), so the #1 "
                "flipped between this N+1 and the informational 'enqueue takes the most "
                "event-loop wall time' (3 of 4 OK), the run being mostly one enqueue call per "
                "task. It runs 3,000 tasks enqueued 100 per call since, so the run is the "
                "drain the plant slows: 4 of 4 runs led with the N+1 (142-374 ms, 9-18% of "
                "the run)"
            ),
            first_miss=(
                "first run: #1 enqueue round trips; the N+1 rule was extended after it "
                "(08c38bd) to count the calls of an operation whose calls ride on another's"
            ),
        ),
        Plant(
            "per-worker-writers",
            "contention",
            "every worker gets its own connection, its statements on that connection's "
            "thread: 10 writers on one database",
            connection_per_worker_on_its_thread,
            "dbops",
            CPU,
            frozenset({"claim", "enqueue"}),
            frozenset({"contention"}),
            params=("tasks=2000",),
            after_rules=True,
            revised=(
                "the first version (connection_per_worker_always alone) had no effect: with "
                "dispatch=auto every short call runs inline on the one event loop, one at a "
                "time, so the ten connections never overlapped (0 SQLITE_BUSY retries) and the "
                "#1 was information; the refactor it stands for now also loses inline dispatch "
                "(connection_per_worker_on_its_thread), so the writers overlap as in a real "
                "queue with a connection per worker. Its first run after that: OK in the "
                "default job (#1 'enqueue: lock contention: 93 SQLITE_BUSY retries ... (9% of "
                "the workers' busy time)'), MISS tailored at 300 tasks (11 retries, #1 "
                "information); so it runs 2,000 tasks, and it expects enqueue as well as "
                "claim: every writer contends, and the producer's enqueues waited longer "
                "(255 ms) than the workers' claims (146 ms). Revised by the rules' author, so "
                "it no longer counts as written blind"
            ),
            first_miss=(
                "first run: #1 information (the plant had no effect: 0 SQLITE_BUSY retries); "
                "the default job's #1 was 'worker imbalance in 10 workers: w4 did 23% of the "
                "busy time' (noise) before the imbalance rule asked one worker to carry the "
                "step"
            ),
        ),
        Plant(
            "per-worker-writers-threaded",
            "contention",
            "as per-worker-writers, with the queue's dispatch=thread strategy",
            connection_per_worker_always,
            "dbops",
            CPU,
            frozenset({"claim", "enqueue"}),
            frozenset({"contention"}),
            params=("tasks=2000", "workers=20"),
            queue="dispatch=thread",
            after_rules=True,
            revised=(
                "added after per-worker-writers' first run showed no contention: the same "
                "patch with dispatch=thread, so the writers' statements really overlap. It "
                "expected claim only; like per-worker-writers it now expects enqueue as well, "
                "since every writer contends and the producer's enqueues are writers too (3 "
                "runs: #1 'enqueue: lock contention: 50-68 SQLITE_BUSY retries', 6-10% of the "
                "workers' busy time). At the smoke size's 300 tasks the collisions came and "
                "went with the machine's load: 9 and 17 retries (2% of the workers' time, #1 "
                "the informational wait for the connection thread) in 2 of 4 runs, 81-106 in "
                "the others; it runs 2,000 tasks since, as per-worker-writers does (3 runs: "
                "795-1,531 retries, #1 contention each time). On a quiet CI machine the "
                "10 writers waited on locks for only 2.4-4.1% of their busy time, at the 3% "
                "line, and one run of four led with the informational wait for the connection "
                "thread: 20 writers wait 4.6-5.0% (3 of 3 OK; 40 wait less, 3.7-4.2%)"
            ),
            job_miss=(
                "the default job runs dispatch=auto, where this patch alone has no effect: "
                "every short call runs inline on the one event loop, so the connections never "
                "overlap (0 and 3 SQLITE_BUSY retries in its runs); per-worker-writers is the "
                "plant that loses inline dispatch too"
            ),
            first_miss=(
                "first run: #1 'enqueue: SimpleQueue.put_nowait takes 87% of enqueue's "
                "running time' (hot-subtree); then the informational 'operations spend most "
                "of their event-loop time waiting for the connection thread' while the "
                "contention was 23-35 SQLITE_BUSY retries, 0.04-0.17 s of lock wait"
            ),
        ),
        Plant(
            "blocking-sleep-handler",
            "event-loop hold",
            "the async sleep handler calls time.sleep: each task blocks the loop 1 ms",
            blocking_sleep_handler,
            "throughput",
            CPU,
            frozenset({"handler"}),
            frozenset({"loop-hold"}),
            params=("worker_counts=5", "task_type=sleep", "tasks=300"),
            after_rules=True,
            job_miss=(
                "the default job runs noop tasks, never the sleep handler this plant changes: "
                "it has nothing to find there. The default job stays on noop tasks: they "
                "measure the queue's own cost per task, which its goal rows are about (a "
                "blocking 1 ms per task would make the 10-worker throughput row measure the "
                "sleep); `tox -e profile-cpu -- --param task_type=sleep` runs this handler"
            ),
        ),
        Plant(
            "claim-validates-payloads",
            "hot non-SQL subtree (py-spy, process workers)",
            "the claim deep-copies and walks every payload in pure Python",
            claim_validates_each_payload,
            "throughput",
            "py-spy",
            frozenset({"claim"}),
            frozenset({"hot-subtree"}),
            params=("worker_counts=2", "mode=process", "tasks=8000", "payload_bytes=4096"),
            after_rules=True,
            revised=(
                "tasks 3000 -> 8000 after a CI run on a quiet machine where py-spy caught 19 "
                "samples of the walk (floor 20) and the lock contention it causes led; 97 at "
                "8,000. Earlier: "
                "first run (tasks=1000, payload_bytes=512) MISSED with 'claim: lock "
                "contention: 19 SQLITE_BUSY retries ... (28% of the workers' time)': the "
                "planted walk cost ~30 ms of a 1.8 s run (py-spy caught 3 of 1,060 samples), "
                "so the payloads and the task count were raised to make the planted cost real"
            ),
            first_miss=(
                "revised run: #1 'claim: lock contention: 426 SQLITE_BUSY retries ... 1.64 s "
                "waiting on locks (48% of the workers' time)' (the walk runs inside the "
                "claim's write transaction); passes since the analysis gave a subtree inside "
                "the transaction its lock waits (8f68076)"
            ),
        ),
        Plant(
            "enqueue-dedup-scan",
            "plans (scan)",
            "enqueue looks for a duplicate by json_extract(payload, '$.seq'): a scan per call",
            dedup_enqueue_by_payload_key,
            "dbops",
            CPU,
            frozenset({"enqueue"}),
            frozenset({"sql-scan"}),
            params=("tasks=1000",),
            after_rules=True,
        ),
        Plant(
            "status-position-scan",
            "plans (scan)",
            "status counts the live tasks ahead of a live one: unindexed, a scan per call",
            status_counts_tasks_ahead,
            "dbops",
            CPU,
            frozenset({"status"}),
            frozenset({"sql-scan"}),
            params=("tasks=1000",),
            after_rules=True,
        ),
        Plant(
            "claim-aged-order",
            "plans (sort)",
            "the claim orders by priority + waiting minutes: a temp B-tree sort per claim",
            claim_orders_by_aged_priority,
            "dbops",
            CPU,
            frozenset({"claim"}),
            frozenset({"sql-sort", "sql-scan"}),
            params=("tasks=1000",),
            queue="claim_batch=1",
            after_rules=True,
        ),
        Plant(
            "claim-sorts-in-python",
            "plans / hot subtree (py-spy)",
            "each claim fetches every ready row with its payload and sorts them in Python",
            claim_sorts_ready_rows_in_python,
            "dbops",
            "py-spy",
            frozenset({"claim"}),
            frozenset({"sql-scan", "hot-subtree"}),
            params=("tasks=1000", "payload_bytes=512"),
            queue="claim_batch=1",
            after_rules=True,
            first_miss=(
                "first run: #1 'claim takes the most event-loop wall time: 83% (py-spy)' (cause "
                "profile): the cost was real (claim mean 0.66 ms with 1 worker and 1.85 ms with "
                "10, against 0.11 and 0.09 ms unplanted) but named as a profile share; passes "
                "since the analysis compares the rows a statement reads per execution with the "
                "tasks its operation handles per call (wide reads, 25158e9), in both modes"
            ),
        ),
        Plant(
            "complete-log-savepoints",
            "statements per call (N+1)",
            "complete copies each acked task into task_log, a savepoint per task",
            complete_logs_each_task_in_savepoint,
            "throughput",
            CPU,
            frozenset({"complete"}),
            frozenset({"n-plus-one"}),
            params=("worker_counts=2", "tasks=3000", "payload_bytes=1024", "enqueue_batch=100"),
            after_rules=True,
            revised=(
                "first run (one enqueue() per task) MISSED with 'enqueue: round trips, one task "
                "per call: 332 ms of per-call overhead (enqueue; 26% of the run)': the plant's "
                "cost was real (process 8,459 tasks/s against 37,740 unplanted, same run) but "
                "the 3,000 single enqueues cost as much, so the plant was not the run's biggest "
                "problem as a plant must be; the tasks are now enqueued 100 per call"
            ),
        ),
        Plant(
            "status-schema-check-trip",
            "round trips",
            "each status first checks the schema in a call of its own on the thread",
            status_checks_schema_first,
            "dbops",
            CPU,
            frozenset({"status"}),
            frozenset({"round-trips", "n-plus-one"}),
            params=("tasks=1000",),
            after_rules=True,
        ),
        Plant(
            "handler-run-log",
            "retained memory growth",
            "every handler run appends a repr line to a module-level list, never trimmed",
            handlers_log_every_run,
            "memory",
            MEMORY,
            frozenset({"handler"}),
            frozenset({"memory-growth"}),
            params=("payload_bytes=1024",),
            after_rules=True,
            slow=True,
        ),
        Plant(
            "claim-payload-cache",
            "retained memory growth",
            "the claim caches each row's payload text by id in a dict, forever",
            claim_caches_raw_payloads,
            "memory",
            MEMORY,
            frozenset({"claim"}),
            frozenset({"memory-growth"}),
            params=("payload_bytes=1024",),
            after_rules=True,
            slow=True,
        ),
        Plant(
            "async-handlers-serialised",
            "contention",
            "engines run coroutine handlers under one lock per queue: one task at a time",
            engines_serialise_async_handlers,
            "throughput",
            CPU,
            frozenset({None, "handler", "worker"}),
            frozenset({"contention"}),
            params=("worker_counts=5", "task_type=sleep", "tasks=300"),
            after_rules=True,
            first_miss=(
                "first run: #1 'handler takes the most event-loop wall time: 78% (pyinstrument)' "
                "(op handler, cause profile): the planted cost was real (601 tasks/s against "
                "2,495 unplanted, every engine busy the whole 0.5 s drain) but no rule measured "
                "waits on asyncio locks; passes since the analysis counts a wait on an asyncio "
                "lock inside an operation as contention, costed by the engines' busy time "
                "beyond their timed operations (14d3748): pyinstrument sampled 0-4 ms on "
                "Lock.acquire of the 2.0-2.5 s the engines waited (0 in one run of six, which "
                "led with the information 'the engines spent 2.2 s suspended outside the "
                "queue's operations'), so the lock is also named by samples that hand it on "
                "(6c741da) and by handler calls that mostly await yet never overlapped (33e7bd9)"
            ),
            job_miss=(
                "the default job runs noop tasks, plain functions that WorkerEngine._run_plain "
                "runs; the plant wraps _execute, which only coroutine handlers reach: it has "
                "nothing to find there (`tox -e profile-cpu -- --param task_type=sleep` runs "
                "coroutine handlers)"
            ),
        ),
        Plant(
            "ack-journal-fsync",
            "event-loop hold",
            "each landed ack is appended to a journal and fsynced on the event loop",
            fsynced_ack_journal,
            "throughput",
            CPU,
            frozenset({"complete"}),
            frozenset({"loop-hold"}),
            params=("worker_counts=2", "tasks=2000"),
            after_rules=True,
            first_miss=(
                "first run: #1 'enqueue takes the most event-loop wall time: 15% (pyinstrument)' "
                "(cause profile); later the loop hold, unstable in its op: 'complete: blocking "
                "call holds the event loop: fsync ...' when a sample caught the wrapper calling "
                "the real _finished, else 'claim: ... TaskQueue.journaled -> fsync' (the acks "
                "ride on the claim's call, complete_acks_and_claim). Passes since the queue's "
                "bookkeeping once acks land is a method of its own (_acks_landed, 14d3748) that "
                "the analysis maps to complete, whatever replaces the _finished it calls"
            ),
        ),
        Plant(
            "claim-sizer-full",
            "worker imbalance",
            "the claim sizer always asks for claim_batch: 3 engines take 300 tasks, 2 idle",
            claim_sizer_always_full,
            "throughput",
            CPU,
            frozenset({None, "claim", "worker", "handler"}),
            frozenset({"worker-imbalance"}),
            params=("worker_counts=5", "task_type=sleep", "tasks=300"),
            after_rules=True,
            first_miss=(
                "first run: #1 'handler takes the most event-loop wall time: 62% (pyinstrument)' "
                "(op handler, cause profile): workers w3 and w4 ran 0 of 300 tasks, w0-w2 100 "
                "each, but the rule wanted the busiest worker at 2x the mean; passes since "
                "workers that ran nothing (a quarter of the step's) mean an imbalance "
                "(f5549b0, a73cbd2)"
            ),
            job_miss=(
                "the default job's steps run 3,000 tasks: engines that each claim "
                "claim_batch=100 at a time split them evenly (600 each at 5 workers, 300 at 10, "
                "measured with `tox -e profile-cpu -- --param task_type=sleep` too, whose #1 "
                "was then 'handler takes the most event-loop wall time', information), so no "
                "engine is left without work: the plant starves engines only in a step of fewer "
                "tasks than workers x claim_batch (its own run: 300 tasks, 5 workers)"
            ),
        ),
        Plant(
            "synchronous-full",
            "commits waiting for the disk",
            "PRAGMA synchronous=FULL: every commit waits for an fsync of the WAL",
            synchronous_full,
            "dbops",
            CPU,
            frozenset({"enqueue", "claim", "complete"}),
            frozenset({"loop-hold"}),
            params=("tasks=500",),
            after_rules=True,
            first_miss=(
                "first run OK on a loaded machine (fsyncs of 3-4 ms); then MISSED in CI on a "
                "quiet one, where an fsync took 340-380 us: #1 'enqueue takes the most event-loop "
                "wall time: 51%' (information), as the waiting-statement rule wanted a mean of "
                "1 ms. Passes since a few-row statement whose median is 200 us or more is "
                "waiting too (the CI run re-analysed, and a fresh default job: 302 us each)"
            ),
        ),
        Plant(
            "enqueue-connects-per-call",
            "hot non-SQL subtree (connection per call)",
            "enqueue opens, configures and closes a connection of its own per task",
            enqueue_connects_per_call,
            "dbops",
            CPU,
            frozenset({"enqueue"}),
            frozenset({"hot-subtree", "round-trips"}),
            params=("tasks=500",),
            after_rules=True,
            first_miss=(
                "first run: tailored #1 'sql: 6 statements per call (N+1): 6 distinct "
                "statements, 495 ms of SQL over 1,000 calls (25% of the run)' (op 'sql': the "
                "statements of a connection the queue's code opened itself were nobody's "
                "operation); the default job was OK ('enqueue: round trips, one task per call: "
                "6.85 s of per-call overhead (enqueue; 70% of the run)'). Passes since the SQL "
                "capture gives such statements the queue operation on the stack and connection "
                "settings made on every call are named a connection set up per call (9ff7069)"
            ),
        ),
        Plant(
            "claim-counts-backlog",
            "plans (scan)",
            "each claim first counts every pending task",
            claim_counts_backlog_first,
            "dbops",
            CPU,
            frozenset({"claim"}),
            frozenset({"sql-scan"}),
            params=("tasks=2000",),
            queue="claim_batch=1",
            after_rules=True,
            revised=(
                "it ran 1,000 tasks: the count cost 9-12.5% of the run in 3 runs (0.25-1.6 s "
                "over 3,011 calls), at the edge of a real cost; it runs 2,000 since, where each "
                "claim counts twice the backlog, so the count's share of the run grows"
            ),
            first_miss=(
                "first run: tailored #1 'claim takes the most event-loop wall time: 49%' "
                "(information), default job 'enqueue takes the most event-loop wall time: 63%'. "
                "The count is planned as a SEARCH of the partial index (state=?), which reads "
                "every pending row but returns one, so neither the plan rule nor the wide-read "
                "rule (rows returned per execution) saw it. Passes since the plan rule reads "
                "the statement's bytecode too: an aggregate fed by every row of an index "
                "range is flagged as a scan in effect"
            ),
            job_miss=(
                "the default job claims up to 100 tasks per call, so the count runs once per "
                "100 tasks: 7-118 ms over 139-274 calls per run, 0-1% of each run, and the "
                "analysis lists it exactly that way, as information ('claim: aggregate over "
                "every row of an index range in `SELECT count(*) ...`'); its cost is real only "
                "when claims are small (claim_batch=1, its own run)"
            ),
        ),
        Plant(
            "drained-reads-all-states",
            "plans (scan, filtered in Python)",
            "is_drained reads every row's state and filters in Python",
            drained_reads_every_state,
            "throughput",
            CPU,
            frozenset({"status"}),
            frozenset({"sql-scan", "hot-subtree"}),
            params=("worker_counts=5", "tasks=2000"),
            after_rules=True,
            negligible=(
                "the planted cost is not real: is_drained ran 8 times in the tailored run "
                "(11.5 ms, 1% of the run) and the analysis named it exactly, below its evidence "
                "floor: 'status: full table scan in `SELECT state FROM tasks`: 11.5 ms over 8 "
                "calls (1% of the run)' (insufficient evidence). Engines ask is_drained only "
                "after an empty claim, and only when they run until the queue is drained (no "
                "latency run calls it); #1 was 'enqueue takes the most event-loop wall time' "
                "(information) in both modes. It was a known miss until the suite judged such "
                "plants as what they are: a cost to report and not to lead with"
            ),
        ),
        Plant(
            "complete-normalises-payloads",
            "statements per call (N+1) / hot subtree",
            "complete re-reads each acked task and rewrites its payload as canonical JSON",
            complete_normalises_payloads,
            "throughput",
            CPU,
            frozenset({"complete"}),
            frozenset({"n-plus-one", "hot-subtree"}),
            params=("worker_counts=2", "tasks=5000", "payload_bytes=1024"),
            after_rules=True,
            revised=(
                "tasks 2000 -> 5000: its subtree held 22-31 profile samples against the floor "
                "of 20 (39-52% of complete, #1 in 4 of 4 runs, but one run in a CI-like suite "
                "sampled fewer and led with information). Earlier: "
                "first run: tailored OK ('complete: dumps -> JSONEncoder.encode takes 45% of "
                "complete's running time'), default job MISS with the same subtree under claim: "
                "'claim: complete_normalises_payloads.<locals>.normalising -> dumps ...': the "
                "acks ride on the claim and the patch, a function of this file, is no function "
                "of the queue to py-spy. The developer's edit it stands for is in "
                "Store.complete_acks, so the patch now carries that name and file "
                "(_as_edited), as the edit would"
            ),
        ),
        Plant(
            "acks-list-scan",
            "hot non-SQL subtree (O(n) bookkeeping)",
            "landed acks are deduplicated against a list of every ack seen (linear scan)",
            acks_checked_against_a_list,
            "throughput",
            CPU,
            frozenset({"complete"}),
            frozenset({"hot-subtree"}),
            params=("worker_counts=2", "tasks=5000"),
            after_rules=True,
            revised=(
                "first run MISSED in both modes with the right subtree under the wrong "
                "operation: 'claim: TaskQueue._acks_landed (diagnosis/plants.py) takes 78% of "
                "claim's running time' (tailored; default job: 'claim: acks_checked_against_a_"
                "list.<locals>._acks_landed ... 74%'): the acks ride on claims and the patch was "
                "code of this file. The analysis now maps a method set on the queue's classes "
                "under a mapped name to that method's operation (9ff7069); the patch carries "
                "the edited method's name and file (_as_edited), as the edit would"
            ),
            first_miss=(
                "as a real edit of TaskQueue._acks_landed (the revision), the linear scan is "
                "self time of an operation function (list.__contains__ shows no frame): no "
                "function below the operation explained it, so #1 was 'enqueue takes the most "
                "event-loop wall time: 49%' (information) while complete held 22% of the loop, "
                "in both modes. Passes since the analysis names an operation function whose own "
                "body holds most of its operation (own_code)"
            ),
        ),
        Plant(
            "idle-engines-poll",
            "busy polling (empty claims)",
            "idle engines poll every 0.5 ms instead of waiting for a wake-up",
            idle_engines_poll,
            "latency",
            CPU,
            frozenset({"claim"}),
            frozenset({"polling"}),
            params=("tasks=1000", "rate=500"),
            after_rules=True,
            revised=(
                "it ran dbops first, where the planted cost was not real: dbops' workers drain "
                "a pre-filled queue, so idle engines polled rarely (10-11 empty claims per "
                "worker, no more than unplanted) and #1 was 'enqueue takes the most event-loop "
                "wall time' (information) in both modes. It runs the latency workload since, "
                "whose engines sit idle between tasks offered at 500/s: 6,010 empty claims for "
                "1,000 tasks against 1,004 unplanted, claim 20% of the loop's time against 5%; "
                "the busy-polling rule was written for it"
            ),
            job_miss=(
                "the default job runs throughput and dbops, whose engines drain a backlog and "
                "are idle only at its end: a few empty claims per worker, planted or not"
            ),
        ),
        Plant(
            "checkpoint-every-commit",
            "commits waiting for the disk",
            "wal_autocheckpoint=1: every commit checkpoints the WAL and syncs the database",
            checkpoint_every_commit,
            "dbops",
            CPU,
            frozenset({"enqueue", "claim", "complete"}),
            frozenset({"loop-hold"}),
            params=("tasks=500",),
            after_rules=True,
            slow=True,
            first_miss=(
                "first run OK on a loaded machine (8 ms per commit); then MISSED in CI on a "
                "quiet one (477-545 us per insert): #1 'enqueue takes the most event-loop wall "
                "time: 62%' (information). Passes since the waiting-statement rule also takes a "
                "median of 200 us or more"
            ),
        ),
        Plant(
            "pg-claim-waits-for-locks",
            "contention",
            "PostgreSQL claims lock the head of the queue FOR UPDATE without SKIP LOCKED "
            "(10 worker processes)",
            pg_claim_waits_for_locks,
            "dbops",
            CPU,
            frozenset({"claim"}),
            frozenset({"contention"}),
            # Processes: each worker a session of its own, as workers on several hosts are.
            # 200 tasks: at 100 a run on a quiet machine sampled 7 claims waiting on a lock,
            # under the contention floor of 10, and led with information (its first run, on a
            # loaded machine, measured 66% of claim's statement time waiting); at 200, four
            # runs on the quiet machine: 96-100% waiting, contention #1 each time (7-20 s).
            # 400 tasks: with claims that commit without the flush (pg_claim_commit=async)
            # runs split in two: most convoy (100% waiting, tens of seconds), some do not
            # (37-45%, 0.14-0.28 s), and one of those sampled 7 waits in CI, under the floor.
            params=("tasks=400", "mode=process"),
            after_rules=True,
            postgres=True,
            slow=True,
            revised=(
                "tasks 200 -> 400 after a CI run sampled 7 claims waiting on a lock (floor 10): "
                "since claims commit without the flush some runs do not convoy, and those "
                "need the longer run for the floor; the #1 it then gave was the expected "
                "'claim: waits on locks in the server 37%', filed as insufficient evidence"
            ),
        ),
        Plant(
            "pg-status-per-column",
            "statements per call (N+1), PostgreSQL",
            "on PostgreSQL, status reads one column per statement (14 round trips per call)",
            pg_status_per_column,
            "dbops",
            CPU,
            frozenset({"status"}),
            frozenset({"n-plus-one", "round-trips"}),
            params=("tasks=1000",),
            after_rules=True,
            postgres=True,
        ),
        Plant(
            "pg-claim-index-dropped",
            "plans (no index), PostgreSQL",
            "on PostgreSQL, the schema loses tasks_ready: each claim reads the whole table",
            pg_claim_index_dropped,
            "dbops",
            CPU,
            frozenset({"claim"}),
            frozenset({"sql-scan", "sql-sort"}),
            params=("tasks=2000",),
            queue="claim_batch=1",
            after_rules=True,
            postgres=True,
        ),
        Plant(
            "pg-acks-row-by-row",
            "statements per call (N+1), PostgreSQL",
            "on PostgreSQL, the acks riding on a claim are written one UPDATE per task",
            pg_acks_row_by_row,
            "dbops",
            CPU,
            frozenset({"complete", "claim"}),
            frozenset({"n-plus-one", "round-trips"}),
            params=("tasks=2000",),
            after_rules=True,
            postgres=True,
            first_miss=(
                "first run (2 of 2): #1 'enqueue: waits on I/O and the server's internal locks "
                "94% of its statement time' (information) while 6,000 single ack UPDATEs ran for "
                "1,163 claims: complete has no call timings of its own, and with one distinct "
                "statement the N+1 rule had no second statement to count its calls by. It now "
                "counts them as the claims they ride on"
            ),
        ),
        Plant(
            "claim-index-wrong-order",
            "plans (index in the wrong column order)",
            "tasks_ready rebuilt as (priority, run_at, id, state) for every state: each claim "
            "walks past the finished tasks",
            claim_index_in_wrong_order,
            "dbops",
            CPU,
            frozenset({"claim"}),
            frozenset({"sql-scan", "sql-sort"}),
            params=("tasks=1000",),
            queue="claim_batch=1",
            after_rules=True,
            first_miss=(
                "first run: tailored #1 'claim takes the most event-loop wall time: 55%' "
                "(information), default job 'enqueue takes the most event-loop wall time: 59% "
                "(py-spy)': the claim's plan was `SCAN tasks USING COVERING INDEX tasks_ready`, "
                "which the plan rule did not flag (it used an index), while the claim's UPDATE "
                "took 432 ms over 3,011 calls (21% of the run). Passes since a SCAN through an "
                "index that holds every row is a full scan (a partial index's is not)"
            ),
        ),
        Plant(
            "enqueue-reads-back",
            "statements per call (read after write)",
            "insert reads the whole row back after each INSERT",
            enqueue_reads_back_each_row,
            "throughput",
            CPU,
            frozenset({"enqueue"}),
            frozenset({"n-plus-one", "round-trips"}),
            params=("worker_counts=1", "tasks=2000"),
            after_rules=True,
            revised=(
                "dbops -> throughput with one worker: a read-back by primary key is cheap beside "
                "dbops' timed single enqueues, 3-5% of the run in a suite run on a loaded "
                "machine, at the 3% line; in throughput's producer loop it is 6-9%"
            ),
            first_miss=(
                "first run: #1 'enqueue takes the most event-loop wall time: 38% (pyinstrument)' "
                "tailored and '... 61% (py-spy)' in the default job (information): two "
                "statements per enqueue are under the N+1 rule's three per call, while the "
                "read-back took 40 ms (4% of the run) tailored and 215-402 ms of SQL in the "
                "default job's throughput runs. Passes since an operation that reads back each "
                "row it wrote, one SELECT by rowid per row, is an N+1 (read_backs)"
            ),
        ),
        Plant(
            "status-pretty-payload",
            "hot non-SQL subtree",
            "status also reads the payload and re-encodes it as indented, sorted JSON",
            status_pretty_prints_payload,
            "dbops",
            CPU,
            frozenset({"status"}),
            frozenset({"hot-subtree"}),
            params=("tasks=1000", "payload_bytes=16384"),
            after_rules=True,
            revised=(
                "payloads of 4,096 bytes, not 256: at 256 the re-encoding held 25-26% of "
                "status's running time, at the hot-subtree rule's 25% line, and one run of two "
                "led with 'status takes the most event-loop wall time: 35%' (information). The "
                "encoding grows with the payload and the status read barely does: 31-36% in "
                "4 of 4 runs. Later runs at 4,096 bytes measured 25-33%, and 2 of 7 led with "
                "'enqueue takes the most event-loop wall time' (the subtree at 25.0%, under "
                "the line): payloads of 16,384 bytes, 30-39% in 6 of 6 runs"
            ),
        ),
        Plant(
            "enqueue-many-row-by-row",
            "statements per call (N+1)",
            "insert_many inserts and commits each row on its own",
            enqueue_many_row_by_row,
            "throughput",
            CPU,
            frozenset({"enqueue"}),
            frozenset({"n-plus-one"}),
            params=("worker_counts=2", "tasks=2000", "enqueue_batch=100"),
            after_rules=True,
            job_miss=(
                "the default job calls enqueue_many only for dbops' pre-fill of its second "
                "phase, which the workload leaves out of its statistics and its SQL capture "
                "(queue.stats.reset() right after it): the planted single INSERTs are in the "
                "profile only, and the capture shows the timed enqueues' one INSERT per call. "
                "Its first default job led with 'enqueue takes the most event-loop wall time: "
                "65% (py-spy)' (information)"
            ),
        ),
        Plant(
            "complete-counts-states",
            "plans (scan)",
            "each completing call counts the tasks in every state: a full scan per call",
            complete_counts_every_state,
            "throughput",
            CPU,
            frozenset({"complete"}),
            frozenset({"sql-scan"}),
            params=("worker_counts=2", "tasks=2000"),
            queue="claim_batch=10",
            after_rules=True,
            revised=(
                "first run (claims of up to 100) MISSED tailored with 'enqueue takes the most "
                "event-loop wall time: 56%' (information): acks of 100 tasks per call made 24 "
                "completing calls, so the planted count cost 24.7 ms (3% of a 0.85 s run), "
                "which the analysis named exactly under the leading floor ('complete: full "
                "table scan and temp B-tree sort in `SELECT state, count(*) FROM tasks GROUP BY "
                "state`'); the default job was OK (993 ms, 19% of the run). The tailored run "
                "now claims 10 at a time (claim_batch=10), so the count runs once per 10 tasks"
            ),
        ),
        Plant(
            "handler-payload-deepcopy",
            "slow handler path (hot subtree)",
            "every handler gets its task with a deep copy of the payload",
            handlers_get_a_deep_copy,
            "throughput",
            CPU,
            frozenset({"handler"}),
            frozenset({"hot-subtree"}),
            params=("worker_counts=2", "tasks=20000", "enqueue_batch=100"),
            after_rules=True,
            revised=(
                "first run (tasks=2000, one enqueue() per task) MISSED tailored with 'enqueue "
                "takes the most event-loop wall time: 58%' (information): the copies cost 43 ms "
                "of a 1.9 s run that single enqueues dominated, and the analysis named them "
                "under its floor ('handler: Task._replace -> Task._make ... 2% of the thread', "
                "insufficient evidence); the default job was OK ('handler: deepcopy -> "
                "_deepcopy_dict -> Task._replace ... 43% of handler's running time'). The tasks "
                "are now enqueued 100 per call and 5,000 of them run, so the handlers' share is "
                "not drowned by the enqueues. At 5,000 a loaded CI-like run still named the "
                "copies under the floor ('handler: deepcopy -> _deepcopy_dict ... 0.017 s "
                "inclusive, 10% of the thread', 17 samples of pyinstrument's 1 ms against a "
                "floor of 20): 20,000 tasks give 70-90 ms (3 of 3 OK)"
            ),
        ),
        Plant(
            "acks-keep-results",
            "retained memory growth",
            "landed acks keep each task's decoded result in a dict on the queue, forever",
            acks_keep_results_for_polls,
            "memory",
            MEMORY,
            frozenset({"complete"}),
            frozenset({"memory-growth"}),
            after_rules=True,
            revised=(
                "first run MISSED tailored with 'claim: memory retained per task: 214 KiB per "
                "1,000 tasks (76% of the growth), allocated in _restart_wal (taskqueue/queue.py)': "
                "the patch carried queue.py's file name but this file's line numbers, and "
                "tracemalloc names the allocating function by file and line, so the dicts "
                "landed in whatever method of queue.py stands at those lines (none of "
                "complete's, so the op fell to the claim the acks rode on). _as_edited now also "
                "starts the patch's lines at the edited method's def, and the patch's body "
                "takes no more lines than the method it replaces, as a real edit's would"
            ),
            slow=True,
        ),
        # -- a fifth round, written blind (committed before any run) --------------------------
        Plant(
            "claim-rereads-rows",
            "statements per call (N+1)",
            "the claim reads each claimed task's row again by id before making its task",
            claim_rereads_each_row,
            "throughput",
            CPU,
            frozenset({"claim"}),
            frozenset({"n-plus-one"}),
            params=("worker_counts=2", "tasks=3000"),
            after_rules=True,
        ),
        Plant(
            "claims-of-one",
            "round trips (one task per claim)",
            "the claim sizer always asks for one task: a claim per task",
            claims_of_one_task,
            "throughput",
            CPU,
            frozenset({"claim"}),
            frozenset({"round-trips"}),
            params=("worker_counts=2", "tasks=3000"),
            after_rules=True,
            first_miss=(
                "first run: #1 'claim takes the most event-loop wall time: 46% (pyinstrument)' "
                "(2 of 2): the round-trips finding was there, as information: every claim ran "
                "inline and no bare run was kept, so its per-call overhead counted as the "
                "profiler hook's and it had no cost. The drain took 0.29 s against 0.026 s "
                "unplanted (3,003 claims against 35). The rules now cost such calls by their "
                "BEGIN and COMMIT alone (48 ms, 17-18% of the workers' busy time), and leave "
                "out claims between which the engines found the queue empty. The default job "
                "(bare runs kept) MISSED too, with 'claim takes the most event-loop wall time: "
                "47%': on the bare run's calls the SQL was 55% of each claim, most of it the "
                "BEGIN and COMMIT each one-task claim paid; these now count as per-call "
                "overhead there (round trips, 71% of the workers' busy time)"
            ),
        ),
        Plant(
            "poll-spins-on-status",
            "busy polling (status reads)",
            "poll reads the status again on every pass of the event loop (sleep(0) between)",
            poll_spins_on_status,
            "latency",
            CPU,
            frozenset({"status"}),
            frozenset({"polling"}),
            params=("tasks=1000", "rate=500", "task_type=sleep"),
            after_rules=True,
            revised=(
                "first run on noop tasks (tasks=1000, rate=500) MISSED with 'status takes the "
                "most event-loop wall time: 1%' / 'claim ...: 2%': not the plant's cost, which "
                "was not real there: a noop task is done 0.7 ms after its enqueue, so each poll "
                "read the status about 4 times (3,931 reads, 145 ms of a 2 s run, against about "
                "2,000 reads unplanted). Now on sleep tasks (1 ms each), where a poll waits "
                "for a task that is running"
            ),
            first_miss=(
                "first run on sleep tasks: #1 'status takes the most event-loop wall time: "
                "31%' / '28% (pyinstrument)' (2 of 2): polling was found only as empty claims; "
                "22,200 status reads for 1,000 tasks against 2,044 unplanted. The rules now "
                "find clients polling from four status reads per completed task (a woken poll "
                "reads about two)"
            ),
            job_miss=(
                "the default job runs throughput and dbops, which never poll a task's status: "
                "only the latency workload waits for its tasks that way"
            ),
        ),
        Plant(
            "status-checks-known-ids",
            "plans (scan per call)",
            "status first reads every task id into a set to check the id is known",
            status_checks_known_ids,
            "dbops",
            CPU,
            frozenset({"status"}),
            frozenset({"sql-scan", "hot-subtree"}),
            params=("tasks=1000",),
            after_rules=True,
        ),
        Plant(
            "enqueue-newest-created",
            "plans (scan and sort per call)",
            "each enqueue reads the newest created_at (ORDER BY created_at DESC LIMIT 1, no index)",
            enqueue_keeps_created_monotonic,
            "dbops",
            CPU,
            frozenset({"enqueue"}),
            frozenset({"sql-scan", "sql-sort"}),
            params=("tasks=1000",),
            after_rules=True,
        ),
        Plant(
            "enqueue-payload-regex",
            "hot non-SQL subtree (validation)",
            "enqueue matches every payload key and string value against a regular expression",
            enqueue_validates_payload_text,
            "dbops",
            CPU,
            frozenset({"enqueue"}),
            frozenset({"hot-subtree"}),
            params=("tasks=1000", "payload_bytes=4096"),
            after_rules=True,
            job_miss=(
                "the default job's payloads are {'seq': n} with no padding (payload_bytes 0): "
                "the regex checks one short key and no text per task, a cost that is not real "
                "there (#1 'enqueue takes the most event-loop wall time: 62%', information); "
                "the tailored run's 4 KB strings are what it costs on"
            ),
        ),
        # -- a sixth round, written blind (committed before any run) --------------------------
        Plant(
            "enqueue-remembers-payloads",
            "retained memory growth",
            "enqueue_many keeps every payload's canonical JSON as a key of a dict on the queue, "
            "forever, to refuse duplicates",
            enqueue_remembers_payloads,
            "memory",
            MEMORY,
            frozenset({"enqueue"}),
            frozenset({"memory-growth"}),
            params=("payload_bytes=1024",),
            after_rules=True,
        ),
        Plant(
            "first-worker-prefetches",
            "worker imbalance (process workers)",
            "worker process w0 has claim sizing off: every claim takes claim_batch (500); the "
            "other four run out and wait",
            first_worker_prefetches,
            "throughput",
            CPU,
            frozenset({None, "claim", "handler", "worker"}),
            frozenset({"worker-imbalance"}),
            params=("worker_counts=5", "mode=process", "task_type=sleep", "tasks=1000"),
            queue="claim_batch=500",
            after_rules=True,
        ),
        Plant(
            "status-waits-for-resolver",
            "event-loop hold (blocking wait for a thread)",
            "status waits on the event loop with Future.result() for a resolver thread's 1 ms "
            "lookup",
            status_waits_for_resolver,
            "dbops",
            CPU,
            frozenset({"status"}),
            frozenset({"loop-hold"}),
            params=("tasks=1000",),
            after_rules=True,
            first_miss=(
                "first run: #1 'status takes the most event-loop wall time: 94% (pyinstrument)' "
                "(cause profile) 2 of 2, with 'operations spend most of their event-loop time "
                "waiting for the connection thread (93%)' at #2: the loop's samples parked in "
                "lock.acquire under Future.result counted as waiting, as an aiosqlite thread's "
                "do, so status had no running time for the subtree rule. Since then a wait on "
                "another thread (a threading lock, a thread-safe queue) on the event loop's "
                "thread inside an operation is the operation's running time and a blocking "
                "call: #1 'status: blocking call holds the event loop: Future.result -> "
                "lock.acquire 2.99 s (99% of status's running time, 92% of the loop)', 2 of 2"
            ),
        ),
        Plant(
            "claims-commit-lazily",
            "contention (write lock held across the handlers)",
            "a claim's transaction is committed by the connection's next call: each worker "
            "process holds the write lock while it runs its tasks",
            claims_commit_lazily,
            "throughput",
            CPU,
            frozenset({"claim", "complete"}),
            frozenset({"contention"}),
            params=("worker_counts=5", "mode=process", "task_type=sleep", "tasks=1000"),
            after_rules=True,
        ),
        Plant(
            "pg-status-counts-table",
            "plans (scan per call), PostgreSQL",
            "PostgreSQL status also counts every row of tasks (count(*)) per call",
            pg_status_counts_the_table,
            "dbops",
            CPU,
            frozenset({"status"}),
            frozenset({"sql-scan"}),
            params=("tasks=2000",),
            after_rules=True,
            postgres=True,
        ),
        Plant(
            "pg-enqueue-connects-per-call",
            "round trips (connection per call), PostgreSQL",
            "PostgreSQL enqueue opens and closes a connection of its own per task instead of "
            "using the pool",
            pg_enqueue_connects_per_call,
            "dbops",
            CPU,
            frozenset({"enqueue"}),
            frozenset({"round-trips", "hot-subtree"}),
            after_rules=True,
            postgres=True,
            first_miss=(
                "the cost is real (enqueue p50 9.9 ms against 0.47 ms in the control's run of "
                "the same params, the run 7 s against 1 s) but its first runs' #1 were 'enqueue: "
                "waits on locks in the server 16% of its statement time' (contention) and "
                "'enqueue: waits on I/O and the server's internal locks 44%' (waiting): the "
                "profile's operation map had no function of taskqueue/pgqueue.py or pgstore.py, "
                "so a PostgreSQL run's event-loop time was all 'other' and 'idle/wait'. With "
                "them mapped, asyncpg's connect showed as 71% of enqueue's running time, read "
                "as the trip of its one statement per call (information); a database client's "
                "connect inside an operation is now a connection opened on every call "
                "(round-trips)"
            ),
        ),
        # -- blind4: four on PostgreSQL and one on SQLite, written blind (committed before
        # any run) --------------------------------------------------------------------------
        Plant(
            "pg-status-read-only-snapshot",
            "round trips (needless transaction per call), PostgreSQL",
            "PostgreSQL status reads the task in a REPEATABLE READ READ ONLY transaction: "
            "BEGIN and COMMIT, two more round trips per call",
            pg_status_in_read_only_transaction,
            "dbops",
            CPU,
            frozenset({"status"}),
            frozenset({"round-trips"}),
            params=("tasks=2000",),
            after_rules=True,
            postgres=True,
            first_miss=(
                "first run: #1 information ('claim: waits on I/O and the server's internal "
                "locks 91% of its statement time'): the capture counts one statement per status "
                "call (asyncpg sends BEGIN and COMMIT itself), so the subtree was 'the trip of "
                "its one statement'; the subtree rule then learned a client's transaction "
                "control around one statement per call as round trips"
            ),
        ),
        Plant(
            "pg-enqueue-control-char-scan",
            "hot subtree (client-side validation), PostgreSQL",
            "PostgreSQL enqueue checks the payload's JSON text for control characters one "
            "character at a time with unicodedata.category",
            pg_enqueue_rejects_control_characters,
            "dbops",
            CPU,
            frozenset({"enqueue"}),
            frozenset({"hot-subtree"}),
            params=("tasks=1000", "payload_bytes=4096"),
            after_rules=True,
            postgres=True,
            revised=(
                "after its runs, the patch wraps the row check enqueue calls instead of "
                "replacing PgTaskQueue.enqueue with a copy of it: the same check on the same "
                "text, with the rest of enqueue the queue's own"
            ),
        ),
        Plant(
            "pg-claims-serializable",
            "contention (serialization failures), PostgreSQL",
            "PostgreSQL claims run in SERIALIZABLE transactions: concurrent claims of the "
            "head of the queue fail with serialization errors and are retried (10 worker "
            "processes)",
            pg_claims_in_serializable,
            "dbops",
            CPU,
            frozenset({"claim"}),
            frozenset({"contention"}),
            # Processes, as pg-claim-waits-for-locks: each worker a session of its own.
            params=("tasks=400", "mode=process"),
            after_rules=True,
            postgres=True,
            slow=True,
            revised=(
                "first written as pg-claims-repeatable-read (REPEATABLE READ): its first runs "
                "(2 of 2) led with 'enqueue takes the most event-loop wall time: 21%' "
                "(profile), and the contention it planted was negligible: 28-30 retries and "
                "0.17-0.19 s of lock wait, 2% of the workers' busy time (the claims' p50 rose "
                "1.09 -> 2.7 ms against the unplanted run of the same params, mostly the "
                "transaction's BEGIN and COMMIT). SERIALIZABLE, the other isolation a developer "
                "reaches for, fails the claims for real: one run gave 426 retries, 2.86 s of "
                "lock wait (36% of the workers' busy time)"
            ),
        ),
        Plant(
            "pg-leases-kept-for-renewal",
            "retained memory growth, PostgreSQL",
            "the PostgreSQL queue keeps every leased task for lease renewal; acks riding on a "
            "claim never drop theirs",
            pg_claims_remember_leases,
            "memory",
            MEMORY,
            frozenset({"claim"}),
            frozenset({"memory-growth"}),
            params=("payload_bytes=1024",),
            after_rules=True,
            postgres=True,
            slow=True,
        ),
        Plant(
            "claim-leases-row-by-row",
            "statements per call (N+1)",
            "the SQLite claim selects the ready ids, then leases each with an UPDATE of its own",
            claim_leases_row_by_row,
            "throughput",
            CPU,
            frozenset({"claim"}),
            frozenset({"n-plus-one"}),
            params=("worker_counts=2", "tasks=3000"),
            after_rules=True,
        ),
        # -- blind5: three on PostgreSQL, written blind (committed before any run) ----------
        Plant(
            "pg-status-by-text-id",
            "plans (scan per call), PostgreSQL",
            "PostgreSQL status looks the task up by its id cast to text (WHERE id::text = $1)",
            pg_status_by_text_id,
            "dbops",
            CPU,
            frozenset({"status"}),
            frozenset({"sql-scan"}),
            params=("tasks=2000",),
            after_rules=True,
            postgres=True,
        ),
        Plant(
            "pg-enqueue-counts-backlog",
            "plans (scan per call), PostgreSQL",
            "PostgreSQL enqueue counts the pending tasks before each INSERT (back-pressure)",
            pg_enqueue_checks_backlog,
            "dbops",
            CPU,
            frozenset({"enqueue"}),
            frozenset({"sql-scan"}),
            params=("tasks=4000",),
            after_rules=True,
            postgres=True,
        ),
        Plant(
            "pg-enqueue-locks-table",
            "contention (table lock), PostgreSQL",
            "PostgreSQL enqueue takes LOCK TABLE tasks IN SHARE ROW EXCLUSIVE MODE around its "
            "INSERT, against the workers' claims and acks (worker processes)",
            pg_enqueue_locks_the_table,
            "dbops",
            CPU,
            frozenset({"enqueue", "claim", "complete"}),
            frozenset({"contention", "round-trips"}),
            params=("tasks=1000", "mode=process"),
            after_rules=True,
            postgres=True,
            revised=(
                "written expecting contention alone; its first run measured two costs: the "
                "claims waited 0.58 s of sessions on the table lock (Lock:relation, held by "
                "enqueue; 4% of the workers' busy time), and enqueue took 1.03 s more than in "
                "the control of the same params (3.40 s against 2.37 s of the loop), its "
                "sessions 97% idle in the transaction between the BEGIN, LOCK, INSERT and "
                "COMMIT trips and never waiting on a lock: round trips are the larger cost"
            ),
            first_miss=(
                "first run: #1 'claim: idle engines poll: 9,505 empty claims for 3,000 tasks' "
                "(polling), which the control of the same params also led with (6,845 empty "
                "claims): every worker process listens, so each NOTIFY woke an engine in all "
                "10, and the rule took that for polling; the lock waits were #3 (contention). "
                "The rules since: empty claims within one per process per task are the "
                "broadcast (information), and a client transaction around several statements "
                "per call is their round trips, as around one"
            ),
        ),
        # -- blind6: two on PostgreSQL, written blind (committed before any run) ------------
        Plant(
            "pg-enqueue-draws-id-first",
            "round trips (a statement more per call), PostgreSQL",
            "PostgreSQL enqueue draws the id from the sequence in a statement of its own, then "
            "inserts the row with it",
            pg_enqueue_draws_its_id_first,
            "dbops",
            CPU,
            frozenset({"enqueue"}),
            frozenset({"round-trips", "n-plus-one"}),
            params=("tasks=2000",),
            after_rules=True,
            postgres=True,
            first_miss=(
                "first run: #1 'enqueue: PgStore._fetch -> Connection.__execute -> "
                "Connection._do_execute (asyncpg/connection.py) takes 39% of enqueue's running "
                "time' (hot-subtree), the op right and the advice (fewer trips) too, the cause "
                "not named: at 2 statements per call (the nextval 1.05 s of SQL over 2,000 "
                "calls) it was neither the one statement a call needs nor the N+1 rule's 3. "
                "Since then a database client's trips at 1.5 to 3 statements per call are "
                "round trips, naming the statements"
            ),
        ),
        Plant(
            "pg-claim-orders-by-creation",
            "plans (sort per call), PostgreSQL",
            "PostgreSQL claim orders by priority and created_at, which no index has",
            pg_claim_orders_by_creation,
            "dbops",
            CPU,
            frozenset({"claim"}),
            frozenset({"sql-sort", "sql-scan"}),
            params=("tasks=2000",),
            after_rules=True,
            postgres=True,
        ),
        # -- blind7: two on SQLite, written blind (committed before any run) ----------------
        Plant(
            "status-ranks-every-task",
            "plans (scan and sort per call)",
            "status computes the task's place with row_number() over the whole table, then "
            "picks the one row",
            status_ranks_every_task,
            "dbops",
            CPU,
            frozenset({"status"}),
            frozenset({"sql-scan", "sql-sort"}),
            params=("tasks=1000",),
            after_rules=True,
        ),
        Plant(
            "enqueue-reads-pending-payloads",
            "plans (scan per call)",
            "enqueue reads every pending task's payload to refuse a duplicate",
            enqueue_refuses_pending_duplicates,
            "dbops",
            CPU,
            frozenset({"enqueue"}),
            frozenset({"sql-scan", "hot-subtree"}),
            params=("tasks=1000",),
            after_rules=True,
        ),
    )
}


def apply(name: str) -> None:
    """Apply the plant called ``name`` (the control applies nothing)."""
    plant = PLANTS.get(name)
    if plant is None:
        raise KeyError(f"unknown plant {name!r}; known: {', '.join(PLANTS)}")
    if plant.apply is not None:
        plant.apply()
