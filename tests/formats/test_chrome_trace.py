"""Chrome trace checks and fixes, on hand-built event lists."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from formats.chrome_trace import (
    Event,
    LanePacker,
    check_nesting,
    check_trace,
    collapse_pass_through,
    keep_nested,
    process_name_event,
    read_trace,
    thread_name_event,
    to_ns,
    write_trace,
)


def x(name: str, ts: float, dur: float, tid: int = 1, pid: int = 1) -> Event:
    return {"ph": "X", "name": name, "pid": pid, "tid": tid, "ts": ts, "dur": dur}


def named(*events: Event, lanes: tuple[int, ...] = (1,)) -> dict[str, Any]:
    metadata = [process_name_event(1, "p")] + [thread_name_event((1, t), f"t{t}") for t in lanes]
    return {"traceEvents": [*metadata, *events]}


GOOD = [
    x("parent", 10.0, 10.0),
    x("child", 11.0, 3.0),
    x("grandchild", 11.5, 1.0),
    x("sibling", 15.0, 5.0),  # ends exactly where the parent ends: still nested
    x("next", 20.0, 1.0),  # starts exactly where the parent ends: after it
    x("same start as its parent", 10.0, 0.5),
    {"ph": "B", "name": "open", "pid": 1, "tid": 2, "ts": 30.0},
    x("inside B/E", 30.5, 1.0, tid=2),
    {"ph": "E", "name": "open", "pid": 1, "tid": 2, "ts": 32.0},
    x("other lane overlaps freely", 12.0, 100.0, tid=3),
    {"ph": "C", "name": "queue", "pid": 1, "ts": 12.0, "args": {"depth": 3}},
]


def test_properly_nested_slices_have_no_problems() -> None:
    assert check_nesting(GOOD) == []
    assert check_trace(named(*GOOD, lanes=(1, 2, 3))) == []


def test_a_slice_that_ends_after_its_enclosing_slice_is_reported() -> None:
    # GIVEN a child that starts inside its parent and ends 1 us after it
    events = [x("parent", 10.0, 10.0), x("straddles", 15.0, 6.0)]
    # WHEN checked THEN the straddling slice is named, with its lane and by how much
    problems = check_nesting(events)
    assert len(problems) == 1
    assert problems[0].index == 1
    assert problems[0].lane == (1, 1)
    assert "ends 1000 ns after" in str(problems[0])


def test_nesting_is_judged_in_nanoseconds_as_the_viewer_rounds() -> None:
    # 0.0004 us past the parent's end rounds to the same nanosecond: nested
    assert check_nesting([x("p", 1.0, 1.0), x("c", 1.5, 0.5004)]) == []
    assert len(check_nesting([x("p", 1.0, 1.0), x("c", 1.5, 0.501)])) == 1


def test_unpaired_begin_and_end_events_are_reported() -> None:
    events = [
        {"ph": "E", "name": "stray end", "pid": 1, "tid": 1, "ts": 1.0},
        {"ph": "B", "name": "never ends", "pid": 1, "tid": 1, "ts": 2.0},
    ]
    messages = [p.message for p in check_nesting(events)]
    assert messages == ["E event without a matching B", "B event never ended (no matching E)"]


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ({"ph": "Q", "name": "n", "pid": 1}, "unknown phase"),
        ({"ph": "X", "name": "n", "pid": 1, "tid": 1, "ts": 1.0}, "without a 'dur' >= 0"),
        ({"ph": "X", "name": "n", "pid": 1, "tid": 1, "ts": 1.0, "dur": -1}, "'dur' >= 0"),
        ({"ph": "X", "pid": 1, "tid": 1, "ts": 1.0, "dur": 1}, "without a string 'name'"),
        ({"ph": "X", "name": "n", "pid": 1, "ts": 1.0, "dur": 1}, "integer 'tid'"),
        ({"ph": "C", "name": "n", "pid": 1, "ts": 1.0, "args": {"v": "x"}}, "numeric args"),
        ({"ph": "M", "name": "thread_name", "pid": 1, "tid": 1, "args": {}}, "args.name"),
        ({"ph": "i", "name": "n", "pid": 1}, "numeric 'ts'"),
    ],
)
def test_malformed_events_are_reported(event: Event, expected: str) -> None:
    problems = check_trace(named(event))
    assert any(expected in p.message for p in problems), problems


def test_lanes_and_processes_without_names_are_reported() -> None:
    document = {"traceEvents": [x("a", 1.0, 1.0, tid=7, pid=4)]}
    messages = [p.message for p in check_trace(document)]
    assert "lane has slices but no thread_name metadata" in messages
    assert "process 4 has events but no process_name metadata" in messages
    assert check_trace({"events": []})[0].message == "the document has no 'traceEvents' list"


def test_keep_nested_drops_the_later_straddling_slice_only() -> None:
    events = [x("parent", 10.0, 10.0), x("straddles", 15.0, 6.0), x("fine", 12.0, 1.0)]
    kept, dropped = keep_nested(events)
    assert dropped == 1
    assert [e["name"] for e in kept] == ["parent", "fine"]
    assert check_nesting(kept) == []


def test_collapse_drops_pass_through_wrappers_and_keeps_real_work() -> None:
    events = [
        x("wrapper", 10.0, 10.0),  # one child covering all but 0.4 us: passes through
        x("inner", 10.2, 9.6),  # two children: kept
        x("a", 10.5, 2.0),
        x("b", 13.0, 2.0),
        x("busy", 30.0, 10.0),  # one child but 5 us of its own: kept
        x("short child", 31.0, 5.0),
    ]
    kept, collapsed = collapse_pass_through(events, max_self_ns=1_000)
    assert collapsed == 1
    assert [e["name"] for e in kept] == ["inner", "a", "b", "busy", "short child"]
    assert check_nesting(kept) == []


def test_lane_packer_moves_only_overlapping_spans() -> None:
    packer = LanePacker()
    assert [packer.place(s, e) for s, e in [(0, 10), (10, 20), (15, 18), (16, 30), (30, 31)]] == [
        0,
        0,
        1,
        2,
        0,
    ]
    assert packer.sub_lanes == 3


@pytest.mark.parametrize("compress", [False, True])
def test_written_trace_reads_back(tmp_path: Path, compress: bool) -> None:
    document = named(*GOOD, lanes=(1, 2, 3))
    path = tmp_path / ("t.json.gz" if compress else "t.json")
    size = write_trace(path, document, compress=compress)
    assert size == path.stat().st_size
    assert read_trace(path) == document
    assert not list(tmp_path.glob("*.partial"))


def test_to_ns_rounds_to_the_nearest_nanosecond() -> None:
    assert to_ns(1107394340.176) == 1107394340176
    # 0.0625 us is exactly 62.5 ns: halves go away from zero (llround), not to even
    assert to_ns(0.0625) == 63
    assert to_ns(-0.0625) == -63
