"""Every multi-worker result says what each worker did, and how evenly they shared the tasks.

Async engines on one event loop once never interleaved (20,000 / 0 / 0 / 0 / 0), and no
result could show it: a "10 workers" figure measured one. Each step now carries per-worker
completions and busy time, with the smallest worker's share as a fairness figure.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from runs import RunStatus
from runs.results import StepResult, WorkerShare, WorkloadResult
from workloads.runner import execute, plan_run
from workloads.workers import fairness_metrics


def _run(name: str, params: Sequence[str], tmp_path: Path) -> WorkloadResult:
    outcome = execute(plan_run(name, size="smoke", params=params, out_dir=tmp_path))
    assert outcome.status is RunStatus.COMPLETE, outcome.error
    # read back from the run folder's JSON, as every reader of results does
    return WorkloadResult.from_json(outcome.result.to_json())


def _multi_worker_steps(result: WorkloadResult) -> list[StepResult]:
    return [s for s in result.steps if int(s.settings["workers"]) > 1]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("throughput", ("worker_counts=1,5", "tasks=5000", "enqueue_batch=1000")),
        ("concurrency", ("worker_counts=5", "modes=async", "tasks=5000")),
        ("latency", ("workers=5", "tasks=300", "rate=1000")),
        ("dbops", ("workers=5", "tasks=300")),
    ],
)
def test_each_worker_of_an_async_pool_is_recorded_and_did_work(
    name: str, params: Sequence[str], tmp_path: Path
) -> None:
    # GIVEN a workload with five async workers on one event loop
    # WHEN it runs
    result = _run(name, params, tmp_path)
    steps = _multi_worker_steps(result)
    # THEN each multi-worker step lists its five workers, each of which completed tasks and
    # was busy, and the fairness figures are there
    assert steps
    for step in steps:
        assert [w.name for w in step.workers] == [f"w{i}" for i in range(5)]
        assert all(w.completed > 0 and w.busy_s > 0 for w in step.workers), step.workers
        assert step.metrics["smallest_worker_x_even_share"] > 0
        assert 0 < step.metrics["smallest_worker_pct_of_tasks"] <= 20
    # AND the per-worker completions add up to what the step completed, where it counts them
    for step in steps:
        if "completed" in step.counters:
            assert sum(w.completed for w in step.workers) == step.counters["completed"]


def test_fairness_is_the_smallest_worker_s_share() -> None:
    shares = (WorkerShare("w0", 600, 1.0), WorkerShare("w1", 300, 1.0), WorkerShare("w2", 0, 0))
    # a worker that did nothing shows as 0 against an even share
    assert fairness_metrics(shares) == {
        "smallest_worker_pct_of_tasks": 0.0,
        "smallest_worker_x_even_share": 0.0,
    }
    even = (WorkerShare("w0", 500, 1.0), WorkerShare("w1", 500, 1.0))
    assert fairness_metrics(even)["smallest_worker_x_even_share"] == 1.0
    assert fairness_metrics(even)["smallest_worker_pct_of_tasks"] == 50.0
    # one worker, or nothing done: no fairness to speak of
    assert fairness_metrics(even[:1]) == {}
    assert fairness_metrics((WorkerShare("w0", 0, 0), WorkerShare("w1", 0, 0))) == {}
