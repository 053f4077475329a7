"""The project's own goals: the bars of the goal table, and which workload metrics they bound.

The seed's targets (``targets.toml``) are low: "> 50 tasks/s" passes with three orders of
magnitude to spare, so "targets met" cannot show a regression until it is a collapse. The
goal table (``python -m benchmarks.goals``) holds the project's far higher bars; they are
defined here, below both the table and the analysis, so that one number serves both: the
table judges its rows with them, and reports set them beside the seed's targets with the
headroom left to each.

Most rows of the goal table are ratios to plain sqlite3 measured side by side, which no
single run can judge; :data:`METRIC_GOALS` lists the bars that are absolute figures of a
workload metric, each with the goal-table row and the conditions it is measured under.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from runs import Verdict

from .targets import COMPARATORS

GOALS_COMMAND = "python -m benchmarks.goals"
"""The goal table's command; ``--only ROW`` measures one row."""
GOAL_CYCLE_RATIO = 0.35
"""1 worker, claim and ack one at a time: at least this fraction of plain sqlite3's rate."""
GOAL_WORKERS_10_RATIO = 0.7
"""10 workers, default strategy: at least this fraction of plain sqlite3 claiming 100."""
GOAL_WORKERS_20_RATIO = 0.8
"""20 workers: at least this fraction of the best worker count's rate."""
GOAL_CLAIM_MAX_MS = 50.0
"""20 workers: the slowest claim, in ms."""
GOAL_PROCESSES_TASKS_PER_S = 15_000.0
"""10 worker processes: tasks/s."""
OPERATIONS = ("enqueue", "claim", "status")
GOAL_OP_P50_US = dict(zip(OPERATIONS, (100.0, 150.0, 100.0), strict=True))
"""Each operation's p50 with one task per call, in microseconds."""
E2E_PERCENTILES = ("p50", "p95", "p99")
GOAL_E2E_MS = dict(zip(E2E_PERCENTILES, (2.0, 5.0, 10.0), strict=True))
"""End-to-end latency at 500 tasks/s offered to 5 workers, in ms."""
GOAL_LOAD_S = 5.0
GOAL_LOAD_RSS_RATIO = 2.0
GOAL_PROFILE_CPU_S = 60.0
GOAL_PG_CYCLE_RATIO = 0.8
"""PostgreSQL, 1 worker, one task per call: at least this fraction of plain asyncpg's rate."""
GOAL_PG_WORKERS_10_RATIO = 0.8
"""PostgreSQL, 10 workers, default batching: this fraction of plain asyncpg claiming 100."""
GOAL_PG_PROCESSES_20_CLAIM_P99_MS = 20.0
"""PostgreSQL, 20 workers over 4 processes: claim p99, in ms."""
GOAL_KILL_RECLAIM_X_LEASE = 1.5
"""A SIGKILLed host's tasks back in other hands within this many leases of the kill: they
cannot come back before their lease ends (up to 1 lease after the kill), and the live
engines sweep expired leases every quarter lease; the rest is the measurement's own polling."""
GOAL_PG_PEERS_RATIO = 2.0
"""PostgreSQL, drain and full cycle: at least this many times the better of pgqueuer and
procrastinate on the same server, at their documented defaults and at their best settings."""


@dataclass(frozen=True, slots=True)
class MetricGoal:
    """A goal-table bar on one metric of a workload's results."""

    metric: str
    comparator: str
    goal: float
    unit: str
    row: str
    """The goal table's row (``python -m benchmarks.goals --only ROW`` measures it)."""
    conditions: str
    """What the row runs: a run under other parameters is not held to the bar as strictly."""


METRIC_GOALS: Mapping[str, tuple[MetricGoal, ...]] = {
    "throughput": (
        MetricGoal(
            "process_tasks_per_s_10_workers",
            ">=",
            GOAL_PROCESSES_TASKS_PER_S,
            "tasks/s",
            "processes_10",
            "mode=process, worker_counts=10, enqueue_batch=1000",
        ),
    ),
    "latency": tuple(
        MetricGoal(f"e2e_{p}_ms", "<=", goal, "ms", "latency_500", "rate=500, workers=5 (async)")
        for p, goal in GOAL_E2E_MS.items()
    ),
    "dbops": tuple(
        MetricGoal(
            f"{op}_p50_ms_1_worker",
            "<=",
            goal / 1000,
            "ms",
            "op_p50",
            "--queue claim_batch=1,ack_batch=1 (one task per call)",
        )
        for op, goal in GOAL_OP_P50_US.items()
    ),
    "concurrency": (MetricGoal("max_workers", ">=", 20, "workers", "workers_20", "modes=async"),),
    "stress": (
        MetricGoal("lost_tasks", "<=", 0, "tasks", "processes_10", "mode=process, workers=10"),
        MetricGoal(
            "duplicated_tasks", "<=", 0, "tasks", "processes_10", "mode=process, workers=10"
        ),
    ),
}


def goal_verdicts(workload: str, metrics: Mapping[str, float]) -> tuple[Verdict, ...]:
    """Each goal of ``workload`` whose metric the run measured, checked; the verdict's
    description names the goal-table row and its conditions."""
    return tuple(
        Verdict(
            metric=goal.metric,
            measured=float(metrics[goal.metric]),
            target=goal.goal,
            comparator=goal.comparator,
            unit=goal.unit,
            passed=COMPARATORS[goal.comparator](float(metrics[goal.metric]), goal.goal),
            description=f"goal table row {goal.row}",
        )
        for goal in METRIC_GOALS.get(workload, ())
        if goal.metric in metrics
    )


def headroom(verdict: Verdict) -> float | None:
    """How many times over its bar a measured figure is, in the direction that passes:
    ``measured / target`` for a floor, ``target / measured`` for a ceiling. Below 1 the bar
    is missed. None where the ratio says nothing: an exact bar, a bar or figure of 0."""
    if verdict.comparator == "==" or verdict.target == 0 or verdict.measured == 0:
        if verdict.comparator in ("<", "<=") and verdict.target > 0 and verdict.measured == 0:
            return math.inf  # a ceiling above a figure of 0: all the room there is
        return None
    if verdict.comparator in (">", ">="):
        return verdict.measured / verdict.target
    return verdict.target / verdict.measured


def beside_targets(
    targets: Sequence[Verdict], goals: Sequence[Verdict]
) -> list[tuple[str, Verdict | None, Verdict | None]]:
    """Rows of a targets table: each metric once, with its seed target and its goal (either
    may be missing), the seed's metrics first in their order."""
    by_metric = {goal.metric: goal for goal in goals}
    rows: list[tuple[str, Verdict | None, Verdict | None]] = [
        (t.metric, t, by_metric.pop(t.metric, None)) for t in targets
    ]
    rows += [(metric, None, goal) for metric, goal in by_metric.items()]
    return rows
