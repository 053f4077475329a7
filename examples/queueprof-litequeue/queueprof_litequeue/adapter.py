"""litequeue's ``LiteQueue`` behind queueprof's adapter protocol.

What a queue's user writes to compare their queue in ``queueprof run comparison``: it
imports only queueprof's public adapter API, and its pyproject declares the
``queueprof.adapters`` entry point. Nothing in queueprof names litequeue.

litequeue keeps one table with an index on ``message_id`` and one on ``status``; ``pop``
(``_pop_returning`` on SQLite 3.35 and later, ``_pop_transaction`` before) takes the oldest
ready message inside ``BEGIN IMMEDIATE`` with ``WHERE status = 0 ORDER BY message_id LIMIT
1``, one message per transaction. ``done`` marks a message done by its ``message_id``;
``get`` reads one. litequeue is synchronous with one connection per queue: the adapter calls
it on the event loop's thread, as the built-in peers are called.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from workloads.adapters import AdapterSpec, CodePath, Contender, QueueAdapter

LITEQUEUE = AdapterSpec(
    name="litequeue",
    module="litequeue",
    package="litequeue",
    exactly_once=False,
    guarantee="at-most-once",
    delivery=(
        "at-most-once: a popped message whose worker dies stays LOCKED; litequeue has no "
        "timeout sweep, the application must find it (list_locked) and retry it"
    ),
    code_paths=(
        CodePath("enqueue", "queueprof_litequeue/adapter.py", ("enqueue",)),
        CodePath("claim", "queueprof_litequeue/adapter.py", ("claim",)),
        CodePath("complete", "queueprof_litequeue/adapter.py", ("complete",)),
        CodePath("status", "queueprof_litequeue/adapter.py", ("status",)),
        CodePath("enqueue", "litequeue.py", ("put",)),
        CodePath("claim", "litequeue.py", ("_pop_returning", "_pop_transaction")),
        CodePath("complete", "litequeue.py", ("done",)),
        CodePath("status", "litequeue.py", ("get",)),
    ),
)

STATUS = {0: "pending", 1: "running", 2: "done", 3: "dead"}
"""litequeue's ``MessageStatus`` (READY, LOCKED, DONE, FAILED) onto queueprof's words."""


class LiteQueueAdapter:
    """One litequeue database in its own folder."""

    spec = LITEQUEUE

    def __init__(self, path: Path, *, ready_index: bool = False) -> None:
        self._queue = LITEQUEUE.load().LiteQueue(str(path))
        if ready_index:
            # What pop's WHERE status = 0 ORDER BY message_id needs: an index search of the
            # oldest ready message instead of a sort of every ready one.
            self._queue.conn.execute(
                "CREATE INDEX IF NOT EXISTS ready_by_id ON Queue (status, message_id)"
            )

    async def enqueue(self, payload: Mapping[str, Any]) -> object:
        """``put`` of the payload as JSON; the message's id is the reference."""
        return self._queue.put(orjson.dumps(payload).decode()).message_id

    async def claim(self, n: int) -> Sequence[object]:
        """Up to ``n`` calls of ``pop`` (one message per call)."""
        claimed = []
        for _ in range(n):
            message = self._queue.pop()
            if message is None:
                break
            claimed.append(message)
        return claimed

    async def complete(self, claimed: Sequence[object]) -> None:
        """``done`` for each message."""
        for message in claimed:
            self._queue.done(message.message_id)  # type: ignore[attr-defined]

    async def status(self, ref: object) -> str | None:
        """``get``, litequeue's status mapped onto queueprof's status words."""
        found = self._queue.get(str(ref))
        return None if found is None else STATUS[int(found.status)]

    async def close(self) -> None:
        """Close the queue's connection."""
        self._queue.close()


async def open_litequeue(folder: Path) -> QueueAdapter:
    """A fresh litequeue database in ``folder``."""
    return LiteQueueAdapter(folder / "litequeue.db")


async def open_litequeue_indexed(folder: Path) -> QueueAdapter:
    """The same, with an index on (status, message_id) added after litequeue creates its own."""
    return LiteQueueAdapter(folder / "litequeue.db", ready_index=True)


CONTENDERS = (
    Contender(
        name="litequeue",
        spec=LITEQUEUE,
        settings="documented defaults: WAL, synchronous=NORMAL (litequeue sets both)",
        open=open_litequeue,
        peer=True,
    ),
    Contender(
        name="litequeue-indexed",
        spec=LITEQUEUE,
        settings="the same, with an index on (status, message_id) that pop's claim can search",
        open=open_litequeue_indexed,
        peer=True,
    ),
)
"""What the entry point names: litequeue with its defaults, a peer of our queue, and with the
index its pop needs (what its defaults cost)."""
