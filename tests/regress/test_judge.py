"""The gate's verdict on hand-built measurements: costs, bands, refusals."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from queueprof.bench import bench_document, save_bench
from queueprof.gate import GATED_BY_NAME, GateMeasurement, MetricKind, cost
from queueprof.regress import (
    Baseline,
    BaselineError,
    check_comparable,
    judge,
    load_baseline,
)
from runs import UsageError
from taskqueue import QueueConfig
from workloads.calibration import Calibration

from .conftest import measurement, smoke_plan

CLAIM = "claim_p50_ms_1_worker"
RATE_1 = "process_tasks_per_s_1_worker"


def baseline_of(m: GateMeasurement, path: Path = Path("results/b.json")) -> Baseline:
    return Baseline(path, "2026-01-01T00:00:00Z", {}, m)


def test_a_cost_counts_sqlite3_cycles_and_ignores_a_uniformly_slower_machine() -> None:
    # GIVEN a rate and a latency on a machine, and the same on one twice as slow
    fast, slow = Calibration(10_000.0, 100_000.0), Calibration(5_000.0, 50_000.0)
    # THEN the rate costs sqlite3's rate over it, the latency its ms over a cycle's ms
    assert cost(MetricKind.RATE, "cycle", 5_000.0, fast) == pytest.approx(2.0)
    assert cost(MetricKind.RATE, "batched", 50_000.0, fast) == pytest.approx(2.0)
    assert cost(MetricKind.LATENCY, "cycle", 0.2, fast) == pytest.approx(2.0)
    # and halving every speed changes no cost
    assert cost(MetricKind.RATE, "cycle", 2_500.0, slow) == pytest.approx(2.0)
    assert cost(MetricKind.LATENCY, "cycle", 0.4, slow) == pytest.approx(2.0)


def test_an_unchanged_queue_on_a_slower_machine_passes(tmp_path: Path) -> None:
    # GIVEN a baseline, and a candidate where the machine and the queue are both 2x slower
    plan = smoke_plan(tmp_path)
    base = measurement(plan, {CLAIM: (0.10, 0.11, 0.10), RATE_1: (6000.0, 5800.0, 6100.0)})
    cand = measurement(
        plan,
        {CLAIM: (0.20, 0.21, 0.20), RATE_1: (3000.0, 2950.0, 3050.0)},
        Calibration(5_000.0, 50_000.0),
    )
    # WHEN the gate judges it
    report = judge(baseline_of(base), cand)
    # THEN it passes, every gated row within its band
    assert report.passed
    claim = next(r for r in report.rows if r.comparison.name == CLAIM)
    assert claim.comparison.relative_change == pytest.approx(0.0)
    assert claim.margin is not None
    assert claim.margin > 1.0


def test_a_claim_four_times_as_costly_fails_and_says_by_how_much(tmp_path: Path) -> None:
    # GIVEN a candidate whose claim p50 is 4x the baseline's on the same machine
    plan = smoke_plan(tmp_path)
    base = measurement(plan, {CLAIM: (0.10, 0.10, 0.10)})
    cand = measurement(plan, {CLAIM: (0.40, 0.41, 0.40)})
    # WHEN judged
    report = judge(baseline_of(base), cand)
    # THEN the gate fails on exactly that metric, +300% against its declared band
    assert not report.passed
    assert [r.comparison.name for r in report.regressions] == [CLAIM]
    (row,) = report.regressions
    assert row.comparison.relative_change == pytest.approx(3.0)
    assert row.band == GATED_BY_NAME[CLAIM].band
    assert row.margin is not None
    assert row.margin < 0
    saved = orjson.loads(report.to_json())
    assert saved["schema_version"] == 1
    assert saved["regressions"] == [CLAIM]
    assert saved["passed"] is False


def test_the_best_round_is_judged_so_one_loaded_round_does_not_fail(tmp_path: Path) -> None:
    # GIVEN a candidate with one round spoiled by other processes (5x slower)
    plan = smoke_plan(tmp_path)
    base = measurement(plan, {CLAIM: (0.10, 0.10, 0.10)})
    cand = measurement(plan, {CLAIM: (0.50, 0.105, 0.10)})
    # THEN the gate passes
    assert judge(baseline_of(base), cand).passed


def test_a_noisy_measurement_widens_the_band(tmp_path: Path) -> None:
    # GIVEN a candidate 3.2x as costly (beyond the declared +200%), whose rounds scatter widely
    plan = smoke_plan(tmp_path)
    base = measurement(plan, {CLAIM: (0.10, 0.10, 0.10)})
    cand = measurement(plan, {CLAIM: (0.32, 1.5, 4.0, 0.33, 3.0)})
    # WHEN judged
    (claim,) = [r for r in judge(baseline_of(base), cand).rows if r.comparison.name == CLAIM]
    # THEN the band is twice the spread of the rounds, and the change is within it
    assert claim.band is not None
    assert claim.band > GATED_BY_NAME[CLAIM].band
    assert not claim.regressed


def test_a_reported_metric_never_fails_the_gate(tmp_path: Path) -> None:
    # GIVEN a candidate whose status p50 (reported, not gated) is 10x worse
    plan = smoke_plan(tmp_path)
    name = "status_p50_ms_1_worker"
    assert GATED_BY_NAME[name].band is None
    report = judge(
        baseline_of(measurement(plan, {name: (0.03,)})), measurement(plan, {name: (0.3,)})
    )
    # THEN the row says it got worse, and the gate still passes
    (row,) = [r for r in report.rows if r.comparison.name == name]
    assert row.comparison.verdict.regressed
    assert not row.regressed
    assert report.passed


@pytest.mark.parametrize("band", [0.0, -1.0, 11.0, float("nan")])
def test_a_noise_band_out_of_range_is_refused(tmp_path: Path, band: float) -> None:
    base = measurement(smoke_plan(tmp_path), {})
    with pytest.raises(UsageError, match="--noise"):
        judge(baseline_of(base), base, band=band)


def test_noise_overrides_every_gated_band(tmp_path: Path) -> None:
    # GIVEN a claim 3x as costly, judged with --noise 5 (and with --noise 1: it fails)
    plan = smoke_plan(tmp_path)
    base = measurement(plan, {CLAIM: (0.1,)})
    report = judge(baseline_of(base), measurement(plan, {CLAIM: (0.3,)}), band=5.0)
    # THEN it passes, every gated row with a band of 5
    assert report.passed
    assert {r.band for r in report.rows if r.gated} == {5.0}
    strict = judge(baseline_of(base), measurement(plan, {CLAIM: (0.3,)}), band=1.0)
    assert [r.comparison.name for r in strict.regressions] == [CLAIM]


def test_a_saved_measurement_reads_back_the_same(tmp_path: Path) -> None:
    # GIVEN a measurement saved as a bench file
    plan = smoke_plan(tmp_path)
    m = measurement(plan, {CLAIM: (0.1, 0.2, 0.15)})
    path = tmp_path / "b.json"
    save_bench(path, bench_document("smoke", [], m))
    # WHEN loaded as a baseline
    loaded = load_baseline(path, "smoke")
    # THEN its figures are the same, and it is comparable with the same plan
    assert loaded.gate.metrics[CLAIM].measured == (0.1, 0.2, 0.15)
    assert loaded.gate.calibration == m.calibration
    assert loaded.gate.to_dict() == m.to_dict()
    check_comparable(loaded, plan)


def write(path: Path, data: object) -> Path:
    path.write_bytes(data if isinstance(data, bytes) else orjson.dumps(data))
    return path


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", "is not JSON"),
        ([1, 2], "not a queueprof bench file"),
        ({"kind": "bench", "schema_version": 99}, "schema_version 99"),
        ({"kind": "bench", "schema_version": 1, "runs": []}, "has no gate section"),
        (
            {"kind": "bench", "schema_version": 1, "gate": {"schema_version": 7}},
            "gate schema_version 7",
        ),
        (
            {"kind": "bench", "schema_version": 1, "gate": {"schema_version": 1, "size": "smoke"}},
            "gate section is malformed",
        ),
    ],
)
def test_an_unusable_baseline_is_refused_with_the_command_that_fixes_it(
    tmp_path: Path, content: object, message: str
) -> None:
    path = write(tmp_path / "baseline.json", content)
    with pytest.raises(BaselineError, match=message) as error:
        load_baseline(path, "smoke")
    assert str(path) in str(error.value)
    assert f"queueprof bench --size smoke --save {path}" in str(error.value)
    assert error.value.exit_code == 2


def test_a_missing_baseline_names_the_file_and_how_to_make_it(tmp_path: Path) -> None:
    path = tmp_path / "nope.json"
    with pytest.raises(BaselineError, match="does not exist") as error:
        load_baseline(path, "default")
    assert f"queueprof bench --save {path}" in str(error.value)


def test_a_baseline_of_another_strategy_is_refused(tmp_path: Path) -> None:
    # GIVEN a baseline measured with the default claim batches, and a gate planned with 50
    base = baseline_of(measurement(smoke_plan(tmp_path), {}))
    plan = smoke_plan(tmp_path, queue="claim_batch=50")
    # THEN the gate refuses, naming the setting and the command that regenerates it
    default = QueueConfig().claim_batch
    with pytest.raises(BaselineError, match=f"claim_batch {default} -> 50") as error:
        check_comparable(base, plan)
    assert "queueprof bench --size smoke --save" in str(error.value)


def test_a_baseline_of_another_suite_or_size_is_refused(tmp_path: Path) -> None:
    plan = smoke_plan(tmp_path)
    m = measurement(plan, {})
    other_suite = dict(m.suite, runs={**m.suite["runs"], "dbops": {"tasks": 5}})
    tampered = GateMeasurement(m.size, m.rounds, other_suite, m.queue, m.calibrations, m.metrics)
    with pytest.raises(BaselineError, match=r"another gate suite: runs\.dbops"):
        check_comparable(baseline_of(tampered), plan)
    other_size = GateMeasurement("default", m.rounds, m.suite, m.queue, m.calibrations, m.metrics)
    with pytest.raises(BaselineError, match=r"size 'default'.*size 'smoke'"):
        check_comparable(baseline_of(other_size), plan)
