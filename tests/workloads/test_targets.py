"""Targets: the shipped defaults, overrides from a file, and verdicts on hand-made metrics."""

from __future__ import annotations

from pathlib import Path

import pytest

from workloads.errors import TargetsError
from workloads.targets import TARGET_SPECS, default_targets, load_targets


def test_the_defaults_are_the_seed_values() -> None:
    targets = default_targets()
    assert targets.for_workload("throughput") == {
        "process_tasks_per_s_1_worker": 50,
        "process_tasks_per_s_5_workers": 200,
        "process_tasks_per_s_10_workers": 300,
    }
    assert targets.for_workload("latency") == {
        "e2e_p50_ms": 100,
        "e2e_p95_ms": 500,
        "e2e_p99_ms": 1000,
    }
    assert targets.for_workload("dbops") == {
        "enqueue_p99_ms": 10,
        "claim_p99_ms": 20,
        "status_p99_ms": 5,
    }
    assert targets.for_workload("concurrency") == {
        "max_workers": 20,
        "sqlite_busy_retries_below_10_workers": 0,
        "claim_conflict_pct": 1,
    }
    # every key of the shipped file has a spec, and every spec a default
    for workload, specs in TARGET_SPECS.items():
        assert set(targets.for_workload(workload)) == set(specs)


def test_verdicts_compare_measured_against_target() -> None:
    # GIVEN hand-made latency metrics: p50 fine, p95 too slow, p99 not measured
    targets = default_targets()
    metrics = {"e2e_p50_ms": 3.0, "e2e_p95_ms": 750.0, "unrelated": 1.0}
    # WHEN evaluated
    verdicts = {v.metric: v for v in targets.evaluate("latency", metrics)}
    # THEN each measured target has a verdict with measured, target, comparator and unit
    assert set(verdicts) == {"e2e_p50_ms", "e2e_p95_ms"}
    assert verdicts["e2e_p50_ms"].passed
    assert (verdicts["e2e_p50_ms"].measured, verdicts["e2e_p50_ms"].target) == (3.0, 100.0)
    assert (verdicts["e2e_p50_ms"].comparator, verdicts["e2e_p50_ms"].unit) == ("<", "ms")
    assert not verdicts["e2e_p95_ms"].passed


@pytest.mark.parametrize(
    ("measured", "passed"),
    [(0, True), (1, False)],
)
def test_at_most_zero_busy_retries(measured: float, passed: bool) -> None:
    (verdict,) = default_targets().evaluate(
        "concurrency", {"sqlite_busy_retries_below_10_workers": measured}
    )
    assert verdict.passed is passed


def test_a_throughput_equal_to_the_target_does_not_pass_a_strict_above() -> None:
    (verdict,) = default_targets().evaluate("throughput", {"process_tasks_per_s_1_worker": 50})
    assert not verdict.passed


def test_a_file_overrides_only_its_keys(tmp_path: Path) -> None:
    path = tmp_path / "targets.toml"
    path.write_text("[throughput]\nprocess_tasks_per_s_1_worker = 4000\n")
    targets = load_targets(path)
    assert targets.for_workload("throughput")["process_tasks_per_s_1_worker"] == 4000
    assert targets.for_workload("throughput")["process_tasks_per_s_5_workers"] == 200
    assert targets.for_workload("latency") == default_targets().for_workload("latency")
    assert targets.sources == (str(path),)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("[throughput]\nprocess_tasks_per_s_2_workers = 5\n", "process_tasks_per_s_2_workers"),
        ("[throughputs]\nx = 5\n", "[throughputs]"),
        ('[latency]\ne2e_p50_ms = "fast"\n', "e2e_p50_ms"),
        ("[latency]\ne2e_p50_ms = true\n", "e2e_p50_ms"),
        ("[latency]\ne2e_p50_ms = nan\n", "e2e_p50_ms"),
        ("[latency\n", "not valid TOML"),
    ],
)
def test_a_bad_file_names_the_file_and_the_key(tmp_path: Path, text: str, named: str) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(text)
    with pytest.raises(TargetsError) as caught:
        load_targets(path)
    assert str(path) in str(caught.value)
    assert named in str(caught.value)
    assert caught.value.exit_code == 2


def test_a_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(TargetsError, match="cannot be read") as caught:
        load_targets(tmp_path / "absent.toml")
    assert caught.value.exit_code == 2
