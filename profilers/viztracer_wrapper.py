"""viztracer, filtered to the queue's and the workloads' code, plus the queue's own timeline.

Unfiltered, viztracer records every Python call (about 160 MB of JSON for 3,000 tasks) in a
ring buffer that silently drops the oldest events when full. This wrapper:

- records only functions of ``taskqueue/`` and ``workloads/`` (``include_files``) that last at
  least ``min_duration_us``. viztracer's include filter works on call *subtrees*: a call from
  a file outside the list hides everything below it. Every coroutine step of an asyncio
  program is called from ``asyncio/base_events.py`` (``_run_once``) and ``asyncio/events.py``
  (``Handle._run``), so with the two packages alone nothing after the first ``await`` would
  be recorded. Those two files are therefore included as a bridge, and their slices are
  removed from the written trace unless ``loop_internals=true``. Each resumption of a
  coroutine chain also records one slice per awaiting frame; the outer ones carry no time
  of their own and are collapsed into the frame they await (``collapse_us``).
- adds the queue's own timeline (:mod:`profilers.timeline`) from :mod:`taskqueue.observe`:
  a span per queue operation on a lane per worker, a slice per SQL statement on a lane per
  connection thread, and counters (queue depth, tasks in flight, completions per second).
- detects a ring-buffer overflow (the buffer came back full) and says so in :attr:`summary`,
  with an estimate of the events lost and a marker in the trace where the kept ones start.
- checks that slices nest on every lane (Perfetto drops those that do not) and writes one
  Chrome Trace Event JSON file, ``viztracer.trace.json`` (``.gz`` with ``gzip=true``).

viztracer hooks ``threading.setprofile`` when it is created, so threads started during the
session (aiosqlite starts one per connection as a queue opens) would be traced too; their
first frame, ``Thread.run``, is outside the include list, so nothing of theirs would be
recorded anyway, at a cost on the thread that runs the SQL. The hook is therefore removed
unless ``trace_threads=true``, which also includes aiosqlite and, as a bridge, ``threading``
so that the queue's functions on those threads show up. Threads started before the session
are never traced. The SQL statements are on their lanes either way.
"""

from __future__ import annotations

import asyncio
import bisect
import gc
import importlib.util
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence, Set
from contextlib import contextmanager
from dataclasses import dataclass
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
    write_trace,
)
from runs.files import VIZTRACER_TRACE as TRACE
from taskqueue import QueueObserver, QueueStats, SqlSample, observing

from .base import Artifact, ArtifactKind, Profiler, ProfilerError, ProfilerOptions
from .base import ProfilerUnavailable as Unavailable
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

TRACE_GZ = TRACE + ".gz"

_LOOP_BRIDGE = tuple(
    os.path.join(os.path.dirname(asyncio.__file__), name)
    for name in ("base_events.py", "events.py")
)
"""asyncio's files every coroutine step is called from (see the module docstring)."""

_THREAD_BRIDGE = (threading.__file__,)
"""Where every thread's first frame (``Thread.run``) lives: without it in the include list,
nothing a thread calls is recorded."""

_SHARED_CONNECTION = "__main__"
"""The key :class:`taskqueue.TaskQueue` gives its shared connection."""

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


class _Recorder(QueueObserver):
    """Collects what the queue reports during the session: operations and SQL samples."""

    def __init__(self) -> None:
        self.ops: list[OpRecord] = []
        self.sql: list[SqlSample] = []
        self.queues_closed = 0
        self.connections: dict[str, str] = {}
        """Connection thread name -> the connection's owner (``shared`` or a worker)."""
        self._open_connections = 0
        self._lock = threading.Lock()

    def operation(
        self, op: str, worker: str | None, start_ns: int, end_ns: int, items: int
    ) -> None:
        self.ops.append(OpRecord(op, worker, start_ns, end_ns, items))

    def queue_closed(self, stats: QueueStats) -> None:
        self.sql.extend(stats.sql)
        self.queues_closed += 1

    def connection_opened(self, key: str) -> None:
        owner = "shared" if key == _SHARED_CONNECTION else key
        with self._lock:
            self._open_connections += 1
            self.connections[threading.current_thread().name] = owner

    def connection_closing(self, key: str) -> None:
        with self._lock:
            self._open_connections -= 1

    @property
    def open_connections(self) -> int:
        """Connections opened during the session and not closed (their SQL is missing)."""
        return self._open_connections


class VizTracerProfiler(Profiler):
    """viztracer plus queue-operation spans, SQL slices and queue counters, in one trace."""

    name = "viztracer"
    description = (
        "tracer: filtered Python call timeline + queue-op spans per worker, SQL slices, "
        "queue counters (Chrome trace for Perfetto / vizviewer)"
    )
    options_type = VizTracerOptions
    queue_options = "capture_sql=true"

    def __init__(self, options: ProfilerOptions, run_dir: Path) -> None:
        super().__init__(options, run_dir)
        assert isinstance(options, VizTracerOptions)
        self.opts = options
        self.summary: dict[str, Any] = {}
        """What the trace holds and what went wrong (overflow, missing SQL...): the manifest's
        ``summary`` under this profiler."""
        self._recorder = _Recorder()
        self._tracer: Any = None
        self._anchors: list[Anchor] = []
        self._started = False

    @classmethod
    def check_available(cls) -> None:
        try:
            import viztracer  # type: ignore[import-untyped]
        except ImportError:
            raise Unavailable(
                "viztracer is not installed; install it with `pip install viztracer` "
                "(or `pip install queueprof[profilers]`)"
            ) from None
        version = getattr(viztracer, "__version__", "0")
        if int(version.split(".")[0]) < 1:
            raise Unavailable(
                f"viztracer {version} is too old; upgrade it with `pip install -U 'viztracer>=1.0'`"
            )

    def include_files(self) -> list[str]:
        """Where recorded functions must live: the queue, the workloads, the bridges..."""
        roots = [_package_dir("taskqueue"), _package_dir("workloads")]
        if self.opts.trace_threads:
            roots.append(_package_dir("aiosqlite"))
        return [*roots, *self.opts.extra_paths, *self._bridge()]

    def _bridge(self) -> tuple[str, ...]:
        """Included only so that the code below them is reached (see the module docstring)."""
        return _LOOP_BRIDGE + _THREAD_BRIDGE if self.opts.trace_threads else _LOOP_BRIDGE

    @contextmanager
    def session(self) -> Iterator[None]:
        if self._started:
            raise ProfilerError(
                "this VizTracerProfiler already recorded a session; create a new one per run"
            )
        self._started = True
        from viztracer import VizTracer

        opts = self.opts
        threads_hook = threading.getprofile()
        tracer = VizTracer(
            tracer_entries=opts.tracer_entries,
            verbose=0,
            max_stack_depth=opts.max_stack_depth,
            include_files=self.include_files(),
            ignore_c_function=opts.ignore_c_function,
            log_async=opts.log_async,
            min_duration=opts.min_duration_us,
            register_global=False,
            process_name=f"queueprof {self.run_dir.name}",
        )
        try:
            if not opts.trace_threads:
                # Undo the hook the constructor installed: new threads run untraced.
                threading.setprofile(threads_hook)
            self._tracer = tracer
            with observing(self._recorder):
                self._anchors.append(_anchor(tracer))
                tracer.start()
                try:
                    yield
                finally:
                    tracer.stop()
                    self._anchors.append(_anchor(tracer))
        finally:
            threading.setprofile(threads_hook)

    def finish(self, *, interrupted: bool = False) -> list[Artifact]:
        tracer, self._tracer = self._tracer, None
        if tracer is None:
            raise ProfilerError(
                "viztracer wrote no trace: its session never started (the run ended before "
                "the workload reached the event loop) or finish() was already called"
            )
        try:
            tracer.parse()
        except (RuntimeError, ValueError, MemoryError) as error:
            raise ProfilerError(
                f"viztracer could not read back its buffer ({error}); no trace was written. "
                "Lower tracer_entries or raise min_duration_us and run again"
            ) from error
        raw: list[Event] = tracer.data.get("traceEvents", [])
        viztracer_metadata: dict[str, Any] = dict(tracer.data.get("viztracer_metadata", {}))
        # The tracer sits in a reference cycle, and freeing it resets threading.setprofile to
        # None: free it now, while the hook in force is known, rather than at a later
        # collection that would silently drop someone else's hook.
        threads_hook = threading.getprofile()
        del tracer
        gc.collect()
        threading.setprofile(threads_hook)
        document = self._document(raw, viztracer_metadata, interrupted)
        name = TRACE_GZ if self.opts.gzip else TRACE
        size = write_trace(self.run_dir / name, document, compress=self.opts.gzip)
        self.summary["trace"] = {
            "path": name,
            "bytes": size,
            "events": len(document["traceEvents"]),
        }
        return [
            Artifact(
                ArtifactKind.TIMELINE,
                name,
                "chrome-trace",
                f"vizviewer {name}  (offline Perfetto UI; or drop it on https://ui.perfetto.dev)",
                self._describe(interrupted),
            )
        ]

    def manifest(self) -> dict[str, Any]:
        """Name and options, plus :attr:`summary` (overflow, lanes, counts, warnings)."""
        return {**super().manifest(), "summary": self.summary}

    # -- building the trace ---------------------------------------------------------------

    def _document(
        self, raw: list[Event], viztracer_metadata: dict[str, Any], interrupted: bool
    ) -> dict[str, Any]:
        opts = self.opts
        start, end = self._anchors[0], self._anchors[-1]
        pid = os.getpid()
        names = _FunctionNames(self.include_files(), self._bridge())
        python, python_stats = self._python_events(raw, end.trace_ns, names)
        clock = ClockMap.from_anchors(start, end)
        ops = self._recorder.ops
        buffer = _buffer_report(
            raw,
            opts.tracer_entries,
            (start.trace_ns, end.trace_ns),
            sorted(clock(r.end_ns) for r in ops),
            viztracer_metadata,
        )
        lanes = Lanes(pid)
        sql = self._recorder.sql
        spans = op_spans(ops, clock, lanes)
        statements = sql_slices(sql, clock, lanes, opts.sql_chars, self._recorder.connections)
        from_sql = any(s.op == "complete" for s in sql)
        completions = completions_from_sql(sql) if from_sql else completions_from_ops(ops)
        counters = queue_counters(
            ops,
            completions,
            clock,
            pid,
            window_ns=(start.perf_ns, end.perf_ns),
            resolution_ns=round(opts.counter_resolution_ms * 1e6),
            rate_bucket_ns=round(opts.rate_bucket_ms * 1e6),
        )

        events: list[Event] = []
        if not any(e.get("name") == "process_name" for e in raw if e.get("ph") == "M"):
            events.append(process_name_event(pid, f"queueprof {self.run_dir.name}"))
        events.extend(python)
        events.extend(lanes.metadata())
        events.extend(spans.events)
        events.extend(statements.events)
        events.extend(counters.events)
        if buffer["overflowed"] and buffer["kept_from_ns"] is not None:
            events.append(
                instant_event(
                    "viztracer buffer overflow: Python calls before this point were dropped",
                    pid,
                    buffer["kept_from_ns"],
                    {"dropped_estimate": buffer["dropped_estimate"]},
                )
            )

        warnings = self._warnings(ops, sql, buffer)
        self.summary = {
            "overflowed": buffer["overflowed"],
            "dropped_estimate": buffer["dropped_estimate"],
            "interrupted": interrupted,
            "buffer": {k: v for k, v in buffer.items() if k != "kept_from_ns"},
            "python": python_stats,
            "queue_ops": {
                "spans": len(spans.events),
                "by_op": dict(Counter(r.op for r in ops)),
                "lanes": spans.lanes,
                "moved_to_overlap_lanes": spans.relaned,
            },
            "sql": {
                "slices": len(statements.events),
                "lanes": statements.lanes,
                "moved_to_overlap_lanes": statements.relaned,
                "queues_closed": self._recorder.queues_closed,
            },
            "counters": {
                "samples": dict(counters.samples),
                "baselines": counters.baselines,
                "completions_from": "sql" if from_sql else "operations",
            },
            "clock_rate": clock.rate,
            "include_files": self.include_files(),
            "warnings": warnings,
        }
        document: dict[str, Any] = {
            "traceEvents": events,
            "displayTimeUnit": "ns",
            "viztracer_metadata": viztracer_metadata,
            "queueprof_metadata": {"profiler": self.name, "run": self.run_dir.name},
        }
        if opts.source_info:
            document["file_info"] = names.source_info(
                {e["name"] for e in python if e.get("ph") == "X"}
            )
        return document

    def _python_events(
        self, raw: list[Event], stop_ns: int, names: _FunctionNames
    ) -> tuple[list[Event], dict[str, Any]]:
        """viztracer's events, cleaned: loop-bridge slices removed, file paths in names
        shortened, unfinished calls closed at the stop, anything not nested dropped."""
        drop_bridge = not self.opts.loop_internals
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
        if self.opts.collapse_us > 0:
            nested, collapsed = collapse_pass_through(nested, round(self.opts.collapse_us * 1000))
        slices = sum(1 for e in nested if e.get("ph") == "X")
        return nested, {
            "slices": slices,
            "pass_through_slices_collapsed": collapsed,
            "loop_internal_slices_removed": bridge,
            "unfinished_calls_closed_at_stop": unfinished,
            "dropped_not_nested": dropped,
        }

    def _warnings(
        self, ops: Sequence[OpRecord], sql: Sequence[SqlSample], buffer: dict[str, Any]
    ) -> list[str]:
        warnings = []
        if buffer["overflowed"]:
            warnings.append(
                f"viztracer's ring buffer ({self.opts.tracer_entries} events) overflowed: about "
                f"{buffer['dropped_estimate']} early Python call events were dropped (queue "
                "spans, SQL slices and counters are complete); raise tracer_entries or "
                "min_duration_us"
            )
        if self._recorder.open_connections > 0:
            warnings.append(
                f"{self._recorder.open_connections} queue connection(s) were still open when the "
                "session ended: the SQL statements of their queues are missing (close every "
                "TaskQueue inside the workload)"
            )
        if ops and not sql:
            if self._recorder.queues_closed:
                warnings.append(
                    "no SQL statements were captured: open the queue with capture_sql=true "
                    f"(the profiler's queue options: {self.queue_options})"
                )
            else:
                warnings.append(
                    "no queue was closed during the session, and a queue reports its SQL "
                    "statements when it closes: the trace has no SQL slices (close every "
                    "TaskQueue inside the workload)"
                )
        return warnings

    def _describe(self, interrupted: bool) -> str:
        s = self.summary
        text = (
            f"{s['python']['slices']} Python call slices (>= {self.opts.min_duration_us:g} us), "
            f"{s['queue_ops']['spans']} queue-op spans on {s['queue_ops']['lanes']} lane(s), "
            f"{s['sql']['slices']} SQL slices, queue depth / in-flight / completion-rate counters"
        )
        if s["overflowed"]:
            text += f"; buffer overflowed, ~{s['dropped_estimate']} early Python events lost"
        if interrupted:
            text += "; interrupted run (partial)"
        return text


def _package_dir(name: str) -> str:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ProfilerError(f"cannot find the {name!r} package to trace; is queueprof installed?")
    # The separator keeps ``.../taskqueue`` from also matching ``.../taskqueue_old``.
    return os.path.join(os.path.abspath(next(iter(spec.submodule_search_locations))), "")


def _anchor(tracer: Any) -> Anchor:
    """``perf_counter_ns`` and viztracer's clock read together; the tightest of 5 tries."""
    best: tuple[int, Anchor] | None = None
    for _ in range(5):
        before = time.perf_counter_ns()
        trace_us = tracer.getts()
        after = time.perf_counter_ns()
        candidate = (after - before, Anchor((before + after) // 2, to_ns(trace_us)))
        if best is None or candidate[0] < best[0]:
            best = candidate
    assert best is not None
    return best[1]


def _buffer_report(
    raw: Sequence[Event],
    capacity: int,
    window: tuple[int, int],
    activity: Sequence[int],
    viztracer_metadata: dict[str, Any],
) -> dict[str, Any]:
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
    basis = None
    if overflowed and kept_from is not None:
        ops_before = bisect.bisect_left(activity, kept_from)
        ops_inside = len(activity) - ops_before
        if ops_inside >= _MIN_OPS_FOR_ESTIMATE:
            dropped, basis = round(recorded * ops_before / ops_inside), "queue operations"
        else:
            lost_span = max(kept_from - start, 0)
            dropped, basis = round(recorded * lost_span / max(end - kept_from, 1)), "time"
    return {
        "capacity": capacity,
        "recorded": recorded,
        "overflowed": overflowed,
        "dropped_estimate": dropped,
        "dropped_estimate_from": basis,
        "kept_from_s": None if kept_from is None else (kept_from - start) / 1e9,
        "kept_from_ns": kept_from,
    }


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
