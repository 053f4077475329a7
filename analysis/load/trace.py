"""A Chrome trace (viztracer's, with the queue's own lanes) loaded into compact columns.

The trace can be far larger than what the analysis needs, so events are read in batches
(:class:`~analysis.load.chrome_stream.TraceEventStream`) and only this is kept:

- queue-operation spans (category ``queue-op``): each span's duration, by operation;
- SQL slices (category ``sql``, named ``"<op>: <STATEMENT KIND>"``): time and count by
  operation and by statement;
- every other complete (``X``) slice on a real thread: start, duration and name id, in
  typed arrays per lane (about 20 bytes per slice), for self-time attribution;
- thread names (``M`` events), counter events counted, malformed events reported.

The first batch is checked with :func:`formats.chrome_trace.shape_problems`, the per-event
half of the checker the writer uses (lane names and nesting span the whole trace), so a file
from another tool is flagged early. Checking every batch would more than double the
load time of a large trace; later events are only guarded as they are read: one that lacks
what the analysis reads is skipped and reported.
"""

from __future__ import annotations

import gc
from array import array
from collections import defaultdict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from formats.chrome_trace import shape_problems
from formats.timeline import SYNTHETIC_TID_BASE

from ..errors import ArtifactError
from .chrome_stream import FIX, TraceEventStream

Lane = tuple[int, int]

OP_CATEGORY = "queue-op"
SQL_CATEGORY = "sql"
MAX_PROBLEMS = 5


@dataclass
class CallSlices:
    """The function slices of one lane, as parallel typed arrays (microseconds)."""

    starts: array[float] = field(default_factory=lambda: array("d"))
    durations: array[float] = field(default_factory=lambda: array("d"))
    names: array[int] = field(default_factory=lambda: array("i"))

    def __len__(self) -> int:
        return len(self.starts)


@dataclass(frozen=True)
class SqlSliceTotals:
    """SQL slices of one statement (or one operation): how many and their total time."""

    count: int
    total_us: float


@dataclass
class TraceData:
    """What the analysis keeps of a Chrome trace (see the module docstring)."""

    path: Path
    events: int
    thread_names: dict[Lane, str]
    op_durations_us: dict[str, np.ndarray[Any, np.dtype[np.float64]]]
    sql_by_op: dict[str, SqlSliceTotals]
    sql_by_statement: dict[int, tuple[str, SqlSliceTotals]]
    sql_by_lane: dict[Lane, dict[str, SqlSliceTotals]]
    """Each SQL lane's slices by operation: which thread ran them (a connection's, or the
    event loop's when the call ran inline)."""
    call_lanes: dict[Lane, CallSlices]
    names: list[str]
    counters: int
    problems: tuple[str, ...]
    skipped: int
    metadata: Mapping[str, Any]


class _Builder:
    def __init__(self) -> None:
        self.thread_names: dict[Lane, str] = {}
        self.op_durations: dict[str, array[float]] = defaultdict(lambda: array("d"))
        self.sql_statement: dict[int, list[Any]] = {}
        self.sql_totals: dict[tuple[int, int, str], list[float]] = {}
        """(pid, tid, op) -> [count, total us] of the SQL slices on that lane."""
        self.lanes: dict[Lane, CallSlices] = defaultdict(CallSlices)
        self.name_ids: dict[str, int] = {}
        self.names: list[str] = []
        self.counters = 0
        self.problems: list[str] = []
        self.skipped = 0

    def check_shape(self, batch: list[dict[str, Any]], first_index: int) -> None:
        """Check each event of ``batch`` on its own with the writer's checker."""
        for index, problem in shape_problems(batch):
            self._problem(first_index + index, problem)

    def add_batch(self, batch: list[dict[str, Any]], first_index: int) -> None:
        # The hot loop of the load: one pass, locals only, no per-event method call for
        # the common function slice.
        lanes = self.lanes
        name_ids = self.name_ids
        for index, event in enumerate(batch):
            try:
                phase = event["ph"]
                if phase == "X":
                    category = event.get("cat")
                    if category == OP_CATEGORY:
                        self.op_durations[event["name"]].append(float(event["dur"]))
                    elif category == SQL_CATEGORY:
                        self._sql(event)
                    elif event["tid"] < SYNTHETIC_TID_BASE:
                        slices = lanes[(event["pid"], event["tid"])]
                        name = event["name"]
                        name_id = name_ids.get(name)
                        if name_id is None:
                            name_id = self._name_id(name)
                        slices.starts.append(event["ts"])
                        slices.durations.append(event["dur"])
                        slices.names.append(name_id)
                elif phase == "M":
                    if event["name"] == "thread_name":
                        self.thread_names[(event["pid"], event["tid"])] = str(event["args"]["name"])
                elif phase == "C":
                    self.counters += 1
            except (KeyError, TypeError, ValueError, AttributeError) as error:
                self.skipped += 1
                self._problem(first_index + index, f"malformed event ({error!r}): {event!r:.80}")

    def _problem(self, index: int, message: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(f"event #{index}: {message}")

    def _sql(self, event: dict[str, Any]) -> None:
        args = event.get("args") or {}
        op = str(args.get("op") or event["name"].partition(":")[0])
        duration = float(event["dur"])
        key = (event["pid"], event["tid"], op)
        totals = self.sql_totals.get(key)
        if totals is None:
            totals = self.sql_totals[key] = [0, 0.0]
        totals[0] += 1
        totals[1] += duration
        statement = args.get("statement")
        if isinstance(statement, int):
            entry = self.sql_statement.setdefault(statement, [op, 0, 0.0])
            entry[1] += 1
            entry[2] += duration

    def _name_id(self, name: str) -> int:
        found = self.name_ids.get(name)
        if found is None:
            found = self.name_ids[name] = len(self.names)
            self.names.append(name)
        return found


@contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off while a trace loads.

    Each batch is tens of thousands of live dicts, so the collector's allocation counters
    kept firing full collections that walked them all: 20 of them, 1.0-1.5 s of a 4.2 s
    load of 150 MB. The parsed events are trees (JSON), and the loader makes no cycles, so
    reference counting frees everything; the collector is back on (if it was) afterwards.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def load_trace(path: Path) -> TraceData:
    """Stream the Chrome trace at ``path`` into a :class:`TraceData`."""
    stream = TraceEventStream(path)
    builder = _Builder()
    seen = 0
    with _collector_paused():
        for batch in stream:
            if seen == 0:
                builder.check_shape(batch, seen)
            builder.add_batch(batch, seen)
            seen += len(batch)
    if seen == 0:
        raise ArtifactError(path, "the Chrome trace holds no events", FIX)
    if builder.skipped >= seen:
        raise ArtifactError(
            path, f"no event of the Chrome trace is well formed: {builder.problems[0]}", FIX
        )
    return TraceData(
        path=path,
        events=seen,
        thread_names=builder.thread_names,
        op_durations_us={
            op: np.frombuffer(values, dtype=np.float64).copy()
            for op, values in builder.op_durations.items()
        },
        sql_by_op=_sql_by_op(builder.sql_totals),
        sql_by_statement={
            index: (str(op), SqlSliceTotals(int(count), float(total)))
            for index, (op, count, total) in builder.sql_statement.items()
        },
        sql_by_lane=_sql_by_lane(builder.sql_totals),
        call_lanes=dict(builder.lanes),
        names=builder.names,
        counters=builder.counters,
        problems=tuple(builder.problems),
        skipped=builder.skipped,
        metadata=stream.metadata,
    )


def _sql_by_op(totals: Mapping[tuple[int, int, str], list[float]]) -> dict[str, SqlSliceTotals]:
    count: dict[str, int] = defaultdict(int)
    total: dict[str, float] = defaultdict(float)
    for (_, _, op), (n, us) in totals.items():
        count[op] += int(n)
        total[op] += us
    return {op: SqlSliceTotals(count[op], total[op]) for op in count}


def _sql_by_lane(
    totals: Mapping[tuple[int, int, str], list[float]],
) -> dict[Lane, dict[str, SqlSliceTotals]]:
    lanes: dict[Lane, dict[str, SqlSliceTotals]] = defaultdict(dict)
    for (pid, tid, op), (n, us) in totals.items():
        lanes[(pid, tid)][op] = SqlSliceTotals(int(n), us)
    return dict(lanes)
