"""The viztracer trace processor on hand-built events: no tracer, no queue, no files."""

from __future__ import annotations

from typing import Any

from formats.chrome_trace import Event, check_nesting
from profilers.timeline import Anchor, OpRecord
from profilers.viztracer_trace import (
    ProcessedTrace,
    QueueRecording,
    TraceScope,
    VizTracerOptions,
    process_trace,
)
from taskqueue import SqlSample

ROOT = "/srv/app/taskqueue/"
BRIDGE = "/usr/lib/python3/asyncio/events.py"
PID, MAIN = 7, 7
WINDOW = (Anchor(perf_ns=1_000_000, trace_ns=0), Anchor(perf_ns=101_000_000, trace_ns=100_000_000))
"""The session: 100 ms, both clocks at the same rate, perf_counter 1 ms ahead."""


def call(name: str, ts_us: float, dur_us: float) -> Event:
    return {"ph": "X", "name": name, "pid": PID, "tid": MAIN, "ts": ts_us, "dur": dur_us}


def raw_events() -> list[Event]:
    return [
        {"ph": "M", "name": "thread_name", "pid": PID, "tid": MAIN, "args": {"name": "MainThread"}},
        # the loop bridge around a queue function, and a call still running at the stop
        call(f"Handle._run ({BRIDGE}:80)", 1_000.0, 500.0),
        call(f"Store.insert ({ROOT}store.py:10)", 1_100.0, 200.0),
        {
            "ph": "B",
            "name": f"Worker.run ({ROOT}worker.py:5)",
            "pid": PID,
            "tid": MAIN,
            "ts": 90_000.0,
        },
        # half inside Store.insert: cannot nest, dropped
        call(f"Store.claim ({ROOT}store.py:40)", 1_250.0, 100.0),
    ]


def recording(**overrides: Any) -> QueueRecording:
    fields: dict[str, Any] = {
        "ops": [
            OpRecord("enqueue", None, 2_000_000, 2_400_000, 2),
            OpRecord("claim", "w0", 3_000_000, 3_100_000, 2),
        ],
        "sql": [SqlSample("enqueue", "INSERT INTO tasks VALUES (?)", 2_100_000, 200_000, 2, "t1")],
        "connections": {"t1": "shared"},
        "queues_closed": 1,
        "open_connections": 0,
    }
    return QueueRecording(**(fields | overrides))


def process(options: VizTracerOptions | None = None, **overrides: Any) -> ProcessedTrace:
    return process_trace(
        raw_events(),
        {},
        recording(**overrides),
        WINDOW,
        options or VizTracerOptions(source_info=False),
        TraceScope(include_files=[ROOT, BRIDGE], bridge=[BRIDGE]),
        pid=PID,
        run_name="hand-built",
    )


def test_python_calls_are_cleaned_and_counted() -> None:
    # GIVEN a bridge slice, a queue call, an unfinished call and one that cannot nest
    processed = process()
    python = [e for e in processed.events if e["ph"] == "X" and e["tid"] == MAIN]
    # THEN the bridge is gone, names are portable, the unfinished call ends at the stop
    assert sorted(e["name"] for e in python) == [
        "Store.insert (taskqueue/store.py:10)",
        "Worker.run (taskqueue/worker.py:5)",
    ]
    unfinished = next(e for e in python if e["name"].startswith("Worker.run"))
    assert unfinished["args"] == {"unfinished": True}
    assert unfinished["ts"] + unfinished["dur"] == 100_000.0  # the stop, in microseconds
    assert check_nesting(processed.events) == []
    # AND the summary says what happened to each, as typed fields
    calls = processed.summary.python
    assert calls.slices == 2
    assert calls.loop_internal_slices_removed == 1
    assert calls.unfinished_calls_closed_at_stop == 1
    assert calls.dropped_not_nested == 1


def test_loop_internals_keeps_the_bridge() -> None:
    processed = process(VizTracerOptions(loop_internals=True, source_info=False))
    assert processed.summary.python.loop_internal_slices_removed == 0
    assert any(e["name"].startswith("Handle._run") for e in processed.events)


def test_queue_timeline_is_merged_on_the_trace_clock() -> None:
    processed = process()
    summary = processed.summary
    assert summary.queue_ops.by_op == {"enqueue": 1, "claim": 1}
    assert summary.queue_ops.spans == 2
    assert summary.sql.slices == 1
    assert summary.counters.completions_from == "operations"  # no completing statement
    enqueue = next(e for e in processed.events if e.get("cat") == "queue-op")
    assert enqueue["ts"] == 1_000.0  # perf 2 ms is trace 1 ms
    assert summary.warnings == []
    assert summary.overflowed is False
    assert processed.document["queueprof_metadata"] == {
        "profiler": "viztracer",
        "run": "hand-built",
    }


def test_missing_sql_and_a_full_buffer_are_warned_about() -> None:
    # GIVEN a buffer exactly as large as the events recorded, and no queue closed
    processed = process(
        VizTracerOptions(tracer_entries=1_000, source_info=False), sql=[], queues_closed=0
    )
    summary = processed.summary
    assert summary.buffer.recorded == 4
    assert summary.overflowed is False
    assert any("no queue was closed" in w for w in summary.warnings)
    # WHEN the buffer came back full (viztracer says so in its metadata)
    full = process_trace(
        raw_events(),
        {"overflow": True},
        recording(),
        WINDOW,
        VizTracerOptions(source_info=False),
        TraceScope([ROOT, BRIDGE], [BRIDGE]),
        pid=PID,
        run_name="hand-built",
    )
    # THEN it is reported, with a marker where the kept events start
    assert full.summary.overflowed is True
    assert any("overflowed" in w for w in full.summary.warnings)
    assert any(e["ph"] == "i" and "overflow" in e["name"] for e in full.events)


def test_summary_is_the_manifest_entry_once_written() -> None:
    summary = process().summary
    entry = summary.to_dict()
    assert "trace" not in entry
    assert "kept_from_ns" not in entry["buffer"]
    assert entry["python"]["dropped_not_nested"] == 1
    written = summary.written("viztracer.trace.json", 1234, 10).to_dict()
    assert written["trace"] == {"path": "viztracer.trace.json", "bytes": 1234, "events": 10}
