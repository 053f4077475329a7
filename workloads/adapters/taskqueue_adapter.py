"""Our queue behind the adapter protocol, so it runs the very scenarios the peers run."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from taskqueue import QueueConfig, Task, TaskQueue

from .base import AdapterSpec, Opener, QueueAdapter
from .postgres import scratch_database
from .specs import TASKQUEUE

WORKER = "w0"


class TaskQueueAdapter:
    """:class:`~taskqueue.TaskQueue` through its public API (one worker name, ``w0``).

    Async already: every call is one await on the queue's aiosqlite thread (or, on
    PostgreSQL, one asyncpg round trip), as a user pays it.
    """

    def __init__(self, queue: TaskQueue, label: str = "") -> None:
        self._queue = queue
        self._label = label
        """The contender's name: the queue's captured statements are filed under
        ``<label>.<op>``, as the comparison times the calls that ran them."""

    @property
    def spec(self) -> AdapterSpec:
        """:data:`~workloads.adapters.specs.TASKQUEUE`."""
        return TASKQUEUE

    async def enqueue(self, payload: Mapping[str, Any]) -> object:
        """``TaskQueue.enqueue('noop', payload)``; the task id is the reference."""
        return await self._queue.enqueue("noop", dict(payload))

    async def claim(self, n: int) -> Sequence[object]:
        """``TaskQueue.claim('w0', n)``."""
        return await self._queue.claim(WORKER, n)

    async def complete(self, claimed: Sequence[object]) -> None:
        """``TaskQueue.complete_many`` with each task's ``seq`` as its result (one statement)."""
        done: list[tuple[Task, Any]] = []
        for task in claimed:
            assert isinstance(task, Task)
            done.append((task, task.payload.get("seq")))
        await self._queue.complete_many(done)

    async def status(self, ref: object) -> str | None:
        """``TaskQueue.status(id).state``."""
        assert isinstance(ref, int)
        found = await self._queue.status(ref)
        return None if found is None else found.state.value

    async def close(self) -> None:
        """Close the queue. Its captured statements (``capture_sql``) are filed under the
        contender's operations first: the queue files them under its own (``complete``)
        while the comparison times ``<contender>.complete``, and two contenders on our queue
        would share one name. Closing runs no statement after the observers have them."""
        stats = self._queue.stats
        if self._label and stats.sql:
            stats.sql[:] = [s._replace(op=f"{self._label}.{s.op}") for s in stats.sql]
        await self._queue.close()


def taskqueue_opener(config: QueueConfig, label: str, *, postgres: bool = False) -> Opener:
    """Opens :class:`TaskQueueAdapter` with ``config``: a SQLite file in the folder, or with
    ``postgres`` (or ``config.backend`` a URL) a scratch PostgreSQL database of the folder,
    made and dropped as the PostgreSQL peers' are (:mod:`workloads.adapters.postgres`), on
    the same server as theirs. ``label`` is the contender's name, which its captured
    statements are filed under.

    The queue's own per-operation timings are turned off: the comparison times every
    contender's calls the same way, around the adapter, and records those.
    """
    quiet = dataclasses.replace(config, record_timings=False)
    on_postgres = postgres or config.backend != "sqlite"

    async def open_queue(folder: Path) -> QueueAdapter:
        if not on_postgres:
            queue = TaskQueue(folder / "taskqueue.db", quiet)
            await queue.open()
            return TaskQueueAdapter(queue, label)
        database = await scratch_database(folder, TASKQUEUE.name)
        try:
            queue = TaskQueue(database.url(), quiet)
            await queue.open()
        except BaseException:
            await database.abandon()
            raise
        return TaskQueueAdapter(queue, label)

    return open_queue
