"""Hooks through which profilers watch the queue: connection threads and operations.

Process-wide on purpose, like ``threading.setprofile``: a profiler wraps a whole workload
run, and the queues that run opens are the workload's business, not the profiler's. With no
observer registered, each queue operation pays one truthiness test of a module list.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .stats import QueueStats


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
