"""Hooks through which profilers watch the queue: connection threads and operations.

Process-wide on purpose, like ``threading.setprofile``: a profiler wraps a whole workload
run, and the queues that run opens are the workload's business, not the profiler's. With no
observer registered, each queue operation pays one truthiness test of a module list.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .stats import QueueStats


OPERATION_FUNCTIONS: Mapping[str, Mapping[str, tuple[str, ...]]] = {
    "taskqueue/queue.py": {
        "enqueue": ("enqueue", "enqueue_many"),
        "claim": (
            "claim",
            "complete_and_claim",
            "complete_acks_and_claim",
            "_claim_deferred",
            "_claim_args",
        ),
        # _acks_landed and the _finished it calls: the bookkeeping once completions land
        # (stale acks, waking their pollers), also when the acks ride on a claim: completion
        # work, whoever carried the acks, and whatever replaces _finished.
        "complete": ("complete", "complete_many", "complete_acks", "_acks_landed", "_finished"),
        "fail": ("fail",),
        "status": ("status", "poll", "counts", "is_drained"),
        "reclaim": ("reclaim_expired",),
    },
    "taskqueue/store.py": {
        "enqueue": ("insert", "insert_many"),
        "claim": (
            "claim_returning",
            "claim_immediate",
            "begin_deferred",
            "select_ready",
            "claim_ids",
            "complete_and_claim",
            "claim_group",
            # Only the deferred claim commits or rolls back as a call of its own.
            "commit",
            "rollback",
        ),
        "complete": ("complete_acks",),
        "fail": ("fail",),
        "status": ("status", "counts", "is_drained"),
        "reclaim": ("reclaim",),
    },
    # The PostgreSQL backend: the queue's coroutines and its store's, as on SQLite.
    "taskqueue/pgqueue.py": {
        "enqueue": ("enqueue", "enqueue_many"),
        "claim": ("claim", "complete_acks_and_claim", "_acks_beside_claim"),
        "complete": ("complete_acks",),
        "fail": ("fail",),
        "status": ("status", "counts", "is_drained"),
        "reclaim": ("reclaim_expired",),
    },
    "taskqueue/pgstore.py": {
        "enqueue": ("insert", "insert_many", "_insert_document"),
        "claim": ("claim", "complete_and_claim"),
        "complete": ("complete_acks",),
        "fail": ("fail",),
        "status": ("status", "counts", "is_drained"),
        "reclaim": ("reclaim",),
    },
}
"""Which of the queue's own functions do which operation: file (as a path suffix) ->
operation -> function names. Whatever runs below one of them (a profile's samples, the
statements of a connection the code opened itself) is that operation's work; the innermost
such frame decides."""


def operation_functions() -> Iterator[tuple[str, str, str]]:
    """:data:`OPERATION_FUNCTIONS` flattened: (file suffix, operation, function name)."""
    for file, ops in OPERATION_FUNCTIONS.items():
        for op, names in ops.items():
            for name in names:
                yield file, op, name


class QueueObserver:
    """Base class: override what you need. Methods must be quick and must not raise."""

    def connection_opened(self, key: str) -> None:
        """Called on a connection's own thread right after it opens (``key``: its owner)."""

    def connection_closing(self, key: str) -> None:
        """Called on a connection's own thread right before it closes."""

    def operation(
        self, op: str, worker: str | None, start_ns: int, end_ns: int, items: int
    ) -> None:
        """Called on the event loop after each queue operation (``perf_counter_ns`` times)."""

    def thread_call(self, started: bool) -> None:
        """Called on the event loop as a call is sent to a connection thread (``started``)
        and as its result is back: no call outstanding means every connection thread is
        waiting for its next job."""

    def queue_closed(self, stats: QueueStats) -> None:
        """Called when a queue closes, with everything its instrumentation recorded."""


active: list[QueueObserver] = []
"""Registered observers. Read by the queue on every operation; change it via :func:`observing`."""


@contextmanager
def observing(observer: QueueObserver) -> Iterator[QueueObserver]:
    """Register ``observer`` for the duration of the block."""
    active.append(observer)
    try:
        yield observer
    finally:
        active.remove(observer)
