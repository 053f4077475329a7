"""A viztracer report that agrees with itself: inline SQL is the event loop's, not a
connection thread's; a function's inclusive time is counted once; no share passes 100%."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson

from analysis.attribution import Attribution
from analysis.load.trace import load_trace
from analysis.model import Analysis
from analysis.profile import ThreadRole
from analysis.render import html_page
from analysis.trace_attribution import attribute_trace
from formats.timeline import sql_lane
from profilers.timeline import Lanes, sql_slices
from taskqueue import SqlSample

from . import builders

PID = 7
LOOP = (PID, PID)
STEP = "ThroughputWorkload._step (workloads/throughput.py:90)"
ENQUEUE = "TaskQueue.enqueue (taskqueue/queue.py:200)"


def _x(name: str, ts: float, dur: float, tid: int = PID, **extra: Any) -> dict[str, Any]:
    return {"ph": "X", "name": name, "pid": PID, "tid": tid, "ts": ts, "dur": dur, **extra}


def _thread(tid: int, name: str) -> dict[str, Any]:
    return {"ph": "M", "name": "thread_name", "pid": PID, "tid": tid, "args": {"name": name}}


def _sql(tid: int, ts: float, dur: float, op: str = "enqueue") -> dict[str, Any]:
    return _x(f"{op}: INSERT INTO tasks", ts, dur, tid, cat="sql", args={"op": op})


def _load(tmp_path: Path, events: list[dict[str, Any]]) -> Attribution:
    path = tmp_path / "viztracer.trace.json"
    path.write_bytes(orjson.dumps({"traceEvents": events}))
    return attribute_trace(load_trace(path), path.name)


CALLS = [
    _thread(PID, "MainThread"),
    # a worker's step, resumed inside its own earlier slice (a coroutine), calling enqueue
    _x(STEP, 0.0, 100.0),
    _x(STEP, 10.0, 50.0),
    _x(ENQUEUE, 20.0, 30.0),
]


def test_sql_inline_on_the_loop_is_no_connection_threads_time(tmp_path: Path) -> None:
    # GIVEN SQL that ran on the event loop's thread (inline), on its own lane
    inline = 1_000_000_100
    events = [*CALLS, _thread(inline, sql_lane("MainThread", inline=True)), _sql(inline, 25, 5)]
    # WHEN attributed THEN no "aiosqlite threads" role claims it: the loop's calls hold it
    roles = [role.role for role in _load(tmp_path, events).roles]
    assert roles == [ThreadRole.EVENT_LOOP]


def test_traces_that_named_the_loop_a_sqlite_thread_read_the_same(tmp_path: Path) -> None:
    legacy = 1_000_000_100
    events = [*CALLS, _thread(legacy, "sqlite thread MainThread"), _sql(legacy, 25, 5)]
    assert [role.role for role in _load(tmp_path, events).roles] == [ThreadRole.EVENT_LOOP]


def test_sql_on_connection_threads_is_theirs(tmp_path: Path) -> None:
    # GIVEN one connection thread whose overlapping statements took a second lane
    first, second = 1_000_000_100, 1_000_000_101
    events = [
        *CALLS,
        _thread(first, sql_lane("Thread-3", inline=False)),
        _thread(second, sql_lane("Thread-3", inline=False) + " (overlap 2)"),
        _sql(first, 25, 5),
        _sql(second, 26, 2, op="claim"),
    ]
    attribution = _load(tmp_path, events)
    sql = next(r for r in attribution.roles if r.role is ThreadRole.SQLITE_THREAD)
    assert sql.threads == 1
    assert sql.samples == 2
    assert abs(sql.total - 7e-6) < 1e-12


def test_inclusive_time_counts_a_function_once(tmp_path: Path) -> None:
    attribution = _load(tmp_path, CALLS)
    (loop,) = attribution.roles
    step = next(f for c in loop.categories for f in c.top_total if f.function.endswith("_step"))
    # the outer slice's 100 us, not 100 + 50 for the slice resumed inside it
    assert abs(step.total_time - 100e-6) < 1e-12
    assert loop.total <= 100e-6 + 1e-12


def test_no_share_in_the_report_passes_100_percent(tmp_path: Path) -> None:
    attribution = _load(tmp_path, CALLS)
    run = builders.run_analysis(profiler="viztracer", attributions=(attribution,))
    html = html_page.render(Analysis(runs=(run,)))
    shares = [float(v) for v in re.findall(r"(\d+(?:\.\d+)?)%", html)]
    assert shares
    assert max(shares) <= 100.0


def test_sql_lane_says_where_the_statement_ran() -> None:
    samples = [
        SqlSample("claim", "UPDATE tasks SET x = 1", 10, 5, 1, "MainThread"),
        SqlSample("enqueue", "INSERT INTO tasks (a) VALUES (1)", 20, 5, 1, "Thread-2"),
    ]
    lanes = Lanes(pid=1)
    sql_slices(samples, lambda ns: ns / 1e3, lanes, 0, {"Thread-2": "shared"}, {"MainThread"})
    names = sorted(event["args"]["name"] for event in lanes.metadata())
    assert names == [
        "SQL inline on the event loop (MainThread)",
        "sqlite thread Thread-2, connection shared",
    ]
