"""huey's SQLite storage (``SqliteHuey``) behind the adapter protocol, through its public API.

Producer side: a task declared with ``huey.task()`` is called, which serialises it and
inserts it (``Huey.enqueue`` -> ``SqliteStorage.enqueue``). Consumer side, as huey's own
consumer does it: ``Huey.dequeue`` (which deletes the row) then ``Huey.execute`` (runs the
task, then stores its return value in the result store). Status is the result store:
``Huey.result(id, preserve=True)`` says whether a task has finished; huey keeps no state for
a task that is queued or running.

huey is synchronous and each call is a few SQLite statements on one connection, so the
adapter calls it directly on the event loop's thread rather than through
``asyncio.to_thread``: that is how huey's consumer threads call it, a thread hop would add
~40-60 us per call that huey does not pay, and the profilers then sample huey's frames on the
thread they profile. It favours huey, never us.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .base import AdapterSpec, Opener, QueueAdapter
from .specs import HUEY


def huey_noop(payload: Mapping[str, Any]) -> int:
    """The task every contender runs: nothing, returning the payload's ``seq`` as the result."""
    return int(payload.get("seq", 0))


class HueyAdapter:
    """One ``SqliteHuey`` instance with the no-op task registered."""

    def __init__(self, huey: Any) -> None:
        self._huey = huey
        self._task = huey.task()(huey_noop)

    @property
    def spec(self) -> AdapterSpec:
        """:data:`~workloads.adapters.specs.HUEY`."""
        return HUEY

    async def enqueue(self, payload: Mapping[str, Any]) -> object:
        """Call the task (huey enqueues it); the task id is the reference."""
        return self._task(dict(payload)).id

    async def claim(self, n: int) -> Sequence[object]:
        """Up to ``n`` calls of ``Huey.dequeue`` (huey hands out one task per call)."""
        claimed = []
        for _ in range(n):
            task = self._huey.dequeue()
            if task is None:
                break
            claimed.append(task)
        return claimed

    async def complete(self, claimed: Sequence[object]) -> None:
        """``Huey.execute`` each task: runs it and stores its result."""
        for task in claimed:
            self._huey.execute(task)

    async def status(self, ref: object) -> str | None:
        """``done`` when the result store holds the task's result, else ``unknown``.

        huey deletes a task when it is dequeued and keeps nothing until it has finished, so
        queued, running and lost tasks all read the same.
        """
        found = self._huey.result(ref, preserve=True)
        return "unknown" if found is None else "done"

    async def close(self) -> None:
        """Close the storage's connection."""
        self._huey.storage.close()


def huey_opener(**settings: Any) -> Opener:
    """Opens a ``SqliteHuey`` with ``settings`` (e.g. ``fsync=False``) on ``folder/huey.db``.

    With no settings it is huey's documented default: WAL, and SQLite's default
    ``synchronous`` (FULL), since ``fsync`` is unset.
    """

    async def open_huey(folder: Path) -> QueueAdapter:
        api = HUEY.load()
        huey = api.SqliteHuey("queueprof", filename=str(folder / "huey.db"), **settings)
        return HueyAdapter(huey)

    return open_huey
