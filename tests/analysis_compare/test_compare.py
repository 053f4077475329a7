"""compare: verdicts on real runs, a planted slowdown, identical samples, comparability."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from analysis.compare import (
    SCHEMA_VERSION,
    Basis,
    ChangeVerdict,
    ComparisonOptions,
    Direction,
    Scope,
    band_comparison,
    compare_folders,
    compare_samples,
    metric_direction,
)
from analysis.errors import CompareOptionError, NotComparableError, RunFolderError
from analysis.load.runfolder import open_run
from runs import MANIFEST, RESULTS, Manifest, StepResult, WorkloadResult


def plant_slowdown(run_dir: Path, factor: float = 2.0, run_id: str = "throughput-slow") -> None:
    """Make ``run_dir`` look ``factor`` times slower: op samples scaled up, rates down."""
    samples = run_dir / "op-samples.npz"
    with np.load(samples) as archive:
        arrays = {name: archive[name] for name in archive.files}
    scaled = {
        name: (values * factor).astype(np.int64) if name.startswith("op/") else values
        for name, values in arrays.items()
    }
    np.savez_compressed(samples, **scaled)
    result = WorkloadResult.from_json((run_dir / RESULTS).read_bytes())
    result = dataclasses.replace(
        result,
        metrics=_slower(result.metrics, factor),
        steps=tuple(
            StepResult(s.label, s.settings, _slower(s.metrics, factor), s.latencies, s.counters)
            for s in result.steps
        ),
    )
    (run_dir / RESULTS).write_bytes(result.to_json())
    manifest = Manifest.from_json((run_dir / MANIFEST).read_bytes())
    (run_dir / MANIFEST).write_bytes(dataclasses.replace(manifest, run_id=run_id).to_json())


def _slower(metrics: object, factor: float) -> dict[str, float]:
    assert isinstance(metrics, dict)
    return {
        name: value / factor
        if "per_s" in name
        else value * factor
        if name.endswith("_s")
        else value
        for name, value in metrics.items()
    }


def edit_manifest(run_dir: Path, **changes: Any) -> None:
    """Replace fields of ``run_dir``'s manifest."""
    manifest = Manifest.from_json((run_dir / MANIFEST).read_bytes())
    (run_dir / MANIFEST).write_bytes(dataclasses.replace(manifest, **changes).to_json())


def test_a_run_against_itself_changes_nothing(throughput_run: Path) -> None:
    # GIVEN one real run WHEN it is compared with itself
    comparison = compare_folders(throughput_run, throughput_run)
    # THEN every metric, sampled or band-based, is "no significant change"
    assert comparison.metrics
    assert {m.verdict for m in comparison.metrics} == {ChangeVerdict.NO_CHANGE}
    assert {m.scope for m in comparison.metrics} >= {Scope.LATENCY, Scope.METRIC}
    assert all(t.p_value == pytest.approx(1.0) for t in comparison.tests)
    assert not comparison.warnings
    assert not comparison.changes


def test_identical_sample_sets_show_no_change() -> None:
    samples = np.random.default_rng(7).lognormal(12, 0.5, 2_000).astype(np.int64)
    test, rows = compare_samples("claim", samples, samples.copy())
    assert test.p_value == pytest.approx(1.0)
    assert test.superiority == pytest.approx(0.5)
    assert [r.verdict for r in rows] == [ChangeVerdict.NO_CHANGE] * 3
    assert all(r.ci is not None and r.ci[0] <= 1.0 <= r.ci[1] for r in rows)


def test_a_planted_2x_slowdown_is_slower_with_a_small_p(
    throughput_run: Path, run_copy: Path
) -> None:
    # GIVEN a copy of a run whose samples are doubled and rates halved
    plant_slowdown(run_copy)
    # WHEN the copy is compared with the original
    comparison = compare_folders(throughput_run, run_copy)
    by_name = {m.name: m for m in comparison.metrics}
    # THEN every operation's median is slower by the rank test, with a tiny p-value
    for test in comparison.tests:
        median = by_name[f"{test.operation} p50"]
        assert median.verdict is ChangeVerdict.SLOWER
        assert median.basis is Basis.RANK_TEST
        assert median.ratio == pytest.approx(2.0, rel=0.01)
        assert test.p_value < 1e-6
        assert test.superiority > 0.6
        # the tail's ratio is exact; its bootstrap interval may be too wide at smoke size
        assert by_name[f"{test.operation} p95"].ratio == pytest.approx(2.0, rel=0.01)
    # AND the halved rates are slower by the noise band
    rates = [m for m in comparison.metrics if m.unit == "/s"]
    assert rates
    for rate in rates:
        assert rate.verdict is ChangeVerdict.SLOWER, rate
        assert rate.basis is Basis.NOISE_BAND
        assert rate.ratio == pytest.approx(0.5)
    assert {m.name for m in comparison.regressions} >= {m.name for m in rates}
    assert not comparison.improvements


def test_different_workloads_are_refused(throughput_run: Path, latency_run: Path) -> None:
    with pytest.raises(NotComparableError, match="different workloads") as raised:
        compare_folders(throughput_run, latency_run)
    assert "'throughput'" in str(raised.value)
    assert "'latency'" in str(raised.value)
    assert raised.value.exit_code == 2


def test_different_params_and_machine_are_warned(throughput_run: Path, run_copy: Path) -> None:
    manifest = Manifest.from_json((run_copy / MANIFEST).read_bytes())
    environment = {
        **manifest.environment,
        "python": {**manifest.environment["python"], "version": "3.12.1"},
        "sqlite": {"version": "3.45.0"},
        "cpu": {**manifest.environment["cpu"], "model": "Some Other CPU"},
    }
    edit_manifest(
        run_copy,
        params={**manifest.params, "tasks": 999},
        environment=environment,
        queue={**manifest.queue, "claim_batch": 10},
    )
    comparison = compare_folders(throughput_run, run_copy)
    warned = {d.field: (d.baseline, d.candidate) for d in comparison.warnings}
    assert warned["params.tasks"][1] == "999"
    assert warned["environment.python.version"][1] == "3.12.1"
    assert warned["environment.sqlite.version"][1] == "3.45.0"
    assert warned["environment.cpu.model"][1] == "Some Other CPU"
    assert {d.field for d in comparison.changes} == {"queue.claim_batch"}
    assert any("claim_batch" in note for note in comparison.notes)


def test_a_missing_folder_names_it(tmp_path: Path) -> None:
    with pytest.raises(RunFolderError, match="not found"):
        open_run(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunFolderError, match=r"manifest\.json"):
        open_run(tmp_path / "empty")


def test_json_carries_its_schema_version(throughput_run: Path, run_copy: Path) -> None:
    plant_slowdown(run_copy)
    document = orjson.loads(compare_folders(throughput_run, run_copy).to_json())
    assert document["schema_version"] == SCHEMA_VERSION
    assert document["baseline"]["run_id"] == "throughput-bare"
    assert document["summary"]["regressions"]
    assert all("verdict" in m and "ratio" in m for m in document["metrics"])


@pytest.mark.parametrize(
    ("name", "workload", "direction"),
    [
        ("process_tasks_per_s_5_workers", "throughput", Direction.HIGHER_IS_BETTER),
        ("e2e_p99_ms", "latency", Direction.LOWER_IS_BETTER),
        ("max_workers", "concurrency", Direction.HIGHER_IS_BETTER),
        ("sqlite_busy_retries", "", Direction.LOWER_IS_BETTER),
        ("efficiency", "", Direction.HIGHER_IS_BETTER),
        ("offered_tasks_per_s", "stress", Direction.NEUTRAL),
        ("peak_rss_mib", "memory", Direction.LOWER_IS_BETTER),
        ("tasks_enqueued", "stress", Direction.NEUTRAL),
        ("lock_wait_us", "", Direction.LOWER_IS_BETTER),
        ("lock_wait_us.claim", "", Direction.LOWER_IS_BETTER),
        ("worker_busy_us.w0", "", Direction.NEUTRAL),
        ("worker_tasks.w3", "", Direction.NEUTRAL),
    ],
)
def test_metric_direction(name: str, workload: str, direction: Direction) -> None:
    assert metric_direction(name, workload) is direction


def test_the_noise_band() -> None:
    def verdict(baseline: float, candidate: float, name: str = "tasks_per_s") -> ChangeVerdict:
        return band_comparison(
            name, Scope.METRIC, baseline, candidate, metric_direction(name), 0.10
        ).verdict

    assert verdict(100, 109) is ChangeVerdict.NO_CHANGE
    assert verdict(100, 91) is ChangeVerdict.NO_CHANGE
    assert verdict(100, 115) is ChangeVerdict.FASTER
    assert verdict(100, 80) is ChangeVerdict.SLOWER
    assert verdict(0, 3, "lost") is ChangeVerdict.WORSE
    row = band_comparison("lost", Scope.COUNTER, 0, 3, Direction.LOWER_IS_BETTER, 0.1)
    assert row.basis is Basis.FROM_ZERO
    assert row.ratio is None
    assert verdict(10, 20, "peak_rss_mib") is ChangeVerdict.WORSE


def test_small_but_detectable_shifts_stay_inside_the_band() -> None:
    # A 3 % shift over 20,000 samples is statistically clear and practically noise.
    rng = np.random.default_rng(3)
    base = rng.lognormal(12, 0.3, 20_000)
    test, rows = compare_samples("claim", base, base * 1.03)
    assert test.p_value < 0.01
    assert rows[0].verdict is ChangeVerdict.NO_CHANGE


@pytest.mark.parametrize("noise", [-0.1, 1.0, math.nan])
def test_bad_noise_is_a_usage_error(noise: float) -> None:
    with pytest.raises(CompareOptionError, match="noise band") as raised:
        ComparisonOptions(noise=noise)
    assert raised.value.exit_code == 2


def test_latency_summaries_without_samples_are_compared_in_ms(latency_run: Path) -> None:
    # The latency workload's end-to-end times are summaries only: no op samples behind them.
    comparison = compare_folders(latency_run, latency_run)
    e2e = [m for m in comparison.metrics if m.name.startswith("e2e ")]
    assert e2e
    assert {m.unit for m in e2e} == {"ms"}
    assert {m.basis for m in e2e} == {Basis.NOISE_BAND}


def test_dbops_compares_calls_per_task_and_each_steps_counters(
    dbops_runs: tuple[Path, Path],
) -> None:
    # GIVEN dbops batched (the default) and one task per claim and ack
    batched, one_at_a_time = dbops_runs
    # WHEN compared
    comparison = compare_folders(batched, one_at_a_time)
    rows = {m.name: m for m in comparison.metrics}
    # THEN the claim's calls per task are there and worse: a per-call latency that looks
    # faster is not the last word (the run made ~40x more claims for the same tasks)
    calls = rows["claim calls per task"]
    assert calls.candidate > 10 * calls.baseline
    assert calls.verdict is ChangeVerdict.WORSE
    assert rows["claim time per task"].verdict is ChangeVerdict.SLOWER
    assert any("claim" in note and "calls" in note for note in comparison.notes)
    # AND each step's contention counters are compared on their own
    assert {"1 worker: sqlite_busy_retries", "10 workers: lock_wait_us"} <= rows.keys()
    assert rows["10 workers: lock_wait_us"].scope is Scope.COUNTER
    # AND per-worker counters describe the split, so they are not judged
    assert not any(name.split(": ")[-1].startswith("worker_") for name in rows)
