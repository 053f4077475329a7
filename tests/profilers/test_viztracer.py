"""viztracer wrapper: real runs at smoke size, the written trace checked as data."""

from __future__ import annotations

import asyncio
import gc
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from formats.chrome_trace import Event, check_nesting, check_trace, read_trace
from formats.timeline import INLINE_SQL_LANE, SQL_LANE, SYNTHETIC_TID_BASE
from profilers import (
    REGISTRY,
    ArtifactKind,
    ProfilerError,
    ProfilerOptionError,
    ProfilerUnavailable,
    VizTracerProfiler,
)
from profilers.viztracer_wrapper import TRACE, TRACE_GZ, VizTracerOptions
from taskqueue import QueueConfig, TaskQueue, run_async_workers

from .conftest import RunUnder


def lanes_by_name(events: list[Event]) -> dict[str, int]:
    return {
        e["args"]["name"]: e["tid"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"
    }


def slices_on(events: list[Event], tid: int) -> list[Event]:
    return [e for e in events if e["ph"] == "X" and e["tid"] == tid]


def test_smoke_run_writes_a_valid_trace_with_every_part(run_under: RunUnder) -> None:
    # GIVEN the small workload (3 workers, 600 tasks, status reads) under viztracer
    profiler = run_under("viztracer", [])
    artifacts = profiler.finish()
    # THEN one Chrome trace, opened with vizviewer
    assert len(artifacts) == 1
    artifact = artifacts[0]
    assert (artifact.kind, artifact.path, artifact.format) == (
        ArtifactKind.TIMELINE,
        TRACE,
        "chrome-trace",
    )
    assert artifact.viewer.startswith(f"vizviewer {TRACE}")
    document = read_trace(profiler.run_dir / TRACE)
    events: list[Event] = document["traceEvents"]
    # AND it is valid: known phases, names on every lane, every slice nested on its lane
    assert check_trace(document) == []
    assert check_nesting(events) == []
    assert {e["ph"] for e in events} <= {"M", "X", "C", "i"}
    assert document["displayTimeUnit"] == "ns"
    lanes = lanes_by_name(events)
    slice_lanes = {e["tid"] for e in events if e["ph"] == "X"}
    assert slice_lanes <= set(lanes.values())
    # AND each worker's lane has its claims (each engine's acks ride on its next claim, so
    # completions show as "complete: UPDATE tasks" SQL slices, checked below); producers
    # have their enqueues and status queries
    for worker in ("w0", "w1", "w2"):
        ops = Counter(e["name"] for e in slices_on(events, lanes[f"worker {worker} (queue ops)"]))
        assert ops["claim"] > 0, ops
    producer = Counter(e["name"] for e in slices_on(events, lanes["producer (queue ops)"]))
    assert producer["enqueue"] == 2
    assert producer["status"] == 19
    # AND SQL statements on the lane of the thread that ran them, with op, text and rows:
    # the default dispatch runs them inline on the event loop, and the lane says so (not
    # "sqlite thread MainThread", which read as a connection thread)
    sql_lanes = [tid for name, tid in lanes.items() if name.startswith((SQL_LANE, INLINE_SQL_LANE))]
    assert [name for name, tid in lanes.items() if tid in sql_lanes] == [
        f"{INLINE_SQL_LANE} (MainThread)"
    ]
    statements = slices_on(events, sql_lanes[0])
    assert {"enqueue: INSERT INTO tasks", "claim: UPDATE tasks", "complete: UPDATE tasks"} <= {
        e["name"] for e in statements
    }
    claim = next(e for e in statements if e["name"] == "claim: UPDATE tasks")
    assert claim["args"]["op"] == "claim"
    assert claim["args"]["sql"].startswith("UPDATE tasks SET")
    assert len(claim["args"]["sql"]) <= 200
    # AND counter tracks for queue depth, tasks in flight and completions per second
    counters = Counter((e["name"], next(iter(e["args"]))) for e in events if e["ph"] == "C")
    assert set(counters) == {
        ("queue", "depth"),
        ("tasks", "in flight"),
        ("completions", "per second"),
    }
    depth_events = [e for e in events if e["ph"] == "C" and e["name"] == "queue"]
    depths = [e["args"]["depth"] for e in sorted(depth_events, key=lambda e: e["ts"])]
    # The track keeps the last value per resolution window, so the instant of the 601st
    # enqueue may share a window with the first completions: the peak is at most 601 and
    # within one window's completions of it; the queue ends empty.
    assert 550 <= max(depths) <= 601
    assert depths[-1] == 0
    # AND the queue's Python functions on the event loop's lane, with portable file names
    python = [e for e in events if e["ph"] == "X" and e["tid"] < SYNTHETIC_TID_BASE]
    assert python
    assert any("(taskqueue/" in e["name"] for e in python)
    assert not any("asyncio/" in e["name"] for e in python)  # loop internals left out
    assert any(path.startswith("taskqueue/") for path in document["file_info"]["files"])


def test_manifest_entry_carries_the_summary(run_under: RunUnder) -> None:
    profiler = run_under("viztracer", [])
    profiler.finish()
    entry = profiler.manifest()
    assert entry["name"] == "viztracer"
    assert entry["options"]["min_duration_us"] == 10.0
    summary: dict[str, Any] = entry["summary"]
    assert summary["overflowed"] is False
    assert summary["dropped_estimate"] == 0
    assert summary["warnings"] == []
    assert summary["queue_ops"]["by_op"]["enqueue"] == 2
    assert summary["sql"]["slices"] > 0
    assert summary["counters"]["completions_from"] == "sql"
    assert summary["trace"]["path"] == TRACE
    assert summary["trace"]["bytes"] == (profiler.run_dir / TRACE).stat().st_size


def test_gzip_option_writes_a_compressed_trace_that_reads_back(run_under: RunUnder) -> None:
    profiler = run_under("viztracer", ["gzip=true", "sql_chars=0"])
    artifacts = profiler.finish()
    assert artifacts[0].path == TRACE_GZ
    assert not (profiler.run_dir / TRACE).exists()
    document = read_trace(profiler.run_dir / TRACE_GZ)
    assert check_trace(document) == []
    assert all("sql" not in e.get("args", {}) for e in document["traceEvents"])


def test_ring_buffer_overflow_is_detected_and_reported(run_under: RunUnder) -> None:
    # GIVEN a buffer far too small for every call of the run
    profiler = run_under("viztracer", ["tracer_entries=1000", "min_duration_us=0", "collapse_us=0"])
    artifacts = profiler.finish()
    # THEN the summary says so, with an estimate of what was lost
    summary = profiler.manifest()["summary"]
    assert summary["overflowed"] is True
    assert summary["buffer"]["recorded"] == 1000
    assert summary["dropped_estimate"] > 0
    assert any("overflowed" in w for w in summary["warnings"])
    assert "overflowed" in artifacts[0].description
    # AND the trace is still valid, marks where the kept calls start, and the queue's own
    # timeline (not from the buffer) is complete
    document = read_trace(profiler.run_dir / TRACE)
    events = document["traceEvents"]
    assert check_trace(document) == []
    assert any(e["ph"] == "i" and "overflow" in e["name"] for e in events)
    assert sum(1 for e in events if e.get("cat") == "queue-op" and e["name"] == "status") == 19


def test_interrupted_run_still_leaves_a_readable_trace(tmp_path: Path) -> None:
    # GIVEN a run interrupted inside the session, before its queue is closed
    profiler = VizTracerProfiler(VizTracerOptions(), tmp_path)

    async def interrupted_workload() -> None:
        queue = await TaskQueue(tmp_path / "q.db", QueueConfig(capture_sql=True)).open()
        try:
            with profiler.session():
                await queue.enqueue_many([("noop", None)] * 50)
                await run_async_workers(queue, 2)
                raise KeyboardInterrupt
        finally:
            await queue.close()

    with pytest.raises(KeyboardInterrupt):
        asyncio.run(interrupted_workload())
    # WHEN finished as interrupted THEN the trace is written and valid, and says what is
    # missing (the SQL, reported only when a queue closes)
    artifacts = profiler.finish(interrupted=True)
    document = read_trace(tmp_path / artifacts[0].path)
    assert check_trace(document) == []
    assert any(e.get("cat") == "queue-op" for e in document["traceEvents"])
    summary = profiler.manifest()["summary"]
    assert summary["interrupted"] is True
    assert any("no queue was closed" in w for w in summary["warnings"])
    assert "interrupted" in artifacts[0].description


def test_finish_without_a_session_names_what_is_missing(tmp_path: Path) -> None:
    profiler = VizTracerProfiler(VizTracerOptions(), tmp_path)
    with pytest.raises(ProfilerError, match="session never started"):
        profiler.finish()


def test_profile_hooks_are_neither_left_behind_nor_clobbered(run_under: RunUnder) -> None:
    # GIVEN some other tool's thread profile hook in force
    def other_tools_hook(*args: object) -> None:
        return None

    threading.setprofile(other_tools_hook)
    try:
        # WHEN a traced run ends and its trace is written
        profiler = run_under("viztracer", [])
        assert sys.getprofile() is None
        assert threading.getprofile() is other_tools_hook
        profiler.finish()
        gc.collect()  # the tracer, if still alive, would reset the hook when freed
        # THEN the hook is still the other tool's
        assert threading.getprofile() is other_tools_hook
    finally:
        threading.setprofile(None)


def test_trace_threads_records_queue_functions_on_connection_threads(
    run_under: RunUnder,
) -> None:
    profiler = run_under(
        "viztracer", ["trace_threads=true", "min_duration_us=0"], "dispatch=thread"
    )
    profiler.finish()
    document = read_trace(profiler.run_dir / TRACE)
    assert check_trace(document) == []
    events = document["traceEvents"]
    main_tid = next(e["tid"] for e in events if e.get("args", {}).get("name") == "MainThread")
    on_threads = {
        e["name"].split(" (")[0]
        for e in events
        if e["ph"] == "X" and e["tid"] not in (main_tid,) and e["tid"] < SYNTHETIC_TID_BASE
    }
    assert any(name.startswith("Store.") for name in on_threads), on_threads


def test_bad_options_name_the_option_and_the_valid_range(tmp_path: Path) -> None:
    with pytest.raises(ProfilerOptionError, match=r"min_duration_us=-1.0 must be 0..1000000"):
        VizTracerOptions.parse(["min_duration_us=-1"])
    with pytest.raises(ProfilerOptionError, match=r"tracer_entries=10 must be 1000"):
        VizTracerOptions.parse(["tracer_entries=10"])
    missing = tmp_path / "nope.py"
    with pytest.raises(ProfilerOptionError, match=r"does not exist"):
        VizTracerOptions.parse([f"include={missing}"])
    with pytest.raises(ProfilerOptionError, match=r"'min_duration'.*valid: min_duration_us"):
        VizTracerOptions.parse(["min_duration=5"])


def test_missing_viztracer_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "viztracer", None)  # makes `import viztracer` fail
    with pytest.raises(ProfilerUnavailable, match=r"pip install viztracer"):
        VizTracerProfiler.check_available()


def test_registered_with_queue_options_the_queue_accepts() -> None:
    assert REGISTRY["viztracer"] is VizTracerProfiler
    assert QueueConfig.parse(VizTracerProfiler.queue_options).capture_sql is True
