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
import gc
import importlib.util
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from formats.chrome_trace import Event, to_ns, write_trace
from runs.files import VIZTRACER_TRACE as TRACE
from taskqueue import QueueObserver, QueueStats, SqlSample, observing

from .base import Artifact, ArtifactKind, Profiler, ProfilerError, ProfilerOptions
from .base import ProfilerUnavailable as Unavailable
from .timeline import Anchor, OpRecord
from .viztracer_trace import (
    QUEUE_OPTIONS,
    QueueRecording,
    TraceScope,
    TraceSummary,
    VizTracerOptions,
    process_trace,
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
        self.loop_threads: set[str] = set()

    def operation(
        self, op: str, worker: str | None, start_ns: int, end_ns: int, items: int
    ) -> None:
        self.ops.append(OpRecord(op, worker, start_ns, end_ns, items))
        # Operations finish on the event loop's thread: SQL seen there ran inline.
        self.loop_threads.add(threading.current_thread().name)

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

    def recording(self) -> QueueRecording:
        """What was reported so far, as the trace processor takes it."""
        with self._lock:
            return QueueRecording(
                ops=self.ops,
                sql=self.sql,
                connections=dict(self.connections),
                loop_threads=frozenset(self.loop_threads),
                queues_closed=self.queues_closed,
                open_connections=self._open_connections,
            )


class VizTracerProfiler(Profiler):
    """viztracer plus queue-operation spans, SQL slices and queue counters, in one trace."""

    name = "viztracer"
    description = (
        "tracer: filtered Python call timeline + queue-op spans per worker, SQL slices, "
        "queue counters (Chrome trace for Perfetto / vizviewer)"
    )
    options_type = VizTracerOptions
    queue_options = QUEUE_OPTIONS

    def __init__(self, options: ProfilerOptions, run_dir: Path) -> None:
        super().__init__(options, run_dir)
        assert isinstance(options, VizTracerOptions)
        self.opts = options
        self.summary: TraceSummary | None = None
        """What the trace holds and what went wrong (overflow, missing SQL...): the manifest's
        ``summary`` under this profiler, once :meth:`finish` has written the trace."""
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
        processed = process_trace(
            raw,
            viztracer_metadata,
            self._recorder.recording(),
            (self._anchors[0], self._anchors[-1]),
            self.opts,
            TraceScope(self.include_files(), self._bridge()),
            pid=os.getpid(),
            run_name=self.run_dir.name,
            interrupted=interrupted,
        )
        name = TRACE_GZ if self.opts.gzip else TRACE
        size = write_trace(self.run_dir / name, processed.document, compress=self.opts.gzip)
        self.summary = processed.summary.written(name, size, len(processed.events))
        return [
            Artifact(
                ArtifactKind.TIMELINE,
                name,
                "chrome-trace",
                f"vizviewer {name}  (offline Perfetto UI; or drop it on https://ui.perfetto.dev)",
                _describe(self.summary, self.opts.min_duration_us),
            )
        ]

    def manifest(self) -> dict[str, Any]:
        """Name and options, plus :attr:`summary` (overflow, lanes, counts, warnings)."""
        summary = {} if self.summary is None else self.summary.to_dict()
        return {**super().manifest(), "summary": summary}


def _describe(summary: TraceSummary, min_duration_us: float) -> str:
    """The artifact's one-line description."""
    text = (
        f"{summary.python.slices} Python call slices (>= {min_duration_us:g} us), "
        f"{summary.queue_ops.spans} queue-op spans on {summary.queue_ops.lanes} lane(s), "
        f"{summary.sql.slices} SQL slices, queue depth / in-flight / completion-rate counters"
    )
    if summary.overflowed:
        text += f"; buffer overflowed, ~{summary.dropped_estimate} early Python events lost"
    if summary.interrupted:
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
