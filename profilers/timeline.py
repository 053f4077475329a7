"""The queue's own timeline as Chrome trace events: op spans, SQL slices and counters.

Pure functions of what :mod:`taskqueue.observe` reported during a run (operations, and the
SQL samples of each closed queue), so they are tested on hand-built records. Times arrive as
``perf_counter_ns`` values and are mapped onto the trace's clock by a :class:`ClockMap`.

Lanes are synthetic (``tid`` from :data:`SYNTHETIC_TID_BASE` up, far above real thread ids):
one per worker for its queue operations, one for operations without a worker (producers),
one per connection thread for its SQL statements. Spans that would overlap on a lane (two
concurrent operations of one worker) go to an extra "overlap" lane instead of being lost.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from formats.chrome_trace import (
    Event,
    Lane,
    LanePacker,
    complete_event,
    counter_event,
    thread_name_event,
)
from formats.timeline import (
    DEPTH,
    IN_FLIGHT,
    PRODUCER_LANE,
    RATE,
    SYNTHETIC_TID_BASE,
    sql_lane,
    statement_label,
)
from taskqueue import SqlSample


class OpRecord(NamedTuple):
    """One queue operation as :meth:`taskqueue.QueueObserver.operation` reported it."""

    op: str
    worker: str | None
    start_ns: int
    end_ns: int
    items: int


class Anchor(NamedTuple):
    """The same instant read on two clocks: ``perf_counter_ns`` and the trace's (in ns)."""

    perf_ns: int
    trace_ns: int


@dataclass(frozen=True, slots=True)
class ClockMap:
    """Maps ``perf_counter_ns`` values onto the trace clock (integer nanoseconds).

    Built from an anchor at the start of the run and, when available, one at the end, so a
    small rate difference between the clocks (viztracer calibrates its TSC clock against the
    system clock) is corrected too.
    """

    origin: Anchor
    rate: float = 1.0

    MAX_RATE_ERROR = 1e-3
    """A measured rate further than this from 1 means a bad anchor: it is ignored."""

    @classmethod
    def from_anchors(cls, start: Anchor, end: Anchor | None = None) -> ClockMap:
        """The map through ``start`` (and ``end``, if at least a millisecond later)."""
        if end is None or end.perf_ns - start.perf_ns < 1_000_000:
            return cls(start)
        rate = (end.trace_ns - start.trace_ns) / (end.perf_ns - start.perf_ns)
        if abs(rate - 1.0) > cls.MAX_RATE_ERROR:
            return cls(start)
        return cls(start, rate)

    def __call__(self, perf_ns: int) -> int:
        return self.origin.trace_ns + round((perf_ns - self.origin.perf_ns) * self.rate)


class Lanes:
    """Synthetic lanes of one process, created on first use, each named by an ``M`` event."""

    def __init__(self, pid: int, first_tid: int = SYNTHETIC_TID_BASE) -> None:
        self.pid = pid
        self._next_tid = first_tid
        self._by_label: dict[str, Lane] = {}

    def lane(self, label: str) -> Lane:
        """The lane called ``label`` (created if new)."""
        found = self._by_label.get(label)
        if found is None:
            found = self._by_label[label] = (self.pid, self._next_tid)
            self._next_tid += 1
        return found

    def metadata(self) -> list[Event]:
        """One ``thread_name`` event per lane created so far."""
        return [thread_name_event(lane, label) for label, lane in self._by_label.items()]

    def __len__(self) -> int:
        return len(self._by_label)


@dataclass
class Built:
    """Events built from one source, with what had to be moved to keep slices nested."""

    events: list[Event] = field(default_factory=list)
    relaned: int = 0
    """Spans moved to an overlap lane because they overlapped one on their own lane."""
    lanes: int = 0


def natural_key(name: str) -> tuple[str | int, ...]:
    """Sort key that puts ``w2`` before ``w10``."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name))


# -- queue operations ----------------------------------------------------------------------


def op_spans(ops: Iterable[OpRecord], clock: ClockMap, lanes: Lanes) -> Built:
    """One X slice per operation, on its worker's lane (``worker w3 (queue ops)``)."""
    by_worker: dict[str | None, list[OpRecord]] = defaultdict(list)
    for record in ops:
        by_worker[record.worker].append(record)
    built = Built()
    workers = sorted((w for w in by_worker if w is not None), key=natural_key)
    for worker in [None, *workers] if None in by_worker else workers:
        label = PRODUCER_LANE if worker is None else f"worker {worker}"
        packer = LanePacker()
        for record in sorted(by_worker[worker], key=lambda r: (r.start_ns, -r.end_ns)):
            start, end = clock(record.start_ns), clock(record.end_ns)
            sub_lane = packer.place(start, end)
            built.relaned += sub_lane > 0
            suffix = "" if sub_lane == 0 else f", overlap {sub_lane + 1}"
            built.events.append(
                complete_event(
                    record.op,
                    lanes.lane(f"{label} (queue ops{suffix})"),
                    start,
                    end - start,
                    category="queue-op",
                    args={"items": record.items},
                )
            )
        built.lanes += packer.sub_lanes
    return built


# -- SQL statements ------------------------------------------------------------------------


def sql_slices(
    samples: Iterable[SqlSample],
    clock: ClockMap,
    lanes: Lanes,
    sql_chars: int,
    connections: Mapping[str, str] | None = None,
    loop_threads: Collection[str] = (),
) -> Built:
    """One X slice per statement on the lane of the thread it ran on: its connection
    thread's (``sqlite thread <name>``), or, for a thread in ``loop_threads`` (the call ran
    inline on the event loop), ``SQL inline on the event loop (<name>)``.

    ``connections`` maps a thread name to the connection it serves (``shared`` or a worker
    name), which is added to the lane's name when known.

    Named ``"<op>: <statement kind>"`` (``claim: UPDATE tasks``) so the viewer can total them;
    ``args`` carry the operation, the statement's number (``statement``) and the rows it
    returned or changed. The statement's text (first ``sql_chars`` characters, whitespace
    collapsed; none when 0) rides only on its first slice on each lane: repeated on every
    slice it was most of a 10,000-task trace's size.
    """
    by_thread: dict[str, list[SqlSample]] = defaultdict(list)
    for sample in samples:
        by_thread[sample.thread].append(sample)
    texts: dict[str, tuple[str, str, int]] = {}
    built = Built()
    for thread in sorted(by_thread, key=natural_key):
        label = sql_lane(thread, inline=thread in loop_threads)
        if connections and thread in connections:
            label += f", connection {connections[thread]}"
        packer = LanePacker()
        shown: set[str] = set()
        for sample in sorted(by_thread[thread], key=lambda s: (s.start_ns, -s.duration_ns)):
            found = texts.get(sample.sql)
            if found is None:
                found = texts[sample.sql] = (
                    statement_label(sample.sql),
                    _clip(sample.sql, sql_chars),
                    len(texts),
                )
            kind, text, number = found
            start = clock(sample.start_ns)
            end = clock(sample.start_ns + sample.duration_ns)
            sub_lane = packer.place(start, end)
            built.relaned += sub_lane > 0
            suffix = "" if sub_lane == 0 else f" (overlap {sub_lane + 1})"
            args: dict[str, object] = {"op": sample.op, "rows": sample.rows, "statement": number}
            if text and sample.sql not in shown:
                shown.add(sample.sql)
                args["sql"] = text
            built.events.append(
                complete_event(
                    f"{sample.op}: {kind}",
                    lanes.lane(label + suffix),
                    start,
                    end - start,
                    category="sql",
                    args=args,
                )
            )
        built.lanes += packer.sub_lanes
    return built


def _clip(sql: str, limit: int) -> str:
    if limit <= 0:
        return ""
    text = " ".join(sql.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- counters ------------------------------------------------------------------------------

"""(counter name, series key): Perfetto titles a track ``"<name> <key>"``."""


class Completion(NamedTuple):
    """Tasks completed at one moment (``perf_counter_ns``)."""

    at_ns: int
    tasks: int


def completions_from_sql(samples: Iterable[SqlSample]) -> list[Completion]:
    """Completions as the ``complete`` statements applied them (rows changed).

    Exact, and includes acks that rode on a claim (``complete_and_claim``), which observers
    only see as a ``claim`` operation.
    """
    return [
        Completion(s.start_ns + s.duration_ns, s.rows)
        for s in samples
        if s.op == "complete" and s.rows > 0
    ]


def completions_from_ops(ops: Iterable[OpRecord]) -> list[Completion]:
    """Completions from ``complete`` operations (acks sent with a claim are not seen)."""
    return [Completion(r.end_ns, r.items) for r in ops if r.op == "complete" and r.items > 0]


@dataclass
class CounterTracks:
    """Counter events and what they rest on."""

    events: list[Event] = field(default_factory=list)
    samples: Counter[str] = field(default_factory=Counter)
    """Events written per track."""
    baselines: dict[str, int] = field(default_factory=dict)
    """Tasks added to a track so it never goes below zero (work that predates the session)."""


def queue_counters(
    ops: Sequence[OpRecord],
    completions: Sequence[Completion],
    clock: ClockMap,
    pid: int,
    *,
    window_ns: tuple[int, int],
    resolution_ns: int,
    rate_bucket_ns: int,
) -> CounterTracks:
    """Queue depth, tasks in flight and completions per second over ``window_ns``.

    Derived from the observations, never from the database: depth (pending + running) rises
    with enqueues and falls with completions; in flight rises with claims and falls with
    completions, failed attempts and reclaimed leases. A failed attempt is assumed to be
    retried (depth unchanged) since observers are not told whether it was dead-lettered.
    Step tracks keep the last value per ``resolution_ns``; the rate is per ``rate_bucket_ns``.
    """
    depth: list[tuple[int, int]] = []
    in_flight: list[tuple[int, int]] = []
    for record in ops:
        if record.op == "enqueue":
            depth.append((record.end_ns, record.items))
        elif record.op == "claim":
            in_flight.append((record.end_ns, record.items))
        elif record.op in ("fail", "reclaim"):
            in_flight.append((record.end_ns, -record.items))
    for done in completions:
        depth.append((done.at_ns, -done.tasks))
        in_flight.append((done.at_ns, -done.tasks))
    tracks = CounterTracks()
    start, end = window_ns
    for (name, key), deltas in ((DEPTH, depth), (IN_FLIGHT, in_flight)):
        steps, baseline = _steps(deltas, start, end, resolution_ns)
        track = f"{name} {key}"
        tracks.baselines[track] = baseline
        for at, value in steps:
            tracks.events.append(counter_event(name, pid, clock(at), {key: value}))
        tracks.samples[track] = len(steps)
    rate_track = f"{RATE[0]} {RATE[1]}"
    for at, per_second in _rates(completions, start, end, rate_bucket_ns):
        tracks.events.append(counter_event(RATE[0], pid, clock(at), {RATE[1]: per_second}))
        tracks.samples[rate_track] += 1
    return tracks


def _steps(
    deltas: list[tuple[int, int]], start: int, end: int, resolution_ns: int
) -> tuple[list[tuple[int, int]], int]:
    """(time, value) points of a running total, one per resolution window that changed it."""
    deltas.sort()
    points: list[tuple[int, int]] = [(start, 0)]
    value = 0
    window = None
    for at, delta in deltas:
        value += delta
        this_window = (at - start) // resolution_ns
        if this_window == window or max(at, start) == points[-1][0]:
            points[-1] = (points[-1][0], value)
        else:
            points.append((max(at, start), value))
        window = this_window
    if end > points[-1][0]:
        points.append((end, value))
    lowest = min(v for _, v in points)
    baseline = -lowest if lowest < 0 else 0
    return [(at, v + baseline) for at, v in points], baseline


def _rates(
    completions: Sequence[Completion], start: int, end: int, bucket_ns: int
) -> list[tuple[int, float]]:
    """Completions per second in consecutive buckets from ``start``, ending with a 0."""
    if end <= start:
        return []
    counts: Counter[int] = Counter()
    for done in completions:
        counts[max(done.at_ns - start, 0) // bucket_ns] += done.tasks
    buckets = (end - start + bucket_ns - 1) // bucket_ns
    if counts:
        buckets = max(buckets, max(counts) + 1)
    per_second = 1e9 / bucket_ns
    points = [(start + i * bucket_ns, counts.get(i, 0) * per_second) for i in range(buckets)]
    points.append((start + buckets * bucket_ns, 0.0))
    return points
