"""gigq's ``JobQueue`` and ``Worker`` behind queueprof's adapter protocol.

This package is what a queue's user writes to compare their queue in ``queueprof run
comparison``: it imports only queueprof's public adapter API, and its pyproject declares the
``queueprof.adapters`` entry point. Nothing in queueprof names gigq.

gigq's worker runs ``process_one``: ``_claim_job`` (``BEGIN EXCLUSIVE``, select the next
pending job ordered by priority and age, mark it running, record an execution row), the job's
function, then ``_complete_job``. The adapter calls those two steps itself, around no
function, so the comparison times the queue and not a handler; they are gigq's private
methods, but exactly what its own worker runs. gigq is synchronous, with one thread-local
connection per database: the adapter calls it on the event loop's thread, as the built-in
peers are called.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from workloads.adapters import AdapterSpec, CodePath, Contender, QueueAdapter

GIGQ = AdapterSpec(
    name="gigq",
    module="gigq",
    package="gigq",
    exactly_once=False,
    guarantee="at-least-once",
    delivery=(
        "at-least-once: a job whose worker dies stays 'running' until its timeout "
        "(300 s by default) passes and another worker's timeout sweep puts it back"
    ),
    code_paths=(
        CodePath("enqueue", "queueprof_gigq/adapter.py", ("enqueue",)),
        CodePath("claim", "queueprof_gigq/adapter.py", ("claim",)),
        CodePath("complete", "queueprof_gigq/adapter.py", ("complete",)),
        CodePath("status", "queueprof_gigq/adapter.py", ("status",)),
        CodePath("enqueue", "gigq/job_queue.py", ("submit",)),
        CodePath("enqueue", "gigq/job.py", ("__init__",)),
        CodePath("claim", "gigq/worker.py", ("_claim_job",)),
        CodePath("complete", "gigq/worker.py", ("_complete_job",)),
        CodePath("status", "gigq/job_queue.py", ("get_status",)),
    ),
)

STATUS = {
    "pending": "pending",
    "running": "running",
    "completed": "done",
    "failed": "dead",
    "cancelled": "dead",
    "timeout": "dead",
}
"""gigq's job states onto queueprof's status words."""


def gigq_noop(**params: Any) -> None:
    """The job function the adapter submits (gigq stores its module and name)."""


class GigqAdapter:
    """One gigq database in its own folder."""

    spec = GIGQ

    def __init__(self, path: Path) -> None:
        gigq = GIGQ.load()
        self._path = str(path)
        self._module = gigq
        self._jobs = gigq.JobQueue(self._path)
        self._worker = gigq.Worker(self._path, worker_id="queueprof")

    async def enqueue(self, payload: Mapping[str, Any]) -> object:
        """``JobQueue.submit`` of a job running :func:`gigq_noop`; its id is the reference."""
        return self._jobs.submit(self._module.Job("noop", gigq_noop, params=dict(payload)))

    async def claim(self, n: int) -> Sequence[object]:
        """Up to ``n`` calls of the worker's ``_claim_job`` (one job per call)."""
        claimed = []
        for _ in range(n):
            job = self._worker._claim_job()
            if job is None:
                break
            claimed.append(job)
        return claimed

    async def complete(self, claimed: Sequence[object]) -> None:
        """The worker's ``_complete_job`` with status completed, for each job."""
        completed = self._module.JobStatus.COMPLETED
        for job in claimed:
            assert isinstance(job, dict)
            self._worker._complete_job(job["id"], job["execution_id"], completed, result=None)

    async def status(self, ref: object) -> str | None:
        """``JobQueue.get_status``, gigq's state mapped onto queueprof's status words."""
        found = self._jobs.get_status(str(ref))
        return STATUS[found["status"]] if found.get("exists") else None

    async def close(self) -> None:
        """Close this thread's connection to the database (gigq keeps one per thread)."""
        from gigq.db_utils import close_connection

        close_connection(self._path)


async def open_gigq(folder: Path) -> QueueAdapter:
    """A fresh gigq database in ``folder``."""
    return GigqAdapter(folder / "gigq.db")


CONTENDERS = (
    Contender(
        name="gigq",
        spec=GIGQ,
        settings="documented defaults: WAL, SQLite's synchronous=FULL (gigq sets no other)",
        open=open_gigq,
        peer=True,
    ),
)
"""What the entry point names: gigq with its defaults, a peer of our queue."""
