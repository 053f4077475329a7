"""Instrumentation: per-operation timings and statement-level SQL capture.

Both are off by default (see :class:`~taskqueue.config.QueueConfig`). When off, an operation
pays one attribute test. Samples are kept raw (nanoseconds in ``array('q')``) so workloads can
compute any percentile from all samples, never from averages.
"""

from __future__ import annotations

import threading
from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import NamedTuple

OPERATIONS = ("enqueue", "claim", "complete", "fail", "status", "counts", "reclaim")
"""Operation names, shared by the queue, the workloads and the analysis."""


class SqlSample(NamedTuple):
    """One SQL statement as it ran on a connection thread."""

    op: str
    """The queue operation that issued it (one of :data:`OPERATIONS`)."""
    sql: str
    start_ns: int
    """``perf_counter_ns`` when the statement started."""
    duration_ns: int
    rows: int
    """Rows returned, or rows changed for statements that return none."""
    thread: str


@dataclass
class QueueStats:
    """What one :class:`TaskQueue` observed. Readable at any time; reset with :meth:`reset`."""

    timings_ns: dict[str, array[int]] = field(default_factory=dict)
    """Per operation, the wall time of every call as the caller saw it."""
    items: Counter[str] = field(default_factory=Counter)
    """Per operation, the tasks it handled (a claim of 100 counts 100)."""
    busy_retries: Counter[str] = field(default_factory=Counter)
    """Per operation, SQLITE_BUSY errors caught and retried (they never reach the caller)."""
    busy_wait_ns: Counter[str] = field(default_factory=Counter)
    """Per operation, wall time lost to another connection's lock: the attempts that ended
    in SQLITE_BUSY (or a PostgreSQL serialization failure, deadlock or lock timeout), whole,
    with any wait SQLite's own busy handler slept inside them, and the backoff slept between
    attempts. The contention's cost, which the retry count alone does not give; a wait that
    ends in the lock (a busy handler that got it, a row lock granted) is not seen."""
    claim_conflicts: int = 0
    """Tasks a two-step claim selected but another connection took first."""
    stale_acks: int = 0
    """Completions or failures ignored because the claim's lease had expired and moved on."""
    claim_trips: int = 0
    """Trips to a connection thread that carried claims (one or several: see ClaimGroup)."""
    grouped_claims: int = 0
    """Claims that shared their trip with other engines' claims."""
    inline_calls: int = 0
    """Operations run on the event loop's thread, with no trip (``dispatch``)."""
    checkpoints: int = 0
    """WAL checkpoints run by the queue's checkpoint connection."""
    checkpoint_errors: int = 0
    """Checkpoints that failed (retried at the next interval)."""
    wal_restarts: int = 0
    """Checkpoints the writing connection ran to start a grown WAL over (see
    ``taskqueue.queue.WAL_RESTART_BYTES``)."""
    wal_restarts_blocked: int = 0
    """Such checkpoints that another process's reader or writer kept from finishing."""
    wal_holds: int = 0
    """Times the writer was held while a slow checkpoint finished, the WAL past twice its
    restart size (``TaskQueue._hold_writer_past``)."""
    sql: list[SqlSample] = field(default_factory=list)

    def record(self, op: str, duration_ns: int, items: int = 1) -> None:
        """Add one timed call of ``op``."""
        self.samples(op).append(duration_ns)
        self.items[op] += items

    def samples(self, op: str) -> array[int]:
        """``op``'s durations, to append to directly (add its items to :attr:`items` too)."""
        samples = self.timings_ns.get(op)
        if samples is None:
            samples = self.timings_ns[op] = array("q")
        return samples

    def reset(self) -> None:
        """Forget everything recorded so far (e.g. after a warm-up)."""
        self.timings_ns.clear()
        self.items.clear()
        self.busy_retries.clear()
        self.busy_wait_ns.clear()
        self.claim_conflicts = 0
        self.stale_acks = 0
        self.claim_trips = 0
        self.grouped_claims = 0
        self.inline_calls = 0
        self.checkpoints = 0
        self.checkpoint_errors = 0
        self.wal_restarts = 0
        self.wal_restarts_blocked = 0
        self.wal_holds = 0
        self.sql.clear()

    def merge(self, other: QueueStats) -> None:
        """Fold another queue's stats into this one (e.g. from worker processes)."""
        for op, samples in other.timings_ns.items():
            self.timings_ns.setdefault(op, array("q")).extend(samples)
        self.items.update(other.items)
        self.busy_retries.update(other.busy_retries)
        self.busy_wait_ns.update(other.busy_wait_ns)
        self.claim_conflicts += other.claim_conflicts
        self.stale_acks += other.stale_acks
        self.claim_trips += other.claim_trips
        self.grouped_claims += other.grouped_claims
        self.inline_calls += other.inline_calls
        self.checkpoints += other.checkpoints
        self.checkpoint_errors += other.checkpoint_errors
        self.wal_restarts += other.wal_restarts
        self.wal_restarts_blocked += other.wal_restarts_blocked
        self.wal_holds += other.wal_holds
        self.sql.extend(other.sql)


def thread_label() -> str:
    """The name SQL samples carry for the thread they ran on."""
    return threading.current_thread().name
