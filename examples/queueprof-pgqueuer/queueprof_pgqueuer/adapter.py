"""pgqueuer's ``Queries`` behind queueprof's adapter protocol, on a scratch PostgreSQL database.

This package is what a queue's user writes to compare their queue in ``queueprof run
comparison``: it imports only queueprof's public adapter API, and its pyproject declares the
``queueprof.adapters`` entry point. Nothing in queueprof names pgqueuer.

pgqueuer's worker (``QueueManager.run``) loops over ``Queries.dequeue`` (one statement: pick up
to ``batch_size`` queued jobs ``FOR UPDATE SKIP LOCKED`` and mark them picked), runs each job,
and hands its outcome to a ``JobStatusLogBuffer`` that flushes through ``Queries.log_jobs`` (one
statement: delete the finished jobs from the queue table and log their status) once
``batch_size`` outcomes are waiting. The adapter calls those same two statements itself, around
no job function, so the comparison times the queue and not a handler: ``claim(n)`` is one
dequeue of ``n``, ``complete`` one ``log_jobs`` of the claimed batch. ``Queries.enqueue`` adds a
job, ``Queries.job_status`` reads its latest logged status. Everything runs on one asyncpg
connection, as one ``QueueManager`` does.

Each open makes a scratch database on the server that ``QUEUEPROF_PG`` names (see
``workloads.adapters.postgres``) and installs pgqueuer's schema with ``Queries.install``, the
function behind ``pgq install``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from workloads.adapters import AdapterSpec, CodePath, Contender, QueueAdapter, adapter_methods
from workloads.adapters.postgres import scratch_database

_ADAPTER = "queueprof_pgqueuer/adapter.py"
_QUERIES = "pgqueuer/adapters/persistence/queries.py"

PGQUEUER = AdapterSpec(
    name="pgqueuer",
    module="pgqueuer",
    package="pgqueuer",
    exactly_once=False,
    guarantee="at-least-once",
    delivery=(
        "at-least-once: a picked job whose worker stops sending heartbeats is picked again by "
        "the next dequeue once its heartbeat is older than heartbeat_timeout (30 s by default)"
    ),
    code_paths=(
        *adapter_methods(_ADAPTER),
        CodePath("enqueue", _QUERIES, ("enqueue",)),
        CodePath("claim", _QUERIES, ("dequeue",)),
        CodePath("claim", "pgqueuer/adapters/persistence/qb.py", ("build_dequeue_query",)),
        CodePath("complete", _QUERIES, ("log_jobs",)),
        CodePath("status", _QUERIES, ("job_status",)),
    ),
)

ENTRYPOINT = "queueprof_noop"
"""The one entrypoint the adapter's jobs are queued under."""

HEARTBEAT_TIMEOUT = timedelta(seconds=30)
"""``QueueManager.run``'s default: a picked job older than this is picked again."""

STATUS = {
    "queued": "pending",
    "picked": "running",
    "successful": "done",
    "canceled": "dead",
    "deleted": "dead",
    "exception": "dead",
    "failed": "dead",
}
"""pgqueuer's logged job states onto queueprof's status words."""


class PgqueuerAdapter:
    """One pgqueuer queue in its own scratch database, on one asyncpg connection."""

    spec = PGQUEUER

    def __init__(self, connection: Any, queries: Any) -> None:
        from pgqueuer.queries import EntrypointExecutionParameter

        self._connection = connection
        self._queries = queries
        # Unlimited concurrency for the entrypoint, as QueueManager registers one by default.
        self._entrypoints = {ENTRYPOINT: EntrypointExecutionParameter(concurrency_limit=0)}
        self._manager_id = uuid.uuid4()

    async def enqueue(self, payload: Mapping[str, Any]) -> object:
        """``Queries.enqueue`` of one job with the payload as JSON bytes; its id is the ref."""
        (job_id,) = await self._queries.enqueue(ENTRYPOINT, json.dumps(payload).encode())
        return job_id

    async def claim(self, n: int) -> Sequence[object]:
        """One ``Queries.dequeue`` of up to ``n`` jobs, as ``QueueManager`` fetches a batch."""
        jobs: list[object] = await self._queries.dequeue(
            batch_size=n,
            entrypoints=self._entrypoints,
            queue_manager_id=self._manager_id,
            global_concurrency_limit=None,
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
        )
        return jobs

    async def complete(self, claimed: Sequence[object]) -> None:
        """One ``Queries.log_jobs`` marking every claimed job successful, as the worker's
        status buffer flushes them."""
        if claimed:
            await self._queries.log_jobs([(job, "successful", None) for job in claimed])

    async def status(self, ref: object) -> str | None:
        """``Queries.job_status``: the job's latest logged state as a status word."""
        found = dict(await self._queries.job_status([ref]))
        return STATUS[found[ref]] if ref in found else None

    async def close(self) -> None:
        """Close the connection (the scratch database outlives it; see module docstring)."""
        await self._connection.close()


def pgqueuer_opener(durability: str = "durable", *, synchronous_commit: str | None = None) -> Any:
    """An opener of pgqueuer queues whose tables are installed with ``durability``, on a
    connection with ``synchronous_commit`` (None: the server's setting)."""

    async def open_pgqueuer(folder: Path) -> QueueAdapter:
        PGQUEUER.load()
        import asyncpg
        from pgqueuer.adapters.persistence import qb
        from pgqueuer.domain.settings import DBSettings, Durability
        from pgqueuer.queries import Queries

        database = await scratch_database(folder, PGQUEUER.name)
        server_settings = {"synchronous_commit": synchronous_commit} if synchronous_commit else {}
        try:
            connection = await asyncpg.connect(
                **database.asyncpg_arguments(), server_settings=server_settings
            )
        except BaseException:
            await database.abandon()
            raise
        settings = DBSettings(durability=Durability(durability))
        queries = Queries.from_asyncpg_connection(connection)
        queries.qbe = qb.QueryBuilderEnvironment(settings)
        queries.qbq = qb.QueryQueueBuilder(settings)
        queries.qbs = qb.QuerySchedulerBuilder(settings)
        try:
            if not await queries.schema_is_installed():
                await queries.install()
        except BaseException:
            await connection.close()
            await database.abandon()
            raise
        return PgqueuerAdapter(connection, queries)

    return open_pgqueuer


SESSION_COMMIT = (
    "synchronous_commit=off for the session (PostgreSQL's counterpart of SQLite's "
    "synchronous=NORMAL, which our queue uses: an OS crash may lose the last commits, a "
    "process crash loses none)"
)

CONTENDERS = (
    Contender(
        name="pgqueuer",
        spec=PGQUEUER,
        settings=(
            "documented defaults: QueueManager.run(batch_size=10): dequeue 10 at a time, "
            "statuses logged 10 at a time; durable (logged) tables; the server's "
            "synchronous_commit (PostgreSQL's default, on: a WAL flush per commit)"
        ),
        open=pgqueuer_opener(),
        claim_batch=10,
        peer=True,
    ),
    Contender(
        name="pgqueuer-batch100",
        spec=PGQUEUER,
        settings=(
            "best documented settings: batch_size=100 (dequeue and status log 100 at a time); "
            "durability=balanced (jobs table logged, log and statistics tables unlogged); "
            f"{SESSION_COMMIT}"
        ),
        open=pgqueuer_opener("balanced", synchronous_commit="off"),
        claim_batch=100,
        peer=True,
    ),
)
"""What the entry point names: pgqueuer with its defaults and with its best settings."""
