"""The goal table's PostgreSQL rows: verdicts on hand-made figures, and a real quick run."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from benchmarks.goals import GoalsError
from benchmarks.goals.table import FAIL, PASS, ROWS, verdict
from benchmarks.profiler_overhead import GOALS as OVERHEAD_GOALS
from benchmarks.profiler_overhead import timed_drain
from tests.helpers.db import fetch

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PEERS_AT_2X = {
    "drain_x_peers_defaults": 2.0,
    "cycle_x_peers_defaults": 2.0,
    "drain_x_peers_best": 2.0,
    "cycle_x_peers_best": 2.0,
    "lost": 0,
}
OVERHEAD_AT_GOAL = {f"{name}_ratio": goal for name, goal in OVERHEAD_GOALS.items()}


def test_the_peers_row_judges_drain_and_cycle_at_both_settings() -> None:
    # Four ratios (drain and cycle, peers' defaults and best settings) and the lost count;
    # a figure the row does not have is an error, never a pass.
    judged = {goal.figure for goal in ROWS["pg_vs_peers"].goals}
    assert judged == set(PEERS_AT_2X)
    with pytest.raises(GoalsError, match="cycle_x_peers_best"):
        ROWS["pg_vs_peers"].judge(
            {k: v for k, v in PEERS_AT_2X.items() if k != "cycle_x_peers_best"}
        )


def test_the_postgres_overhead_row_holds_the_same_bars_as_sqlites() -> None:
    on_sqlite = {(g.figure, g.comparator, g.target) for g in ROWS["profiler_overhead"].goals}
    on_postgres = {(g.figure, g.comparator, g.target) for g in ROWS["pg_profiler_overhead"].goals}
    assert on_postgres == on_sqlite


def test_an_overhead_drain_on_postgres_uses_a_scratch_database_and_drops_it(
    pg_server: str, tmp_path: Path
) -> None:
    # GIVEN the overhead benchmark's drain with the PostgreSQL backend
    before = set(_overhead_databases(pg_server))
    # WHEN one drain runs THEN it took time, and the database it made is gone
    wall, cpu = asyncio.run(timed_drain(tmp_path, 200, 2, f"backend={pg_server}"))
    assert wall > 0
    assert cpu > 0
    assert not (tmp_path / "queue.db").exists()
    assert set(_overhead_databases(pg_server)) <= before


def _overhead_databases(server: str) -> list[str]:
    rows = fetch(server, "SELECT datname FROM pg_database")
    return [str(r[0]) for r in rows if str(r[0]).startswith("qp_overhead_")]


@pytest.mark.parametrize(
    ("key", "figures", "expected"),
    [
        ("pg_cycle_1_worker", {"ratio": 0.8}, PASS),
        ("pg_cycle_1_worker", {"ratio": 0.79}, FAIL),
        ("pg_workers_10", {"ratio": 0.9, "idle_workers": 0}, PASS),
        ("pg_workers_10", {"ratio": 0.9, "idle_workers": 1}, FAIL),
        ("pg_workers_10", {"ratio": 0.7, "idle_workers": 0}, FAIL),
        ("pg_processes_20", {"lost": 0, "duplicated": 0, "claim_p99_ms": 20.0}, PASS),
        ("pg_processes_20", {"lost": 0, "duplicated": 0, "claim_p99_ms": 20.5}, FAIL),
        ("pg_processes_20", {"lost": 1, "duplicated": 0, "claim_p99_ms": 3.0}, FAIL),
        ("pg_processes_20", {"lost": 0, "duplicated": 1, "claim_p99_ms": 3.0}, FAIL),
        *(
            (
                "pg_hosts_kill",
                {
                    "lost": 0,
                    "duplicated": 0,
                    "kills_with_tasks_in_flight": 1,
                    "kill_reclaim_max_x_lease": 1.2,
                    **change,
                },
                expected,
            )
            for change, expected in (
                ({}, PASS),
                ({"lost": 1}, FAIL),
                ({"duplicated": 2}, FAIL),
                # a kill that caught nothing in flight proves no reclaim
                ({"kills_with_tasks_in_flight": 0}, FAIL),
                ({"kill_reclaim_max_x_lease": float("nan")}, FAIL),
                ({"kill_reclaim_max_x_lease": 1.6}, FAIL),
            )
        ),
        ("pg_vs_peers", PEERS_AT_2X, PASS),
        ("pg_vs_peers", {**PEERS_AT_2X, "cycle_x_peers_defaults": 1.99}, FAIL),
        ("pg_vs_peers", {**PEERS_AT_2X, "drain_x_peers_best": 1.5}, FAIL),
        ("pg_vs_peers", {**PEERS_AT_2X, "lost": 1}, FAIL),
        ("pg_profiler_overhead", OVERHEAD_AT_GOAL, PASS),
        ("pg_profiler_overhead", {**OVERHEAD_AT_GOAL, "py-spy_ratio": 1.2}, FAIL),
    ],
)
def test_the_postgres_rows_judge_their_ratio(
    key: str, figures: dict[str, float], expected: str
) -> None:
    assert verdict(ROWS[key].judge(figures)) == expected


@pytest.mark.slow
def test_a_quick_run_of_the_postgres_rows_measures_both_sides(
    tmp_path: Path, pg_server: str
) -> None:
    saved = tmp_path / "goals.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.goals",
            "--quick",
            "--only",
            "pg_cycle_1_worker,pg_workers_10",
            "--save",
            str(saved),
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
        env={**os.environ, "QUEUEPROF_PG": pg_server},
    )
    assert done.returncode == 0, done.stderr
    document = orjson.loads(saved.read_bytes())
    for row in document["rows"]:
        assert row["error"] is None, row["error"]
        assert row["figures"]["raw_tasks_per_s"] > 0
        assert row["figures"]["queue_tasks_per_s"] > 0
        assert row["figures"]["ratio"] == pytest.approx(
            row["figures"]["queue_tasks_per_s"] / row["figures"]["raw_tasks_per_s"]
        )
    assert "asyncpg" in done.stdout


def test_an_unreachable_server_is_a_row_error_naming_the_fix(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.goals",
            "--quick",
            "--only",
            "pg_cycle_1_worker",
            "--save",
            str(tmp_path / "goals.json"),
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={**os.environ, "QUEUEPROF_PG": "postgresql://nobody@127.0.0.1:1/postgres"},
    )
    assert done.returncode == 1
    (row,) = orjson.loads((tmp_path / "goals.json").read_bytes())["rows"]
    assert row["verdict"] == "ERROR"
    assert "no PostgreSQL server answers at postgresql://nobody@127.0.0.1:1" in row["error"]
    assert "QUEUEPROF_PG=" in row["error"]
