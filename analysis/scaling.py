"""Fit the Universal Scalability Law to worker count vs throughput, and name the contention.

Gunther's USL models throughput at ``N`` workers as::

    X(N) = lambda * N / (1 + sigma * (N - 1) + kappa * N * (N - 1))

``lambda`` is the throughput of one worker, ``sigma`` the contention (the fraction of the
work that is serialised: 0 scales linearly, 1 is one writer), ``kappa`` the coherency cost
(every worker waiting on every other: throughput falls past the peak). With ``kappa > 0``
throughput peaks at ``N* = sqrt((1 - sigma) / kappa)``.

:func:`fit_usl` fits the law with :func:`scipy.optimize.curve_fit` under the bounds
``0 <= sigma <= 1`` and ``kappa >= 0``; :func:`scaling_fits` reads the points from a
concurrency (or throughput) result, one fit per worker mode.
"""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import optimize

from runs import WorkloadResult

from .errors import ScalingError

MIN_POINTS = 3
"""Three parameters need at least three distinct worker counts."""
KAPPA_NEGLIGIBLE = 1e-6
"""Below this the coherency term never bends the curve within any realistic worker count."""
SIGMA_NEGLIGIBLE = 1e-6
"""Below this (with no coherency cost) scaling is linear: no plateau within reach."""
POOR_FIT = 0.8
"""R^2 below this: the description warns that the numbers are rough."""
STEP_THROUGHPUT_METRICS = ("tasks_per_s", "process_tasks_per_s")
"""The step metric that is the throughput: concurrency's first, throughput's second."""


@dataclass(frozen=True, slots=True)
class ScalingPoint:
    """One measured step: ``workers`` concurrent workers processed ``throughput`` tasks/s."""

    workers: int
    throughput: float


@dataclass(frozen=True, slots=True)
class UslFit:
    """The fitted law and what follows from it."""

    mode: str
    """Worker mode the points came from (``async``, ``process``), or a caller's label."""
    points: tuple[ScalingPoint, ...]
    lambda_: float
    """Throughput of one worker without contention (tasks/s)."""
    sigma: float
    """Contention: fraction of the work that is serialised (0..1)."""
    kappa: float
    """Coherency: cost of every worker synchronising with every other."""
    r_squared: float
    peak_workers: float
    """``N* = sqrt((1 - sigma) / kappa)``; ``inf`` when kappa is negligible (no peak)."""
    peak_throughput: float
    """``X(N*)``, or the asymptote ``lambda / sigma`` without a peak (``inf`` when sigma is 0
    too: linear scaling)."""
    workers_for_90pct: float | None
    """The fewest workers at which the fitted curve reaches 90 % of its peak (or plateau):
    past this, more workers buy little. None when the curve has no finite limit."""
    contention: str
    """The numbers in words, for a person deciding what to change."""

    def predict(self, workers: float | np.ndarray[Any, Any]) -> Any:
        """Throughput the law predicts at ``workers`` (a number or an array)."""
        return usl(np.asarray(workers, dtype=np.float64), self.lambda_, self.sigma, self.kappa)

    @property
    def best_measured(self) -> ScalingPoint:
        """The measured point with the highest throughput."""
        return max(self.points, key=lambda p: p.throughput)


def usl(
    workers: np.ndarray[Any, Any], lambda_: float, sigma: float, kappa: float
) -> np.ndarray[Any, Any]:
    """The Universal Scalability Law ``X(N)``."""
    n = np.asarray(workers, dtype=np.float64)
    return np.asarray(lambda_ * n / (1.0 + sigma * (n - 1.0) + kappa * n * (n - 1.0)))


def fit_usl(points: Sequence[ScalingPoint], mode: str = "") -> UslFit:
    """Fit the USL to ``points`` (at least three distinct worker counts, positive rates)."""
    _check_points(points, mode)
    ordered = tuple(sorted(points, key=lambda p: p.workers))
    n = np.array([p.workers for p in ordered], dtype=np.float64)
    x = np.array([p.throughput for p in ordered], dtype=np.float64)
    # One worker's rate is the natural start for lambda; when N=1 was not measured, the
    # smallest count's per-worker rate is a lower bound of it.
    lambda_start = float(x[0] / n[0])
    try:
        with warnings.catch_warnings():
            # A bounded fit through few points often cannot estimate the parameters'
            # covariance; only the parameters are used, so that warning is noise here.
            warnings.simplefilter("ignore", optimize.OptimizeWarning)
            params, _ = optimize.curve_fit(
                usl,
                n,
                x,
                p0=(lambda_start, 0.1, 0.001),
                bounds=((0.0, 0.0, 0.0), (np.inf, 1.0, np.inf)),
                maxfev=20_000,
            )
    except (RuntimeError, ValueError) as error:
        raise ScalingError(
            f"{_where(mode)}: the USL fit did not converge on {len(ordered)} points ({error}); "
            "measure more worker counts (e.g. 1, 2, 5, 10, 15, 20) or a longer run per step"
        ) from error
    lambda_, sigma, kappa = (float(v) for v in params)
    predicted = usl(n, lambda_, sigma, kappa)
    r_squared = _r_squared(x, predicted)
    peak_workers, peak_throughput = _peak(lambda_, sigma, kappa)
    near_peak = _workers_reaching(0.9 * peak_throughput, lambda_, sigma, kappa, peak_workers)
    return UslFit(
        mode=mode,
        points=ordered,
        lambda_=lambda_,
        sigma=sigma,
        kappa=kappa,
        r_squared=r_squared,
        peak_workers=peak_workers,
        peak_throughput=peak_throughput,
        workers_for_90pct=near_peak,
        contention=describe_contention(
            sigma, kappa, peak_workers, max(p.workers for p in ordered), r_squared, near_peak
        ),
    )


def scaling_points(result: WorkloadResult) -> dict[str, list[ScalingPoint]]:
    """Per worker mode (per backend and mode when the steps name a backend, as a crossover's
    do), the (workers, throughput) points of a result's steps."""
    points: dict[str, list[ScalingPoint]] = defaultdict(list)
    for step in result.steps:
        workers = step.settings.get("workers")
        metric = next((m for m in STEP_THROUGHPUT_METRICS if m in step.metrics), None)
        if workers is None or metric is None:
            continue
        mode = str(step.settings.get("mode", ""))
        if "backend" in step.settings:  # a crossover's steps: one curve per backend and mode
            mode = f"{step.settings['backend']} {mode}".strip()
        points[mode].append(ScalingPoint(int(workers), float(step.metrics[metric])))
    if not points:
        raise ScalingError(
            f"the {result.workload!r} result has no steps with a worker count and a throughput "
            f"({' or '.join(STEP_THROUGHPUT_METRICS)}); fit a `queueprof run concurrency` run"
        )
    return dict(points)


def scaling_fits(result: WorkloadResult) -> dict[str, UslFit]:
    """One USL fit per worker mode of ``result`` (modes with too few points are an error)."""
    return {mode: fit_usl(points, mode) for mode, points in scaling_points(result).items()}


def describe_contention(
    sigma: float,
    kappa: float,
    peak_workers: float,
    measured_max: int,
    r_squared: float = 1.0,
    workers_for_90pct: float | None = None,
) -> str:
    """``sigma`` and ``kappa`` in words: what limits scaling, where the peak is, and how far
    to trust the fit (``r_squared`` below :data:`POOR_FIT` says the points are noisy)."""
    if sigma >= 0.9:
        serial = (
            f"sigma={sigma:.2f}: nearly all work is serialised — effectively one writer; "
            "more workers add waiting, not throughput"
        )
    elif sigma >= 0.5:
        serial = f"sigma={sigma:.2f}: most of the work is serialised (a shared lock or writer)"
    elif sigma >= 0.1:
        serial = f"sigma={sigma:.2f}: substantial contention; scaling flattens early"
    elif sigma >= 0.02:
        serial = f"sigma={sigma:.2f}: moderate contention"
    else:
        serial = f"sigma={sigma:.3f}: little contention; work proceeds in parallel"
    if kappa < KAPPA_NEGLIGIBLE:
        coherency = f"kappa={kappa:.2g}: no coherency cost, so no peak — throughput plateaus"
    elif peak_workers < 1.5:
        coherency = (
            f"kappa={kappa:.2g}: workers pay to coordinate with each other; "
            "one worker is the fastest, every added worker lowers throughput"
        )
    else:
        where = (
            "within the measured range: beyond it more workers lower throughput"
            if peak_workers <= measured_max
            else "beyond the measured range"
        )
        coherency = (
            f"kappa={kappa:.2g}: workers pay to coordinate with each other; "
            f"throughput peaks at N*={peak_workers:.1f} workers, {where}"
        )
    text = f"{serial}. {coherency}."
    if workers_for_90pct is not None and peak_workers >= 1.5:
        text += (
            f" 90 % of that throughput is reached at {workers_for_90pct:.1f} workers; "
            "more add little."
        )
    if r_squared < POOR_FIT:
        text += (
            f" The fit is poor (R^2={r_squared:.2f}): the measured curve is noisy or not "
            "USL-shaped; treat these numbers as rough and measure longer steps."
        )
    return text


def _r_squared(measured: np.ndarray[Any, Any], predicted: np.ndarray[Any, Any]) -> float:
    """Share of the throughput's variance the fit explains.

    A flat curve has (next to) no variance to explain: there R^2 is 1 when the fit is within
    1 % of every point and 0 otherwise, instead of a ratio of two rounding errors.
    """
    residual = float(np.sum((measured - predicted) ** 2))
    spread = float(np.sum((measured - measured.mean()) ** 2))
    scale = float(np.mean(np.abs(measured)))
    if spread <= (1e-6 * scale) ** 2 * measured.size:
        close = bool(np.all(np.abs(measured - predicted) <= 0.01 * np.abs(measured)))
        return 1.0 if close else 0.0
    return 1.0 - residual / spread


def _workers_reaching(
    target: float, lambda_: float, sigma: float, kappa: float, peak_workers: float
) -> float | None:
    """The smallest worker count whose predicted throughput reaches ``target``.

    ``X(N) >= t`` is the quadratic ``t*kappa*N^2 + (t*(sigma - kappa) - lambda)*N +
    t*(1 - sigma) <= 0``; its smaller root is the answer (kappa is taken as 0 when it is
    negligible, matching the plateau that :func:`_peak` reports).
    """
    if not math.isfinite(target):
        return None
    if kappa < KAPPA_NEGLIGIBLE:
        slope = lambda_ - target * sigma
        found = target * (1.0 - sigma) / slope if slope > 0 else math.inf
    else:
        a, b, c = target * kappa, target * (sigma - kappa) - lambda_, target * (1.0 - sigma)
        found = (-b - math.sqrt(max(0.0, b * b - 4 * a * c))) / (2 * a)
    if not math.isfinite(found):
        return None
    return max(1.0, min(found, peak_workers))


def _peak(lambda_: float, sigma: float, kappa: float) -> tuple[float, float]:
    if kappa < KAPPA_NEGLIGIBLE:
        return math.inf, (lambda_ / sigma if sigma >= SIGMA_NEGLIGIBLE else math.inf)
    peak = max(1.0, math.sqrt(max(0.0, 1.0 - sigma) / kappa))
    return peak, float(usl(np.array([peak]), lambda_, sigma, kappa)[0])


def _check_points(points: Sequence[ScalingPoint], mode: str) -> None:
    where = _where(mode)
    counts = {p.workers for p in points}
    if len(counts) < MIN_POINTS:
        raise ScalingError(
            f"{where}: {len(counts)} distinct worker count(s) ({sorted(counts)}); the USL has "
            f"three parameters and needs at least {MIN_POINTS} — run concurrency with more "
            "worker counts, e.g. --param worker_counts=1,2,5,10"
        )
    bad = [p for p in points if p.workers < 1 or not math.isfinite(p.throughput)]
    if bad or any(p.throughput <= 0 for p in points):
        shown = bad or [p for p in points if p.throughput <= 0]
        raise ScalingError(
            f"{where}: points {[(p.workers, p.throughput) for p in shown]} are not usable "
            "(workers must be >= 1 and throughput a positive number); did those steps fail? "
            "check their counters in results.json"
        )


def _where(mode: str) -> str:
    return f"scaling fit ({mode} workers)" if mode else "scaling fit"
