"""Every workload at smoke size runs for real and leaves a schema-valid run folder."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from runs import MANIFEST, RESULTS, SCHEMA_VERSION, Manifest, RunStatus, WorkloadResult
from workloads.registry import WORKLOADS
from workloads.runner import execute, plan_run

# What each workload must have measured, beyond a schema-valid file.
EXPECTED_LATENCIES = {
    "throughput": set(),  # per step
    "latency": {"e2e", "e2e_timestamps", "queue_wait", "enqueue", "claim", "status"},
    "dbops": set(),  # per step
    "concurrency": set(),  # per step
    "stress": {"enqueue", "claim", "status"},
    "memory": {"enqueue", "claim"},
    "comparison": set(),  # per step (one per queue)
}
EXPECTED_METRICS = {
    "throughput": {"process_tasks_per_s_1_worker", "process_tasks_per_s_10_workers"},
    "latency": {"e2e_p50_ms", "e2e_p99_ms", "e2e_p999_ms", "e2e_max_ms"},
    "dbops": {"enqueue_p99_ms", "claim_p99_ms", "status_p99_ms", "claim_p50_ms_1_worker"},
    "concurrency": {"max_workers", "claim_conflict_pct", "sqlite_busy_retries_below_10_workers"},
    "stress": {"lost_tasks", "duplicated_tasks"},
    "memory": {"heap_growth_kib_per_1k_tasks", "rss_growth_kib_per_1k_tasks", "peak_rss_mib"},
    "comparison": {"drain_x_best_peer", "drain_x_best_peer_taskqueue_1x1"},
}


@pytest.mark.slow
@pytest.mark.parametrize(
    # crossover needs a PostgreSQL server: its smoke run is in test_crossover.py
    "name",
    [
        name
        for name, workload in WORKLOADS.items()
        if not getattr(workload, "needs_postgres", False)
    ],
)
def test_smoke_run_writes_a_valid_folder(name: str, tmp_path: Path) -> None:
    # GIVEN a smoke-size plan
    plan = plan_run(name, size="smoke", out_dir=tmp_path, run_id=f"smoke-{name}")
    # WHEN it runs
    outcome = execute(plan)
    # THEN the run completed and both files load with this schema version
    assert outcome.status is RunStatus.COMPLETE, outcome.error
    folder = tmp_path / f"smoke-{name}"
    manifest = Manifest.from_json((folder / MANIFEST).read_bytes())
    raw = orjson.loads((folder / RESULTS).read_bytes())
    assert raw["schema_version"] == SCHEMA_VERSION
    result = WorkloadResult.from_dict(raw)
    assert manifest.status is RunStatus.COMPLETE
    assert manifest.workload == name
    # bare runs may still list artifacts (e.g. raw samples); each one names how to open it
    for artifact in manifest.artifacts:
        assert {"kind", "path", "format", "viewer"} <= set(artifact)
        assert (folder / artifact["path"]).exists()
    assert manifest.profiler == {"name": "none", "options": {}}
    assert manifest.queue["record_timings"] is True
    assert manifest.environment["sqlite"]["version"]
    assert manifest.ended_at is not None
    assert result.complete
    assert result.params == plan.params.to_dict()
    # ... and hold what the workload is for
    assert EXPECTED_METRICS[name] <= set(result.metrics)
    assert EXPECTED_LATENCIES[name] <= set(result.latencies)
    assert all(summary.count > 0 for summary in result.latencies.values())
    for step in result.steps:
        assert step.latencies["claim"].count > 0
    assert {v.metric for v in result.verdicts} <= set(result.metrics)
    # no database was left next to the results
    assert not list(folder.glob("*.db*"))


def test_smoke_stress_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    # A short stress run in process mode, with two workers killed on the way.
    plan = plan_run(
        "stress",
        size="smoke",
        params=["duration_s=2", "kill_every_s=0.7"],
        out_dir=tmp_path,
    )
    result = execute(plan).result
    assert result.counters["workers_killed"] >= 1
    assert result.metrics["lost_tasks"] == 0
    assert result.metrics["duplicated_tasks"] == 0
    assert result.counters["done"] == result.metrics["tasks_enqueued"]
    # The timeline the report plots: the queue's depth until drained, every kill and burst.
    kills, bursts = result.series["kills"], result.series["bursts"]
    # A kill is recorded when it is sent; the counter after the replacement started.
    assert result.counters["workers_killed"] <= len(kills) <= result.counters["workers_killed"] + 1
    assert 1 <= len(bursts) <= 2  # smoke bursts every second, and the load lasts two
    assert all(row[1] == 100 for row in bursts)  # smoke's burst_tasks
    *_, last = result.series["queue"]
    columns = result.series_columns["queue"]
    assert last[columns.index("tasks_done")] == result.counters["done"]
    assert last[columns.index("tasks_pending")] == 0
    times = [row[0] for row in result.series["queue"]]
    assert times == sorted(times)
    assert len(times) >= 5


def test_a_planted_leak_fails_the_memory_verdict(tmp_path: Path) -> None:
    plan = plan_run(
        "memory",
        size="smoke",
        params=["leak_bytes_per_task=4096", "trace_heap=true"],
        out_dir=tmp_path,
    )
    result = execute(plan).result
    (verdict,) = [v for v in result.verdicts if v.metric == "heap_growth_kib_per_1k_tasks"]
    # 4 KiB kept per task is about 4,000 KiB per 1,000 tasks
    assert verdict.measured > 3_000
    assert not verdict.passed
