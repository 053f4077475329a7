"""procrastinate's ``JobManager`` behind queueprof's adapter protocol, on a scratch database.

This package is what a queue's user writes to compare their queue in ``queueprof run
comparison``: it imports only queueprof's public adapter API, and its pyproject declares the
``queueprof.adapters`` entry point. Nothing in queueprof names procrastinate.

A procrastinate worker registers itself (``JobManager.register_worker``), then each of its
``concurrency`` job slots loops: ``JobManager.fetch_job`` (one call of the
``procrastinate_fetch_job`` SQL function: lock the next 'todo' job ``FOR UPDATE SKIP LOCKED``,
mark it 'doing'), run the task, ``JobManager.finish_job`` (mark it 'succeeded'). The adapter
calls those same steps, around no task function, so the comparison times the queue and not a
handler: ``claim(n)`` is ``n`` concurrent ``fetch_job`` calls (what ``n`` slots of a worker
with ``concurrency=n`` do; one at a time with the default ``concurrency=1``), ``complete`` a
``finish_job`` per job, concurrently likewise. Jobs are deferred with ``Task.defer_async`` and
their status read with ``JobManager.get_job_status_async``. procrastinate talks to PostgreSQL
through its ``PsycopgConnector`` (psycopg 3 and a psycopg_pool connection pool).

Each open makes a scratch database on the server that ``QUEUEPROF_PG`` names (see
``workloads.adapters.postgres``) and installs procrastinate's schema with
``SchemaManager.apply_schema_async``, the function behind ``procrastinate schema --apply``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from workloads.adapters import AdapterSpec, CodePath, Contender, QueueAdapter, adapter_methods
from workloads.adapters.postgres import scratch_database

_ADAPTER = "queueprof_procrastinate/adapter.py"
_MANAGER = "procrastinate/manager.py"

PROCRASTINATE = AdapterSpec(
    name="procrastinate",
    module="procrastinate",
    package="procrastinate",
    exactly_once=False,
    guarantee="at-most-once",
    delivery=(
        "at-most-once: a job whose worker dies stays 'doing'; it runs again only if the "
        "application retries stalled jobs itself (JobManager.get_stalled_jobs + retry_job, "
        "which the documentation suggests running as a periodic task)"
    ),
    code_paths=(
        *adapter_methods(_ADAPTER),
        CodePath("enqueue", "procrastinate/tasks.py", ("defer_async", "configure")),
        CodePath("enqueue", "procrastinate/jobs.py", ("defer_async",)),
        CodePath(
            "enqueue",
            _MANAGER,
            ("defer_job_async", "batch_defer_jobs_async", "_defer_jobs_query_kwargs"),
        ),
        CodePath("claim", _MANAGER, ("fetch_job",)),
        CodePath("complete", _MANAGER, ("finish_job", "finish_job_by_id_async")),
        CodePath("status", _MANAGER, ("get_job_status_async",)),
    ),
)

TASK_NAME = "queueprof_noop"
"""The one task the adapter's jobs are deferred for."""

STATUS = {
    "todo": "pending",
    "doing": "running",
    "aborting": "running",
    "succeeded": "done",
    "failed": "dead",
    "cancelled": "dead",
    "aborted": "dead",
}
"""procrastinate's job states onto queueprof's status words."""


def queueprof_noop(**payload: Any) -> None:
    """The task the adapter defers (procrastinate stores its name and the arguments)."""


class ProcrastinateAdapter:
    """One procrastinate queue in its own scratch database, driven as one registered worker."""

    spec = PROCRASTINATE

    def __init__(self, app: Any, task: Any, worker_id: int) -> None:
        from procrastinate.exceptions import NoResult
        from procrastinate.jobs import Status

        self._no_such_job = NoResult
        self._app = app
        self._task = task
        self._worker_id = worker_id
        self._succeeded = Status.SUCCEEDED

    async def enqueue(self, payload: Mapping[str, Any]) -> object:
        """``Task.defer_async`` with the payload as the task's arguments; the job id is the ref."""
        job_id: int = await self._task.defer_async(**payload)
        return job_id

    async def claim(self, n: int) -> Sequence[object]:
        """``n`` concurrent ``JobManager.fetch_job`` calls, as ``n`` worker slots fetch."""
        fetched = await asyncio.gather(
            *(self._app.job_manager.fetch_job(None, self._worker_id) for _ in range(n))
        )
        return [job for job in fetched if job is not None]

    async def complete(self, claimed: Sequence[object]) -> None:
        """``JobManager.finish_job`` as succeeded for each job (the worker's default keeps
        finished jobs: ``delete_jobs=never``)."""
        await asyncio.gather(
            *(
                self._app.job_manager.finish_job(job, status=self._succeeded, delete_job=False)
                for job in claimed
            )
        )

    async def status(self, ref: object) -> str | None:
        """``JobManager.get_job_status_async`` as a status word."""
        assert isinstance(ref, int)
        try:
            found = await self._app.job_manager.get_job_status_async(ref)
        except self._no_such_job:  # the connector's answer when no row has that id
            return None
        return STATUS[found.value]

    async def close(self) -> None:
        """Unregister the worker and close the pool (the scratch database outlives them)."""
        try:
            await self._app.job_manager.unregister_worker(self._worker_id)
        finally:
            await self._app.close_async()


def procrastinate_opener(concurrency: int = 1, *, synchronous_commit: str | None = None) -> Any:
    """An opener of procrastinate queues driven with ``concurrency`` worker slots, on a
    pool of as many connections (psycopg_pool's default of 4 when that is more), each with
    ``synchronous_commit`` (None: the server's setting)."""

    async def open_procrastinate(folder: Path) -> QueueAdapter:
        PROCRASTINATE.load()
        import procrastinate
        from psycopg.conninfo import make_conninfo

        database = await scratch_database(folder, PROCRASTINATE.name)
        pool_size = max(4, concurrency)
        connector = procrastinate.PsycopgConnector(
            conninfo=make_conninfo(
                database.dsn,
                dbname=database.name,
                **(
                    {"options": f"-c synchronous_commit={synchronous_commit}"}
                    if synchronous_commit
                    else {}
                ),
            ),
            min_size=pool_size,
            max_size=pool_size,
        )
        app = procrastinate.App(connector=connector)
        task = app.task(name=TASK_NAME)(queueprof_noop)
        try:
            await app.open_async()
            installed = await app.connector.execute_query_one_async(
                "SELECT to_regclass('procrastinate_jobs') IS NOT NULL AS installed"
            )
            if not installed["installed"]:
                await app.schema_manager.apply_schema_async()
            worker_id = await app.job_manager.register_worker()
        except BaseException:
            await app.close_async()
            await database.abandon()
            raise
        return ProcrastinateAdapter(app, task, worker_id)

    return open_procrastinate


BEST_CONCURRENCY = 10
"""Worker slots of the tuned contender: one claim batch of the drain, as our queue's."""

CONTENDERS = (
    Contender(
        name="procrastinate",
        spec=PROCRASTINATE,
        settings=(
            "documented defaults: worker concurrency=1 (one job fetched and finished at a "
            "time), psycopg_pool's 4 connections, jobs kept after success; the server's "
            "synchronous_commit (PostgreSQL's default, on: a WAL flush per commit)"
        ),
        open=procrastinate_opener(),
        peer=True,
    ),
    Contender(
        name="procrastinate-c10",
        spec=PROCRASTINATE,
        settings=(
            f"best documented settings: worker concurrency={BEST_CONCURRENCY} "
            f"({BEST_CONCURRENCY} jobs fetched and finished at once, each over its own pooled "
            "connection); jobs kept after success; synchronous_commit=off for the session "
            "(PostgreSQL's counterpart of SQLite's synchronous=NORMAL, which our queue uses: "
            "an OS crash may lose the last commits, a process crash loses none)"
        ),
        open=procrastinate_opener(BEST_CONCURRENCY, synchronous_commit="off"),
        claim_batch=BEST_CONCURRENCY,
        peer=True,
    ),
)
"""What the entry point names: procrastinate with its defaults and with its best settings."""
