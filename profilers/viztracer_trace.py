"""viztracer's raw trace made into queueprof's trace: a processor over the events.

:func:`process_trace` takes what a session recorded (viztracer's events, the queue's own
operations and SQL statements, the clock anchors) and returns the trace document to write
with a :class:`TraceSummary`: what the trace holds and what went wrong. It keeps no state
and writes nothing (it reads the recorded source files only for ``source_info``), so it runs
the same on a real session and on hand-built events. See
:mod:`profilers.viztracer_wrapper` for why the trace is filtered and bridged as it is.
"""

from __future__ import annotations

import bisect
import dataclasses
import os
import re
from collections import Counter
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from formats.chrome_trace import (
    Event,
    collapse_pass_through,
    complete_event,
    instant_event,
    keep_nested,
    process_name_event,
    to_ns,
    to_us,
)
from taskqueue import SqlSample

from .base import ProfilerOptions
from .timeline import (
    Anchor,
    ClockMap,
    Lanes,
    OpRecord,
    completions_from_ops,
    completions_from_sql,
    op_spans,
    queue_counters,
    sql_slices,
)

QUEUE_OPTIONS = "capture_sql=true"
"""Queue options a traced run needs: SQL capture, for the statement lanes."""

_SOURCE_NAME = re.compile(r" \((.+):(\d+)\)$")
"""viztracer names Python functions ``qualname (file:line)``."""


@dataclass(frozen=True)
class VizTracerOptions(ProfilerOptions):
    """How much viztracer records, and what the written trace holds."""

    min_duration_us: float = 10.0
    """Drop function calls shorter than this (microseconds). The main size lever: at 10, a
    10,000-task drain by 5 workers writes about 13 MB; at 5 about 18 MB; 0 records every
    call."""
    collapse_us: float = 1.0
    """Drop call slices whose only recorded child covers all of them but this many
    microseconds: coroutine frames that merely pass each resumption on to the frame they
    await (about half the slices of an asyncio run). 0 keeps every slice."""
    max_stack_depth: int = -1
    """Record calls at most this many frames deep, counting asyncio's own loop frames
    (-1: no limit)."""
    tracer_entries: int = 1_000_000
    """viztracer's ring buffer, in events; when it fills, the oldest are dropped."""
    ignore_c_function: bool = True
    """Leave out calls of C functions (len, isinstance, ...)."""
    trace_threads: bool = False
    """Also trace threads started during the run (aiosqlite connection threads)."""
    loop_internals: bool = False
    """Keep the slices of asyncio's ``_run_once`` and ``Handle._run`` (one per loop callback)
    and, with ``trace_threads``, of ``threading`` (each thread's ``run``)."""
    log_async: bool = False
    """viztracer's async mode: each asyncio task on its own lane."""
    include: str = ""
    """More files or folders to record, comma-separated (e.g. your handlers' module)."""
    sql_chars: int = 200
    """Characters of statement text kept on each SQL slice (0: none)."""
    counter_resolution_ms: float = 1.0
    """Queue depth and in-flight tracks keep one value per this many milliseconds."""
    rate_bucket_ms: float = 100.0
    """Completions per second are counted over buckets of this many milliseconds."""
    source_info: bool = True
    """Embed the source of recorded files, for vizviewer's source view."""
    gzip: bool = False
    """Write ``viztracer.trace.json.gz`` (Perfetto and vizviewer open it as is)."""

    def __post_init__(self) -> None:
        if not 0 <= self.min_duration_us <= 1_000_000:
            raise ValueError(f"min_duration_us={self.min_duration_us!r} must be 0..1000000")
        if not 0 <= self.collapse_us <= 1_000_000:
            raise ValueError(f"collapse_us={self.collapse_us!r} must be 0..1000000")
        if self.max_stack_depth != -1 and not 1 <= self.max_stack_depth <= 10_000:
            raise ValueError(
                f"max_stack_depth={self.max_stack_depth!r} must be -1 (no limit) or 1..10000"
            )
        if not 1_000 <= self.tracer_entries <= 100_000_000:
            raise ValueError(f"tracer_entries={self.tracer_entries!r} must be 1000..100000000")
        if not 0 <= self.sql_chars <= 100_000:
            raise ValueError(f"sql_chars={self.sql_chars!r} must be 0..100000")
        if not 0.001 <= self.counter_resolution_ms <= 60_000:
            raise ValueError(
                f"counter_resolution_ms={self.counter_resolution_ms!r} must be 0.001..60000"
            )
        if not 1 <= self.rate_bucket_ms <= 600_000:
            raise ValueError(f"rate_bucket_ms={self.rate_bucket_ms!r} must be 1..600000")
        for path in self.extra_paths:
            if not os.path.exists(path):
                raise ValueError(
                    f"include={self.include!r}: {path!r} does not exist; name existing files "
                    "or folders, separated by commas"
                )

    @property
    def extra_paths(self) -> list[str]:
        """The ``include`` entries as absolute paths."""
        return [os.path.abspath(p.strip()) for p in self.include.split(",") if p.strip()]


@dataclass(frozen=True)
class QueueRecording:
    """What the queue reported during the session (see ``taskqueue.observe``)."""

    ops: Sequence[OpRecord]
    sql: Sequence[SqlSample]
    connections: Mapping[str, str]
    """Connection thread name -> the connection's owner (``shared`` or a worker)."""
    queues_closed: int
    open_connections: int
    """Connections opened during the session and not closed (their SQL is missing)."""
    loop_threads: frozenset[str] = frozenset()
    """Threads queue operations finished on (event loops): SQL there ran inline."""


@dataclass(frozen=True)
class TraceScope:
    """Where the recorded functions live: names are shortened to start at these folders."""

    include_files: Sequence[str]
    bridge: Sequence[str]
    """Files included only to reach the code below them; their slices are dropped unless
    ``loop_internals``."""


@dataclass(frozen=True)
class PythonCalls:
    """What became of viztracer's own call events."""

    slices: int
    pass_through_slices_collapsed: int
    loop_internal_slices_removed: int
    unfinished_calls_closed_at_stop: int
    dropped_not_nested: int


@dataclass(frozen=True)
class BufferReport:
    """Whether viztracer's ring buffer overflowed and about how many events it lost."""

    capacity: int
    recorded: int
    overflowed: bool
    dropped_estimate: int
    dropped_estimate_from: str | None
    """``queue operations`` or ``time``: what the estimate is scaled from (None: no loss)."""
    kept_from_s: float | None
    """Seconds into the session where the kept events begin."""
    kept_from_ns: int | None = field(default=None, metadata={"manifest": False})
    """The same on the trace clock, for the marker in the trace; not in the manifest."""


@dataclass(frozen=True)
class QueueOpsSummary:
    """The queue-operation spans."""

    spans: int
    by_op: dict[str, int]
    lanes: int
    moved_to_overlap_lanes: int


@dataclass(frozen=True)
class SqlSummary:
    """The SQL statement slices."""

    slices: int
    lanes: int
    moved_to_overlap_lanes: int
    queues_closed: int


@dataclass(frozen=True)
class CounterSummary:
    """The queue depth, in-flight and completion-rate tracks."""

    samples: dict[str, int]
    baselines: dict[str, int]
    completions_from: str
    """``sql`` (completing statements) or ``operations`` (``complete`` calls)."""


@dataclass(frozen=True)
class TraceFile:
    """The written trace file."""

    path: str
    bytes: int
    events: int


@dataclass(frozen=True)
class TraceSummary:
    """What a processed trace holds and what went wrong: the manifest's profiler summary."""

    interrupted: bool
    buffer: BufferReport
    python: PythonCalls
    queue_ops: QueueOpsSummary
    sql: SqlSummary
    counters: CounterSummary
    clock_rate: float
    include_files: list[str]
    warnings: list[str]
    trace: TraceFile | None = None
    """Set once the document is written (:meth:`written`)."""

    @property
    def overflowed(self) -> bool:
        return self.buffer.overflowed

    @property
    def dropped_estimate(self) -> int:
        return self.buffer.dropped_estimate

    def written(self, path: str, size: int, events: int) -> TraceSummary:
        """This summary with the written file's name, size in bytes and event count."""
        return dataclasses.replace(self, trace=TraceFile(path, size, events))

    def to_dict(self) -> dict[str, Any]:
        """The manifest entry (the layout the manifest has always had)."""
        entry: dict[str, Any] = {
            "overflowed": self.overflowed,
            "dropped_estimate": self.dropped_estimate,
            "interrupted": self.interrupted,
            "buffer": {
                f.name: getattr(self.buffer, f.name)
                for f in dataclasses.fields(self.buffer)
                if f.metadata.get("manifest", True)
            },
            "python": dataclasses.asdict(self.python),
            "queue_ops": dataclasses.asdict(self.queue_ops),
            "sql": dataclasses.asdict(self.sql),
            "counters": dataclasses.asdict(self.counters),
            "clock_rate": self.clock_rate,
            "include_files": list(self.include_files),
            "warnings": list(self.warnings),
        }
        if self.trace is not None:
            entry["trace"] = dataclasses.asdict(self.trace)
        return entry


@dataclass(frozen=True)
class ProcessedTrace:
    """The Chrome trace document to write and what it holds."""

    document: dict[str, Any]
    summary: TraceSummary

    @property
    def events(self) -> list[Event]:
        events: list[Event] = self.document["traceEvents"]
        return events


def process_trace(
    raw: list[Event],
    viztracer_metadata: Mapping[str, Any],
    recording: QueueRecording,
    window: tuple[Anchor, Anchor],
    options: VizTracerOptions,
    scope: TraceScope,
    *,
    pid: int,
    run_name: str,
    interrupted: bool = False,
) -> ProcessedTrace:
    """viztracer's events cleaned and merged with the queue's own timeline.

    ``raw`` is viztracer's ``traceEvents`` (its X events are renamed in place); ``window``
    the clock anchors read as the session started and stopped.
    """
    start, end = window
    names = _FunctionNames(scope.include_files, scope.bridge)
    python, python_calls = _python_events(raw, end.trace_ns, names, options)
    clock = ClockMap.from_anchors(start, end)
    ops, sql = recording.ops, recording.sql
    buffer = _buffer_report(
        raw,
        options.tracer_entries,
        (start.trace_ns, end.trace_ns),
        sorted(clock(r.end_ns) for r in ops),
        viztracer_metadata,
    )
    lanes = Lanes(pid)
    spans = op_spans(ops, clock, lanes)
    statements = sql_slices(
        sql,
        clock,
        lanes,
        options.sql_chars,
        dict(recording.connections),
        loop_threads=recording.loop_threads,
    )
    from_sql = any(s.op == "complete" for s in sql)
    completions = completions_from_sql(sql) if from_sql else completions_from_ops(ops)
    counters = queue_counters(
        ops,
        completions,
        clock,
        pid,
        window_ns=(start.perf_ns, end.perf_ns),
        resolution_ns=round(options.counter_resolution_ms * 1e6),
        rate_bucket_ns=round(options.rate_bucket_ms * 1e6),
    )

    events: list[Event] = []
    if not any(e.get("name") == "process_name" for e in raw if e.get("ph") == "M"):
        events.append(process_name_event(pid, f"queueprof {run_name}"))
    events.extend(python)
    events.extend(lanes.metadata())
    events.extend(spans.events)
    events.extend(statements.events)
    events.extend(counters.events)
    if buffer.overflowed and buffer.kept_from_ns is not None:
        events.append(
            instant_event(
                "viztracer buffer overflow: Python calls before this point were dropped",
                pid,
                buffer.kept_from_ns,
                {"dropped_estimate": buffer.dropped_estimate},
            )
        )

    summary = TraceSummary(
        interrupted=interrupted,
        buffer=buffer,
        python=python_calls,
        queue_ops=QueueOpsSummary(
            spans=len(spans.events),
            by_op=dict(Counter(r.op for r in ops)),
            lanes=spans.lanes,
            moved_to_overlap_lanes=spans.relaned,
        ),
        sql=SqlSummary(
            slices=len(statements.events),
            lanes=statements.lanes,
            moved_to_overlap_lanes=statements.relaned,
            queues_closed=recording.queues_closed,
        ),
        counters=CounterSummary(
            samples=dict(counters.samples),
            baselines=counters.baselines,
            completions_from="sql" if from_sql else "operations",
        ),
        clock_rate=clock.rate,
        include_files=list(scope.include_files),
        warnings=_warnings(recording, buffer, options),
    )
    document: dict[str, Any] = {
        "traceEvents": events,
        "displayTimeUnit": "ns",
        "viztracer_metadata": dict(viztracer_metadata),
        "queueprof_metadata": {"profiler": "viztracer", "run": run_name},
    }
    if options.source_info:
        document["file_info"] = names.source_info({e["name"] for e in python if e.get("ph") == "X"})
    return ProcessedTrace(document, summary)


def _python_events(
    raw: list[Event], stop_ns: int, names: _FunctionNames, options: VizTracerOptions
) -> tuple[list[Event], PythonCalls]:
    """viztracer's events, cleaned: loop-bridge slices removed, file paths in names
    shortened, unfinished calls closed at the stop, anything not nested dropped."""
    drop_bridge = not options.loop_internals
    kept: list[Event] = []
    bridge = unfinished = 0
    for event in raw:
        phase = event.get("ph")
        if phase not in ("X", "B"):
            kept.append(event)
            continue
        name, in_bridge = names.shorten(event["name"])
        if in_bridge and drop_bridge:
            bridge += 1
            continue
        if phase == "B":
            # A call still running when the tracer stopped (flushed without an end).
            start = to_ns(event["ts"])
            event = complete_event(
                name,
                (event["pid"], event["tid"]),
                start,
                max(stop_ns - start, 0),
                category=event.get("cat", "FEE"),
                args={"unfinished": True},
            )
            unfinished += 1
        else:
            event["name"] = name
            # Exact nanoseconds, as the viewer rounds them: same slices, shorter numbers.
            event["ts"] = to_us(to_ns(event["ts"]))
            event["dur"] = to_us(to_ns(event["dur"]))
        kept.append(event)
    nested, dropped = keep_nested(kept)
    collapsed = 0
    if options.collapse_us > 0:
        nested, collapsed = collapse_pass_through(nested, round(options.collapse_us * 1000))
    slices = sum(1 for e in nested if e.get("ph") == "X")
    return nested, PythonCalls(
        slices=slices,
        pass_through_slices_collapsed=collapsed,
        loop_internal_slices_removed=bridge,
        unfinished_calls_closed_at_stop=unfinished,
        dropped_not_nested=dropped,
    )


def _warnings(
    recording: QueueRecording, buffer: BufferReport, options: VizTracerOptions
) -> list[str]:
    warnings = []
    if buffer.overflowed:
        warnings.append(
            f"viztracer's ring buffer ({options.tracer_entries} events) overflowed: about "
            f"{buffer.dropped_estimate} early Python call events were dropped (queue "
            "spans, SQL slices and counters are complete); raise tracer_entries or "
            "min_duration_us"
        )
    if recording.open_connections > 0:
        warnings.append(
            f"{recording.open_connections} queue connection(s) were still open when the "
            "session ended: the SQL statements of their queues are missing (close every "
            "TaskQueue inside the workload)"
        )
    if recording.ops and not recording.sql:
        if recording.queues_closed:
            warnings.append(
                "no SQL statements were captured: open the queue with capture_sql=true "
                f"(the profiler's queue options: {QUEUE_OPTIONS})"
            )
        else:
            warnings.append(
                "no queue was closed during the session, and a queue reports its SQL "
                "statements when it closes: the trace has no SQL slices (close every "
                "TaskQueue inside the workload)"
            )
    return warnings


def _buffer_report(
    raw: Sequence[Event],
    capacity: int,
    window: tuple[int, int],
    activity: Sequence[int],
    viztracer_metadata: Mapping[str, Any],
) -> BufferReport:
    """Whether the ring buffer overflowed and, if so, about how many events it lost.

    viztracer keeps at most ``capacity`` events and counts none beyond, so a buffer that
    comes back full is taken as overflowed (viztracer's own rule). Events are stored as calls
    *end*, so the earliest end among those kept is where the kept window begins. The events
    lost before it are estimated from the queue operations (``activity``: their end times,
    sorted, on the trace clock), since Python calls follow them: kept events times operations
    before the window over operations inside it. With too few operations, from time instead.
    """
    start, end = window
    recorded = 0
    kept_from: int | None = None
    for event in raw:
        phase = event.get("ph")
        if phase == "M":
            continue
        recorded += 1
        if phase == "B":  # flushed at the stop, not where the window starts
            continue
        at = to_ns(event["ts"]) + (to_ns(event.get("dur", 0)) if phase == "X" else 0)
        if kept_from is None or at < kept_from:
            kept_from = at
    overflowed = recorded >= capacity or bool(viztracer_metadata.get("overflow"))
    dropped = 0
    basis: str | None = None
    if overflowed and kept_from is not None:
        ops_before = bisect.bisect_left(activity, kept_from)
        ops_inside = len(activity) - ops_before
        if ops_inside >= _MIN_OPS_FOR_ESTIMATE:
            dropped, basis = round(recorded * ops_before / ops_inside), "queue operations"
        else:
            lost_span = max(kept_from - start, 0)
            dropped, basis = round(recorded * lost_span / max(end - kept_from, 1)), "time"
    return BufferReport(
        capacity=capacity,
        recorded=recorded,
        overflowed=overflowed,
        dropped_estimate=dropped,
        dropped_estimate_from=basis,
        kept_from_s=None if kept_from is None else (kept_from - start) / 1e9,
        kept_from_ns=kept_from,
    )


_MIN_OPS_FOR_ESTIMATE = 20
"""Fewer queue operations than this inside the kept window: estimate losses from time."""


class _FunctionNames:
    """viztracer's function names, ``qualname (/abs/path/file.py:line)``, made portable.

    The path is cut to start at the recorded package's folder (``taskqueue/queue.py``):
    shorter events, and names that do not depend on where the project is installed. The
    real file of each short path is kept for :meth:`source_info`.
    """

    def __init__(self, roots: Sequence[str], bridge: Sequence[str]) -> None:
        self._cuts = sorted(((root, _display_base(root)) for root in roots), reverse=True)
        self._bridge = tuple(bridge)
        self._seen: dict[str, tuple[str, bool]] = {}
        self._functions: dict[str, tuple[str, int]] = {}
        self._files: dict[str, str] = {}

    def shorten(self, name: str) -> tuple[str, bool]:
        """(portable name, whether the function lives in the asyncio loop bridge)."""
        found = self._seen.get(name)
        if found is None:
            found = self._seen[name] = self._shorten(name)
        return found

    def _shorten(self, name: str) -> tuple[str, bool]:
        match = _SOURCE_NAME.search(name)
        if match is None:
            return name, False
        path, line = match.group(1), int(match.group(2))
        for root, base in self._cuts:
            if path.startswith(root):
                short_path = path[len(base) :]
                short = f"{name[: match.start()]} ({short_path}:{line})"
                self._files[short_path] = path
                self._functions[short] = (short_path, line)
                return short, path in self._bridge
        return name, path in self._bridge

    def source_info(self, kept: Set[str]) -> dict[str, Any]:
        """vizviewer's ``file_info`` for the functions named in ``kept``: the source of each
        of their files and where each function starts, so clicking a slice shows its code."""
        functions = {name: self._functions[name] for name in kept if name in self._functions}
        files: dict[str, list[Any]] = {}
        for short_path in {short_path for short_path, _ in functions.values()}:
            path = self._files[short_path]
            try:
                text = Path(path).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue  # removed or not text since the run: that file has no source view
            files[short_path] = [text, text.count("\n")]
        return {
            "files": files,
            "functions": {
                name: [short_path, line]
                for name, (short_path, line) in functions.items()
                if short_path in files
            },
        }


def _display_base(root: str) -> str:
    """What to cut from paths under ``root`` so they start at its last folder."""
    folder = root.rstrip(os.sep) if root.endswith(os.sep) else os.path.dirname(root)
    return os.path.join(os.path.dirname(folder), "")
