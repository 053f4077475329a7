"""Operations the queue ran inline on the event loop: their SQL time, and the calls count."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pytest

from analysis.attribution import Attribution, attribute
from analysis.findings import round_trips, where_time_goes
from analysis.hotspots import sql_hotspots
from analysis.latency import from_nanoseconds
from analysis.load.capture import SqlStatement
from analysis.load.speedscope import load_speedscope
from analysis.model import RoundTrips
from analysis.operations import Category
from analysis.profile import ThreadRole

from . import builders

# The event loop ran 3 s of inserts inline (store code on the loop) and awaited 3 s of claims
# that the connection thread ran; the thread also ran 1 s of inserts.
INLINE_LOOP = [
    (
        [
            builders.LOOP,
            builders.RUN_FOREVER,
            builders.ENQUEUE,
            builders.CALL,
            builders.INSERT,
            builders.EXECUTE,
        ],
        3.0,
    ),
    (
        [
            builders.LOOP,
            builders.RUN_FOREVER,
            builders.WORKER,
            builders.CLAIM,
            builders.CALL,
            builders.AWAIT,
        ],
        3.0,
    ),
    ([builders.LOOP, builders.RUN_FOREVER, builders.SELECT], 1.0),
]
INLINE_THREAD = [
    ([builders.THREAD, builders.CLAIM_RETURNING, builders.EXECUTE], 3.0),
    ([builders.THREAD, builders.INSERT, builders.EXECUTE], 1.0),
    ([builders.THREAD, builders.GET], 2.0),
]


def _attribution(tmp_path: Path) -> Attribution:
    path = tmp_path / "pyinstrument.speedscope.json"
    document = builders.speedscope(
        [
            ("event loop (async-aware wall time)", INLINE_LOOP),
            ("aiosqlite thread (shared)", INLINE_THREAD),
        ]
    )
    path.write_bytes(orjson.dumps(document))
    return attribute(load_speedscope(path), profiler="pyinstrument", source=path.name)


def test_store_time_counts_sql_wherever_it_ran(tmp_path: Path) -> None:
    # GIVEN a profile where enqueue's SQL ran partly inline and claim's on the thread
    attribution = _attribution(tmp_path)
    # WHEN the store's time is read by operation and role
    store = attribution.store_time()
    # THEN each operation's SQL time is where it ran; the awaits and the idle thread are not
    assert store[Category.ENQUEUE] == {ThreadRole.EVENT_LOOP: 3.0, ThreadRole.SQLITE_THREAD: 1.0}
    assert store[Category.CLAIM] == {ThreadRole.SQLITE_THREAD: 3.0}


def test_the_busiest_finding_ranks_by_store_time_on_every_thread(tmp_path: Path) -> None:
    # GIVEN enqueue's 4 s of store time (3 inline, 1 on the thread) against claim's 3 s
    run = builders.run_analysis(queue={"dispatch": "auto"}, attributions=(_attribution(tmp_path),))
    # WHEN the findings are made
    (busiest,) = [f for f in where_time_goes(run) if f.key.startswith("busiest")]
    # THEN enqueue leads, with its share of all store time and where it ran
    assert busiest.title == "enqueue takes the most of the store's SQL time: 57% (pyinstrument)"
    assert "enqueue 57%, claim 43%" in busiest.detail
    assert "inline on the event loop" in busiest.detail
    assert "on the connection threads" in busiest.detail


@pytest.mark.parametrize(
    ("inline", "says"),
    [
        (0, "none of them inline"),
        (300, "all of them inline on the event loop"),
        (150, "50% of them inline on the event loop (dispatch)"),
    ],
)
def test_the_round_trip_finding_says_how_many_made_the_trip(inline: int, says: str) -> None:
    # GIVEN 300 operation calls for 100 tasks (ack_batch=1), some of them run inline, each
    # call 1 ms of which 0.2 ms SQL
    latencies = from_nanoseconds(
        {op: np.full(100, 1_000_000) for op in ("enqueue", "claim", "complete")}, "op-samples"
    )
    statements = [
        SqlStatement(i, op, f"UPDATE tasks SET x = {i}", 100, 20.0, 1, 1, 1, 1, 100)
        for i, op in enumerate(("claim", "complete"))
    ]
    run = builders.run_analysis(
        queue={"dispatch": "auto", "claim_batch": 1, "ack_batch": 1},
        latencies=latencies,
        sql=sql_hotspots(statements, {}, {}),
        round_trips=RoundTrips({"enqueue": 100, "claim": 100, "complete": 100}, 100, inline),
    )
    # WHEN the round-trip finding is made
    (finding,) = round_trips(run)
    # THEN it counts the calls, says where they ran and measures the per-call overhead
    assert finding.cause == "round-trips"
    assert says in finding.detail
    overhead = {e.figure: e.value for e in finding.evidence}["per-call overhead in the run"]
    assert overhead == pytest.approx(160)  # 2 ops x 100 calls x 0.8 ms
    # AND costs it, unless no call made a trip and no bare run measured the queue's Python
    # (then the overhead is the profiler hook's as much as the queue's: information)
    if inline < 300:
        assert finding.cost is not None
        assert finding.cost.value == pytest.approx(0.16)
    else:
        assert finding.cost is None
