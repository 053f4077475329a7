"""The project's goals beside the seed's targets: verdicts, headroom, and one definition."""

from __future__ import annotations

import math

import pytest

from analysis.model import Analysis
from analysis.render import html_page, markdown, terminal
from benchmarks.goals.table import ROWS
from runs import Verdict
from tests.analysis import builders
from workloads.goals import (
    GOAL_E2E_MS,
    GOAL_PROCESSES_TASKS_PER_S,
    METRIC_GOALS,
    beside_targets,
    goal_verdicts,
    headroom,
)
from workloads.targets import default_targets


def _verdict(measured: float, comparator: str, target: float) -> Verdict:
    return Verdict("m", measured, target, comparator, "", passed=True)


@pytest.mark.parametrize(
    ("verdict", "expected"),
    [
        (_verdict(52_530, ">", 50), 1050.6),  # the seed's floor, passed a thousand times over
        (_verdict(12_000, ">=", 15_000), 0.8),  # a goal missed: below 1x
        (_verdict(2.5, "<", 10), 4.0),  # a ceiling: how far the figure may still grow
        (_verdict(0.0, "<", 1), math.inf),
        (_verdict(0.0, "<=", 0), None),  # "no lost task": a count, not a ratio
        (_verdict(3.0, "==", 0), None),
    ],
)
def test_headroom_is_times_over_the_bar(verdict: Verdict, expected: float | None) -> None:
    assert headroom(verdict) == (pytest.approx(expected) if expected else expected)


def test_goal_verdicts_check_the_measured_metrics_only() -> None:
    verdicts = goal_verdicts("latency", {"e2e_p50_ms": 1.5, "e2e_p99_ms": 12.0})
    assert [(v.metric, v.passed) for v in verdicts] == [("e2e_p50_ms", True), ("e2e_p99_ms", False)]
    assert verdicts[1].target == GOAL_E2E_MS["p99"]
    assert goal_verdicts("memory", {"heap_growth_kib_per_1k_tasks": 1.0}) == ()


def test_goals_are_the_goal_tables_bars() -> None:
    # One definition: the goal table judges its rows with the bars the reports show.
    (rate,) = [g for g in ROWS["processes_10"].goals if g.figure == "tasks_per_s"]
    assert rate.target == GOAL_PROCESSES_TASKS_PER_S
    latency = {g.figure: g.target for g in ROWS["latency_500"].goals}
    for goal in METRIC_GOALS["latency"]:
        assert latency[goal.metric] == goal.goal
        assert goal.row in ROWS
    op_p50 = {g.figure: g.target for g in ROWS["op_p50"].goals}
    for goal in METRIC_GOALS["dbops"]:
        op = goal.metric.split("_")[0]
        assert op_p50[f"{op}_p50_us"] == pytest.approx(goal.goal * 1000)
    # ... and every goal bounds a metric the workload reports (seed targets name those too)
    seeds = default_targets()
    for workload, goals in METRIC_GOALS.items():
        seeded = seeds.for_workload(workload)
        assert any(goal.metric in seeded for goal in goals) or workload == "dbops"


def test_beside_targets_lists_each_metric_once() -> None:
    seed = [_verdict(1, "<", 5)]
    goals = [Verdict("m", 1, 2, "<=", "", True), Verdict("other", 3, 2, "<=", "", False)]
    rows = beside_targets(seed, goals)
    assert [(metric, t is not None, g is not None) for metric, t, g in rows] == [
        ("m", True, True),
        ("other", False, True),
    ]


def test_report_shows_seed_target_goal_and_headroom() -> None:
    # GIVEN a throughput run far over the seed's target but under the project's goal
    metrics = {"process_tasks_per_s_10_workers": 12_000.0}
    run = builders.run_analysis(
        metrics=metrics,
        targets=(Verdict("process_tasks_per_s_10_workers", 12_000.0, 300, ">", "tasks/s", True),),
        goals=goal_verdicts("throughput", metrics),
    )
    analysis = Analysis(runs=(run,))
    text = markdown.render(analysis)
    # THEN the goal's miss shows beside the seed's pass, each with its headroom
    row = next(line for line in text.splitlines() if "process_tasks_per_s_10_workers" in line)
    assert "| pass |" in row
    assert "40.00x" in row  # 12,000 / 300
    assert "0.80x" in row  # 12,000 / 15,000
    assert "**missed**" in row
    assert "`python -m benchmarks.goals --only processes_10`" in text
    html = html_page.render(analysis)
    assert '<span class="fail">missed</span>' in html
    # AND the terminal summary names the goal missed and the least headroom
    summary = " ".join(terminal.render(analysis).split())
    assert (
        "project goals: 0/1 met; missed: process_tasks_per_s_10_workers; least headroom: "
        "process_tasks_per_s_10_workers 0.80x"
    ) in summary
