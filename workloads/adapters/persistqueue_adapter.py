"""persist-queue's ``SQLiteAckQueue`` behind the adapter protocol, through its public API.

``put`` inserts, ``get(block=False, raw=True)`` selects the next ready row and marks it
unacked, ``ack`` marks it acked. Acked rows stay in the table until ``clear_acked_data()``
deletes them (keeping the latest 1,000 by default), so the adapter calls it with its defaults
after every 1,000 acks, as a long-running consumer of this queue has to; without it every
``get`` walks past all acked rows. The queue has no per-task status.

persist-queue is synchronous; like the huey adapter this one calls it directly on the event
loop's thread (its own locks are thread locks; a thread hop would only add cost it does not
pay when used as documented). It favours persist-queue, never us.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import WorkloadError
from .base import AdapterSpec, Opener, QueueAdapter
from .specs import PERSIST_QUEUE

CLEAR_EVERY = 1_000


class PersistQueueAdapter:
    """One ``SQLiteAckQueue`` in its own folder."""

    def __init__(self, queue: Any, empty: type[Exception]) -> None:
        self._queue = queue
        self._empty = empty
        self._acks = 0

    @property
    def spec(self) -> AdapterSpec:
        """:data:`~workloads.adapters.specs.PERSIST_QUEUE`."""
        return PERSIST_QUEUE

    async def enqueue(self, payload: Mapping[str, Any]) -> object:
        """``put``; the row id is the reference."""
        return self._queue.put(dict(payload))

    async def claim(self, n: int) -> Sequence[object]:
        """Up to ``n`` calls of ``get(block=False, raw=True)`` (one task per call)."""
        claimed = []
        for _ in range(n):
            try:
                claimed.append(self._queue.get(block=False, raw=True))
            except self._empty:
                break
        return claimed

    async def complete(self, claimed: Sequence[object]) -> None:
        """``ack`` each task; ``clear_acked_data()`` after every 1,000 acks."""
        for item in claimed:
            self._queue.ack(item)
            self._acks += 1
            if self._acks % CLEAR_EVERY == 0:
                self._queue.clear_acked_data()

    async def status(self, ref: object) -> str | None:
        """Never called: ``SQLiteAckQueue`` has no per-task status (``has_status`` is False)."""
        raise WorkloadError(
            "persist-queue's SQLiteAckQueue has no per-task status query; "
            "callers check spec.has_status first"
        )

    async def close(self) -> None:
        """Close both connections."""
        self._queue.close()


def persistqueue_opener(**settings: Any) -> Opener:
    """Opens ``SQLiteAckQueue(folder / 'persist-queue', **settings)``.

    With no settings it is persist-queue's documented default (WAL; ``synchronous`` is not
    configurable, so SQLite's FULL).
    """

    async def open_persistqueue(folder: Path) -> QueueAdapter:
        module = PERSIST_QUEUE.load()
        queue = module.SQLiteAckQueue(str(folder / "persist-queue"), **settings)
        return PersistQueueAdapter(queue, module.Empty)

    return open_persistqueue
