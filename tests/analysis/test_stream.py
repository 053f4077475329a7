"""The chunked Chrome trace reader returns what one orjson.loads of the file returns."""

from __future__ import annotations

import gc
import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from analysis.errors import ArtifactError
from analysis.load.chrome_stream import TraceEventStream
from analysis.load.trace import load_trace

EVENTS: list[dict[str, Any]] = [
    {"ph": "M", "name": "thread_name", "pid": 1, "tid": 1, "args": {"name": "MainThread ü"}},
    *(
        {
            "ph": "X",
            "name": "f},{g",  # the separator inside a string
            "pid": 1,
            "tid": 1,
            "ts": float(i),
            "dur": 0.5,
            "args": {"nested": [{"a": 1}, {"b": "é},{"}]},  # and inside an args list
        }
        for i in range(40)
    ),
]


def read(path: Path, chunk: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    stream = TraceEventStream(path, chunk_bytes=chunk)
    events = [event for batch in stream for event in batch]
    return events, stream.metadata


@pytest.mark.parametrize("chunk", [7, 64, 1 << 20])
@pytest.mark.parametrize(
    "encode",
    [
        lambda d: orjson.dumps(d),
        lambda d: json.dumps(d, indent=2).encode(),
        lambda d: orjson.dumps(d["traceEvents"]),  # the JSON Array Format
    ],
    ids=["compact", "pretty", "array"],
)
def test_every_event_and_the_metadata_come_back(tmp_path: Path, chunk: int, encode: Any) -> None:
    document = {"traceEvents": EVENTS, "displayTimeUnit": "ns", "meta": [{"x": "},{"}]}
    path = tmp_path / "t.json"
    path.write_bytes(encode(document))
    events, metadata = read(path, chunk)
    assert events == EVENTS
    if path.read_bytes().lstrip().startswith(b"{"):
        assert metadata == {"displayTimeUnit": "ns", "meta": [{"x": "},{"}]}


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"", "is empty"),
        (b"not json at all", "not JSON"),
        (b'{"displayTimeUnit": "ns"}', 'no "traceEvents" array'),
        (orjson.dumps({"traceEvents": EVENTS})[:900], "truncated"),
        (orjson.dumps({"traceEvents": EVENTS})[:-1], "truncated or damaged after its events"),
        (
            orjson.dumps({"traceEvents": EVENTS}).replace(b'"ts":7.0,', b'"ts":7.0,,'),
            "damaged near byte",
        ),
    ],
    ids=["empty", "garbage", "no-events", "truncated", "unclosed", "damaged"],
)
def test_bad_files_say_what_is_wrong(tmp_path: Path, content: bytes, says: str) -> None:
    path = tmp_path / "bad.trace.json"
    path.write_bytes(content)
    with pytest.raises(ArtifactError) as raised:
        read(path, 64)
    assert str(path) in str(raised.value)
    assert says in str(raised.value)


def test_trace_keeps_op_spans_sql_and_function_slices(tmp_path: Path) -> None:
    events = [
        {"ph": "M", "name": "thread_name", "pid": 1, "tid": 1, "args": {"name": "MainThread"}},
        {
            "ph": "X",
            "name": "claim",
            "cat": "queue-op",
            "pid": 1,
            "tid": 1_000_000_001,
            "ts": 0,
            "dur": 40.0,
        },
        {
            "ph": "X",
            "name": "claim: UPDATE tasks",
            "cat": "sql",
            "pid": 1,
            "tid": 1_000_000_002,
            "ts": 1,
            "dur": 10.0,
            "args": {"op": "claim", "rows": 1, "statement": 0},
        },
        {
            "ph": "X",
            "name": "TaskQueue.claim (taskqueue/queue.py:189)",
            "cat": "FEE",
            "pid": 1,
            "tid": 1,
            "ts": 0,
            "dur": 30.0,
        },
        {"ph": "C", "name": "queue", "pid": 1, "ts": 0, "args": {"depth": 1}},
        {"ph": "X", "pid": 1},  # malformed: skipped and reported
    ]
    path = tmp_path / "t.json"
    path.write_bytes(orjson.dumps({"traceEvents": events}))
    trace = load_trace(path)
    assert list(trace.op_durations_us["claim"]) == [40.0]
    assert trace.sql_by_op["claim"].total_us == 10.0
    assert trace.sql_by_statement[0][1].count == 1
    assert len(trace.call_lanes[(1, 1)]) == 1
    assert trace.counters == 1
    assert trace.skipped == 1
    assert "event #5" in trace.problems[-1]


def test_the_first_events_are_checked_with_the_writers_shape_checker(tmp_path: Path) -> None:
    # GIVEN a trace from another tool: an unknown phase and a slice with a negative duration
    events = [
        {"ph": "Q", "name": "odd", "pid": 1, "tid": 1, "ts": 0},
        {"ph": "X", "name": "f", "pid": 1, "tid": 1, "ts": 0, "dur": -1},
        {"ph": "X", "name": "g", "pid": 1, "tid": 1, "ts": 0, "dur": 2},
    ]
    path = tmp_path / "other.json"
    path.write_bytes(orjson.dumps({"traceEvents": events}))
    # WHEN it is loaded
    trace = load_trace(path)
    # THEN each malformed event is reported once, by index, in the checker's words
    assert trace.problems[:2] == (
        "event #0: unknown phase 'Q'",
        "event #1: X event 'f' without a 'dur' >= 0",
    )


def test_loading_leaves_the_garbage_collector_as_it_found_it(tmp_path: Path) -> None:
    # GIVEN a trace, and the collector on (the usual case) or off (a caller's choice)
    path = tmp_path / "t.json"
    path.write_bytes(
        orjson.dumps(
            {"traceEvents": [{"ph": "C", "name": "q", "pid": 1, "ts": 0, "args": {"depth": 1}}]}
        )
    )
    for enabled in (True, False):
        (gc.enable if enabled else gc.disable)()
        try:
            # WHEN it is loaded, and when the load fails
            load_trace(path)
            with pytest.raises(ArtifactError):
                load_trace(tmp_path / "missing.json")
            # THEN the collector is as it was
            assert gc.isenabled() is enabled
        finally:
            gc.enable()
