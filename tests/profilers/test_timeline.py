"""The queue timeline (op spans, SQL slices, counters) from hand-built observations."""

from __future__ import annotations

from formats.chrome_trace import Event, check_nesting, check_trace
from formats.timeline import SYNTHETIC_TID_BASE, statement_label
from profilers.timeline import (
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
from taskqueue import SqlSample

IDENTITY = ClockMap(Anchor(0, 0))
US = 1_000  # ns


def lane_names(lanes: Lanes) -> dict[int, str]:
    return {e["tid"]: e["args"]["name"] for e in lanes.metadata()}


def test_clock_map_goes_through_both_anchors() -> None:
    clock = ClockMap.from_anchors(Anchor(1_000, 5_000_000), Anchor(10_001_000, 15_000_500))
    assert clock(1_000) == 5_000_000
    assert clock(10_001_000) == 15_000_500
    # anchors closer than 1 ms or with an absurd rate: offset only
    assert ClockMap.from_anchors(Anchor(0, 7), Anchor(10, 20)).rate == 1.0
    assert ClockMap.from_anchors(Anchor(0, 0), Anchor(10**9, 2 * 10**9)).rate == 1.0


def test_each_worker_gets_a_named_lane_and_producers_share_one() -> None:
    ops = [
        OpRecord("enqueue", None, 0, 50 * US, 100),
        OpRecord("claim", "w10", 60 * US, 70 * US, 1),
        OpRecord("claim", "w2", 61 * US, 72 * US, 1),
        OpRecord("complete", "w2", 80 * US, 90 * US, 1),
        OpRecord("status", None, 100 * US, 101 * US, 1),
    ]
    lanes = Lanes(pid=42)
    built = op_spans(ops, IDENTITY, lanes)
    names = lane_names(lanes)
    assert list(names.values()) == [
        "producer (queue ops)",
        "worker w2 (queue ops)",  # natural order: w2 before w10
        "worker w10 (queue ops)",
    ]
    assert min(names) == SYNTHETIC_TID_BASE
    on_lane = {(names[e["tid"]], e["name"]) for e in built.events}
    assert ("worker w2 (queue ops)", "complete") in on_lane
    assert ("producer (queue ops)", "status") in on_lane
    enqueue = next(e for e in built.events if e["name"] == "enqueue")
    assert (enqueue["ts"], enqueue["dur"], enqueue["args"]) == (0.0, 50.0, {"items": 100})
    assert built.relaned == 0
    document = {"traceEvents": [*lanes.metadata(), *built.events]}
    assert [p.message for p in check_trace(document)] == [
        "process 42 has events but no process_name metadata"
    ]


def test_overlapping_ops_of_one_worker_move_to_an_overlap_lane() -> None:
    # GIVEN two concurrent operations of one worker (a fail while a claim is in flight)
    ops = [
        OpRecord("claim", "w1", 0, 100 * US, 2),
        OpRecord("fail", "w1", 50 * US, 150 * US, 1),
        OpRecord("complete", "w1", 200 * US, 210 * US, 1),
    ]
    lanes = Lanes(pid=1)
    built = op_spans(ops, IDENTITY, lanes)
    # THEN nothing is dropped, the overlapping one has its own lane, and every lane nests
    assert len(built.events) == 3
    assert built.relaned == 1
    assert built.lanes == 2
    names = lane_names(lanes)
    fail = next(e for e in built.events if e["name"] == "fail")
    assert names[fail["tid"]] == "worker w1 (queue ops, overlap 2)"
    assert check_nesting(built.events) == []


def sample(
    op: str, sql: str, start: int, dur: int, rows: int = 1, thread: str = "T-1"
) -> SqlSample:
    return SqlSample(op, sql, start, dur, rows, thread)


def test_sql_slices_are_named_by_op_and_statement_on_a_lane_per_thread() -> None:
    long_sql = "UPDATE tasks SET state = 'running'\n   WHERE id IN (SELECT id FROM tasks LIMIT 1)"
    samples = [
        sample("claim", long_sql, 10 * US, 5 * US, thread="Thread-2"),
        sample("complete", "UPDATE tasks SET state = 'done' WHERE id = :id", 20 * US, 3 * US),
        sample("enqueue", "INSERT INTO tasks (type) VALUES (?)", 30 * US, 2 * US, rows=1),
    ]
    lanes = Lanes(pid=1)
    built = sql_slices(samples, IDENTITY, lanes, sql_chars=40, connections={"Thread-2": "w3"})
    names = lane_names(lanes)
    assert sorted(names.values()) == ["sqlite thread T-1", "sqlite thread Thread-2, connection w3"]
    claim = next(e for e in built.events if e["args"]["op"] == "claim")
    assert claim["name"] == "claim: UPDATE tasks"
    assert claim["args"]["sql"] == "UPDATE tasks SET state = 'running' WHER…"
    assert len(claim["args"]["sql"]) == 40
    assert claim["args"]["rows"] == 1
    assert check_nesting(built.events) == []
    without_text = sql_slices(samples, IDENTITY, Lanes(pid=1), sql_chars=0)
    assert all("sql" not in e["args"] for e in without_text.events)


def test_statement_labels() -> None:
    assert statement_label("INSERT INTO tasks (a) VALUES (?)") == "INSERT INTO tasks"
    assert statement_label("  update tasks set x = 1") == "UPDATE tasks"
    assert statement_label("SELECT id FROM tasks WHERE x") == "SELECT FROM tasks"
    assert statement_label("BEGIN IMMEDIATE") == "BEGIN IMMEDIATE"
    assert statement_label("COMMIT") == "COMMIT"
    assert statement_label("") == "(empty statement)"


def values(events: list[Event], name: str, key: str) -> list[tuple[float, float]]:
    return [(e["ts"], e["args"][key]) for e in events if e["name"] == name]


def test_counters_follow_enqueues_claims_and_completions() -> None:
    ms = 1_000_000
    ops = [
        OpRecord("enqueue", None, 0, 1 * ms, 10),
        OpRecord("claim", "w0", 2 * ms, 3 * ms, 4),
        OpRecord("fail", "w0", 4 * ms, 5 * ms, 1),
        OpRecord("complete", "w0", 6 * ms, 7 * ms, 3),
    ]
    tracks = queue_counters(
        ops,
        completions_from_ops(ops),
        IDENTITY,
        pid=1,
        window_ns=(0, 300 * ms),
        resolution_ns=1 * ms,
        rate_bucket_ns=100 * ms,
    )
    events = tracks.events
    assert values(events, "queue", "depth") == [
        (0.0, 0),
        (1000.0, 10),  # enqueued
        (7000.0, 7),  # 3 completed; a failed attempt is retried, so depth keeps it
        (300000.0, 7),
    ]
    assert values(events, "tasks", "in flight") == [
        (0.0, 0),
        (3000.0, 4),
        (5000.0, 3),
        (7000.0, 0),
        (300000.0, 0),
    ]
    assert values(events, "completions", "per second") == [
        (0.0, 30.0),  # 3 completions in the first 100 ms bucket
        (100000.0, 0.0),
        (200000.0, 0.0),
        (300000.0, 0.0),
    ]
    assert tracks.baselines == {"queue depth": 0, "tasks in flight": 0}
    assert check_trace({"traceEvents": events}) != []  # counters alone: no process name
    assert all(e["ph"] == "C" for e in events)


def test_counters_never_go_below_zero_when_work_predates_the_session() -> None:
    ms = 1_000_000
    ops = [OpRecord("complete", "w0", 0, 1 * ms, 5)]
    tracks = queue_counters(
        ops,
        completions_from_ops(ops),
        IDENTITY,
        pid=1,
        window_ns=(0, 2 * ms),
        resolution_ns=ms,
        rate_bucket_ns=ms,
    )
    assert tracks.baselines["queue depth"] == 5
    assert min(v for _, v in values(tracks.events, "queue", "depth")) == 0


def test_completions_from_sql_include_acks_that_rode_on_a_claim() -> None:
    # An ack sent with complete_and_claim reaches observers as a "claim" op only; its
    # statement is still labelled "complete" in the SQL capture.
    samples = [
        sample("complete", "UPDATE tasks SET state = 'done'", 10, 5, rows=3),
        sample("claim", "UPDATE tasks SET state = 'running'", 15, 5, rows=1),
        sample("complete", "UPDATE tasks SET state = 'done'", 30, 5, rows=0),  # stale ack
    ]
    assert completions_from_sql(samples) == [(15, 3)]
    assert completions_from_ops([OpRecord("claim", "w0", 0, 20, 1)]) == []
