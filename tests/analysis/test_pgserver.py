"""The database side of a PostgreSQL run: its two files loaded (hostile ones refused by name),
profiled by operation, shown in the reports, and read by the diagnosis rules.

GIVEN hand-written pg-activity.json / pg-statements.json (as workloads.pgactivity writes
them), WHEN loaded and analysed, THEN the #1 finding names the operation and the cause.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import orjson
import pytest

from analysis.errors import ArtifactError
from analysis.findings import (
    run_findings,
    server_io_waits,
    server_lock_waits,
    server_plans,
    server_statements_per_call,
)
from analysis.load.pgserver import load_server_activity, load_server_statements
from analysis.model import Analysis, Cause, Standing, ranked
from analysis.pgserver import database_side, state_columns
from analysis.render import RENDERERS, Format
from analysis.sqlplan import QueryPlan
from runs.files import PG_ACTIVITY, PG_STATEMENTS

from . import builders
from .test_rules import calls

CLAIM_SQL = "WITH picked AS (SELECT id FROM tasks ORDER BY priority LIMIT $4 FOR UPDATE) ..."


def sample(
    op: str, state: str, count: int, *, statement: str = "", event: str = "", **blocked: int
) -> dict[str, Any]:
    return {
        "op": op,
        "statement": statement or f"{op}_statement",
        "state": state,
        "wait_event": event,
        "count": count,
        "blocked_by": blocked,
    }


def activity(*samples: dict[str, Any], interval_ms: float = 20.0) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "interval_ms": interval_ms,
        "polls": 500,
        "poll_seconds": 0.5,
        "elapsed_s": 10.0,
        "databases": ["qp_x"],
        "problems": [],
        "samples": list(samples),
    }


def row(op: str | None, name: str | None, calls_: int, total_ms: float, **extra: Any) -> dict:  # type: ignore[type-arg]
    return {
        "op": op,
        "statement": name,
        "sql": extra.pop("sql", None),
        "query": extra.pop("query", f"SELECT {name}"),
        "calls": calls_,
        "total_exec_ms": total_ms,
        "mean_exec_ms": total_ms / max(calls_, 1),
        "rows": calls_,
        "shared_blks_hit": 10,
        "shared_blks_read": 1,
        "shared_blks_dirtied": 0,
        "shared_blks_written": 0,
        **extra,
    }


def statements(*rows: dict[str, Any], available: bool = True, reason: str | None = None) -> dict:  # type: ignore[type-arg]
    return {
        "schema_version": 1,
        "available": available,
        "reason": reason,
        "statements": list(rows),
    }


def write(folder: Path, name: str, document: object) -> Path:
    path = folder / name
    path.write_bytes(orjson.dumps(document))
    return path


def side_of(
    tmp_path: Path,
    act: dict[str, Any] | None,
    stm: dict[str, Any] | None = None,
    plans: dict[str, QueryPlan] | None = None,
):  # type: ignore[no-untyped-def]
    return database_side(
        load_server_activity(write(tmp_path, PG_ACTIVITY, act)) if act is not None else None,
        PG_ACTIVITY,
        load_server_statements(write(tmp_path, PG_STATEMENTS, stm)) if stm is not None else None,
        PG_STATEMENTS if stm is not None else None,
        plans,
    )


# -- loading --------------------------------------------------------------------------------


def test_a_written_file_loads_back_and_profiles_by_operation(tmp_path: Path) -> None:
    # GIVEN claims mostly waiting on locks held by other claims, and idle enqueue sessions
    side = side_of(
        tmp_path,
        activity(
            sample("claim", "Lock", 80, event="transactionid", claim=85),
            sample("claim", "running", 15),
            sample("claim", "IO", 5, event="WALSync"),
            sample("enqueue", "running", 4),
            sample("enqueue", "idle", 40, event="ClientRead"),
            sample("other", "idle", 100, statement="LISTEN queueprof_tasks"),
        ),
    )
    assert side is not None
    # THEN each operation gets its shares of the samples inside its statements
    claim = side.op("claim")
    assert claim is not None
    assert claim.in_statement == 100
    assert claim.idle == 0
    assert math.isclose(claim.share("Lock"), 0.8)
    assert claim.blocked_by == (("claim", 85),)
    assert dict(state_columns(claim)) == {
        "running": 15,
        "Lock": 80,
        "LWLock": 0,
        "IO": 5,
        "Client": 0,
        "other": 0,
    }
    enqueue = side.op("enqueue")
    assert enqueue is not None
    assert (enqueue.in_statement, enqueue.idle) == (4, 40)
    # AND the queue's operations come before sessions that are not the queue's
    assert [p.op for p in side.ops] == ["claim", "enqueue", "other"]
    assert math.isclose(side.seconds(80), 1.6)
    assert math.isclose(side.sampler_share, 0.05)


HOSTILE_ACTIVITY: list[tuple[object, str]] = [
    ({**activity(), "schema_version": 2}, "schema_version 2"),
    ({**activity(), "interval_ms": 0}, "interval_ms"),
    ({**activity(), "interval_ms": "20"}, "interval_ms"),
    ({**activity(), "polls": -1}, "polls"),
    ({**activity(), "samples": {}}, "samples is not a list"),
    (activity(sample("claim", "Lock", -3)), "count"),
    (activity(sample("claim", "Lock", True)), "count"),  # type: ignore[arg-type]
    (activity({"op": "claim", "state": "Lock", "count": 1}), "'statement'"),
    (activity(sample("", "Lock", 1)), "op is empty"),
    (activity(sample("claim", "Lock", 1, statement="x" * 5000)), "characters long"),
    (activity({**sample("claim", "Lock", 1), "blocked_by": [1]}), "blocked_by"),
    (activity(sample("claim", "Lock", 1, claim=-1)), "blocked_by count"),
    (activity("not an entry"), "not an object"),  # type: ignore[arg-type]
    ([1, 2], "not an object"),
]


@pytest.mark.parametrize(("document", "says"), HOSTILE_ACTIVITY)
def test_a_hostile_activity_file_is_refused_naming_it(
    tmp_path: Path, document: object, says: str
) -> None:
    path = write(tmp_path, PG_ACTIVITY, document)
    with pytest.raises(ArtifactError) as raised:
        load_server_activity(path)
    assert str(path) in str(raised.value)
    assert says in str(raised.value)


HOSTILE_STATEMENTS: list[tuple[object, str]] = [
    ({**statements(), "available": "yes"}, "available"),
    (statements(available=False), "no reason"),
    (statements(row("claim", "claim", 0, 1.0)), "0 calls"),
    (statements(row("claim", "claim", 3, math.inf)), "total_exec_ms"),
    (statements(row("claim", "claim", 3, -1.0)), "total_exec_ms"),
    (statements(row("claim", "claim", 3, 1.0, rows=1.5)), "rows"),
    (statements({"op": "claim"}), "'calls'"),
    ({**statements(), "statements": "none"}, "statements is not a list"),
    ({**statements(), "schema_version": None}, "schema_version None"),
]


@pytest.mark.parametrize(("document", "says"), HOSTILE_STATEMENTS)
def test_a_hostile_statements_file_is_refused_naming_it(
    tmp_path: Path, document: object, says: str
) -> None:
    path = write(tmp_path, PG_STATEMENTS, document)
    with pytest.raises(ArtifactError) as raised:
        load_server_statements(path)
    assert str(path) in str(raised.value)
    assert says in str(raised.value)


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"", "is empty"),
        (b'{"schema_version": 1, "samples": [', "truncated"),
        (b"\x00ab", "not JSON"),
    ],
)
def test_empty_truncated_and_garbage_files_say_which(
    tmp_path: Path, content: bytes, says: str
) -> None:
    path = tmp_path / PG_ACTIVITY
    path.write_bytes(content)
    with pytest.raises(ArtifactError, match=says):
        load_server_activity(path)


def test_absent_statement_counters_keep_the_reason(tmp_path: Path) -> None:
    reason = "the server does not preload pg_stat_statements"
    side = side_of(tmp_path, activity(), statements(available=False, reason=reason))
    assert side is not None
    assert side.statements_missing == reason
    assert not side.statements
    assert database_side(None, PG_ACTIVITY) is None


# -- rules ----------------------------------------------------------------------------------


def test_server_lock_waits_under_a_naive_claim_lead_as_claim_contention(tmp_path: Path) -> None:
    # GIVEN claims waiting on each other's row locks 90% of their statement time, with the
    # naive for-update claim, beside a statement that costs a little
    side = side_of(
        tmp_path,
        activity(
            sample("claim", "Lock", 450, event="transactionid", claim=450),
            sample("claim", "running", 50),
            sample("status", "running", 30),
        ),
        statements(row("status", "status", 1000, 40.0)),
    )
    run = builders.run_analysis(
        duration_s=10.0,
        database=side,
        queue={"backend": "postgresql://h/db", "pg_claim": "for-update"},
        params={"workers": 10},
        latencies=calls(claim=1000, status=1000),
    )
    # WHEN the rules run
    findings = ranked(run_findings(run))
    # THEN the #1 names claim and contention, and the fix is skip-locked
    top = findings[0]
    assert (top.op, top.cause, top.standing) == ("claim", Cause.CONTENTION, Standing.CAUSE)
    assert "pg_claim=for-update" in top.title
    assert top.recommendation is not None
    assert "pg_claim=skip-locked" in top.recommendation
    assert top.cost is not None
    assert math.isclose(top.cost.value, 9.0)


def test_waits_for_a_table_lock_name_the_table_lock_as_the_fix(tmp_path: Path) -> None:
    # GIVEN claims waiting on a relation lock enqueue holds (LOCK TABLE in enqueue)
    side = side_of(
        tmp_path,
        activity(
            sample("claim", "Lock", 40, event="relation", enqueue=40),
            sample("claim", "running", 60),
        ),
    )
    run = builders.run_analysis(database=side, queue={"pg_claim": "skip-locked"})
    (found,) = server_lock_waits(run)
    # THEN the fix is about the table lock and who held it, not about row locks
    assert found.recommendation is not None
    assert "lock on a whole table (Lock:relation) (enqueue held it)" in found.recommendation
    assert "SKIP LOCKED" not in found.recommendation


def test_a_few_lock_samples_are_insufficient_and_never_lead(tmp_path: Path) -> None:
    side = side_of(tmp_path, activity(sample("claim", "Lock", 3, event="tuple", claim=3)))
    run = builders.run_analysis(database=side, queue={"pg_claim": "skip-locked"})
    (found,) = server_lock_waits(run)
    assert found.standing is Standing.INSUFFICIENT
    assert found.recommendation is not None
    assert "SKIP LOCKED" in found.recommendation


def test_sessions_that_are_not_the_queues_are_no_contention_of_an_operation(
    tmp_path: Path,
) -> None:
    side = side_of(tmp_path, activity(sample("other", "Lock", 500, event="relation")))
    assert list(server_lock_waits(builders.run_analysis(database=side))) == []


def test_wal_waits_are_information_with_the_commit_setting(tmp_path: Path) -> None:
    side = side_of(
        tmp_path,
        activity(sample("claim", "IO", 60, event="WALSync"), sample("claim", "running", 40)),
    )
    run = builders.run_analysis(database=side, queue={"pg_synchronous_commit": "on"})
    (found,) = server_io_waits(run)
    assert found.cause is Cause.WAITING
    assert found.standing is Standing.INFORMATION
    assert found.recommendation is not None
    assert "synchronous_commit=off" in found.recommendation


def test_a_scanning_statement_ranks_by_its_server_time(tmp_path: Path) -> None:
    # GIVEN claim's statement planned with a Seq Scan on tasks and 4 s of execution in a
    # 10 s run, and a clean status statement
    scan = QueryPlan(lines=("Seq Scan on tasks",), full_scans=("Seq Scan on tasks",))
    side = side_of(
        tmp_path,
        None,
        statements(
            row("claim", "claim_for-update", 500, 4000.0, sql=CLAIM_SQL),
            row("status", "status", 500, 100.0, sql="SELECT 1"),
            row(None, None, 5, 9000.0, query="CREATE TABLE x"),
        ),
        {CLAIM_SQL: scan, "SELECT 1": QueryPlan(lines=("Index Scan",))},
    )
    run = builders.run_analysis(duration_s=10.0, database=side, latencies=calls(claim=500))
    (found,) = server_plans(run)
    assert (found.op, found.cause) == ("claim", Cause.SQL_SCAN)
    assert found.cost is not None
    assert math.isclose(found.cost.share, 0.4)
    assert ranked(run_findings(run))[0].key == found.key


def test_statements_per_call_in_the_server_is_n_plus_one(tmp_path: Path) -> None:
    side = side_of(
        tmp_path,
        None,
        statements(
            row("complete", "complete", 1000, 300.0),
            row("claim", "claim_skip-locked", 100, 50.0),
        ),
    )
    run = builders.run_analysis(
        duration_s=1.0, database=side, latencies=calls(complete=100, claim=100)
    )
    (found,) = server_statements_per_call(run)
    assert (found.op, found.cause) == ("complete", Cause.N_PLUS_ONE)
    assert "10 statements per call" in found.title


def test_reports_show_the_database_side(tmp_path: Path) -> None:
    side = side_of(
        tmp_path,
        activity(sample("claim", "Lock", 40, event="transactionid", claim=40)),
        statements(available=False, reason="not preloaded <here>"),
    )
    analysis = Analysis(runs=(builders.run_analysis(database=side),), agreements=(), findings=())
    for fmt in Format:
        text = RENDERERS[fmt].render(analysis)
        assert "claim" in text, fmt
        assert "transactionid" in text, fmt
        assert "not preloaded" in text, fmt
    assert "&lt;here&gt;" in RENDERERS[Format.HTML].render(analysis)
