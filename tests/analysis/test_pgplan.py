"""A PostgreSQL run's own plans: read from schema-postgres.json and carried by the hotspots."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from analysis.hotspots import sql_hotspots
from analysis.load.capture import SqlStatement
from analysis.pgplan import SOURCE, RunPlans, load_pg_plans
from runs.files import SCHEMA_POSTGRES
from workloads.pgschema import SEQ_SCAN_NODE, SORT_NODE

CLAIM = "WITH picked AS (SELECT id FROM tasks ORDER BY priority LIMIT $1 FOR UPDATE SKIP LOCKED)"
SCAN_PLAN = [
    "Limit  (cost=10.0..10.1 rows=1 width=8)",
    "  ->  LockRows  (cost=10.0..10.1 rows=1 width=8)",
    "        ->  Sort  (cost=10.0..10.1 rows=100 width=8)",
    "              Sort Key: priority",
    "              ->  Seq Scan on tasks  (cost=0.00..5.00 rows=100 width=8)",
]


def _entry(sql: str, lines: list[str]) -> dict[str, object]:
    """A plan entry as workloads.pgschema writes it (its own node classifier)."""
    return {
        "sql": sql,
        "plan": lines,
        "seq_scans": [line.strip() for line in lines if SEQ_SCAN_NODE.match(line)],
        "sorts": [line.strip() for line in lines if SORT_NODE.match(line)],
    }


def _snapshot(folder: Path, plans: object, chosen: str = "main") -> None:
    document = {
        "schema_version": 1,
        "chosen": chosen,
        "databases": [
            {"name": "other", "tasks_rows": 0, "plans": {}},
            {"name": "main", "tasks_rows": 10, "plans": plans},
        ],
    }
    (folder / SCHEMA_POSTGRES).write_bytes(orjson.dumps(document))


def test_a_seq_scan_and_a_sort_are_flagged(tmp_path: Path) -> None:
    _snapshot(tmp_path, {"claim": _entry(CLAIM + "  ", SCAN_PLAN)})
    loaded = load_pg_plans(tmp_path)
    assert loaded.problem is None
    plan = loaded.plans[CLAIM]
    assert plan.full_scans == ("->  Seq Scan on tasks  (cost=0.00..5.00 rows=100 width=8)",)
    assert plan.temp_btrees == ("->  Sort  (cost=10.0..10.1 rows=100 width=8)",)
    assert plan.lines == tuple(SCAN_PLAN)


@pytest.mark.parametrize(
    "content",
    [
        b"not json",
        b"[]",
        b'{"chosen": "main", "databases": "x"}',
        b'{"chosen": "main", "databases": [{"name": "main", "plans": [1]}]}',
        b'{"chosen": "main", "databases": [{"name": "main", "plans": {"a": {"sql": 1}}}]}',
        b'{"chosen": "main", "databases": [{"name": "main", "plans": {"a": {"sql": "x", '
        b'"plan": [1]}}}]}',
    ],
)
def test_a_snapshot_that_does_not_read_gives_no_plans_and_says_why(
    tmp_path: Path, content: bytes
) -> None:
    (tmp_path / SCHEMA_POSTGRES).write_bytes(content)
    loaded = load_pg_plans(tmp_path)
    assert loaded.plans == {}
    assert loaded.problem is not None
    assert SCHEMA_POSTGRES in loaded.problem
    assert "replace it with the file the run wrote" in loaded.problem


def test_one_damaged_plan_leaves_the_others_and_is_counted(tmp_path: Path) -> None:
    _snapshot(tmp_path, {"claim": _entry(CLAIM, SCAN_PLAN), "bad": {"sql": "x", "plan": [1]}})
    loaded = load_pg_plans(tmp_path)
    assert list(loaded.plans) == [CLAIM]
    assert loaded.problem is not None
    assert "1 of 2 plans" in loaded.problem


def test_no_snapshot_gives_no_plans_and_no_problem(tmp_path: Path) -> None:
    assert load_pg_plans(tmp_path) == RunPlans({})


def test_hotspots_take_the_runs_own_plan_instead_of_planning_on_sqlite(tmp_path: Path) -> None:
    _snapshot(tmp_path, {"claim": _entry(CLAIM, SCAN_PLAN)})
    statement = SqlStatement(
        index=0,
        op="claim",
        sql=CLAIM,
        count=10,
        total_ms=5.0,
        p50_us=400.0,
        p95_us=600.0,
        p99_us=700.0,
        max_us=800.0,
        rows=10,
    )
    (hotspot,) = sql_hotspots(
        [statement], {"claim": 10.0}, {}, run_plans=load_pg_plans(tmp_path).plans
    )
    assert hotspot.schema_source == SOURCE
    assert hotspot.plan.error is None
    assert hotspot.plan.full_scans
    assert hotspot.suggestion is None


def test_a_postgresql_scan_is_not_said_to_have_been_re_planned(tmp_path: Path) -> None:
    from analysis.findings import sql_plans
    from tests.analysis import builders

    # GIVEN a claim whose PostgreSQL plan (the run's own) scans and sorts
    _snapshot(tmp_path, {"claim": _entry(CLAIM, SCAN_PLAN)})
    statement = SqlStatement(0, "claim", CLAIM, 1000, 900.0, 800.0, 1e3, 2e3, 3e3, 1000)
    hotspots = sql_hotspots([statement], {}, {}, run_plans=load_pg_plans(tmp_path).plans)
    run = builders.run_analysis(sql=hotspots, duration_s=2.0)
    # WHEN the plan rule judges it
    (found,) = sql_plans(run)
    # THEN its advice is an index to add and a re-run, not a re-plan that never happened
    assert found.recommendation is not None
    assert "re-planned" not in found.recommendation.replace("not re-planned here", "")
    assert "Add an index whose columns match its WHERE" in found.recommendation
