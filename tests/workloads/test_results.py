"""The result model: latency summaries from all samples, JSON round trip, version check."""

from __future__ import annotations

import orjson
import pytest

from runs import (
    SCHEMA_VERSION,
    LatencySummary,
    StepResult,
    Verdict,
    WorkloadResult,
)
from workloads.errors import ResultFormatError


def test_percentiles_come_from_every_sample() -> None:
    # GIVEN 1,000 samples of 1..1000 ms, plus one outlier of 5 s
    samples = [ms * 1_000_000 for ms in range(1, 1001)] + [5_000 * 1_000_000]
    # WHEN summarised
    summary = LatencySummary.from_samples(samples)
    # THEN the percentiles are those of all 1,001 samples (linear interpolation)
    assert summary.count == 1001
    assert summary.p50_ms == pytest.approx(501.0)
    assert summary.p95_ms == pytest.approx(951.0)
    assert summary.p99_ms == pytest.approx(991.0)
    assert summary.p999_ms == pytest.approx(1000.0)
    assert summary.max_ms == pytest.approx(5000.0)
    assert summary.mean_ms == pytest.approx((sum(range(1, 1001)) + 5000) / 1001)


def test_an_empty_summary_has_no_numbers() -> None:
    summary = LatencySummary.from_samples([])
    assert summary.count == 0
    assert summary.p50_ms is None
    assert summary.max_ms is None


def test_seconds_and_nanoseconds_agree() -> None:
    assert LatencySummary.from_seconds([0.001, 0.003]) == LatencySummary.from_samples(
        [1_000_000, 3_000_000]
    )


def _hand_made() -> WorkloadResult:
    latency = LatencySummary.from_samples([1_000_000, 2_000_000, 3_000_000])
    return WorkloadResult(
        workload="throughput",
        size="smoke",
        params={"worker_counts": [1, 5], "tasks": 10},
        queue={"claim_batch": 1},
        complete=True,
        duration_s=1.5,
        metrics={"process_tasks_per_s_1_worker": 120.0},
        latencies={"claim": latency},
        counters={"sqlite_busy_retries": 0},
        steps=(
            StepResult(
                "1 worker, async",
                {"workers": 1, "mode": "async"},
                {"process_tasks_per_s": 120.0},
                {"claim": latency},
                {"lost": 0},
            ),
        ),
        series={"chunks": ((1000.0, 2.0, 3.0, 0.5),)},
        series_columns={"chunks": ("tasks_done", "rss_bytes", "heap_bytes", "elapsed_s")},
        verdicts=(Verdict("process_tasks_per_s_1_worker", 120.0, 50.0, ">", "tasks/s", True),),
        notes=("hand made",),
    )


def test_json_round_trip_keeps_everything() -> None:
    result = _hand_made()
    text = result.to_json()
    assert orjson.loads(text)["schema_version"] == SCHEMA_VERSION
    assert WorkloadResult.from_json(text) == result


@pytest.mark.parametrize("version", [None, 0, SCHEMA_VERSION + 1, "1"])
def test_an_unknown_schema_version_is_refused(version: object) -> None:
    data = _hand_made().to_dict()
    data["schema_version"] = version
    with pytest.raises(ResultFormatError, match=r"schema_version .* is not supported"):
        WorkloadResult.from_dict(data)


def test_a_result_without_required_fields_is_refused() -> None:
    data = _hand_made().to_dict()
    del data["workload"]
    with pytest.raises(ResultFormatError, match="not a valid workload result"):
        WorkloadResult.from_dict(data)


def test_passed_is_false_when_any_verdict_failed() -> None:
    result = _hand_made()
    failing = Verdict("process_tasks_per_s_5_workers", 10.0, 200.0, ">", "tasks/s", False)
    assert result.passed
    assert not result.with_verdicts([*result.verdicts, failing]).passed
