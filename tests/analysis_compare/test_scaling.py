"""USL fit: recovers known parameters, finds the peak, refuses what cannot be fitted."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from analysis.errors import ScalingError
from analysis.load.runfolder import open_run
from analysis.scaling import ScalingPoint, fit_usl, scaling_fits, scaling_points, usl
from runs import WorkloadResult

WORKERS = (1, 2, 5, 10, 15, 20, 30, 40)


def synthetic(lambda_: float, sigma: float, kappa: float, noise: float) -> list[ScalingPoint]:
    """Points on the USL curve with ``noise`` relative Gaussian noise (seeded)."""
    n = np.array(WORKERS, dtype=np.float64)
    jitter = 1 + np.random.default_rng(11).normal(0.0, noise, n.size)
    return [
        ScalingPoint(int(w), float(x))
        for w, x in zip(n, usl(n, lambda_, sigma, kappa) * jitter, strict=True)
    ]


@pytest.mark.parametrize(("sigma", "kappa"), [(0.05, 0.002), (0.3, 0.0005), (0.02, 0.01)])
def test_the_fit_recovers_known_parameters_and_the_peak(sigma: float, kappa: float) -> None:
    fit = fit_usl(synthetic(1_000.0, sigma, kappa, noise=0.01))
    assert fit.lambda_ == pytest.approx(1_000.0, rel=0.05)
    assert fit.sigma == pytest.approx(sigma, abs=0.02 + 0.1 * sigma)
    assert fit.kappa == pytest.approx(kappa, rel=0.25)
    assert fit.peak_workers == pytest.approx(math.sqrt((1 - sigma) / kappa), rel=0.15)
    assert fit.peak_throughput == pytest.approx(
        float(usl(np.array([fit.peak_workers]), 1_000.0, sigma, kappa)[0]), rel=0.05
    )
    assert fit.r_squared > 0.95


def test_a_flat_curve_is_one_writer_without_a_peak() -> None:
    fit = fit_usl([ScalingPoint(n, 5_000.0) for n in (1, 2, 5, 10, 20)])
    assert fit.sigma == pytest.approx(1.0, abs=0.01)
    assert fit.kappa == pytest.approx(0.0, abs=1e-5)
    assert math.isinf(fit.peak_workers)
    assert fit.peak_throughput == pytest.approx(5_000.0, rel=0.01)
    assert "nearly all work is serialised" in fit.contention
    assert "one writer" in fit.contention
    assert fit.r_squared == 1.0


def test_linear_scaling_has_no_contention_and_no_limit() -> None:
    fit = fit_usl([ScalingPoint(n, 100.0 * n) for n in (1, 2, 4, 8)])
    assert fit.sigma == pytest.approx(0.0, abs=1e-3)
    assert math.isinf(fit.peak_workers)
    assert "little contention" in fit.contention


def test_retrograde_scaling_names_the_coherency_cost() -> None:
    fit = fit_usl(synthetic(1_000.0, 0.5, 0.2, noise=0.0))
    assert fit.peak_workers < 2
    assert "more workers lower throughput" in fit.contention


@pytest.mark.parametrize(
    "points",
    [[], [ScalingPoint(1, 10.0)], [ScalingPoint(1, 10.0), ScalingPoint(2, 12.0)]],
)
def test_fewer_than_three_worker_counts_are_refused(points: list[ScalingPoint]) -> None:
    with pytest.raises(ScalingError, match="at least 3") as raised:
        fit_usl(points, "async")
    assert "async" in str(raised.value)
    assert "worker_counts" in str(raised.value)  # the fix: which parameter to change


def test_repeated_worker_counts_do_not_count_twice() -> None:
    with pytest.raises(ScalingError, match=r"2 distinct worker count"):
        fit_usl([ScalingPoint(1, 10.0), ScalingPoint(1, 11.0), ScalingPoint(2, 12.0)])


@pytest.mark.parametrize("bad", [0.0, -5.0, math.nan, math.inf])
def test_unusable_throughput_is_refused(bad: float) -> None:
    points = [ScalingPoint(1, 10.0), ScalingPoint(2, bad), ScalingPoint(5, 30.0)]
    with pytest.raises(ScalingError, match="not usable"):
        fit_usl(points)


def test_a_result_without_steps_cannot_be_fitted() -> None:
    result = WorkloadResult("latency", "smoke", {}, {}, True, 1.0)
    with pytest.raises(ScalingError, match="concurrency"):
        scaling_points(result)


def test_a_real_concurrency_run_fits_per_mode(concurrency_run: Path) -> None:
    fits = scaling_fits(open_run(concurrency_run).result)
    assert set(fits) == {"async"}
    fit = fits["async"]
    assert [p.workers for p in fit.points] == [1, 2, 5]
    assert 0.0 <= fit.sigma <= 1.0
    assert fit.kappa >= 0.0
    assert fit.lambda_ > 0
    assert fit.contention


def test_the_worker_count_that_reaches_90_percent_of_the_peak() -> None:
    fit = fit_usl(synthetic(1_000.0, 0.05, 0.002, noise=0.0))
    assert fit.workers_for_90pct is not None
    assert fit.workers_for_90pct < fit.peak_workers
    reached = float(fit.predict(fit.workers_for_90pct))
    assert reached >= 0.9 * fit.peak_throughput * (1 - 1e-6)
    assert float(fit.predict(fit.workers_for_90pct - 0.1)) < 0.9 * fit.peak_throughput
    assert fit_usl([ScalingPoint(n, 100.0 * n) for n in (1, 2, 4, 8)]).workers_for_90pct is None
    flat = fit_usl([ScalingPoint(n, 5_000.0) for n in (1, 2, 5, 10, 20)])
    assert flat.workers_for_90pct == pytest.approx(1.0)
