"""Each cause rule on hand-built evidence, and the ranking that orders what they find.

GIVEN a RunAnalysis with one planted cause in its typed results (no workload runs), WHEN the
rules run, THEN the #1 finding names the operation and the cause, with its cost and support.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import orjson
import pytest

from analysis.attribution import Attribution, CategoryTime, RoleAttribution, attribute
from analysis.findings import (
    asyncio_waits,
    busy_polling,
    consolidate,
    contention,
    handoff,
    is_connection_setting,
    memory_growth,
    missed_targets,
    peak_memory,
    profiler_overhead,
    read_backs,
    round_trips,
    run_findings,
    sql_plans,
    statements_per_call,
    status_polling,
    subtree_findings,
    waiting_operations,
    waiting_statements,
    wide_reads,
    worker_imbalance,
)
from analysis.hotspots import sql_hotspots
from analysis.latency import from_nanoseconds
from analysis.load.capture import SqlStatement
from analysis.load.heap_growth import HeapGrowth
from analysis.load.memray_stats import AllocationSnapshot, MemoryStats, StackAllocation
from analysis.load.speedscope import load_speedscope
from analysis.memory import attribute_growth, attribute_memory
from analysis.model import (
    Analysis,
    BareRun,
    Cause,
    Cost,
    Evidence,
    Finding,
    Overhead,
    RoundTrips,
    RunAnalysis,
    Standing,
    Support,
    ranked,
)
from analysis.operations import Category, is_plumbing_frame
from analysis.output import report_folder, write_reports
from analysis.profile import Frame, ThreadRole
from analysis.render import Format
from analysis.sqlplan import CHECKOUT_SCHEMA, Schema, explain, load_schema, suggest_index
from runs import LatencySummary, StepResult, Verdict
from runs.adapters import SqlCaller

from . import builders

TABLE = (
    "CREATE TABLE tasks (id INTEGER PRIMARY KEY, state TEXT, priority INTEGER, run_at REAL, "
    "payload TEXT, worker TEXT);"
)
CLAIM_SQL = (
    "SELECT id FROM tasks WHERE state = 'pending' AND run_at <= :now "
    "ORDER BY priority DESC, run_at, id LIMIT :n"
)


def statement(index: int, op: str, sql: str, count: int, total_ms: float) -> SqlStatement:
    return SqlStatement(index, op, sql, count, total_ms, 1.0, 2.0, 3.0, 4.0, count)


def calls(**counts: int) -> tuple:  # type: ignore[type-arg]
    """Latency distributions with ``counts`` calls per op, 1 ms each."""
    return from_nanoseconds({op: np.full(n, 1_000_000) for op, n in counts.items()}, "op")


# -- ranking --------------------------------------------------------------------------------


def finding(key: str, cause: Cause, share: float | None, count: int = 100) -> Finding:
    return Finding(
        key=key,
        cause=cause,
        title=key,
        detail="",
        evidence=(),
        cost=None if share is None else Cost(share, "s", share),
        support=Support(count, "calls", 20),
    )


def test_ranking_is_by_cost_and_a_finding_below_its_floor_never_leads() -> None:
    # GIVEN a large cause on 5 calls, a smaller one on 100, a description and a minor cause
    findings = [
        finding("thin", Cause.SQL_SCAN, 0.9, count=5),
        finding("small", Cause.N_PLUS_ONE, 0.2),
        finding("big", Cause.HOT_SUBTREE, 0.4),
        finding("describe", Cause.PROFILE, 0.95),
        finding("minor", Cause.SQL_SCAN, 0.01),
        finding("uncosted", Cause.TARGET, None),
    ]
    # WHEN ranked
    order = ranked(findings)
    # THEN causes by cost lead, then information (descriptions and minor causes), then
    # the one below its evidence floor
    assert [f.key for f in order] == ["big", "small", "describe", "minor", "uncosted", "thin"]
    assert order[-1].standing is Standing.INSUFFICIENT
    assert order[2].standing is Standing.INFORMATION


def test_a_few_milliseconds_of_a_tiny_run_are_information_whatever_their_share() -> None:
    # GIVEN two imbalances of 4% of their runs: 3.5 ms of a smoke run, 0.2 s of a longer one
    tiny = dataclasses.replace(
        finding("tiny", Cause.WORKER_IMBALANCE, 0.04), cost=Cost(0.0035, "s", 0.04)
    )
    real = dataclasses.replace(
        finding("real", Cause.WORKER_IMBALANCE, 0.04), cost=Cost(0.2, "s", 0.04)
    )
    # WHEN ranked
    order = ranked([tiny, real])
    # THEN the longer one leads as a cause and the milliseconds are information
    assert [f.key for f in order] == ["real", "tiny"]
    assert (order[0].standing, order[1].standing) == (Standing.CAUSE, Standing.INFORMATION)


# -- plans ----------------------------------------------------------------------------------


def test_scan_findings_rank_by_the_statements_total_time_in_the_run(tmp_path: Path) -> None:
    # GIVEN the run's schema snapshot without a claim index; a 16-call 4.6 ms status scan
    # (the drained check) and a 109-call 167 ms claim scan
    (tmp_path / "schema.sql").write_text(TABLE)
    schema = load_schema(tmp_path)
    assert schema.snapshot
    hotspots = sql_hotspots(
        [
            statement(0, "status", "SELECT count(*) FROM tasks WHERE worker = :w", 16, 4.6),
            statement(1, "claim", CLAIM_SQL, 109, 167.0),
        ],
        {},
        {},
        schema,
    )
    run = builders.run_analysis(sql=hotspots, duration_s=1.0)
    # WHEN the plan rule runs and the findings are ranked
    top = ranked(list(sql_plans(run)))[0]
    # THEN the claim's scan leads, costed in seconds of the run, with a proven index
    assert top.op == "claim"
    assert top.cause is Cause.SQL_SCAN
    assert top.cost is not None
    assert top.cost.value == pytest.approx(0.167)
    assert top.cost.share == pytest.approx(0.167)
    assert top.support == Support(109, "calls", 20)
    assert top.recommendation is not None
    assert "CREATE INDEX tasks_state_run_at ON tasks" in top.recommendation or (
        "CREATE INDEX" in top.recommendation and "SEARCH tasks" in top.recommendation
    )
    assert "CAVEAT" not in top.detail


def test_a_count_of_the_backlog_per_claim_is_a_scan_of_the_claim(tmp_path: Path) -> None:
    # GIVEN a snapshot with the queue's partial index of pending tasks, and a claim that
    # counts the pending rows before each claim: 3,011 calls, 249 ms of a 2.2 s run
    (tmp_path / "schema.sql").write_text(
        TABLE + "CREATE INDEX ready ON tasks (state, priority DESC, run_at, id) "
        "WHERE state = 'pending';"
    )
    count = "SELECT count(*) FROM tasks WHERE state = 'pending'"
    hotspots = sql_hotspots(
        [statement(2, "claim", count, 3011, 249.0), statement(3, "claim", CLAIM_SQL, 3000, 150)],
        {},
        {},
        load_schema(tmp_path),
    )
    run = builders.run_analysis(sql=hotspots, duration_s=2.2)
    # WHEN the plan rule runs
    (found,) = sql_plans(run)
    # THEN the count is a scan of the claim, costed by its time, with no index to add
    assert (found.op, found.cause) == ("claim", Cause.SQL_SCAN)
    assert "aggregate over every row of an index range" in found.title
    assert "SEARCH tasks USING COVERING INDEX ready (state=?)" in found.detail
    assert found.cost is not None
    assert found.cost.value == pytest.approx(0.249)
    assert found.standing is Standing.CAUSE
    assert found.recommendation is not None
    assert "No index removes it" in found.recommendation
    assert "CREATE INDEX" not in found.recommendation


def test_plans_use_the_runs_snapshot_not_the_checkout(tmp_path: Path) -> None:
    # GIVEN a run whose schema had the claim index and one whose snapshot is missing
    with_index = TABLE + "CREATE INDEX ready ON tasks (state, priority DESC, run_at, id);"
    (tmp_path / "schema.sql").write_text(with_index)
    snapshot = load_schema(tmp_path)
    fallback = load_schema(tmp_path / "missing")
    # THEN the snapshot's plan has no scan, and the fallback says it is the checkout's
    assert not explain(CLAIM_SQL, snapshot.script).flagged
    assert fallback == CHECKOUT_SCHEMA
    run = builders.run_analysis(
        sql=sql_hotspots(
            [statement(0, "claim", "SELECT id FROM tasks ORDER BY created_at", 50, 10.0)],
            {},
            {},
            fallback,
        )
    )
    (found,) = sql_plans(run)
    assert "CAVEAT: this run has no schema.sql snapshot" in found.detail


def test_the_suggested_index_is_proven_by_replanning() -> None:
    plan = explain(CLAIM_SQL, TABLE)
    suggestion = suggest_index(CLAIM_SQL, plan, TABLE)
    assert suggestion is not None
    assert suggestion.columns[0] == "state"
    assert not suggestion.plan.flagged
    assert suggestion.plan.lines[0].startswith("SEARCH tasks")
    assert not explain(CLAIM_SQL, TABLE + suggestion.ddl + ";").flagged


# -- statements per call --------------------------------------------------------------------


def test_one_query_per_column_is_n_plus_one_with_distinct_labels() -> None:
    # GIVEN 100 status calls, each running 14 one-column SELECTs
    columns = ["state", "priority", "attempts", "worker", "run_at", "payload", "id"] * 2
    statements = [
        statement(i, "status", f"SELECT {c}{i} FROM tasks WHERE id = ?", 100, 5.0)
        for i, c in enumerate(columns)
    ]
    statements.append(statement(99, "claim", "UPDATE tasks SET state = 'running'", 10, 1.0))
    run = builders.run_analysis(
        latencies=calls(status=100, claim=10), sql=sql_hotspots(statements, {}, {})
    )
    # WHEN the N+1 rule runs
    (found,) = statements_per_call(run)
    # THEN it names status, its statements per call, and the statements read differently
    assert found.op == "status"
    assert found.cause is Cause.N_PLUS_ONE
    assert found.title.startswith("status: 14 statements per call (N+1)")
    assert "`SELECT state0 FROM tasks WHERE id = ?`" in found.detail
    assert "`SELECT priority1 FROM tasks WHERE id = ?`" in found.detail
    assert found.cost is not None
    assert found.cost.value == pytest.approx(0.07)


def test_begin_and_commit_do_not_make_a_claim_n_plus_one() -> None:
    statements = [
        statement(0, "claim", "BEGIN DEFERRED", 100, 1.0),
        statement(1, "claim", "SELECT id FROM tasks", 100, 1.0),
        statement(2, "claim", "UPDATE tasks SET state = 'running'", 100, 1.0),
        statement(3, "claim", "COMMIT", 100, 1.0),
    ]
    run = builders.run_analysis(latencies=calls(claim=100), sql=sql_hotspots(statements, {}, {}))
    assert list(statements_per_call(run)) == []


def per_call_findings(
    op: str,
    calls_made: int,
    *rows: tuple[str, int, float],
    rule: Callable[[RunAnalysis], Iterable[Finding]] = statements_per_call,
) -> list[Finding]:
    """``rule`` (the statements-per-call rule) on ``calls_made`` calls of ``op`` running
    ``rows`` (statement, executions, total ms); each statement returns a row per execution."""
    statements = [statement(i, op, sql, n, ms) for i, (sql, n, ms) in enumerate(rows)]
    run = builders.run_analysis(
        latencies=calls(**{op: calls_made}), sql=sql_hotspots(statements, {}, {})
    )
    return list(rule(run))


def test_connection_settings_made_on_every_call_are_a_connection_per_call() -> None:
    # GIVEN 100 enqueue calls, each setting up a connection (3 PRAGMAs) before its INSERT
    # WHEN the statements-per-call rule runs
    (found,) = per_call_findings(
        "enqueue",
        100,
        ("PRAGMA journal_mode=WAL", 100, 20.0),
        ("PRAGMA busy_timeout = 10000", 100, 3.0),
        ("PRAGMA synchronous=NORMAL", 100, 2.0),
        ("INSERT INTO tasks (type) VALUES (?)", 100, 10.0),
    )
    # THEN it names the per-call set-up, costed by the settings' time, not an N+1
    assert (found.op, found.cause) == ("enqueue", Cause.ROUND_TRIPS)
    assert found.title.startswith("enqueue: sets up a connection on every call: 3 connection")
    assert "`PRAGMA journal_mode=WAL` 1/call" in found.detail
    assert found.cost is not None
    assert found.cost.value == pytest.approx(0.025)


@pytest.mark.parametrize(
    "pragmas",
    [
        # PRAGMAs that read (the schema, per call) are queries, not settings
        [("PRAGMA schema_version", 100, 2.0), ("PRAGMA table_info(tasks)", 100, 2.0)],
        # a setting made once, for 100 calls that each run several queries
        [("PRAGMA busy_timeout = 5000", 1, 0.1), ("SELECT a FROM tasks WHERE id = ?", 100, 2.0)],
    ],
)
def test_pragmas_that_read_or_set_once_leave_an_n_plus_one(
    pragmas: list[tuple[str, int, float]],
) -> None:
    (found,) = per_call_findings(
        "status",
        100,
        *pragmas,
        ("SELECT b FROM tasks WHERE id = ?", 100, 2.0),
        ("SELECT c FROM tasks WHERE id = ?", 100, 2.0),
    )
    assert (found.op, found.cause) == ("status", Cause.N_PLUS_ONE)


def read_back_findings(op: str, calls_made: int, *rows: tuple[str, int]) -> list[Finding]:
    """The read-back rule on ``calls_made`` calls of ``op`` running ``rows`` (statement,
    executions), 10 ms each."""
    return per_call_findings(op, calls_made, *((sql, n, 10.0) for sql, n in rows), rule=read_backs)


def test_reading_back_each_inserted_row_by_its_id_is_a_statement_per_row() -> None:
    # GIVEN 100 enqueue calls, each inserting a row and reading it back by its id
    # WHEN the read-back rule runs
    (found,) = read_back_findings(
        "enqueue",
        100,
        ("INSERT INTO tasks (type, payload) VALUES (?, ?)", 100),
        ("SELECT * FROM tasks WHERE id = ?", 100),
    )
    # THEN it names enqueue, an extra statement per row, costed by the read's time
    assert (found.op, found.cause) == ("enqueue", Cause.N_PLUS_ONE)
    assert found.title.startswith("enqueue: reads back each row it writes")
    assert found.cost is not None
    assert found.cost.value == pytest.approx(0.01)


@pytest.mark.parametrize(
    ("op", "rows"),
    [
        # a read by id with no write: the operation's own read (status)
        ("status", [("SELECT state FROM tasks WHERE id = ?", 100)]),
        # one read by id for a write run 50 times as often: not every row
        (
            "complete",
            [
                ("UPDATE tasks SET state = 'done' WHERE id = ?", 5_000),
                ("SELECT state FROM tasks WHERE id = ?", 100),
            ],
        ),
        # a read of a set after the write (not by rowid)
        (
            "claim",
            [
                ("UPDATE tasks SET state = 'running' WHERE id = ?", 100),
                ("SELECT id FROM tasks WHERE state = 'pending' LIMIT 1", 100),
            ],
        ),
    ],
)
def test_reads_that_are_not_read_backs_are_not_flagged(
    op: str, rows: list[tuple[str, int]]
) -> None:
    assert read_back_findings(op, 100, *rows) == []


@pytest.mark.parametrize(
    ("sql", "setting"),
    [
        ("PRAGMA journal_mode=WAL", True),
        ("pragma main.synchronous = FULL", True),
        ("PRAGMA busy_timeout(100)", True),
        ("PRAGMA table_info(tasks)", False),
        ("PRAGMA schema_version", False),
        ("SELECT 1", False),
    ],
)
def test_connection_settings_are_told_from_pragmas_that_read(sql: str, setting: bool) -> None:
    assert is_connection_setting(sql) is setting


# -- hot subtrees, loop holds, round trips --------------------------------------------------

ENCODER = ("JSONEncoder.encode", "json/encoder.py")
DUMPS = ("dumps", "json/__init__.py")
SLEEP = ("sleep", "<built-in>")
VALIDATE = ("_validate", "app/validation.py")


def _profile(tmp_path: Path, samples: list[tuple[list[builders.Frame], float]]) -> RunAnalysis:
    path = builders.write_json(
        tmp_path / "p.speedscope.json", builders.speedscope([("event loop", samples)])
    )
    attribution = attribute(load_speedscope(path), profiler="pyinstrument", source=path.name)
    return builders.run_analysis(attributions=(attribution,), duration_s=10.0)


def test_an_encoder_inside_enqueue_is_a_hot_subtree_by_inclusive_time(tmp_path: Path) -> None:
    # GIVEN enqueue: 6 s in dumps -> encode (its self time spread over both), 2 s of SQL,
    # 1 s of its own; 2 s idle
    base: list[builders.Frame] = [builders.LOOP, builders.RUN_FOREVER, builders.ENQUEUE]
    run = _profile(
        tmp_path,
        [
            *[([*base, DUMPS], 0.1)] * 20,
            *[([*base, DUMPS, ENCODER], 0.2)] * 20,
            *[([*base, builders.CALL, builders.INSERT, builders.EXECUTE], 0.1)] * 20,
            *[(base, 0.05)] * 20,
            *[([builders.LOOP, builders.RUN_FOREVER, builders.SELECT], 0.1)] * 20,
        ],
    )
    # WHEN the subtree rule runs
    (found,) = subtree_findings(run)
    # THEN dumps, by inclusive time (no single function's self time is the largest), leads
    assert found.cause is Cause.HOT_SUBTREE
    assert found.op == "enqueue"
    assert "dumps -> JSONEncoder.encode (json/encoder.py)" in found.title
    assert found.cost is not None
    assert found.cost.value == pytest.approx(6.0)
    assert found.support is not None
    assert found.support.count == 40
    # AND no round-trip (per-call overhead) finding blames the calls for it
    run = RunAnalysis(
        **{
            **run.__dict__,
            "queue": {"ack_batch": 1},
            "params": {"enqueue_batch": 1},
            "latencies": calls(enqueue=100),
            "sql": sql_hotspots([statement(0, "enqueue", "INSERT INTO tasks", 100, 10)], {}, {}),
            "round_trips": RoundTrips({"enqueue": 100}, 100),
        }
    )
    assert list(round_trips(run)) == []


def test_a_blocking_call_on_the_loop_is_a_loop_hold(tmp_path: Path) -> None:
    base: list[builders.Frame] = [builders.LOOP, builders.RUN_FOREVER, builders.ENQUEUE]
    run = _profile(
        tmp_path,
        [*[([*base, SLEEP], 0.1)] * 30, *[([builders.LOOP, builders.SELECT], 0.1)] * 30],
    )
    (found,) = subtree_findings(run)
    assert found.cause is Cause.LOOP_HOLD
    assert found.op == "enqueue"


def test_a_thread_lock_waited_on_by_the_loop_is_a_loop_hold_not_a_wait(tmp_path: Path) -> None:
    # GIVEN status waits on the event loop for another thread's answer with a blocking
    # Future.result() (pyinstrument: Condition.wait -> lock.acquire), 3 s of it, beside
    # 0.3 s of status awaiting its connection thread and 3 s idle in the selector
    result: builders.Frame = ("Future.result", "/usr/lib/python3.11/concurrent/futures/_base.py")
    wait: builders.Frame = ("Condition.wait", "/usr/lib/python3.11/threading.py")
    acquire: builders.Frame = ("lock.acquire", "<built-in>")
    base: list[builders.Frame] = [builders.LOOP, builders.RUN_FOREVER, builders.STATUS]
    run = _profile(
        tmp_path,
        [
            *[([*base, result, wait, acquire], 0.1)] * 30,
            *[([*base, builders.CALL, builders.AWAIT], 0.1)] * 3,
            *[([builders.LOOP, builders.SELECT], 0.1)] * 30,
        ],
    )
    # WHEN the subtree rule runs
    (found,) = subtree_findings(run)
    # THEN the loop was held, not waiting: nothing else ran while the lock was awaited
    assert (found.op, found.cause) == ("status", Cause.LOOP_HOLD)
    assert found.cost is not None
    assert found.cost.value == pytest.approx(3.0)
    # AND an aiosqlite thread parked on a lock between jobs still waits, holding no loop
    (role,) = (
        _profile(tmp_path, [*[([builders.THREAD, wait, acquire], 0.1)] * 30]).attributions[0].roles
    )
    assert role.categories[0].wait == pytest.approx(role.categories[0].wall)


ASYNCPG_FETCH: builders.Frame = ("Connection.fetch", "/x/site-packages/asyncpg/connection.py")
SOCKET_SEND: builders.Frame = ("socket.send", "<built-in>")


def _sends_in_asyncpg(tmp_path: Path) -> RunAnalysis:
    """enqueue's time in asyncpg's fetch, most of it in the system call of asyncio's transport
    sending to a ready socket (pyinstrument names it socket.send)."""
    write: builders.Frame = (
        "_SelectorSocketTransport.write",
        "/usr/lib/python3.11/asyncio/selector_events.py",
    )
    base = [builders.LOOP, builders.RUN_FOREVER, builders.ENQUEUE, ASYNCPG_FETCH]
    return _profile(
        tmp_path,
        [
            *[([*base, write, SOCKET_SEND], 0.1)] * 30,
            *[([builders.LOOP, builders.SELECT], 0.1)] * 30,
        ],
    )


def test_the_event_loops_own_socket_sends_are_a_round_trip_not_a_loop_hold(
    tmp_path: Path,
) -> None:
    # GIVEN enqueue's time in asyncpg's fetch, most of it in the system call of asyncio's
    # transport sending to a ready socket (pyinstrument names it socket.send)
    run = _sends_in_asyncpg(tmp_path)
    (found,) = subtree_findings(run)
    # THEN it is the cost of the round trips, with the advice for them, not a blocking call
    assert (found.op, found.cause) == ("enqueue", Cause.HOT_SUBTREE)
    assert "round trip" in found.recommendation
    # AND the same send made by the program's own code on a blocking socket holds the loop
    own: builders.Frame = ("notify_peer", "app/notify.py")
    run = _profile(
        tmp_path,
        [
            *[([builders.LOOP, builders.RUN_FOREVER, builders.ENQUEUE, own, SOCKET_SEND], 0.1)]
            * 30,
            *[([builders.LOOP, builders.SELECT], 0.1)] * 30,
        ],
    )
    (found,) = subtree_findings(run)
    assert (found.op, found.cause) == ("enqueue", Cause.LOOP_HOLD)


def test_the_trip_of_one_statement_per_call_is_the_profile_not_a_cause(
    tmp_path: Path,
) -> None:
    # GIVEN enqueue's time in asyncpg's fetch and its socket sends, and a capture showing
    # one statement per enqueue call (100 calls, 100 INSERTs, as a program's claim or done)
    run = _sends_in_asyncpg(tmp_path)
    one = [statement(0, "enqueue", "INSERT INTO jobs (kind) VALUES ($1)", 100, 50.0)]
    run = dataclasses.replace(run, sql=sql_hotspots(one, {}, {}), latencies=calls(enqueue=100))
    (found,) = subtree_findings(run)
    # THEN the trip each call must make is information: nothing in a call to batch
    assert found.op == "enqueue"
    assert found.standing is Standing.INFORMATION
    assert found.cause is Cause.PROFILE
    assert "the trip of its one statement per call (1 per call)" in found.title
    # AND with 5 statements per call it is the trips to save, a cause (the N+1 rule's)
    five = [statement(0, "enqueue", "INSERT INTO jobs (kind) VALUES ($1)", 500, 50.0)]
    run = dataclasses.replace(run, sql=sql_hotspots(five, {}, {}))
    (found,) = subtree_findings(run)
    assert found.cause is Cause.HOT_SUBTREE
    # AND with a statement more per call (2, below the N+1 rule's 3) the extra trips are the
    # cause, named by their statements and costed at the share beyond one per call
    two = [
        *one,
        statement(1, "enqueue", "SELECT nextval('jobs_id_seq')", 100, 20.0),
    ]
    run = dataclasses.replace(run, sql=sql_hotspots(two, {}, {}))
    (found,) = subtree_findings(run)
    assert (found.op, found.cause) == ("enqueue", Cause.ROUND_TRIPS)
    assert found.title.startswith(
        "enqueue: 2 statements per call, a round trip each (INSERT INTO jobs (kind) ...; "
        "SELECT nextval('jobs_id_seq') ...)"
    )
    assert "one statement per call" in (found.recommendation or "")


def test_a_database_connection_opened_inside_each_call_is_a_round_trips_cause(
    tmp_path: Path,
) -> None:
    # GIVEN enqueue's time mostly in asyncpg's connect (a connection per call), one
    # statement per call in the capture
    connect: builders.Frame = ("connect", "/x/site-packages/asyncpg/connection.py")
    setup: builders.Frame = ("_connect_addr", "/x/site-packages/asyncpg/connect_utils.py")
    write: builders.Frame = (
        "_SelectorSocketTransport.write",
        "/usr/lib/python3.11/asyncio/selector_events.py",
    )
    base = [builders.LOOP, builders.RUN_FOREVER, builders.ENQUEUE]
    run = _profile(
        tmp_path,
        [
            *[([*base, connect, setup, write, SOCKET_SEND], 0.1)] * 30,
            *[([*base, ASYNCPG_FETCH, write, SOCKET_SEND], 0.1)] * 5,
            *[([builders.LOOP, builders.SELECT], 0.1)] * 30,
        ],
    )
    one = [statement(0, "enqueue", "INSERT INTO jobs (kind) VALUES ($1)", 100, 50.0)]
    run = dataclasses.replace(run, sql=sql_hotspots(one, {}, {}), latencies=calls(enqueue=100))
    (found,) = subtree_findings(run)
    # THEN it is a connection set up per call, a cause, with a pool as the fix; not the trip
    # of the one statement, which is information
    assert (found.op, found.cause) == ("enqueue", Cause.ROUND_TRIPS)
    assert found.title.startswith("enqueue: opens a database connection on every call")
    assert "pool" in (found.recommendation or "")
    assert found.standing is Standing.CAUSE


def _status_in_transactions(
    tmp_path: Path, statements: int, also: tuple[SqlStatement, ...] = ()
) -> RunAnalysis:
    """status's time in asyncpg: a ``transaction()`` block entered and left around its
    fetch on every call (the BEGIN and COMMIT sends twice the fetch's), 100 calls of 1 ms,
    with ``statements`` per call in the capture."""
    status: builders.Frame = ("TaskQueue.status", "/x/taskqueue/queue.py")
    pkg = "/x/site-packages/asyncpg"
    enter: builders.Frame = ("Transaction.__aenter__", f"{pkg}/transaction.py")
    start: builders.Frame = ("Transaction.start", f"{pkg}/transaction.py")
    leave: builders.Frame = ("Transaction.__aexit__", f"{pkg}/transaction.py")
    commit: builders.Frame = ("Transaction.__commit", f"{pkg}/transaction.py")
    execute: builders.Frame = ("Connection.execute", f"{pkg}/connection.py")
    write: builders.Frame = (
        "_SelectorSocketTransport.write",
        "/usr/lib/python3.11/asyncio/selector_events.py",
    )
    base = [builders.LOOP, builders.RUN_FOREVER, status]
    run = _profile(
        tmp_path,
        [
            *[([*base, enter, start, execute, write, SOCKET_SEND], 0.1)] * 15,
            *[([*base, leave, commit, execute, write, SOCKET_SEND], 0.1)] * 15,
            *[([*base, ASYNCPG_FETCH, write, SOCKET_SEND], 0.1)] * 15,
            *[([builders.LOOP, builders.SELECT], 0.1)] * 30,
        ],
    )
    read = [statement(0, "status", "SELECT state FROM jobs WHERE id = $1", 100 * statements, 9.0)]
    return dataclasses.replace(
        run,
        sql=sql_hotspots([*read, *also], {}, {}),
        latencies=calls(status=100),
    )


def test_a_transaction_around_one_statement_per_call_is_a_round_trips_cause(
    tmp_path: Path,
) -> None:
    # GIVEN status wrapped in a transaction on every call around its one statement
    run = _status_in_transactions(tmp_path, statements=1)
    (found,) = subtree_findings(run)
    # THEN the two extra trips are the cause, costed at their share of the calls' time
    assert (found.op, found.cause) == ("status", Cause.ROUND_TRIPS)
    assert found.title.startswith("status: a transaction around its one statement per call")
    assert "67% of status's running time" in found.title
    assert found.cost is not None
    assert found.cost.value == pytest.approx(0.1 * 2 / 3, rel=0.01)  # 100 calls of 1 ms
    assert "Drop the transaction" in (found.recommendation or "")


def test_a_transaction_around_several_statements_per_call_is_their_trips(
    tmp_path: Path,
) -> None:
    # GIVEN status in a transaction on every call around its 3 statements (a lock first)
    lock = statement(1, "status", "LOCK TABLE jobs IN SHARE MODE", 100, 5.0)
    (found,) = subtree_findings(_status_in_transactions(tmp_path, statements=2, also=(lock,)))
    # THEN it is round trips, naming the statements, with one statement as the fix (the
    # statements may need to be atomic: dropping the transaction is not the only advice)
    assert (found.op, found.cause) == ("status", Cause.ROUND_TRIPS)
    assert found.title.startswith(
        "status: a transaction around its 3 statements per call (SELECT state FROM jobs ...; "
        "LOCK TABLE jobs IN ...)"
    )
    assert "as one (a CTE)" in (found.recommendation or "")
    # AND the table lock it takes is named as what holds the other writers
    assert "LOCK TABLE holds the table" in (found.recommendation or "")
    # AND without the lock statement nothing is said of one
    (found,) = subtree_findings(_status_in_transactions(tmp_path, statements=3))
    assert "3 statements per call (SELECT state FROM jobs ...)" in found.title
    assert "LOCK TABLE" not in (found.recommendation or "")


@pytest.mark.parametrize("file", ["/x/taskqueue/pgqueue.py", "/srv/app/mailqueue.py"])
def test_a_helper_in_a_file_named_like_queue_py_is_work_not_plumbing(
    tmp_path: Path, file: str
) -> None:
    # GIVEN enqueue's time in a helper of a file whose name ends in queue.py (the standard
    # library's queue.py is plumbing), 60% in its own loop and 20% in a builtin it calls
    helper: builders.Frame = ("_reject_control_characters", file)
    category: builders.Frame = ("category", "<built-in>")
    base = [builders.LOOP, builders.RUN_FOREVER, builders.ENQUEUE, helper]
    run = _profile(
        tmp_path,
        [
            *[(base, 0.1)] * 30,
            *[([*base, category], 0.1)] * 10,
            *[([builders.LOOP, builders.RUN_FOREVER, builders.ENQUEUE, ASYNCPG_FETCH], 0.1)] * 10,
            *[([builders.LOOP, builders.SELECT], 0.1)] * 30,
        ],
    )
    # THEN the helper is enqueue's hot subtree, named
    (found,) = subtree_findings(run)
    assert (found.op, found.cause) == ("enqueue", Cause.HOT_SUBTREE)
    assert found.title.startswith("enqueue: _reject_control_characters")
    # AND the standard library's queue.py still carries hand-offs, not work
    assert is_plumbing_frame(Frame("Queue.get", "/usr/lib/python3.11/queue.py"))
    assert not is_plumbing_frame(Frame("PgTaskQueue._heard", "/x/taskqueue/pgqueue.py"))


def test_a_wrapper_patched_onto_the_queue_counts_as_the_operation_it_wraps(
    tmp_path: Path,
) -> None:
    # GIVEN a decorator from another file around TaskQueue.enqueue that sleeps before it
    wrapper: builders.Frame = ("TaskQueue.limited", "app/ratelimit.py")
    run = _profile(
        tmp_path,
        [
            *[([builders.LOOP, wrapper, SLEEP], 0.1)] * 30,
            *[([builders.LOOP, wrapper, builders.ENQUEUE, builders.CALL, builders.AWAIT], 0.1)] * 5,
        ],
    )
    (found,) = subtree_findings(run)
    assert (found.op, found.cause) == ("enqueue", Cause.LOOP_HOLD)


def test_a_queue_method_replaced_from_another_file_is_that_methods_operation(
    tmp_path: Path,
) -> None:
    # GIVEN TaskQueue._acks_landed replaced by a function of another file (a patch) whose own
    # work is the cost, riding on a claim (the acks travel with it)
    patched: builders.Frame = ("TaskQueue._acks_landed", "app/patches.py")
    scan: builders.Frame = ("remember", "app/patches.py")
    run = _profile(
        tmp_path,
        [
            (
                [
                    builders.LOOP,
                    ("TaskQueue.complete_acks_and_claim", "taskqueue/queue.py"),
                    patched,
                    scan,
                ],
                0.1,
            )
        ]
        * 30,
    )
    (found,) = subtree_findings(run)
    # THEN its work is completion work, not the claim that carried it
    assert (found.op, found.cause) == ("complete", Cause.HOT_SUBTREE)


def test_asyncpg_s_client_code_under_an_operation_is_sql_not_a_subtree(tmp_path: Path) -> None:
    # GIVEN enqueue (a program's function) whose running time on the loop is asyncpg's
    # encoding and decoding of its statements, through the SQL capture's wrapper (the
    # socket sends below asyncpg stay a round trip's cost: see the test above)
    pool: builders.Frame = ("Pool.execute", "/x/site-packages/asyncpg/pool.py")
    timed: builders.Frame = ("Connection.execute", "/x/workloads/pgcapture.py")
    inner: builders.Frame = ("Connection._execute", "/x/site-packages/asyncpg/connection.py")
    base = [builders.LOOP, builders.ENQUEUE]
    run = _profile(tmp_path, [([*base, pool, timed, inner], 0.1)] * 40)
    # THEN it is the statements' time (the SQL rules judge it), not a hot subtree
    assert list(subtree_findings(run)) == []


def test_statements_of_the_sql_capture_s_connections_are_sql_not_a_subtree(
    tmp_path: Path,
) -> None:
    # GIVEN enqueue opening a connection per call (py-spy: no native frames), its statements
    # run through the SQL capture's timed connection, which also records each one
    opener: builders.Frame = ("open_and_insert", "app/store_patch.py")
    timed: builders.Frame = ("TimedConnection.execute", "/x/workloads/sqlcapture.py")
    record: builders.Frame = ("_record", "/x/workloads/sqlcapture.py")
    connect: builders.Frame = ("connect", "<built-in>")
    base = [builders.LOOP, builders.ENQUEUE, opener]
    run = _profile(
        tmp_path,
        [
            *[([*base, timed], 0.1)] * 40,  # the statements themselves
            *[([*base, timed, record], 0.1)] * 5,  # the capture's bookkeeping
            *[([*base, connect], 0.1)] * 30,  # opening the connection
            *[(base, 0.1)] * 2,  # its own code
        ],
    )
    (found,) = subtree_findings(run)
    # THEN the subtree is the function that opens connections, its time the connect's (a
    # blocking call on the loop) and its own: not the statements', not the capture's wrapper,
    # and not the capture's bookkeeping (measurement, which the bare run does not pay: on a
    # program's own transaction helper it made 27% of a clean queue's pop a false alarm)
    assert (found.op, found.cause, found.subject) == ("enqueue", Cause.LOOP_HOLD, "open_and_insert")
    assert found.cost is not None
    assert found.cost.value == pytest.approx(3.2)  # 32 samples of 0.1 s


def test_work_in_the_body_of_a_queue_function_is_named_by_its_own_time(tmp_path: Path) -> None:
    # GIVEN claims carrying acks whose bookkeeping (TaskQueue._acks_landed) searches a list per
    # ack in its own body: 3 s of its own time, 1 s of the claim's SQL
    claim: builders.Frame = ("TaskQueue.complete_acks_and_claim", "taskqueue/queue.py")
    landed: builders.Frame = ("TaskQueue._acks_landed", "taskqueue/queue.py")
    base: list[builders.Frame] = [builders.LOOP, builders.RUN_FOREVER, claim]
    run = _profile(
        tmp_path,
        [
            *[([*base, landed], 0.1)] * 30,
            *[([*base, builders.CALL, builders.SELECT], 0.1)] * 10,
        ],
    )
    # WHEN the rules run
    found = [f for f in run_findings(run) if f.cause is Cause.HOT_SUBTREE]
    # THEN completion's time is named as _acks_landed's own body, by its self time
    assert [(f.op, f.subject) for f in found] == [("complete", "_acks_landed")]
    assert found[0].cost is not None
    assert found[0].cost.value == pytest.approx(3.0)
    assert "the body of TaskQueue._acks_landed" in found[0].title


def test_a_queue_function_s_body_below_half_its_operation_is_not_named(tmp_path: Path) -> None:
    # GIVEN enqueue's own body at 1 s of its 3 s (the rest SQL): a clean queue's shape
    base: list[builders.Frame] = [builders.LOOP, builders.RUN_FOREVER, builders.ENQUEUE]
    run = _profile(
        tmp_path,
        [
            *[(base, 0.1)] * 10,
            *[([*base, builders.CALL, builders.INSERT, builders.EXECUTE], 0.1)] * 20,
        ],
    )
    assert [f for f in run_findings(run) if f.cause is Cause.HOT_SUBTREE] == []


def test_few_samples_leave_a_subtree_below_its_floor(tmp_path: Path) -> None:
    base: list[builders.Frame] = [builders.LOOP, builders.RUN_FOREVER, builders.STATUS]
    run = _profile(tmp_path, [([*base, VALIDATE], 1.0)] * 5)
    (found,) = subtree_findings(run)
    assert found.standing is Standing.INSUFFICIENT


def test_round_trips_need_one_task_per_call_and_a_setting_that_batches() -> None:
    # GIVEN completes one task per call (ack_batch=1), 1 ms each of which 0.1 ms SQL
    def run_with(queue: dict[str, int], complete_calls: int) -> RunAnalysis:
        return builders.run_analysis(
            queue=queue,
            latencies=calls(complete=complete_calls),
            sql=sql_hotspots(
                [statement(0, "complete", "UPDATE tasks SET state='done'", complete_calls, 10)],
                {},
                {},
            ),
            round_trips=RoundTrips({"complete": complete_calls}, 100),
        )

    (found,) = round_trips(run_with({"ack_batch": 1}, 100))
    assert (found.op, found.cause) == ("complete", Cause.ROUND_TRIPS)
    assert "ack_batch=10" in (found.recommendation or "")
    # AND batched calls (4 of them for 100 tasks) or no setting to batch them are no cause
    assert list(round_trips(run_with({"ack_batch": 100}, 25))) == []
    assert list(round_trips(run_with({}, 100))) == []


def _one_task_claims(bare: BareRun | None = None, empty: int = 0) -> RunAnalysis:
    """100 claims of one task each (and ``empty`` claims that found none), 1 ms per call, all
    inline (no trip): an UPDATE of 10 ms in all, and a BEGIN (5 ms) and a COMMIT (20 ms) per
    claim of a task."""
    statements = [
        statement(0, "claim", "UPDATE tasks SET state = 'running' RETURNING id", 100, 10.0),
        statement(1, "claim", "BEGIN IMMEDIATE", 100, 5.0),
        statement(2, "claim", "COMMIT", 100, 20.0),
    ]
    return builders.run_analysis(
        queue={"claim_batch": 100},
        counters={
            "completed": 100,
            "worker_busy_us.w0": 500_000,
            "worker_claims.w0": 100 + empty,
            "worker_empty_claims.w0": empty,
        },
        latencies=calls(claim=100 + empty),
        sql=sql_hotspots(statements, {}, {}),
        round_trips=RoundTrips({"claim": 100 + empty}, 100, inline=100 + empty),
        bare=bare,
    )


def test_one_task_calls_run_inline_are_costed_by_their_begin_and_commit() -> None:
    # GIVEN claims of one task each from a backlog, every one inline, no bare run kept:
    # their Python is the profiler hook's to inflate, their BEGIN and COMMIT are not
    (found,) = round_trips(_one_task_claims())
    # THEN a cause, costed by the 25 ms of BEGIN and COMMIT (5% of 0.5 s of workers' time)
    assert (found.op, found.cause, found.standing) == ("claim", Cause.ROUND_TRIPS, Standing.CAUSE)
    assert found.cost is not None
    assert found.cost.value == pytest.approx(0.025)
    assert found.cost.share == pytest.approx(0.05)
    assert "BEGIN and COMMIT" in found.detail
    assert "65 ms of per-call overhead, 25 ms of it BEGIN and COMMIT (claim; 5%" in found.title


def test_begin_and_commit_per_call_are_overhead_in_the_bare_runs_calls() -> None:
    # GIVEN the bare run's claims: 0.05 ms per call of which 0.04 ms SQL (80%: batching would
    # save little, were all of it the claims' work), but 25 of the profiled run's 35 ms of
    # claim SQL were the BEGIN and COMMIT each one-task call pays
    bare = BareRun(
        0.1, from_nanoseconds({"claim": np.full(100, 50_000)}, "baseline"), {"claim": 4.0}
    )
    (found,) = round_trips(_one_task_claims(bare=bare))
    # THEN 0.0386 ms per call (77%) is per-call overhead, measured on the bare run
    assert (found.op, found.cause) == ("claim", Cause.ROUND_TRIPS)
    assert "0.0386 ms (77%) per-call overhead over 100 calls" in found.detail
    assert "bare run" in found.detail
    assert found.cost is not None
    assert found.cost.share == pytest.approx(0.0771, abs=1e-3)


def test_claims_of_engines_waiting_for_work_are_no_round_trips() -> None:
    # GIVEN the same claims of one task each, between which the engines found the queue empty
    # 100 times (tasks offered one at a time: a batch would have had nothing more to carry)
    assert list(round_trips(_one_task_claims(empty=100))) == []
    # AND a drain that found it empty once per engine at its end still has its round trips
    assert [f.cause for f in round_trips(_one_task_claims(empty=2))] == [Cause.ROUND_TRIPS]


# -- contention -----------------------------------------------------------------------------


def test_contention_names_the_step_the_op_the_strategy_and_the_fix() -> None:
    steps = (
        StepResult("1 worker", {"workers": 1}, {}, {}, {"sqlite_busy_retries": 0}),
        StepResult(
            "10 workers",
            {"workers": 10},
            {},
            {},
            {
                "sqlite_busy_retries": 400,
                "sqlite_busy_retries.claim": 400,
                "claim_conflicts": 7,
                "lock_wait_us": 300_000,
                "lock_wait_us.claim": 300_000,
            },
        ),
    )
    run = builders.run_analysis(
        steps=steps,
        duration_s=1.0,
        queue={"claim_style": "deferred", "connection": "per-worker", "busy_timeout_ms": 0},
    )
    (found,) = contention(run)
    assert (found.op, found.cause) == ("claim", Cause.CONTENTION)
    assert found.cost is not None
    assert found.cost.value == pytest.approx(0.3)
    assert "10 workers: 400 retries, 7 conflicts" in found.detail
    assert "claim_style=deferred" in found.title
    assert "claim_style=returning" in (found.recommendation or "")
    assert "connection=shared" in (found.recommendation or "")


def test_contention_rates_its_retries_by_the_tasks_its_steps_completed() -> None:
    # GIVEN a concurrency run that counts completed tasks per step only, as its steps do
    busy = {"sqlite_busy_retries": 400, "lock_wait_us": 300_000, "completed": 4_000}
    steps = (
        StepResult("1 worker", {"workers": 1}, {}, {}, {"completed": 4_000}),
        StepResult("10 workers", {"workers": 10}, {}, {}, busy),
    )
    # WHEN contention is judged
    (found,) = contention(builders.run_analysis(steps=steps, duration_s=1.0))
    # THEN its retries are set against all 8,000 tasks the run completed
    assert "50.0 retries per 1k completed tasks" in found.detail


def test_contention_between_sqlite_worker_processes_names_fewer_processes_as_the_fix() -> None:
    busy = {"sqlite_busy_retries": 400, "lock_wait_us": 300_000}
    # GIVEN SQLite's lock contention between 10 worker processes, the strategy's defaults
    run = builders.run_analysis(counters=busy, params={"mode": "process", "workers": 10})
    (found,) = contention(run)
    # THEN the fix is fewer processes (one writer each), not a setting inside a process alone
    assert "each of the 10 worker processes writes on its own" in (found.recommendation or "")
    assert "PostgreSQL" in (found.recommendation or "")
    # AND async workers in one process keep the settings' fix
    (found,) = contention(builders.run_analysis(counters=busy, params={"workers": 10}))
    assert (found.recommendation or "").startswith("Fewer writers: connection=shared")


def test_a_few_busy_retries_are_not_enough_evidence() -> None:
    run = builders.run_analysis(counters={"sqlite_busy_retries": 3, "lock_wait_us": 900_000})
    (found,) = contention(run)
    assert found.standing is Standing.INSUFFICIENT


def test_retries_on_postgresql_are_not_called_sqlite_busy() -> None:
    counters = {"sqlite_busy_retries": 40, "lock_wait_us": 900_000}
    on_sqlite = builders.run_analysis(counters=counters)
    on_postgres = builders.run_analysis(
        counters=counters, queue={"backend": "postgresql://db.internal/queues"}
    )
    (sqlite_found,) = contention(on_sqlite)
    (pg_found,) = contention(on_postgres)
    assert "40 SQLITE_BUSY retries" in sqlite_found.title
    assert "40 busy retries" in pg_found.title
    assert "SQLITE_BUSY" not in pg_found.title


# -- busy polling ---------------------------------------------------------------------------


def _polling_run(empty_per_worker: int, **changes: object) -> RunAnalysis:
    counters: dict[str, int] = {"completed": 1_000}
    for w in ("w0", "w1", "w2", "w3", "w4"):
        counters |= {f"worker_claims.{w}": 200 + empty_per_worker}
        counters |= {f"worker_empty_claims.{w}": empty_per_worker}
    claims = 1_000 + 5 * empty_per_worker
    latencies = from_nanoseconds({"claim": np.full(claims, 30_000)}, "op-samples.npz")
    fields: dict[str, object] = {
        "workload": "latency",
        "duration_s": 2.0,
        "counters": counters,
        "latencies": latencies,
    }
    return builders.run_analysis(**(fields | changes))


def test_idle_engines_that_claim_again_and_again_are_polling() -> None:
    # 6,000 empty claims for 1,000 tasks at 30 us each: 0.18 s of a 2 s run.
    (found,) = busy_polling(_polling_run(1_200))
    assert found.cause is Cause.POLLING
    assert found.op == "claim"
    assert "6,000 empty claims for 1,000 tasks (6 per task)" in found.title
    assert found.cost is not None
    assert found.cost.value == pytest.approx(0.18)
    assert found.cost.share == pytest.approx(0.09)
    assert found.standing is Standing.CAUSE
    assert "wait_for_work" in (found.recommendation or "")


def test_a_poll_interval_is_named_as_the_cause_and_notify_as_the_fix() -> None:
    (found,) = busy_polling(_polling_run(1_200, queue={"wakeup": "poll:0.5"}))
    assert "wakeup=poll:0.5" in found.detail
    assert "wakeup=notify" in (found.recommendation or "")


def test_about_one_empty_claim_per_task_is_how_wake_ups_work() -> None:
    # A notified engine that finds its task taken, the last claims of a drain: no finding.
    assert list(busy_polling(_polling_run(200))) == []
    assert list(busy_polling(_polling_run(390))) == []


def test_polling_in_worker_processes_is_a_share_of_all_their_time() -> None:
    run = _polling_run(1_200, params={"mode": "process", "workers": 5})
    (found,) = busy_polling(run)
    assert found.cost is not None
    assert found.cost.share == pytest.approx(0.018)
    assert "worker processes' time" in found.title


PG = {"backend": "postgresql://db.internal/queues"}
PROCESSES = {"mode": "process", "workers": 5}


def test_empty_claims_a_notification_to_every_process_explains_are_information() -> None:
    # GIVEN 5 worker processes on PostgreSQL with wakeup=notify (the default), 4,000 empty
    # claims for 1,000 tasks: 4 per task, where each NOTIFY wakes an engine in each process
    (found,) = busy_polling(_polling_run(800, params=PROCESSES, queue=PG))
    # THEN it is the broadcast's price, information, not polling engines
    assert found.key == "wakeup-broadcast"
    assert found.standing is Standing.INFORMATION
    assert "wakes an idle engine in each of the 5 worker processes" in found.title
    assert "4,000 empty claims for 1,000 tasks (4 per task; the broadcast makes up to 4)" in (
        found.title
    )
    assert "fewer worker processes with more engines each" in (found.recommendation or "")
    # AND more empty claims than one per process per task is polling again, costed
    (found,) = busy_polling(_polling_run(1_200, params=PROCESSES, queue=PG))
    assert found.key == "busy-polling"
    assert found.cost is not None
    # AND a poll interval, one process or SQLite (no notification between processes) are
    # not the broadcast
    for changes in (
        {"params": PROCESSES, "queue": PG | {"wakeup": "poll:50"}},
        {"queue": PG},
        {"params": PROCESSES},
    ):
        (found,) = busy_polling(_polling_run(800, **changes))
        assert found.key == "busy-polling"


def test_no_claim_timings_or_no_tasks_is_no_polling_finding() -> None:
    assert list(busy_polling(_polling_run(1_200, latencies=()))) == []
    assert list(busy_polling(_polling_run(1_200, counters={"completed": 0}))) == []


def _status_reads(reads: int, **changes: object) -> RunAnalysis:
    fields: dict[str, object] = {
        "workload": "latency",
        "duration_s": 2.0,
        "params": {"poll_interval_ms": 1.0},
        "counters": {"completed": 1_000},
        "latencies": from_nanoseconds({"status": np.full(reads, 20_000)}, "op-samples.npz"),
    }
    return builders.run_analysis(**(fields | changes))


def test_status_read_again_and_again_while_tasks_run_is_polling() -> None:
    # GIVEN 22,000 status reads of 20 us for 1,000 tasks: 20,000 beyond a woken poll's two
    (found,) = status_polling(_status_reads(22_000))
    # THEN polling on status, costed 0.4 s of a 2 s run
    assert (found.op, found.cause, found.standing) == ("status", Cause.POLLING, Standing.CAUSE)
    assert "22,000 status reads for 1,000 tasks (22 per task)" in found.title
    assert found.cost is not None
    assert found.cost.value == pytest.approx(0.4)
    assert found.cost.share == pytest.approx(0.2)
    assert "poll_interval_ms=1" in found.detail


def test_polling_reads_are_costed_by_their_own_time_not_their_wait_for_the_loop() -> None:
    # GIVEN 22,000 reads of which 12,100 first waited for their turn on a crowded event loop
    # (10 ms each, the other polls' time) and 9,900 did not (20 us): the median is a wait
    reads = np.concatenate([np.full(9_900, 20_000), np.full(12_100, 10_000_000)])
    latencies = from_nanoseconds({"status": reads}, "op-samples.npz")
    (found,) = status_polling(_status_reads(22_000, latencies=latencies))
    # THEN the 20,000 polling reads cost 20 us each, 0.4 s (not 200 s of a 2 s run)
    assert found.cost is not None
    assert found.cost.value == pytest.approx(0.4, rel=0.05)
    assert found.cost.share == pytest.approx(0.2, rel=0.05)


def test_a_poll_woken_by_the_completion_reads_about_twice() -> None:
    # A read that finds the task running, one after the wake-up (or one read per task, as
    # dbops makes): no polling
    assert list(status_polling(_status_reads(2_050))) == []
    assert list(status_polling(_status_reads(1_000))) == []
    assert list(status_polling(_status_reads(22_000, counters={"completed": 0}))) == []


# -- worker imbalance -----------------------------------------------------------------------


def test_one_worker_carrying_the_step_is_an_imbalance() -> None:
    counters = {"worker_claims.w0": 103, "worker_tasks.w0": 500, "worker_busy_us.w0": 800_000}
    for w in ("w1", "w2", "w3", "w4"):
        counters |= {f"worker_claims.{w}": 1, f"worker_tasks.{w}": 0, f"worker_busy_us.{w}": 0}
    run = builders.run_analysis(
        steps=(StepResult("5 workers", {"workers": 5}, {}, {}, counters),), duration_s=1.0
    )
    (found,) = worker_imbalance(run)
    assert (found.op, found.cause) == ("worker", Cause.WORKER_IMBALANCE)
    assert "w0 103 claims/500 tasks" in found.detail
    assert found.cost is not None
    assert found.cost.value == pytest.approx(0.64)


def test_one_claim_more_or_a_preempted_worker_is_no_imbalance() -> None:
    # GIVEN ten workers: w1 ran two claims' worth of tasks (2x the others), w4 was busy 2.3x
    # the next (preempted on a loaded machine): the splits of a clean run under load
    counters = {f"worker_tasks.w{i}": 300 for i in range(10)} | {
        f"worker_busy_us.w{i}": 100_000 for i in range(10)
    }
    counters |= {"worker_tasks.w1": 600, "worker_busy_us.w1": 100_000}
    counters |= {"worker_busy_us.w4": 230_000}
    run = builders.run_analysis(
        steps=(StepResult("10 workers", {"workers": 10}, {}, {}, counters),), duration_s=1.0
    )
    # THEN no worker carried the step
    assert list(worker_imbalance(run)) == []
    # AND neither when one of the ten found the queue empty at the drain's end
    counters |= {"worker_tasks.w9": 0, "worker_busy_us.w9": 1_000}
    run = builders.run_analysis(
        steps=(StepResult("10 workers", {"workers": 10}, {}, {}, counters),), duration_s=1.0
    )
    assert list(worker_imbalance(run)) == []


def test_workers_that_ran_nothing_while_the_others_carried_the_step_are_an_imbalance() -> None:
    # GIVEN five workers: three ran 100 tasks each (100 ms busy), two ran none
    counters = {f"worker_tasks.w{i}": 100 for i in range(3)} | {
        f"worker_busy_us.w{i}": 100_000 for i in range(3)
    }
    counters |= {"worker_tasks.w3": 0, "worker_busy_us.w3": 0}
    counters |= {"worker_tasks.w4": 0, "worker_busy_us.w4": 0}
    run = builders.run_analysis(
        steps=(StepResult("5 workers", {"workers": 5}, {}, {}, counters),), duration_s=0.5
    )
    (found,) = worker_imbalance(run)
    # THEN it names the starved workers, and costs the wait beyond an even split (40 ms)
    assert (found.op, found.cause) == ("worker", Cause.WORKER_IMBALANCE)
    assert "w3, w4 ran no task" in found.detail
    assert found.cost is not None
    assert found.cost.value == pytest.approx(0.04)


def _two_engines(handler_ms: float) -> RunAnalysis:
    """Two async engines: w0 ran 100 tasks in 1 s of busy time, w1 none; the handlers' calls
    took ``handler_ms`` in all."""
    counters = {"worker_tasks.w0": 100, "worker_busy_us.w0": 1_000_000}
    counters |= {"worker_tasks.w1": 0, "worker_busy_us.w1": 0}
    return builders.run_analysis(
        steps=(StepResult("2 workers, async", {"workers": 2}, {}, {}, counters),),
        params={"mode": "async"},
        latencies=from_nanoseconds({"handler": np.full(100, handler_ms * 1e4)}, "op"),
        duration_s=1.0,
    )


def test_async_engines_overlap_only_what_their_handlers_await() -> None:
    # GIVEN w0 carried the step with handlers that awaited 0.9 s (a sleep per task)
    (awaiting,) = worker_imbalance(_two_engines(handler_ms=900))
    # THEN the wait an even split would have overlapped is half of that: a cause
    assert awaiting.cost is not None
    assert awaiting.cost.value == pytest.approx(0.45)
    assert awaiting.standing is Standing.CAUSE
    # AND with noop handlers (1 ms in all) the busy time ran on the one event loop, which
    # another engine could not have taken: no cost worth a cause
    (running,) = worker_imbalance(_two_engines(handler_ms=1))
    assert running.cost is not None
    assert running.cost.value == pytest.approx(0.0005)
    assert running.standing is Standing.INFORMATION
    # AND process workers overlap all of it
    process = dataclasses.replace(_two_engines(handler_ms=1), params={"mode": "process"})
    (parallel,) = worker_imbalance(process)
    assert parallel.cost is not None
    assert parallel.cost.value == pytest.approx(0.5)


def test_balanced_workers_are_no_finding() -> None:
    counters = {f"worker_tasks.w{i}": 100 for i in range(4)} | {
        f"worker_busy_us.w{i}": 1000 for i in range(4)
    }
    run = builders.run_analysis(steps=(StepResult("4 workers", {}, {}, {}, counters),))
    assert list(worker_imbalance(run)) == []


# -- a comparison's drain against its cycle -------------------------------------------------


def _contender(
    name: str,
    drain: tuple[int, float],
    cycle: tuple[int, float],
    tasks: int = 9_000,
    **counters: int,
) -> StepResult:
    """A comparison's step for ``name``: (claims, median ms) in the drain and in the cycle,
    ``tasks`` enqueued in each."""

    def summary(count: int, p50: float) -> LatencySummary:
        return LatencySummary(count, p50, p50 * 2, p50 * 3, p50 * 10, p50 * 20, p50 * 1.2)

    return StepResult(
        name,
        {"contender": name, "claim_batch": 1},
        {"drain_tasks": tasks / 3, "cycle_tasks": tasks / 3},
        {
            "drain.claim": summary(*drain),
            "drain.enqueue": summary(tasks, 0.015),
            "cycle.claim": summary(*cycle),
            "cycle.enqueue": summary(tasks, 0.015),
        },
        counters,
    )


def test_a_claim_dearer_per_task_in_the_drain_than_in_the_cycle_grows_with_the_backlog() -> None:
    # GIVEN a comparison (no sweep, no SQL capture) where one peer's claim took a median
    # 0.171 ms per task in the drain (3,000 waiting at its start) and 0.020 ms in the cycle
    # (one waiting), as litequeue's pop did, beside the reference's flat claim; its claim
    # latency over both scenarios read only as "p99 is 11x its median"
    claims = np.concatenate([np.full(9_000, 20_000), np.linspace(30_000, 330_000, 9_000)])
    run = builders.run_analysis(
        workload="comparison",
        duration_s=5.8,
        steps=(
            _contender("sqlite3", (9_003, 0.023), (9_000, 0.023)),
            _contender("peer", (9_003, 0.171), (9_000, 0.020)),
        ),
        latencies=from_nanoseconds({"peer.claim": claims.astype(np.int64)}, "op-samples.npz"),
    )
    # WHEN the rules run and rank
    top = ranked(run_findings(run))[0]
    # THEN the #1 names the peer's claim and the backlog, at the drain's excess cost
    assert (top.op, top.cause, top.standing) == (
        "peer.claim",
        Cause.BACKLOG_GROWTH,
        Standing.CAUSE,
    )
    assert "8.6x in the drain (3,000 waiting at its start)" in top.title
    assert top.cost is not None
    assert top.cost.value == pytest.approx((0.171 - 0.020) * 9_000 / 1e3, rel=0.01)
    assert "capture_sql=true" in (top.recommendation or "")
    # AND the reference's flat claim is no finding
    assert [f.op for f in run_findings(run) if f.cause is Cause.BACKLOG_GROWTH] == ["peer.claim"]


def test_batched_drain_claims_or_a_swept_backlog_are_no_drain_finding() -> None:
    # GIVEN taskqueue's drain: 93 claims of ~100 tasks at 0.313 ms (0.003 ms per task)
    # against one-task cycle claims at 0.032 ms; and a peer whose sweep already measured
    # the growth (backlog_grows), which backlog_growth reports
    run = builders.run_analysis(
        workload="comparison",
        steps=(
            _contender("taskqueue", (93, 0.313), (9_000, 0.032)),
            _contender("swept", (9_003, 0.171), (9_000, 0.020), backlog_grows=1),
            _contender("small", (303, 0.171), (300, 0.020), tasks=300),
        ),
    )
    # THEN none of them is a drain finding (a drain of 300 tasks is below the floor)
    assert [f for f in run_findings(run) if f.key.startswith("drain-claims-")] == []


def test_a_swept_backlog_names_the_queue_s_claim() -> None:
    # GIVEN a peer whose sweep found its cost per task growing 17x from 1,000 to 20,000
    # waiting tasks (litequeue's pop), as every other finding of a comparison names its
    # operations (``peer.claim``: latencies, statements)
    step = _contender("peer", (9_003, 0.030), (9_000, 0.020), backlog_grows=1)
    step = dataclasses.replace(
        step,
        metrics={
            **step.metrics,
            "backlog_cost_growth": 17.4,
            "backlog_1000_tasks_per_s": 7_000.0,
            "backlog_20000_tasks_per_s": 400.0,
        },
    )
    run = builders.run_analysis(workload="comparison", steps=(step,))
    # WHEN the rules run
    (found,) = [f for f in run_findings(run) if f.cause is Cause.BACKLOG_GROWTH]
    # THEN the sweep's finding names the peer's claim, not taskqueue's operation name
    assert (found.op, found.subject) == ("peer.claim", "peer")
    assert found.title.startswith("peer: cost per task grows 17.4x with the backlog")


# -- memory ---------------------------------------------------------------------------------

KEEP = Frame("Store._tasks", "/x/taskqueue/store.py", 1)
CLAIM_FRAME = Frame("Store.claim_returning", "/x/taskqueue/store.py", 2)
PLAIN = Frame("WorkerEngine._run_plain", "/x/taskqueue/worker.py", 3)
NOISE = Frame("dict.__setitem__", "/x/lib.py", 4)


def test_steady_state_growth_names_the_operation_and_site() -> None:
    # GIVEN 2,000 tasks that retained 800 KiB, 700 of them allocated under a claim
    growth = HeapGrowth(
        "tracemalloc",
        2000,
        1.0,
        800 * 1024,
        400 * 1024,
        (
            StackAllocation((KEEP, CLAIM_FRAME), 700 * 1024, 4000, ""),
            StackAllocation((NOISE, PLAIN), 100 * 1024, 10, ""),
        ),
    )
    run = builders.run_analysis(
        workload="memory", retained=attribute_growth(growth, "heap-growth.json")
    )
    found = list(memory_growth(run))
    top = ranked(found)[0]
    assert (top.op, top.cause) == ("claim", Cause.MEMORY_GROWTH)
    assert "Store._tasks" in top.title
    assert top.cost is not None
    assert top.cost.share == pytest.approx(0.875)
    # AND _run_plain's allocations are the handler's
    assert any(f.op == "handler" for f in found)


def test_no_growth_above_the_floor_is_information() -> None:
    growth = HeapGrowth(
        "tracemalloc", 2000, 1.0, 4096, 2048, (StackAllocation((NOISE,), 4096, 3, ""),)
    )
    run = builders.run_analysis(retained=attribute_growth(growth, "heap-growth.json"))
    (found,) = memory_growth(run)
    assert found.standing is Standing.INFORMATION


def test_the_peak_lists_every_category_other_included() -> None:
    snapshot = AllocationSnapshot(
        1000,
        3,
        (
            StackAllocation((NOISE,), 600, 1, ""),
            StackAllocation((KEEP, CLAIM_FRAME), 400, 2, ""),
        ),
    )
    stats = MemoryStats(1000, 3, 1.0, snapshot, snapshot)
    run = builders.run_analysis(allocations=attribute_memory(stats, "memray-stats.json"))
    (found,) = peak_memory(run)
    assert "other held 1 KiB" in found.title or "other" in found.title
    assert "claim" in found.detail


# -- targets and overhead -------------------------------------------------------------------


def test_a_p99_from_22_samples_is_not_judged() -> None:
    summary = LatencySummary(22, 1.0, 1.0, 5.0, 22.0, 22.0, 22.0)
    run = builders.run_analysis(
        steps=(StepResult("1 worker", {}, {}, {"claim": summary}, {}),),
        targets=(Verdict("claim_p99_ms", 22.0, 20.0, "<", "ms", False),),
    )
    (found,) = missed_targets(run)
    assert found.standing is Standing.INSUFFICIENT
    assert found.title == "not enough samples to judge claim_p99_ms: 22 < 100"


def test_profiler_overhead_is_information_only() -> None:
    run = builders.run_analysis(overhead=Overhead("pyinstrument", 2.0, 2.1, 1.3, "baseline"))
    (found,) = profiler_overhead(run)
    assert found.standing is Standing.INFORMATION
    assert found.cost is None


# -- one report per invocation --------------------------------------------------------------


def test_several_runs_get_one_combined_report_in_a_folder_of_its_own(tmp_path: Path) -> None:
    runs = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        run = builders.run_analysis(run_id=name, folder=str(tmp_path / name), overhead=None)
        runs.append(RunAnalysis(**{**run.__dict__, "findings": run_findings(run)}))
    extra = finding("x", Cause.SQL_SCAN, 0.5)
    analysis = Analysis(runs=tuple(runs), findings=(extra,))
    folder = report_folder(analysis, None)
    assert folder is not None
    assert folder.parent == tmp_path
    assert folder.name.startswith("analysis-")
    written = write_reports(analysis, [Format.MARKDOWN, Format.JSON], None, folder)
    assert folder / "report.md" in written
    assert tmp_path / "a" / "report.md" in written
    document = orjson.loads((folder / "findings.json").read_bytes())
    assert document["leading"]["key"] == "x"
    assert document["findings"][0]["standing"] == "cause"


def test_schema_loads_with_sqlite_stat1(tmp_path: Path) -> None:
    (tmp_path / "schema.sql").write_text(
        TABLE
        + "CREATE INDEX w ON tasks (worker);"
        + "ANALYZE sqlite_schema;"
        + "INSERT INTO sqlite_stat1 VALUES('tasks','w','1000 1');"
    )
    schema = load_schema(tmp_path)
    assert isinstance(schema, Schema)
    assert schema.snapshot
    assert not explain("SELECT id FROM tasks WHERE worker = ?", schema.script).flagged


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"CREATE TABLE tasks (id INTEGER PRIMARY KEY", "SQLite cannot create it"),
        (b"\xff\xfe garbage", "not UTF-8"),
    ],
)
def test_a_damaged_schema_snapshot_falls_back_and_says_why(
    tmp_path: Path, content: bytes, why: str
) -> None:
    (tmp_path / "schema.sql").write_bytes(content)
    schema = load_schema(tmp_path)
    assert not schema.snapshot
    assert schema.script == CHECKOUT_SCHEMA.script
    assert schema.problem is not None
    assert "schema.sql in the run folder was not used" in schema.problem
    assert why in schema.problem
    assert load_schema(tmp_path / "missing").problem is None


def test_an_operation_without_timings_counts_calls_by_its_other_statements() -> None:
    # GIVEN complete (riding on claims, so no timings of its own) with 10 batch updates and
    # a read-back per acked task (1,000)
    statements = [
        statement(0, "complete", "UPDATE tasks SET state = 'done'", 10, 3.0),
        statement(1, "complete", "SELECT state FROM tasks WHERE id = ?", 1000, 24.0),
    ]
    run = builders.run_analysis(
        latencies=calls(claim=10), sql=sql_hotspots(statements, {}, {}), duration_s=0.1
    )
    (found,) = statements_per_call(run)
    assert (found.op, found.cause, found.standing) == ("complete", Cause.N_PLUS_ONE, Standing.CAUSE)
    assert "no call timings of its own" in found.detail


def test_a_program_s_postgresql_statement_is_not_planned_on_the_queue_s_sqlite_schema() -> None:
    # GIVEN a program's statement on its own PostgreSQL database, on a table named as the
    # queue's (which SQLite would plan on taskqueue's schema, as a scan of tasks)
    sql = "SELECT id FROM tasks WHERE payload = $1"
    planned = sql_hotspots([statement(0, "backlog", sql, 10, 5.0)], {}, {})[0]
    assert planned.plan.full_scans
    pg = dataclasses.replace(
        statement(0, "backlog", sql, 10, 5.0), database="postgresql://app@db:5432/jobs"
    )
    # WHEN the hotspots are planned
    (hotspot,) = sql_hotspots([pg], {}, {})
    # THEN it carries no plan, and says why
    assert hotspot.plan.lines == ()
    assert not hotspot.plan.flagged
    assert hotspot.plan.error is not None
    assert "PostgreSQL statement of the program's own database" in hotspot.plan.error
    assert hotspot.schema_source == "the schema of postgresql://app@db:5432/jobs"


def test_a_function_without_timings_counts_calls_by_the_transactions_it_opened() -> None:
    # GIVEN a program's push_batch (named by the SQL capture, no timings) that opened 24
    # transactions and inserted 1,200 rows in them, one INSERT each
    statements = [
        statement(0, "push_batch", "BEGIN;", 24, 20.0),
        statement(1, "push_batch", "INSERT INTO jobs (kind) VALUES ($1)", 1200, 140.0),
        statement(2, "push_batch", "COMMIT;", 24, 50.0),
    ]
    run = builders.run_analysis(sql=sql_hotspots(statements, {}, {}), duration_s=1.0)
    # WHEN the statements-per-call rule runs
    (found,) = statements_per_call(run)
    # THEN its calls are its transactions: 50 INSERTs per call, an N+1
    assert (found.op, found.cause) == ("push_batch", Cause.N_PLUS_ONE)
    assert found.title.startswith("push_batch: 50 statements per call (N+1)")
    assert "counted as the transactions it opened (24 BEGIN)" in found.detail


def test_a_function_without_timings_counts_calls_as_the_capture_counted_them() -> None:
    # GIVEN a program's push_batch (no timings, no transactions) that ran 1,200 INSERTs in
    # 24 calls, as the SQL capture counted them
    caller = SqlCaller("/app/jobqueue.py", "push_batch", "JobQueue.push_batch")
    statements = [
        dataclasses.replace(
            statement(0, "push_batch", "INSERT INTO jobs (kind) VALUES ($1)", 1200, 600.0),
            caller=caller,
            caller_calls=24,
        )
    ]
    run = builders.run_analysis(sql=sql_hotspots(statements, {}, {}), duration_s=3.0)
    # WHEN the statements-per-call rule runs
    (found,) = statements_per_call(run)
    # THEN 50 INSERTs per call: an N+1
    assert (found.op, found.cause) == ("push_batch", Cause.N_PLUS_ONE)
    assert found.title.startswith("push_batch: 50 statements per call (N+1)")
    assert "counted by the SQL capture (24 calls of JobQueue.push_batch" in found.detail


def test_no_round_trips_when_the_sql_is_most_of_each_call() -> None:
    # GIVEN one-task enqueues of 1 ms each, 0.7 ms of it SQL
    run = builders.run_analysis(
        params={"enqueue_batch": 1},
        latencies=calls(enqueue=100),
        sql=sql_hotspots([statement(0, "enqueue", "INSERT INTO tasks", 100, 70.0)], {}, {}),
        round_trips=RoundTrips({"enqueue": 100}, 100),
    )
    assert list(round_trips(run)) == []


def test_retries_are_not_extra_statements_and_lock_waits_not_per_call_overhead() -> None:
    # GIVEN 100 deferred claims (SELECT + UPDATE each) of which 200 statements were retries
    # after SQLITE_BUSY, and 80 of each call's 100 ms spent sleeping on the lock
    statements = [
        statement(0, "claim", "SELECT id FROM tasks", 200, 10.0),
        statement(1, "claim", "UPDATE tasks SET state = 'running'", 200, 10.0),
    ]
    counters = {
        "sqlite_busy_retries": 200,
        "sqlite_busy_retries.claim": 200,
        "lock_wait_us": 8_000_000,
        "lock_wait_us.claim": 8_000_000,
    }
    run = builders.run_analysis(
        queue={"claim_batch": 1},
        counters=counters,
        latencies=from_nanoseconds({"claim": np.full(100, 100_000_000)}, "op"),
        sql=sql_hotspots(statements, {}, {}),
        round_trips=RoundTrips({"claim": 100}, 100),
        duration_s=10.0,
    )
    # THEN no N+1 (2 statements per call) and no round trips (the wait is contention's)
    assert list(statements_per_call(run)) == []
    assert [f.cause for f in round_trips(run)] == []
    (found,) = contention(run)
    assert found.standing is Standing.CAUSE


def test_the_hand_off_to_the_connection_thread_is_no_hot_subtree(tmp_path: Path) -> None:
    # GIVEN enqueue whose running time is mostly the put onto aiosqlite's job queue
    base: list[builders.Frame] = [builders.LOOP, builders.RUN_FOREVER, builders.ENQUEUE]
    put: builders.Frame = ("SimpleQueue.put_nowait", "<built-in>")
    run = _profile(tmp_path, [([*base, builders.CALL, put], 0.1)] * 30)
    # THEN it is the trip's cost, not a subtree of enqueue's work
    assert list(subtree_findings(run)) == []


def test_alternative_ack_statements_riding_on_many_claims_are_no_n_plus_one() -> None:
    # GIVEN 621 claims carrying acks: 247 single-task updates and 39 batch updates (two paths
    # of one call, not 7 statements per call)
    statements = [
        statement(0, "complete", "UPDATE tasks SET state = 'done' WHERE id = :id", 247, 5.0),
        statement(1, "complete", "UPDATE tasks SET state = 'done' FROM json_each(:a)", 39, 5.0),
    ]
    run = builders.run_analysis(
        latencies=calls(claim=621), sql=sql_hotspots(statements, {}, {}), duration_s=0.1
    )
    assert list(statements_per_call(run)) == []


def test_one_ack_statement_per_task_riding_on_the_claims_is_an_n_plus_one() -> None:
    # GIVEN 1,163 claims carrying 6,000 acks, each ack one UPDATE of its own (one distinct
    # statement, so no second statement to count complete's calls by)
    statements = [
        statement(0, "complete", "UPDATE tasks SET state = 'done' WHERE id = $1", 6_000, 2_460.0),
    ]
    run = builders.run_analysis(
        latencies=calls(claim=1_163), sql=sql_hotspots(statements, {}, {}), duration_s=12.0
    )
    # WHEN the statements-per-call rule runs
    (found,) = statements_per_call(run)
    # THEN complete's calls are the claims it rides on: 5.16 statements per call
    assert (found.op, found.cause) == ("complete", Cause.N_PLUS_ONE)
    assert found.title.startswith("complete: 5.16 statements per call (N+1)")
    assert "counted as claim's (1,163), at most one per claim call" in found.detail
    # ... and one ack statement per claim (ack_batch=1) is no N+1
    one_each = [statement(0, "complete", "UPDATE tasks SET state = 'done'", 1_163, 50.0)]
    run = builders.run_analysis(latencies=calls(claim=1_163), sql=sql_hotspots(one_each, {}, {}))
    assert list(statements_per_call(run)) == []


def test_round_trips_are_weighed_on_the_bare_run_when_it_was_kept() -> None:
    # GIVEN enqueues of 1 ms under the profiler (0.2 ms SQL: overhead "dominates"), but of
    # 0.3 ms in the bare run with the same 0.2 ms of SQL
    def run_with(bare: BareRun | None) -> RunAnalysis:
        return builders.run_analysis(
            params={"enqueue_batch": 1},
            latencies=calls(enqueue=100),
            sql=sql_hotspots([statement(0, "enqueue", "INSERT INTO tasks", 100, 20.0)], {}, {}),
            round_trips=RoundTrips({"enqueue": 100}, 100),
            duration_s=0.5,
            bare=bare,
        )

    bare = BareRun(
        0.2, from_nanoseconds({"enqueue": np.full(100, 300_000)}, "baseline"), {"enqueue": 20.0}
    )
    # THEN the profiled timings alone would blame the calls, the bare ones do not
    assert [f.cause for f in round_trips(run_with(None))] == [Cause.ROUND_TRIPS]
    assert list(round_trips(run_with(bare))) == []


def test_work_inside_the_store_is_a_subtree_that_holds_the_lock(tmp_path: Path) -> None:
    # GIVEN claims whose store code walks every payload (py-spy: the store's frame above the
    # walk), and 2 s that other writers waited on claim's lock
    walk: builders.Frame = ("walk", "app/validate.py")
    base: list[builders.Frame] = [builders.LOOP, builders.CLAIM, builders.CLAIM_RETURNING]
    run = _profile(
        tmp_path,
        [*[([*base, walk], 0.1)] * 30, *[(base, 0.1)] * 10, *[([builders.LOOP], 0.1)] * 10],
    )
    run = RunAnalysis(
        **{
            **run.__dict__,
            "counters": {"lock_wait_us": 2_000_000, "lock_wait_us.claim": 2_000_000},
            "params": {"workers": 2},
        }
    )
    # WHEN the subtree rule runs
    (found,) = subtree_findings(run)
    # THEN the walk is named, with the lock waits it caused added to its cost
    assert (found.op, found.cause) == ("claim", Cause.HOT_SUBTREE)
    assert "inside claim's transaction" in found.title
    assert found.cost is not None
    assert found.cost.share > 3.0 / 5.0


def test_a_subtree_another_profiler_saw_blocking_is_a_loop_hold_in_every_run() -> None:
    # GIVEN pyinstrument's run saw _notify -> sleep; py-spy's run of the same workload sees
    # only the Python caller _notify
    def subtree(run_id: str, cause: Cause) -> Finding:
        return Finding(
            key=f"{cause}-{run_id}",
            cause=cause,
            title="enqueue: X (a.py) takes 90% of enqueue's running time",
            detail="",
            evidence=(),
            op="enqueue",
            subject="_notify",
            run_id=run_id,
        )

    runs = {
        "a": builders.run_analysis(run_id="a", workload="dbops"),
        "b": builders.run_analysis(run_id="b", workload="dbops"),
    }
    merged = consolidate([subtree("a", Cause.LOOP_HOLD), subtree("b", Cause.HOT_SUBTREE)], runs)
    assert [f.cause for f in merged] == [Cause.LOOP_HOLD, Cause.LOOP_HOLD]
    assert merged[1].title.startswith("enqueue: blocking call holds the event loop")


def test_a_subtree_holding_most_of_an_op_that_another_profile_saw_held_is_that_hold() -> None:
    # GIVEN pyinstrument saw `sleep` hold 92% of enqueue; py-spy (no C frames) sees the
    # caller a wrapper defines, `insert`, take 97% of enqueue, and `encode` take 30% of claim
    def subtree(run_id: str, cause: Cause, op: str, subject: str, share: float) -> Finding:
        return Finding(
            key=f"{cause}-{op}-event-loop-{run_id}",
            cause=cause,
            title=f"{op}: {subject} (a.py) takes {share:.0%} of {op}'s running time",
            detail="",
            evidence=(
                Evidence(f"{subject} inclusive time", share, "s", "p.json"),
                Evidence(f"{op} running time", 1.0, "s", "p.json"),
            ),
            op=op,
            subject=subject,
            run_id=run_id,
        )

    runs = {
        "a": builders.run_analysis(run_id="a", workload="dbops"),
        "b": builders.run_analysis(run_id="b", workload="dbops"),
    }
    hold = subtree("a", Cause.LOOP_HOLD, "enqueue", "sleep", 0.92)
    caller = subtree("b", Cause.HOT_SUBTREE, "enqueue", "insert", 0.97)
    other = subtree("b", Cause.HOT_SUBTREE, "claim", "encode", 0.30)
    # WHEN the runs are consolidated
    merged = consolidate([hold, caller, other], runs)
    # THEN the caller is the hold (over half of one operation each: they overlap), while a
    # subtree of another operation stays what it is
    assert [f.cause for f in merged] == [Cause.LOOP_HOLD, Cause.LOOP_HOLD, Cause.HOT_SUBTREE]


def test_async_workers_running_handler_code_are_no_imbalance(tmp_path: Path) -> None:
    # GIVEN w0 did all of 1 s of busy time, all of it handler code on the one event loop
    counters = {"worker_tasks.w0": 100, "worker_busy_us.w0": 1_000_000}
    counters |= {"worker_tasks.w1": 0, "worker_busy_us.w1": 0}
    run = _profile(
        tmp_path,
        [([builders.LOOP, builders.WORKER, ("noop", "taskqueue/handlers.py")], 0.1)] * 10,
    )
    run = RunAnalysis(
        **{**run.__dict__, "steps": (StepResult("2 workers", {"workers": 2}, {}, {}, counters),)}
    )
    (found,) = worker_imbalance(run)
    # THEN an even split would have saved nothing: no cost, no cause
    assert found.cost is not None
    assert found.cost.value == pytest.approx(0.0)
    assert found.standing is Standing.INFORMATION


def test_the_hand_back_is_counted_once_in_the_round_trips_it_belongs_to(tmp_path: Path) -> None:
    # GIVEN a connection thread that spends most of its busy time handing results back
    thread = [([builders.THREAD, builders.INSERT, builders.EXECUTE], 0.01)] * 30 + [
        ([builders.THREAD, builders.HANDOFF], 0.01)
    ] * 60
    path = builders.write_json(
        tmp_path / "p.speedscope.json",
        builders.speedscope([("event loop", builders.LOOP_SAMPLES), ("aiosqlite", thread)]),
    )
    attribution = attribute(load_speedscope(path), profiler="pyinstrument", source=path.name)

    def run_with(queue: dict[str, int]) -> RunAnalysis:
        return builders.run_analysis(
            attributions=(attribution,),
            duration_s=2.0,
            queue=queue,
            latencies=calls(complete=100, claim=10),
            sql=sql_hotspots(
                [statement(0, "complete", "UPDATE tasks SET state='done'", 100, 10)], {}, {}
            ),
            round_trips=RoundTrips({"complete": 100, "claim": 10}, 100),
        )

    # WHEN no finding costs the trips (no setting batches them): the hand-back names the
    # operation that makes the most calls, as information (the thread runs beside the loop)
    (alone,) = handoff(run_with({}))
    assert (alone.op, alone.cause, alone.standing) == (
        "complete",
        Cause.ROUND_TRIPS,
        Standing.INFORMATION,
    )
    # AND when a round-trips finding costs them, the hand-back is part of its per-call
    # overhead: information that names the same operation, never a second lead
    (part,) = handoff(run_with({"ack_batch": 1}))
    (trips,) = round_trips(run_with({"ack_batch": 1}))
    assert part.op == trips.op == "complete"
    assert part.standing is Standing.INFORMATION
    assert trips.title in part.detail


def test_lock_waits_are_a_share_of_the_workers_busy_time_not_of_their_idle_time() -> None:
    # GIVEN 10 workers busy 0.2 s each in a 4 s step (mostly idle), 0.5 s waiting on locks
    counters = {
        "sqlite_busy_retries": 100,
        "sqlite_busy_retries.claim": 100,
        "lock_wait_us": 500_000,
        "lock_wait_us.claim": 500_000,
        "pool_wall_us": 4_000_000,
    } | {f"worker_busy_us.w{i}": 200_000 for i in range(10)}
    run = builders.run_analysis(
        steps=(StepResult("10 workers", {"workers": 10}, {}, {}, counters),), duration_s=4.0
    )
    (found,) = contention(run)
    # THEN it costs a quarter of what the workers did (not 0.5 / 40 s of their capacity)
    assert found.cost is not None
    assert found.cost.share == pytest.approx(0.25)


def test_trips_of_calls_that_lost_inline_dispatch_belong_to_the_contention() -> None:
    # GIVEN an invocation whose dbops run measured contention (20% of the workers' time) and
    # whose throughput run's enqueues each paid a trip (47% of its run), none of them inline
    def trips_run(run_id: str, inline: int) -> RunAnalysis:
        return builders.run_analysis(
            run_id=run_id, round_trips=RoundTrips({"enqueue": 3000}, 3000, inline=inline)
        )

    runs = {
        "dbops": builders.run_analysis(run_id="dbops"),
        "lost": trips_run("lost", inline=0),
        "kept": trips_run("kept", inline=2500),
    }
    contended = dataclasses.replace(
        finding("contention", Cause.CONTENTION, 0.2), op="claim", run_id="dbops"
    )

    def trips(run_id: str) -> Finding:
        return dataclasses.replace(
            finding("round-trips", Cause.ROUND_TRIPS, 0.47), op="enqueue", run_id=run_id
        )

    # WHEN the findings are consolidated and ranked
    merged = ranked(consolidate([contended, trips("lost"), trips("kept")], runs))
    by_run = {f.run_id: f for f in merged}
    # THEN the trips of the run that lost inline dispatch are the contention's consequence
    # (information that says so), while trips of calls that could run inline stay a cause
    assert by_run["lost"].standing is Standing.INFORMATION
    assert "no call ran inline" in by_run["lost"].title
    assert contended.title in by_run["lost"].detail
    assert by_run["kept"].standing is Standing.CAUSE
    assert merged[0].run_id == "kept"
    # AND with no contention in the invocation, they stay a cause too
    (alone,) = consolidate([trips("lost")], runs)
    assert alone.standing is Standing.CAUSE


def test_writers_that_collide_own_the_loops_wait_for_their_threads() -> None:
    # GIVEN a run whose writers collided (SQLITE_BUSY retries, lock waits 2% of the workers'
    # time) and whose calls all lost inline dispatch, the event loop waiting 45% of its time
    # for the connection threads
    def run(run_id: str, dispatch: str) -> RunAnalysis:
        return builders.run_analysis(
            run_id=run_id,
            queue={"dispatch": dispatch},
            round_trips=RoundTrips({"enqueue": 4000, "claim": 3000}, 6000, inline=0),
        )

    runs = {"lost": run("lost", "auto"), "chosen": run("chosen", "thread")}

    def pair(run_id: str) -> list[Finding]:
        collided = dataclasses.replace(
            finding("contention", Cause.CONTENTION, 0.02), op="enqueue", run_id=run_id
        )
        waiting = dataclasses.replace(
            finding("waiting-pyinstrument", Cause.WAITING, 0.45), run_id=run_id
        )
        return [collided, waiting]

    # WHEN the findings are consolidated and ranked
    merged = ranked(consolidate(pair("lost"), runs))
    # THEN the contention leads, as a cause costing the loop's wait, and names that wait
    assert merged[0].cause is Cause.CONTENTION
    assert merged[0].standing is Standing.CAUSE
    assert merged[0].cost is not None
    assert merged[0].cost.share == pytest.approx(0.45)
    assert "no call ran inline" in merged[0].title
    # AND the wait stays as information that points to it, with no cost of its own
    (wait,) = [f for f in merged if f.cause is Cause.WAITING]
    assert wait.cost is None
    assert merged[0].title in wait.detail
    # AND where the user chose thread dispatch, the wait is not the collision's to claim
    chosen = ranked(consolidate(pair("chosen"), runs))
    assert chosen[0].cause is Cause.WAITING
    # AND with no collision, the wait is left as it was
    (alone,) = consolidate(pair("lost")[1:], runs)
    assert alone == pair("lost")[1]
    # AND tasks queued on an asyncio lock collide on no connection: neither is merged
    queued = dataclasses.replace(pair("lost")[0], key="asyncio-lock-handler", op="handler")
    assert consolidate([queued, pair("lost")[1]], runs) == [queued, pair("lost")[1]]


def test_few_row_statements_taking_milliseconds_on_the_loop_are_a_loop_hold() -> None:
    # GIVEN 200 single-row inserts at 40 us and their 200 commits at 3 ms each (a sync per
    # commit), run inline on the event loop
    def run_with(inline: int, commit_ms: float) -> RunAnalysis:
        return builders.run_analysis(
            duration_s=1.0,
            sql=sql_hotspots(
                [
                    statement(0, "enqueue", "INSERT INTO tasks (state) VALUES ('pending')", 200, 8),
                    SqlStatement(1, "enqueue", "COMMIT", 200, 200 * commit_ms, 1, 2, 3, 4, 0),
                ],
                {},
                {},
            ),
            round_trips=RoundTrips({"enqueue": 200}, 200, inline=inline),
        )

    (found,) = waiting_statements(run_with(inline=200, commit_ms=3.0))
    # THEN enqueue holds the loop while SQLite waits: 0.6 s, 60% of the run
    assert (found.op, found.cause) == ("enqueue", Cause.LOOP_HOLD)
    assert "`COMMIT` 3 ms each" in found.title
    assert found.cost is not None
    assert found.cost.share == pytest.approx(0.6)
    # AND the same statements on the connection threads hold no loop; fast ones wait for nothing
    assert list(waiting_statements(run_with(inline=0, commit_ms=3.0))) == []
    assert list(waiting_statements(run_with(inline=200, commit_ms=0.05))) == []
    # AND a commit of a transaction that wrote many rows (claims of 100) does that work
    claims = builders.run_analysis(
        duration_s=1.0,
        sql=sql_hotspots(
            [
                SqlStatement(
                    0, "claim", "UPDATE tasks SET state = 'running'", 50, 5, 1, 2, 3, 4, 5000
                ),
                SqlStatement(1, "claim", "COMMIT", 50, 50.0, 1, 2, 3, 4, 0),
            ],
            {},
            {},
        ),
        round_trips=RoundTrips({"claim": 50}, 5000, inline=50),
    )
    assert list(waiting_statements(claims)) == []


def test_a_few_row_statement_whose_median_is_an_fsync_waits_though_its_mean_is_under_1_ms() -> None:
    # GIVEN 1,000 single-row inserts whose median is 340 us, an fsync on an idle disk
    # (synchronous=FULL), and their transactions' BEGIN IMMEDIATE as slow, run inline
    def run_with(p50_us: float, **queue: str) -> RunAnalysis:
        run = builders.run_analysis(
            duration_s=1.0,
            sql=sql_hotspots(
                [
                    SqlStatement(
                        0,
                        "enqueue",
                        "INSERT INTO tasks (state) VALUES ('pending')",
                        1000,
                        p50_us,
                        p50_us,
                        p50_us * 1.3,
                        p50_us * 1.6,
                        p50_us * 2,
                        1000,
                    ),
                    SqlStatement(
                        1, "enqueue", "BEGIN IMMEDIATE", 1000, 400.0, 400, 500, 600, 700, 0
                    ),
                ],
                {},
                {},
            ),
            round_trips=RoundTrips({"enqueue": 1000}, 1000, inline=1000),
        )
        return dataclasses.replace(run, queue=dict(queue))

    (found,) = waiting_statements(run_with(340.0))
    # THEN the insert is named, by its own time: 0.34 s of a 1 s run; the BEGIN is not (a wait
    # for the write lock is contention's)
    assert (found.op, found.cause) == ("enqueue", Cause.LOOP_HOLD)
    assert "`INSERT INTO tasks" in found.title
    assert found.cost is not None
    assert found.cost.share == pytest.approx(0.34)
    # AND a clean insert's median (tens of microseconds) waits for nothing
    assert list(waiting_statements(run_with(40.0))) == []
    # AND on PostgreSQL a statement's median is the server's round trip, not a held loop
    assert list(waiting_statements(run_with(340.0, backend="postgresql://127.0.0.1/test"))) == []


def test_reading_every_ready_row_to_claim_one_is_a_scan_whatever_the_plan() -> None:
    # GIVEN 300 claims of one task each, each reading 800 ready rows through an index
    def run_with(rows_per_read: int, tasks: int) -> RunAnalysis:
        return builders.run_analysis(
            duration_s=1.0,
            sql=sql_hotspots(
                [
                    SqlStatement(
                        0,
                        "claim",
                        "SELECT id, priority FROM tasks WHERE id > 0",
                        300,
                        400.0,
                        1,
                        2,
                        3,
                        4,
                        300 * rows_per_read,
                    )
                ],
                {},
                {},
                Schema(TABLE, "schema.sql", snapshot=True),
            ),
            round_trips=RoundTrips({"claim": 300}, tasks),
        )

    (found,) = wide_reads(run_with(800, 300))
    # THEN the claim reads far more than it takes: a scan, costing the statement's time
    assert (found.op, found.cause) == ("claim", Cause.SQL_SCAN)
    assert found.title.startswith("claim: reads 800 rows per execution to handle 1 task(s)")
    assert found.cost is not None
    assert found.cost.share == pytest.approx(0.4)
    # AND claims of 100 tasks reading their 100 rows, or a few rows per claim, are no finding
    assert list(wide_reads(run_with(100, 30_000))) == []
    assert list(wide_reads(run_with(5, 300))) == []


@pytest.mark.parametrize(
    "bookkeeping",
    [
        [("TaskQueue._finished", "taskqueue/queue.py")],
        # _finished replaced by a function of another name (a developer's edit, a decorator)
        # that never shows calling the real one: _acks_landed, which calls it, says whose
        [("TaskQueue._acks_landed", "taskqueue/queue.py"), ("TaskQueue.journaled", "app/j.py")],
    ],
)
def test_work_after_acks_land_is_completion_work_even_when_a_claim_carried_them(
    tmp_path: Path, bookkeeping: list[builders.Frame]
) -> None:
    # GIVEN acks that ride on a claim, and the bookkeeping after they land blocking in fsync
    carried = ("TaskQueue.complete_acks_and_claim", "taskqueue/queue.py")
    base: list[builders.Frame] = [builders.LOOP, builders.RUN_FOREVER, builders.WORKER, carried]
    run = _profile(
        tmp_path,
        [
            *[([*base, *bookkeeping, ("fsync", "<built-in>")], 0.1)] * 30,
            *[([*base, builders.CALL, builders.AWAIT], 0.1)] * 10,
        ],
    )
    # WHEN the subtree rule runs
    (found,) = subtree_findings(run)
    # THEN it is complete's loop hold, not the claim's
    assert (found.op, found.cause) == ("complete", Cause.LOOP_HOLD)


def test_per_call_overhead_of_inline_calls_under_the_profiler_alone_is_information() -> None:
    # GIVEN completes one task per call, 1 ms each of which 0.1 ms SQL, all run inline (no
    # trip), with no bare run kept: the overhead is Python, inflated by the profiler's hook
    def run_with(inline: int, bare: BareRun | None) -> RunAnalysis:
        return builders.run_analysis(
            queue={"ack_batch": 1},
            latencies=calls(complete=100),
            sql=sql_hotspots(
                [statement(0, "complete", "UPDATE tasks SET state='done'", 100, 10)], {}, {}
            ),
            round_trips=RoundTrips({"complete": 100}, 100, inline=inline),
            bare=bare,
        )

    (inline,) = round_trips(run_with(inline=100, bare=None))
    assert inline.standing is Standing.INFORMATION
    # AND calls that made trips, or overhead measured on the bare run, stay a cause
    (tripped,) = round_trips(run_with(inline=0, bare=None))
    assert tripped.standing is Standing.CAUSE
    bare = BareRun(1.0, calls(complete=100), {"complete": 10.0})
    (measured,) = round_trips(run_with(inline=100, bare=bare))
    assert measured.standing is Standing.CAUSE


def test_a_subtree_inside_a_database_client_is_the_trip_to_its_server(tmp_path: Path) -> None:
    # GIVEN enqueue's time inside psycopg's wait for a PostgreSQL server's reply
    base: list[builders.Frame] = [builders.LOOP, builders.RUN_FOREVER, builders.ENQUEUE]
    defer: builders.Frame = ("batch_defer_jobs_async", "/venv/lib/procrastinate/manager.py")
    wait: builders.Frame = ("Cursor._execute_gen", "/venv/lib/psycopg/cursor_async.py")
    run = _profile(
        tmp_path,
        [
            *[([*base, defer, wait], 0.2)] * 30,
            *[(base, 0.05)] * 10,
            *[([builders.LOOP, builders.RUN_FOREVER, builders.SELECT], 0.1)] * 10,
        ],
    )
    # WHEN the subtree rule runs
    (found,) = subtree_findings(run)
    # THEN it names enqueue and says the time is the round trip, not Python work or SQLite
    assert found.op == "enqueue"
    assert "psycopg waiting for the database server's reply" in found.recommendation
    assert "SQLite" not in found.recommendation


def test_waiting_for_a_postgres_server_is_not_called_a_connection_thread() -> None:
    # GIVEN a run on the PostgreSQL backend whose enqueue waits most of its loop time
    loop = RoleAttribution(
        role=ThreadRole.EVENT_LOOP,
        threads=1,
        unit="seconds",
        total=10.0,
        samples=1000,
        categories=(CategoryTime(Category.ENQUEUE, wall=8.0, wait=6.0, share=0.8, samples=800),),
    )
    attribution = Attribution("pyinstrument", "p.speedscope.json", (loop,))
    for backend, words in (
        ("postgresql://127.0.0.1/test", "waiting for the PostgreSQL server"),
        (None, "waiting for the connection thread"),
    ):
        queue = {"backend": backend} if backend else {}
        run = builders.run_analysis(attributions=(attribution,), duration_s=10.0, queue=queue)
        # WHEN the waiting rule runs
        (found,) = waiting_operations(run)
        # THEN its words name what the queue waits on
        assert words in found.title


# -- asyncio locks --------------------------------------------------------------------------

SERIALISED = ("WorkerEngine.serialised", "app/locking.py")
"""A wrapper set on the engine around _execute that takes one asyncio.Lock per queue."""
EXECUTE_TASK = ("WorkerEngine._execute", "taskqueue/worker.py")
AENTER = ("Lock.__aenter__", "asyncio/locks.py")
LOCK_ACQUIRE = ("Lock.acquire", "asyncio/locks.py")
ASYNC_SLEEP = ("sleep", "asyncio/tasks.py")
ENGINE: list[builders.Frame] = [builders.LOOP, builders.RUN_FOREVER, builders.WORKER]


def _engines(
    tmp_path: Path,
    samples: list[tuple[list[builders.Frame], float]],
    *,
    busy_us: int,
    handler_calls: int = 300,
    mode: str = "async",
) -> RunAnalysis:
    """Five engines busy ``busy_us`` each over one step, 300 tasks, handlers of 1 ms each."""
    run = _profile(tmp_path, samples)
    counters = {f"worker_busy_us.w{i}": busy_us for i in range(5)} | {
        f"worker_tasks.w{i}": 60 for i in range(5)
    }
    return dataclasses.replace(
        run,
        duration_s=1.0,
        params={"mode": mode, "worker_counts": [5]},
        latencies=calls(handler=handler_calls, claim=10),
        steps=(StepResult("5 workers", {"workers": 5}, {}, {}, counters),),
    )


def test_engines_queued_on_one_asyncio_lock_around_their_handlers_are_contention(
    tmp_path: Path,
) -> None:
    # GIVEN five engines busy 0.5 s each (2.5 s), whose handlers took 0.3 s and claims
    # 0.01 s; the loop ran 0.05 s of code outside operations; the profile charged the idle
    # time to the lock holder's sleep and caught 4 ms of coroutines queued on the lock
    run = _engines(
        tmp_path,
        [
            *[([*ENGINE, SERIALISED, EXECUTE_TASK, ASYNC_SLEEP, builders.AWAIT], 0.01)] * 30,
            *[([*ENGINE, SERIALISED, AENTER, LOCK_ACQUIRE, builders.AWAIT], 0.001)] * 4,
            *[(ENGINE, 0.01)] * 5,
        ],
        busy_us=500_000,
    )
    # WHEN the asyncio-lock rule runs
    (found,) = asyncio_waits(run)
    # THEN it is contention in the handler the wrapper wraps, costed by the engines' clocks
    assert (found.op, found.cause, found.standing) == ("handler", Cause.CONTENTION, Standing.CAUSE)
    assert found.subject == "serialised"
    assert "WorkerEngine.serialised -> asyncio.Lock" in found.title
    assert found.cost is not None
    assert found.cost.value == pytest.approx(2.5 - 0.31 - 0.05)
    assert found.cost.share == pytest.approx((2.5 - 0.31 - 0.05) / 2.5)
    assert found.support == Support(300, "tasks", 50)
    # AND it leads the run's findings
    run = dataclasses.replace(run, findings=run_findings(run))
    assert ranked(run.findings)[0].key == found.key


def test_engines_taking_turns_on_the_loop_are_no_lock_contention(tmp_path: Path) -> None:
    # GIVEN engines whose busy time is their handlers and their own Python, and who wait
    # for their turn on the loop (the queue's own asyncio.Lock, outside every operation)
    run = _engines(
        tmp_path,
        [
            *[([*ENGINE, EXECUTE_TASK, ASYNC_SLEEP, builders.AWAIT], 0.01)] * 30,
            *[([*ENGINE, LOCK_ACQUIRE, builders.AWAIT], 0.01)] * 30,
            *[(ENGINE, 0.01)] * 5,
        ],
        busy_us=110_000,
        handler_calls=500,
    )
    # THEN there is nothing to report
    assert list(asyncio_waits(run)) == []
    # AND process workers (a loop each; the profile sees the parent's) are not judged by
    # the clocks either
    run = _engines(tmp_path, [(ENGINE, 0.01)] * 5, busy_us=500_000, mode="process")
    assert list(asyncio_waits(run)) == []


def test_engines_suspended_outside_operations_on_nothing_sampled_are_information(
    tmp_path: Path,
) -> None:
    # GIVEN engines busy far beyond their operations, with no sample on a primitive
    run = _engines(
        tmp_path,
        [([*ENGINE, EXECUTE_TASK, ASYNC_SLEEP, builders.AWAIT], 0.01)] * 30,
        busy_us=500_000,
    )
    (found,) = asyncio_waits(run)
    # THEN it says so, as information that claims no cause
    assert (found.op, found.cause, found.standing) == (
        "worker",
        Cause.WAITING,
        Standing.INFORMATION,
    )
    assert "no profile sample names" in found.title


def test_a_semaphore_inside_an_operation_is_sampled_contention_without_engine_clocks(
    tmp_path: Path,
) -> None:
    # GIVEN a dbops-like run (no engine counters): enqueue waits on a Semaphore 0.3 s of 1 s
    semaphore = ("Semaphore.acquire", "asyncio/locks.py")
    limiter = ("TaskQueue.limited", "app/limits.py")
    base: list[builders.Frame] = [builders.LOOP, builders.RUN_FOREVER, limiter]
    run = _profile(
        tmp_path,
        [
            *[([*base, semaphore, builders.AWAIT], 0.01)] * 30,
            *[([*base, builders.ENQUEUE, builders.CALL, builders.AWAIT], 0.01)] * 70,
        ],
    )
    run = dataclasses.replace(run, duration_s=1.0)
    (found,) = asyncio_waits(run)
    # THEN the sampled wait is enqueue's contention, costed as its share of the run
    assert (found.op, found.cause) == ("enqueue", Cause.CONTENTION)
    assert found.cost is not None
    assert found.cost.value == pytest.approx(0.3)
    assert found.support == Support(30, "samples", 20)
    # AND engines that waited elsewhere meanwhile do not lend it their clocks: the producer's
    # enqueue waits on its own time
    counters = {f"worker_busy_us.w{i}": 500_000 for i in range(5)}
    run = dataclasses.replace(
        run,
        latencies=calls(handler=300),
        steps=(StepResult("5 workers", {"workers": 5}, {}, {}, counters),),
    )
    (found,) = asyncio_waits(run)
    assert found.cost is not None
    assert found.cost.value == pytest.approx(0.3)


def test_a_lock_seen_only_handed_on_still_names_the_engines_wait(tmp_path: Path) -> None:
    # GIVEN the same engines, whose profile caught no coroutine suspended on the lock (the
    # idle time went to the holder's sleep), only the holder releasing it to the next
    aexit = ("Lock.__aexit__", "asyncio/locks.py")
    release = ("Lock.release", "asyncio/locks.py")
    run = _engines(
        tmp_path,
        [
            *[([*ENGINE, SERIALISED, EXECUTE_TASK, ASYNC_SLEEP, builders.AWAIT], 0.01)] * 30,
            *[([*ENGINE, SERIALISED, aexit, release], 0.001)] * 3,
            *[(ENGINE, 0.01)] * 5,
        ],
        busy_us=500_000,
    )
    (found,) = asyncio_waits(run)
    # THEN the lock it uses is named, and the engines' clocks cost the wait
    assert (found.op, found.cause, found.standing) == ("handler", Cause.CONTENTION, Standing.CAUSE)
    assert "WorkerEngine.serialised -> asyncio.Lock" in found.title
    assert found.cost is not None
    assert found.cost.value == pytest.approx(2.5 - 0.31 - 0.05)


def test_awaiting_calls_that_never_overlapped_are_contention_with_no_lock_sampled(
    tmp_path: Path,
) -> None:
    # GIVEN five engines suspended outside their operations, no sample inside a primitive,
    # and handlers that mostly await but whose 300 calls (0.3 s) fit in the 0.4 s step
    run = _engines(
        tmp_path,
        [([*ENGINE, SERIALISED, EXECUTE_TASK, ASYNC_SLEEP, builders.AWAIT], 0.01)] * 30,
        busy_us=500_000,
    )
    (step,) = run.steps
    counters = {**step.counters, "pool_wall_us": 400_000}
    run = dataclasses.replace(run, steps=(dataclasses.replace(step, counters=counters),))
    (found,) = asyncio_waits(run)
    # THEN their calls ran one at a time: contention in the handler
    assert (found.op, found.cause, found.standing) == ("handler", Cause.CONTENTION, Standing.CAUSE)
    assert "ran one at a time" in found.title
    # AND calls that overlapped (1 s of them in the 0.4 s step) are no such finding
    run = dataclasses.replace(run, latencies=calls(handler=1000, claim=10))
    assert [f.cause for f in asyncio_waits(run)] == [Cause.WAITING]
