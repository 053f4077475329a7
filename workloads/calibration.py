"""Calibration: the queue's own statements through plain ``sqlite3``, no queue in between.

Machines drift (other processes, CPU frequency, a different VM), so a figure measured on one
day cannot be judged against a figure from another day on its own. What can be judged is a
ratio to something measured in the same process a moment earlier that depends on the machine
in the same way but not on the queue's code: this module's cycles. They execute
:mod:`taskqueue.sql`'s strings on a ``sqlite3`` connection with the queue's pragmas, so
dividing a queue figure by them leaves the queue's own overhead (the aiosqlite thread hop,
JSON, Task objects), not the machine's speed.

- :func:`raw_cycle`: INSERT, CLAIM_RETURNING (n=1), COMPLETE, one task at a time;
- :func:`raw_batched`: INSERT_MANY, CLAIM_RETURNING (n=batch), COMPLETE_MANY, with the
  documents :func:`taskqueue.sql.insert_documents` and ``ack_documents`` build.
"""

from __future__ import annotations

import sqlite3
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from taskqueue import sql

from .errors import ParameterError, WorkloadError


def raw_connection(path: Path) -> sqlite3.Connection:
    """A ``sqlite3`` connection to a new database at ``path``: the queue's pragmas and schema."""
    db = sqlite3.connect(path, isolation_level=None)
    for pragma in sql.PRAGMAS:
        db.execute(pragma)
    db.executescript(sql.SCHEMA)
    return db


def raw_cycle(path: Path, tasks: int) -> float:
    """Tasks/s for INSERT, CLAIM_RETURNING (n=1), COMPLETE on one sqlite3 connection."""
    return tasks / (sum(raw_cycle_ns(path, tasks)) / 1e9)


def raw_cycle_ns(path: Path, tasks: int) -> list[int]:
    """Each cycle's duration (ns) of :func:`raw_cycle`'s loop."""
    db = raw_connection(path)
    payload = orjson.dumps({"n": 0}).decode()
    durations = []
    for _ in range(tasks):
        start = time.perf_counter_ns()
        now = time.time()
        db.execute(sql.INSERT, ("noop", payload, 0, now, 3, now))
        claim = {"worker": "w0", "lease_until": now + 30, "now": now, "n": 1}
        task_id, _, _, _, attempts, _ = db.execute(sql.CLAIM_RETURNING, claim).fetchone()
        done = {"id": task_id, "attempts": attempts, "result": "null", "now": now}
        db.execute(sql.COMPLETE, done)
        durations.append(time.perf_counter_ns() - start)
    db.close()
    return durations


def raw_batched(path: Path, tasks: int, batch: int) -> float:
    """Tasks/s for INSERT_MANY, CLAIM_RETURNING (n=batch), COMPLETE_MANY, ``batch`` at a time."""
    durations = raw_batched_ns(path, tasks, batch)
    return len(durations) * batch / (sum(durations) / 1e9)


def raw_batched_ns(path: Path, tasks: int, batch: int) -> list[int]:
    """Each batch's duration (ns) of :func:`raw_batched`'s loop (``tasks // batch`` of them)."""
    db = raw_connection(path)
    durations = []
    for _ in range(tasks // batch):
        start = time.perf_counter_ns()
        now = time.time()
        rows = sql.insert_documents([["noop", {"n": 0}, 0, 0.0, 3]] * batch)
        batch_statements(db, sql.INSERT_MANY, "rows", rows, now)
        claim = {"worker": "w0", "lease_until": now + 30, "now": now, "n": batch}
        claimed = db.execute(sql.CLAIM_RETURNING, claim).fetchall()
        if len(claimed) != batch:  # a reference that skipped work would flatter every ratio
            raise WorkloadError(
                f"calibration claimed {len(claimed)} of the {batch} tasks it had just inserted "
                f"into {path}; the statements in taskqueue/sql.py and this loop disagree"
            )
        acks = sql.ack_documents([(row[0], row[4], "null") for row in claimed])
        batch_statements(db, sql.COMPLETE_MANY, "acks", acks, now)
        durations.append(time.perf_counter_ns() - start)
    db.close()
    return durations


def batch_statements(
    db: sqlite3.Connection, statement: str, name: str, documents: list[str], now: float
) -> None:
    """``statement`` once per document, in one transaction when there are several, as the
    queue's store runs a batch bigger than ``sql.FLAT_ROWS_MOST`` (the calibration and the
    sqlite3 reference adapter both send their batches through here)."""
    several = len(documents) > 1
    if several:
        db.execute("BEGIN IMMEDIATE")
    for document in documents:
        db.execute(statement, {name: document, "now": now}).fetchall()
    if several:
        db.execute("COMMIT")


@dataclass(frozen=True, slots=True)
class CalibrationSettings:
    """How much work one calibration does (a few tenths of a second at the defaults)."""

    cycle_tasks: int = 2_000
    batched_tasks: int = 20_000
    batch: int = 100
    repeats: int = 2
    """Each loop runs this many times, on fresh databases; the median is over all of them."""

    def __post_init__(self) -> None:
        for name in ("cycle_tasks", "batched_tasks", "batch", "repeats"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ParameterError(f"calibration {name}={value!r}: must be a whole number >= 1")
        if self.batched_tasks < self.batch:
            raise ParameterError(
                f"calibration batched_tasks={self.batched_tasks} is less than batch="
                f"{self.batch}: no batch would run; make batched_tasks at least batch"
            )

    def to_dict(self) -> dict[str, int]:
        """JSON-ready form."""
        return {
            "cycle_tasks": self.cycle_tasks,
            "batched_tasks": self.batched_tasks,
            "batch": self.batch,
            "repeats": self.repeats,
        }


@dataclass(frozen=True, slots=True)
class Calibration:
    """Plain sqlite3's speed on this machine, just now."""

    cycle_per_s: float
    """Full task cycles per second, one task at a time."""
    batched_per_s: float
    """Full task cycles per second, in batches."""

    @property
    def cycle_ms(self) -> float:
        """Milliseconds one unbatched raw cycle takes: the yardstick of per-call latencies."""
        return 1000.0 / self.cycle_per_s

    def to_dict(self) -> dict[str, float]:
        """JSON-ready form."""
        return {"cycle_per_s": self.cycle_per_s, "batched_per_s": self.batched_per_s}

    @classmethod
    def from_dict(cls, data: Any) -> Calibration:
        """Read :meth:`to_dict` output; raises KeyError, TypeError or ValueError if malformed."""
        calibration = cls(float(data["cycle_per_s"]), float(data["batched_per_s"]))
        if not (calibration.cycle_per_s > 0 and calibration.batched_per_s > 0):
            raise ValueError(f"calibration rates must be > 0, got {data!r}")
        return calibration


def calibrate(settings: CalibrationSettings | None = None) -> Calibration:
    """Both raw cycles' speed from the median duration of one cycle (one batch).

    A median of single cycles, like the queue's per-operation p50, is not moved by the few
    cycles another process preempted; a rate over the whole loop would count every one.
    """
    settings = settings or CalibrationSettings()
    cycles: list[int] = []
    batches: list[int] = []
    with tempfile.TemporaryDirectory(prefix="queueprof-calibration-") as scratch:
        folder = Path(scratch)
        for repeat in range(settings.repeats):
            cycles += raw_cycle_ns(folder / f"cycle-{repeat}.db", settings.cycle_tasks)
            batches += raw_batched_ns(
                folder / f"batched-{repeat}.db", settings.batched_tasks, settings.batch
            )
    return Calibration(
        1e9 / statistics.median(cycles), settings.batch * 1e9 / statistics.median(batches)
    )
