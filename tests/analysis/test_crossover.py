"""The crossover of SQLite and PostgreSQL, computed on hand-made points: who leads at each
worker count, where one overtakes the other, and the finding in one sentence."""

from __future__ import annotations

import re

import pytest

from analysis.crossover import (
    METRICS,
    THROUGHPUT,
    Lead,
    PairedPoint,
    Shape,
    crossover_points,
    crossover_report,
    find_crossover,
    finding_sentence,
)
from analysis.errors import PlotInputError
from analysis.plots import crossover_svg
from analysis.render.text import crossover_rows
from runs import StepResult

CLAIM_P99 = next(m for m in METRICS if m.key == "claim_p99_ms")


def points(*rows: tuple[int, float, float]) -> list[PairedPoint]:
    """(workers, SQLite value, PostgreSQL value) rows."""
    return [PairedPoint(w, s, p) for w, s, p in rows]


def step(backend: str, mode: str, workers: int, **metrics: float) -> StepResult:
    return StepResult(
        label=f"{backend}, {workers} workers, {mode}",
        settings={"backend": backend, "mode": mode, "workers": workers},
        metrics=metrics,
    )


def test_postgres_overtaking_sqlite_is_found_where_it_starts_to_lead_for_good() -> None:
    # GIVEN SQLite ahead at 1 and 2, level at 5, PostgreSQL ahead from 10
    measured = points((1, 2000, 1000), (2, 2000, 1200), (5, 2000, 1900), (10, 2000, 3000))
    # WHEN the crossover is found
    found = find_crossover(measured, THROUGHPUT, "process")
    # THEN PostgreSQL overtakes at 10, after 5, with SQLite ahead before
    assert found.shape is Shape.OVERTAKES
    assert found.crosses
    assert found.leader is Lead.POSTGRESQL
    assert (found.before_workers, found.at_workers) == (5, 10)
    assert found.leads == (Lead.SQLITE, Lead.SQLITE, Lead.LEVEL, Lead.POSTGRESQL)
    assert found.summary.startswith(
        "PostgreSQL overtakes SQLite on throughput at 10 process workers "
        "(PostgreSQL 3,000 vs SQLite 2,000 tasks/s; before that SQLite ahead at 1 and 2, "
        "level at 5"
    )
    # AND the lines cross between the last count SQLite was ahead in raw figures and the next
    assert found.estimated_workers is not None
    assert 5 < found.estimated_workers < 10


def test_the_crossing_is_interpolated_in_the_log_of_the_advantage() -> None:
    # PostgreSQL at half SQLite's rate at 5 workers and twice it at 10: the logs are -a and +a
    found = find_crossover(points((5, 1000, 500), (10, 1000, 2000)), THROUGHPUT, "async")
    assert found.estimated_workers == pytest.approx(7.5)


def test_a_backend_ahead_at_every_count_is_no_crossover_and_says_so() -> None:
    found = find_crossover(
        points((1, 60000, 4000), (5, 30000, 4000), (20, 10000, 5000)), THROUGHPUT, "async"
    )
    assert found.shape is Shape.LEADS_THROUGHOUT
    assert not found.crosses
    assert found.leader is Lead.SQLITE
    assert found.at_workers is None
    assert found.summary == (
        "SQLite leads throughput at every count from 1 to 20 async workers "
        "(2.00x to 15x ahead): no crossover in the range"
    )


def test_for_a_latency_lower_is_better() -> None:
    # SQLite's claim p99 grows with the workers past PostgreSQL's
    found = find_crossover(points((1, 5, 40), (10, 100, 50), (20, 400, 60)), CLAIM_P99, "process")
    assert found.shape is Shape.OVERTAKES
    assert found.leader is Lead.POSTGRESQL
    assert found.at_workers == 10
    assert "PostgreSQL overtakes SQLite on claim p99 at 10 process workers" in found.summary


def test_a_lead_within_the_band_is_level_not_a_lead() -> None:
    # 5% apart at every count: noise on a shared machine, not a lead
    found = find_crossover(points((1, 1000, 1050), (5, 1000, 960)), THROUGHPUT, "async")
    assert found.leads == (Lead.LEVEL, Lead.LEVEL)
    assert found.shape is Shape.LEVEL_AT_TOP
    assert found.leader is None
    assert "level on throughput (within 10%) at every count" in found.summary
    # AND a narrower band makes the same points a crossover
    narrow = find_crossover(points((1, 1000, 1050), (5, 1000, 960)), THROUGHPUT, "async", band=0.01)
    assert narrow.shape is Shape.OVERTAKES
    assert narrow.leader is Lead.SQLITE


def test_a_lead_that_shrinks_to_level_at_the_top_is_no_crossover() -> None:
    found = find_crossover(points((1, 3000, 1000), (20, 1000, 1020)), THROUGHPUT, "process")
    assert found.shape is Shape.LEVEL_AT_TOP
    assert not found.crosses
    assert found.summary.startswith("no crossover in throughput from 1 to 20 process workers")
    assert "SQLite led at 1" in found.summary


def test_pulling_ahead_from_level_overtakes_nobody() -> None:
    found = find_crossover(points((1, 1000, 1000), (5, 1000, 2000)), THROUGHPUT, "async")
    assert found.shape is Shape.PULLS_AHEAD
    assert not found.crosses
    assert found.leader is Lead.POSTGRESQL
    assert found.at_workers == 5
    assert "level up to 1 async worker, then PostgreSQL ahead from 5" in found.summary


def test_the_last_change_of_lead_is_the_crossover_and_the_history_is_told() -> None:
    # SQLite, then PostgreSQL, then SQLite again at the top
    found = find_crossover(
        points((1, 10, 60), (5, 300, 100), (10, 200, 150), (20, 400, 520)), CLAIM_P99, "process"
    )
    assert found.leader is Lead.SQLITE
    assert found.at_workers == 20
    assert "before that SQLite ahead at 1, PostgreSQL at 5 and 10" in found.summary


def test_one_worker_count_is_too_few() -> None:
    found = find_crossover(points((5, 1000, 2000)), THROUGHPUT, "async")
    assert found.shape is Shape.TOO_FEW
    assert found.leader is None
    assert "a crossover needs two or more" in found.summary


def test_steps_pair_by_worker_count_and_rounds_give_their_median() -> None:
    steps = [
        step("sqlite", "async", 1, tasks_per_s=100.0),
        step("sqlite", "async", 1, tasks_per_s=300.0),
        step("sqlite", "async", 1, tasks_per_s=200.0),
        step("postgresql", "async", 1, tasks_per_s=50.0),
        step("sqlite", "async", 5, tasks_per_s=100.0),  # no PostgreSQL pair: left out
        StepResult("plain", {"workers": 2, "mode": "async"}, {"tasks_per_s": 1.0}),
    ]
    paired = crossover_points(steps)
    assert paired == {("async", "tasks_per_s"): [PairedPoint(1, 200.0, 50.0)]}


def test_a_run_without_both_backends_has_no_crossover() -> None:
    assert crossover_report([step("sqlite", "async", 1, tasks_per_s=1.0)]) is None
    assert crossover_report([]) is None


def test_the_finding_is_one_sentence_with_crossings_first() -> None:
    # GIVEN async where SQLite leads throughout and process where PostgreSQL overtakes, and a
    # claim p99 that crosses too
    steps = []
    for workers, (s_async, p_async, s_proc, p_proc) in {
        1: (50000, 4000, 30000, 4000),
        5: (40000, 4000, 5000, 6000),
        20: (40000, 4000, 3000, 9000),
    }.items():
        steps += [
            step("sqlite", "async", workers, tasks_per_s=s_async, claim_p99_ms=5.0),
            step("postgresql", "async", workers, tasks_per_s=p_async, claim_p99_ms=40.0),
            step("sqlite", "process", workers, tasks_per_s=s_proc, claim_p99_ms=workers * 20.0),
            step("postgresql", "process", workers, tasks_per_s=p_proc, claim_p99_ms=50.0),
        ]
    # WHEN the report is made
    report = crossover_report(steps)
    # THEN the sentence leads with the process crossover, then async, then claim p99's
    assert report is not None
    assert report.modes == ("async", "process")
    assert report.finding.startswith(
        "On this machine PostgreSQL overtakes SQLite on throughput at 5 process workers"
    )
    assert "SQLite leads throughput at every count from 1 to 20 async workers" in report.finding
    assert "PostgreSQL overtakes SQLite on claim p99 at 5 process workers" in report.finding
    assert report.finding.endswith(".")
    assert not re.search(r"\.\s", report.finding)
    # AND the table has a row per mode and count, with who is ahead on throughput
    rows = crossover_rows(report)
    assert [row[:2] for row in rows] == [
        ["async", "1"],
        ["async", "5"],
        ["async", "20"],
        ["process", "1"],
        ["process", "5"],
        ["process", "20"],
    ]
    assert rows[5][2:5] == ["3,000", "9,000", "PostgreSQL 3.00x"]
    # AND the plot marks the crossover
    svg = crossover_svg(report, THROUGHPUT)
    assert svg.startswith("<svg")
    assert 'id="crossover-process"' in svg
    assert 'id="crossover-async"' not in svg


def test_a_finding_without_any_pair_says_so() -> None:
    assert finding_sentence([]) == "No step paired SQLite with PostgreSQL: nothing to compare."


def test_plotting_a_metric_the_run_lacks_names_the_ones_it_has() -> None:
    report = crossover_report(
        [
            step("sqlite", "async", 1, tasks_per_s=2.0),
            step("postgresql", "async", 1, tasks_per_s=1.0),
        ]
    )
    assert report is not None
    with pytest.raises(PlotInputError, match=r"no points of .claim_p99_ms.*tasks_per_s"):
        crossover_svg(report, CLAIM_P99)
