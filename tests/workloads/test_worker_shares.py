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
from workloads.context import PartialResults
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


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("memory", ("workers=3", "mode=async", "chunks=3", "chunk_tasks=300", "warmup_chunks=1")),
        ("stress", ("workers=3", "mode=async", "duration_s=1", "rate=300", "burst_every_s=0")),
    ],
)
def test_memory_and_stress_record_each_worker(
    name: str, params: Sequence[str], tmp_path: Path
) -> None:
    # GIVEN the memory or the stress workload with three async workers
    # WHEN it runs
    result = _run(name, params, tmp_path)
    # THEN one step lists the three workers, each of which completed tasks and was busy,
    # with the fairness figures, and the completions add up to the step's
    (step,) = result.steps
    assert [w.name for w in step.workers] == ["w0", "w1", "w2"]
    assert all(w.completed > 0 and w.busy_s > 0 for w in step.workers), step.workers
    assert step.metrics["smallest_worker_x_even_share"] > 0
    assert sum(w.completed for w in step.workers) == step.counters["completed"]


@pytest.mark.slow
def test_stress_counts_the_tasks_of_killed_workers_and_their_replacements(
    tmp_path: Path,
) -> None:
    # GIVEN the stress workload in process mode, killing a worker every 0.6 s
    result = _run(
        "stress",
        ("workers=2", "duration_s=2", "rate=200", "kill_every_s=0.6", "burst_every_s=0"),
        tmp_path,
    )
    (step,) = result.steps
    # THEN the step lists the first two workers and every replacement
    names = [w.name for w in step.workers]
    assert names[:2] == ["w0", "w1"]
    assert len(names) == 2 + result.counters["workers_killed"] > 2
    # AND the completions, from the database, add up to every task done, killed workers' too
    assert sum(w.completed for w in step.workers) == result.counters["done"]
    assert step.settings["workers_started"] == len(names)


def test_comparison_rows_record_their_one_worker(tmp_path: Path) -> None:
    # GIVEN a small comparison of our queue with the sqlite3 reference
    result = _run("comparison", ("contenders=taskqueue", "tasks=100"), tmp_path)
    # THEN each row names its one worker, with the tasks it completed and its busy time
    for step in result.steps:
        assert step.settings["workers"] == 1
        (worker,) = step.workers
        assert worker.completed == step.counters["completed"] > 0
        assert worker.busy_s > 0


def test_a_step_with_an_idle_worker_is_noted_in_plain_words() -> None:
    # GIVEN a step in which two of four workers did nothing
    partial = PartialResults("throughput", "smoke", {})
    shares = (
        WorkerShare("w0", 10, 0.1),
        WorkerShare("w1", 0, 0.0),
        WorkerShare("w2", 5, 0.1),
        WorkerShare("w3", 0, 0.0),
    )
    partial.step(StepResult("4 workers", {"workers": 4}, {}, workers=shares))
    # THEN the results' notes say so, naming them
    assert partial.notes == [
        "4 workers: 2 of 4 workers did no task (w1, w3); the step's figures are those of "
        "2 working workers"
    ]
    # AND a step where everyone worked adds no note
    partial.step(StepResult("2 workers", {"workers": 2}, {}, workers=shares[:1] + shares[2:3]))
    assert len(partial.notes) == 1
