"""Compare two runs of one workload: baseline vs candidate, with a noise-aware verdict.

:func:`compare_runs` returns a :class:`Comparison` (data, never text). For every metric both
runs report it gives the ratio candidate / baseline, which way is better, and a verdict:

- **Per-operation latencies with raw samples** (``op-samples.npz``): the median row is judged
  by a Mann-Whitney U rank test on every sample (``p < alpha``); the p95 and p99 rows by a
  bootstrap confidence interval of the percentile ratio (the interval must exclude 1). Either
  way the change must also exceed the noise band, so a statistically detectable 2 % shift on
  a machine that drifts ±10 % between runs is reported as "no significant change".
- **Scalar metrics without samples** (rates, step metrics, counters, summaries): a noise band.
  ``|candidate - baseline| / |baseline| <= noise`` (default 0.10, i.e. ±10 %) is "no
  significant change"; the verdict says it is band-based. A baseline of 0 has no ratio: any
  change from zero is reported as such (e.g. ``lost: 0 -> 3`` is worse).

Runs of different workloads are refused (:class:`NotComparableError`); different parameters,
profilers, machines, Python or SQLite versions are compared but listed in
:attr:`Comparison.warnings`. Queue strategy and code revision differences are what a
candidate usually changes on purpose: they are listed in :attr:`Comparison.changes`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, fields, is_dataclass
from enum import Enum, StrEnum
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from scipy import stats

from runs import RunStatus
from workloads.targets import TARGET_SPECS

from .errors import CompareOptionError, NotComparableError
from .load.runfolder import LoadedRun, open_run

SCHEMA_VERSION = 1
"""Version of ``comparison.json``. Bump on any change of :meth:`Comparison.to_dict`."""

LATENCY_PERCENTILES = (50.0, 95.0, 99.0)
MIN_SAMPLES = 8
"""Fewer samples than this on either side: the operation is compared by the noise band."""


class Direction(StrEnum):
    """Which way a metric is better."""

    HIGHER_IS_BETTER = "higher is better"
    LOWER_IS_BETTER = "lower is better"
    NEUTRAL = "neutral"
    """Neither (a setting echoed as a metric, a task count): a change is only reported."""


class ChangeVerdict(StrEnum):
    """The outcome for one metric (faster/slower for times and rates, better/worse else)."""

    FASTER = "faster"
    SLOWER = "slower"
    BETTER = "better"
    WORSE = "worse"
    CHANGED = "changed"
    NO_CHANGE = "no significant change"

    @property
    def improved(self) -> bool:
        """True for faster and better."""
        return self in (ChangeVerdict.FASTER, ChangeVerdict.BETTER)

    @property
    def regressed(self) -> bool:
        """True for slower and worse."""
        return self in (ChangeVerdict.SLOWER, ChangeVerdict.WORSE)


class Basis(StrEnum):
    """What a verdict rests on."""

    RANK_TEST = "Mann-Whitney U"
    BOOTSTRAP = "bootstrap CI"
    NOISE_BAND = "noise band"
    FROM_ZERO = "from zero"
    """The baseline is 0: no ratio, so no band; any change is reported."""


class Scope(StrEnum):
    """Where in the results a compared metric comes from."""

    METRIC = "metric"
    LATENCY = "latency"
    STEP = "step"
    COUNTER = "counter"


@dataclass(frozen=True, slots=True)
class ComparisonOptions:
    """How strict the comparison is."""

    noise: float = 0.10
    """Relative change treated as run-to-run noise (0.10 = ±10 %)."""
    alpha: float = 0.01
    """Significance level of the rank test; bootstrap intervals are ``1 - alpha``."""
    resamples: int = 1000
    """Bootstrap resamples per operation."""
    max_bootstrap_samples: int = 5000
    """Each side is subsampled (without replacement) to this many before bootstrapping,
    which bounds time and memory; it widens the interval, so it never invents a change."""
    seed: int = 0
    """Seed of the bootstrap's random generator: the same inputs give the same verdicts."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.noise < 1.0 or not math.isfinite(self.noise):
            raise CompareOptionError(
                f"noise band {self.noise!r} is out of range; give a fraction in [0, 1), "
                "e.g. --noise 0.10 for ±10 %"
            )
        if not 0.0 < self.alpha < 0.5:
            raise CompareOptionError(
                f"significance level {self.alpha!r} is out of range; use e.g. 0.01 or 0.05"
            )
        if self.resamples < 100 or self.max_bootstrap_samples < MIN_SAMPLES:
            raise CompareOptionError(
                f"resamples={self.resamples}, max_bootstrap_samples="
                f"{self.max_bootstrap_samples}: use at least 100 and {MIN_SAMPLES}"
            )

    @property
    def confidence(self) -> float:
        """Confidence level of the bootstrap intervals."""
        return 1.0 - self.alpha


@dataclass(frozen=True, slots=True)
class SampleTest:
    """One operation's latency samples, baseline vs candidate, tested."""

    operation: str
    baseline_count: int
    candidate_count: int
    u_statistic: float
    """Mann-Whitney U of the candidate's samples."""
    p_value: float
    """Two-sided: how likely samples this different are if both runs had one distribution."""
    superiority: float
    """Effect size: P(a candidate sample > a baseline sample), ties counted half. 0.5 = no
    shift; 1.0 = every candidate sample is slower than every baseline sample."""
    median_ratio: float
    median_ratio_ci: tuple[float, float]


@dataclass(frozen=True, slots=True)
class MetricComparison:
    """One metric, baseline vs candidate."""

    name: str
    scope: Scope
    unit: str
    baseline: float
    candidate: float
    ratio: float | None
    """``candidate / baseline``; None when the baseline is not positive."""
    direction: Direction
    verdict: ChangeVerdict
    basis: Basis
    p_value: float | None = None
    ci: tuple[float, float] | None = None
    """Bootstrap interval of the ratio (confidence ``1 - alpha``), when samples gave one."""

    @property
    def relative_change(self) -> float | None:
        """``ratio - 1`` (e.g. +0.25 = 25 % more), None without a ratio."""
        return None if self.ratio is None else self.ratio - 1.0


@dataclass(frozen=True, slots=True)
class Difference:
    """One setting that differs between the runs."""

    field: str
    baseline: str
    candidate: str


@dataclass(frozen=True, slots=True)
class RunRef:
    """Which run a side of the comparison is."""

    run_id: str
    path: str
    workload: str
    size: str
    profiler: str
    status: str
    started_at: str


@dataclass(frozen=True, slots=True)
class Comparison:
    """Baseline vs candidate: every shared metric with its verdict, and what differs."""

    baseline: RunRef
    candidate: RunRef
    options: ComparisonOptions
    metrics: tuple[MetricComparison, ...]
    tests: tuple[SampleTest, ...] = ()
    warnings: tuple[Difference, ...] = ()
    """Differences that may invalidate the comparison (parameters, machine, versions...)."""
    changes: tuple[Difference, ...] = ()
    """What the candidate changed on purpose, usually: queue strategy, code revision."""
    only_in_baseline: tuple[str, ...] = ()
    only_in_candidate: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    """How to read some rows given what changed (e.g. per-call latencies of batched calls)."""

    @property
    def regressions(self) -> tuple[MetricComparison, ...]:
        """Metrics that got slower or worse."""
        return tuple(m for m in self.metrics if m.verdict.regressed)

    @property
    def improvements(self) -> tuple[MetricComparison, ...]:
        """Metrics that got faster or better."""
        return tuple(m for m in self.metrics if m.verdict.improved)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form, with ``schema_version``."""
        body = _plain(self)
        assert isinstance(body, dict)
        body["summary"] = {
            "regressions": [m.name for m in self.regressions],
            "improvements": [m.name for m in self.improvements],
        }
        return {"schema_version": SCHEMA_VERSION, **body}

    def to_json(self) -> bytes:
        """Indented JSON with sorted keys."""
        return orjson.dumps(self.to_dict(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)


def compare_folders(
    baseline: Path, candidate: Path, options: ComparisonOptions | None = None
) -> Comparison:
    """Load two run folders and :func:`compare_runs` them."""
    return compare_runs(open_run(baseline), open_run(candidate), options)


def compare_runs(
    baseline: LoadedRun, candidate: LoadedRun, options: ComparisonOptions | None = None
) -> Comparison:
    """Compare ``candidate`` against ``baseline`` (see the module docstring for the rules)."""
    options = options or ComparisonOptions()
    base, cand = baseline.result, candidate.result
    if base.workload != cand.workload:
        raise NotComparableError(
            f"{baseline.folder} is a {base.workload!r} run and {candidate.folder} a "
            f"{cand.workload!r} run: different workloads measure different things; "
            "compare two runs of the same workload"
        )
    rng = np.random.default_rng(options.seed)
    rows: list[MetricComparison] = []
    tests: list[SampleTest] = []
    for operation in sorted(baseline.op_samples.keys() & candidate.op_samples.keys()):
        b_samples = baseline.op_samples[operation]
        c_samples = candidate.op_samples[operation]
        if min(b_samples.size, c_samples.size) < MIN_SAMPLES:
            continue
        test, latency_rows = _compare_samples(operation, b_samples, c_samples, options, rng)
        tests.append(test)
        rows.extend(latency_rows)
    sampled = {t.operation for t in tests}
    rows.extend(_per_task_rows(baseline, candidate, sampled, options))
    rows.extend(_summary_rows(base.latencies, cand.latencies, sampled, options))
    headline = list(
        _scalar_rows(base.metrics, cand.metrics, Scope.METRIC, "", base.workload, options)
    )
    rows.extend(headline)
    rows.extend(
        _step_rows(baseline, candidate, {(r.baseline, r.candidate) for r in headline}, options)
    )
    rows.extend(
        row
        for row in _scalar_rows(
            base.counters, cand.counters, Scope.COUNTER, "", base.workload, options
        )
        if row.direction is not Direction.NEUTRAL
    )
    return Comparison(
        baseline=_ref(baseline),
        candidate=_ref(candidate),
        options=options,
        metrics=tuple(rows),
        tests=tuple(tests),
        warnings=tuple(_warnings(baseline, candidate)),
        changes=tuple(_changes(baseline, candidate)),
        only_in_baseline=tuple(sorted(base.metrics.keys() - cand.metrics.keys())),
        only_in_candidate=tuple(sorted(cand.metrics.keys() - base.metrics.keys())),
        notes=tuple(_notes(baseline, candidate)),
    )


# --- metrics: which way is better -------------------------------------------------------

_NEUTRAL_NAMES = frozenset(
    {"tasks", "tasks_enqueued", "completed", "done", "workers_killed", "kills_with_tasks_in_flight"}
)
_NEUTRAL_PREFIXES = ("offered_", "worker_", "pool_")
"""Per-worker counters (``worker_busy_us.w0``) describe the split, not a quality: a worker
busier than before is neither better nor worse on its own."""
_LOWER_IS_BETTER_WORDS = (
    "busy",
    "lock_wait",
    "calls_per_task",
    "conflict",
    "lost",
    "dead",
    "duplicated",
    "failed",
    "stale",
    "growth",
    "peak",
    "retries",
    "rerun",
)


def metric_direction(name: str, workload: str = "") -> Direction:
    """Which way ``name`` is better: the targets' comparator if it has one, else its name.

    Rates (``*_per_s``) and efficiency are higher-is-better; durations (``*_ms``, ``*_s``),
    error counts, conflicts and memory growth or peaks are lower-is-better; offered load and
    task counts are neutral.
    """
    spec = TARGET_SPECS.get(workload, {}).get(name)
    if spec is not None:
        return (
            Direction.HIGHER_IS_BETTER
            if spec.comparator.startswith(">")
            else Direction.LOWER_IS_BETTER
        )
    if name in _NEUTRAL_NAMES or name.startswith(_NEUTRAL_PREFIXES):
        return Direction.NEUTRAL
    if "per_s" in name or "efficiency" in name:
        return Direction.HIGHER_IS_BETTER
    if _is_duration(name) or any(word in name for word in _LOWER_IS_BETTER_WORDS):
        return Direction.LOWER_IS_BETTER
    return Direction.NEUTRAL


def metric_unit(name: str) -> str:
    """The unit ``name`` is in, as its suffix says (empty when it does not say)."""
    if "per_s" in name:
        return "/s"
    if name.endswith("_ms") or "_ms_" in name:
        return "ms"
    if name.endswith("_s") or "_s_" in name:
        return "s"
    if name.endswith("_pct"):
        return "%"
    if "_mib" in name:
        return "MiB"
    if "_kib" in name:
        return "KiB"
    return ""


def _is_duration(name: str) -> bool:
    return metric_unit(name) in ("ms", "s")


def _verdict(improved: bool | None, speed: bool) -> ChangeVerdict:
    if improved is None:
        return ChangeVerdict.CHANGED
    if improved:
        return ChangeVerdict.FASTER if speed else ChangeVerdict.BETTER
    return ChangeVerdict.SLOWER if speed else ChangeVerdict.WORSE


def _improved(direction: Direction, candidate_higher: bool) -> bool | None:
    if direction is Direction.NEUTRAL:
        return None
    return candidate_higher == (direction is Direction.HIGHER_IS_BETTER)


def _ratio(baseline: float, candidate: float) -> float | None:
    return candidate / baseline if baseline > 0 and candidate >= 0 else None


def band_comparison(
    name: str,
    scope: Scope,
    baseline: float,
    candidate: float,
    direction: Direction,
    noise: float,
    unit: str | None = None,
) -> MetricComparison:
    """One scalar metric judged by the noise band (see the module docstring).

    ``unit`` defaults to what the name's suffix says (:func:`metric_unit`).
    """
    ratio = _ratio(baseline, candidate)
    unit = metric_unit(name) if unit is None else unit
    speed = unit in ("ms", "s", "/s")
    if candidate == baseline:
        verdict, basis = ChangeVerdict.NO_CHANGE, Basis.NOISE_BAND
    elif baseline == 0:
        verdict = _verdict(_improved(direction, candidate > 0), speed)
        basis = Basis.FROM_ZERO
    else:
        change = (candidate - baseline) / abs(baseline)
        basis = Basis.NOISE_BAND
        verdict = (
            ChangeVerdict.NO_CHANGE
            if abs(change) <= noise
            else _verdict(_improved(direction, candidate > baseline), speed)
        )
    return MetricComparison(
        name, scope, unit, baseline, candidate, ratio, direction, verdict, basis
    )


def _scalar_rows(
    baseline: Mapping[str, float],
    candidate: Mapping[str, float],
    scope: Scope,
    prefix: str,
    workload: str,
    options: ComparisonOptions,
) -> Iterator[MetricComparison]:
    for name in sorted(baseline.keys() & candidate.keys()):
        b, c = float(baseline[name]), float(candidate[name])
        if not (math.isfinite(b) and math.isfinite(c)):
            continue
        yield band_comparison(
            f"{prefix}{name}", scope, b, c, metric_direction(name, workload), options.noise
        )


def _step_rows(
    baseline: LoadedRun,
    candidate: LoadedRun,
    headline_pairs: set[tuple[float, float]],
    options: ComparisonOptions,
) -> Iterator[MetricComparison]:
    # Workloads often repeat a step's metric as a headline (process_tasks_per_s_5_workers is
    # step "5 workers"' process_tasks_per_s); a pair of values already shown is not repeated.
    candidate_steps = {step.label: step for step in candidate.result.steps}
    for step in baseline.result.steps:
        other = candidate_steps.get(step.label)
        if other is None:
            continue
        for row in _scalar_rows(
            step.metrics,
            other.metrics,
            Scope.STEP,
            f"{step.label}: ",
            baseline.result.workload,
            options,
        ):
            if (row.baseline, row.candidate) not in headline_pairs:
                yield row
        # Each step's own counters (SQLITE_BUSY retries, conflicts, lock waits per step):
        # a run-level total hides the step where contention appeared.
        yield from (
            row
            for row in _scalar_rows(
                step.counters,
                other.counters,
                Scope.COUNTER,
                f"{step.label}: ",
                baseline.result.workload,
                options,
            )
            if row.direction is not Direction.NEUTRAL
        )


def _summary_rows(
    baseline: Mapping[str, Any],
    candidate: Mapping[str, Any],
    sampled: set[str],
    options: ComparisonOptions,
) -> Iterator[MetricComparison]:
    """Latency summaries (results.json) of operations that have no raw samples."""
    for operation in sorted((baseline.keys() & candidate.keys()) - sampled):
        for attribute in ("p50_ms", "p95_ms", "p99_ms"):
            b = getattr(baseline[operation], attribute)
            c = getattr(candidate[operation], attribute)
            if b is None or c is None:
                continue
            yield band_comparison(
                f"{operation} {attribute.removesuffix('_ms')}",
                Scope.LATENCY,
                float(b),
                float(c),
                Direction.LOWER_IS_BETTER,
                options.noise,
                unit="ms",
            )


PER_TASK_COUNTER = "completed"
_BATCH_SETTINGS = ("claim_batch", "ack_batch", "enqueue_batch")


def tasks_completed(run: LoadedRun) -> int:
    """Tasks the run completed: its ``completed`` counter, else the sum of its steps' (the
    throughput and concurrency workloads count per step), else 0 (unknown)."""
    total = run.result.counters.get(PER_TASK_COUNTER)
    if total:
        return int(total)
    return sum(int(step.counters.get(PER_TASK_COUNTER, 0)) for step in run.result.steps)


def _per_task_rows(
    baseline: LoadedRun, candidate: LoadedRun, operations: set[str], options: ComparisonOptions
) -> Iterator[MetricComparison]:
    """Each operation's calls and, with the tasks completed known, its total time and
    calls per completed task (band-based).

    A per-call latency hides batching: claiming 50 tasks in one call is slower per call and
    far cheaper per task, and a claim that went from 73 calls to 4,058 looked "faster" per
    call. Time and calls per task completed are comparable across batch sizes; the call
    counts are there so a change in how often an operation runs is never silent.
    """
    b_tasks, c_tasks = tasks_completed(baseline), tasks_completed(candidate)
    per_task = b_tasks > 0 and c_tasks > 0
    for operation in sorted(baseline.op_samples.keys() & candidate.op_samples.keys()):
        b_calls = int(baseline.op_samples[operation].size)
        c_calls = int(candidate.op_samples[operation].size)
        if not per_task:
            yield band_comparison(
                f"{operation} calls",
                Scope.COUNTER,
                float(b_calls),
                float(c_calls),
                Direction.LOWER_IS_BETTER,
                options.noise,
                unit="calls",
            )
            continue
        yield band_comparison(
            f"{operation} calls per task",
            Scope.COUNTER,
            b_calls / b_tasks,
            c_calls / c_tasks,
            Direction.LOWER_IS_BETTER,
            options.noise,
            unit="calls/task",
        )
        if operation not in operations:
            continue
        yield band_comparison(
            f"{operation} time per task",
            Scope.LATENCY,
            float(baseline.op_samples[operation].sum()) / b_tasks / 1e6,
            float(candidate.op_samples[operation].sum()) / c_tasks / 1e6,
            Direction.LOWER_IS_BETTER,
            options.noise,
            unit="ms",
        )


def _calls_changed(baseline: LoadedRun, candidate: LoadedRun, factor: float) -> list[str]:
    """Operations whose calls per completed task (or calls, with tasks unknown) changed by
    more than ``factor`` either way, as "claim 73 -> 4,058 calls"."""
    b_tasks, c_tasks = tasks_completed(baseline), tasks_completed(candidate)
    changed = []
    for operation in sorted(baseline.op_samples.keys() & candidate.op_samples.keys()):
        b_calls = baseline.op_samples[operation].size
        c_calls = candidate.op_samples[operation].size
        b_rate = b_calls / b_tasks if b_tasks > 0 and c_tasks > 0 else float(b_calls)
        c_rate = c_calls / c_tasks if b_tasks > 0 and c_tasks > 0 else float(c_calls)
        if b_rate > 0 and c_rate > 0 and max(b_rate / c_rate, c_rate / b_rate) > factor:
            changed.append(f"{operation} {b_calls:,} -> {c_calls:,} calls")
    return changed


CALLS_CHANGED_FACTOR = 1.5
"""Calls per task changing by more than this makes per-call latencies incomparable."""


def _notes(baseline: LoadedRun, candidate: LoadedRun) -> Iterator[str]:
    calls = _calls_changed(baseline, candidate, CALLS_CHANGED_FACTOR)
    if calls:
        yield (
            f"operations ran a different number of times per task ({', '.join(calls)}): "
            "their per-call latencies describe different calls; judge the 'calls per task' "
            "and 'time per task' rows, not the per-call percentiles"
        )
    b_queue, c_queue = baseline.manifest.queue, candidate.manifest.queue
    changed = [
        f"{key} {b_queue.get(key)} -> {c_queue.get(key)}"
        for key in _BATCH_SETTINGS
        if b_queue.get(key) != c_queue.get(key)
    ]
    if changed:
        yield (
            f"batch sizes changed ({', '.join(changed)}): operation latencies are per call, and "
            "a call now carries a different number of tasks; judge the 'time per task' rows "
            "and the rates, not the per-call percentiles"
        )


# --- latency samples: rank test and bootstrap --------------------------------------------


def compare_samples(
    operation: str,
    baseline_ns: np.ndarray[Any, Any],
    candidate_ns: np.ndarray[Any, Any],
    options: ComparisonOptions | None = None,
) -> tuple[SampleTest, tuple[MetricComparison, ...]]:
    """Test one operation's samples (nanoseconds): the test and its p50/p95/p99 rows."""
    options = options or ComparisonOptions()
    size = min(np.size(baseline_ns), np.size(candidate_ns))
    if size < MIN_SAMPLES:
        raise CompareOptionError(
            f"{operation}: {size} samples on one side; a rank test needs at least {MIN_SAMPLES}"
        )
    return _compare_samples(
        operation, baseline_ns, candidate_ns, options, np.random.default_rng(options.seed)
    )


def _compare_samples(
    operation: str,
    baseline_ns: np.ndarray[Any, Any],
    candidate_ns: np.ndarray[Any, Any],
    options: ComparisonOptions,
    rng: np.random.Generator,
) -> tuple[SampleTest, tuple[MetricComparison, ...]]:
    base = np.asarray(baseline_ns, dtype=np.float64)
    cand = np.asarray(candidate_ns, dtype=np.float64)
    rank = stats.mannwhitneyu(cand, base, alternative="two-sided")
    u_statistic, p_value = float(rank.statistic), float(rank.pvalue)
    superiority = u_statistic / (base.size * cand.size)
    base_q = np.percentile(base, LATENCY_PERCENTILES)
    cand_q = np.percentile(cand, LATENCY_PERCENTILES)
    intervals = _bootstrap_ratio_intervals(base, cand, options, rng)
    rows = []
    for index, percentile in enumerate(LATENCY_PERCENTILES):
        b_ms, c_ms = float(base_q[index]) / 1e6, float(cand_q[index]) / 1e6
        ratio = _ratio(b_ms, c_ms)
        low, high = intervals[index]
        if index == 0:  # the median: the rank test judges a shift of the whole distribution
            significant, basis, p = p_value < options.alpha, Basis.RANK_TEST, p_value
        else:
            significant, basis, p = not low <= 1.0 <= high, Basis.BOOTSTRAP, None
        beyond_noise = ratio is not None and abs(ratio - 1.0) > options.noise
        verdict = (
            _verdict(c_ms < b_ms, speed=True)
            if significant and beyond_noise
            else ChangeVerdict.NO_CHANGE
        )
        rows.append(
            MetricComparison(
                name=f"{operation} p{percentile:g}",
                scope=Scope.LATENCY,
                unit="ms",
                baseline=b_ms,
                candidate=c_ms,
                ratio=ratio,
                direction=Direction.LOWER_IS_BETTER,
                verdict=verdict,
                basis=basis,
                p_value=p,
                ci=(low, high),
            )
        )
    test = SampleTest(
        operation=operation,
        baseline_count=int(base.size),
        candidate_count=int(cand.size),
        u_statistic=u_statistic,
        p_value=p_value,
        superiority=superiority,
        median_ratio=rows[0].ratio if rows[0].ratio is not None else math.nan,
        median_ratio_ci=intervals[0],
    )
    return test, tuple(rows)


def _bootstrap_ratio_intervals(
    base: np.ndarray[Any, np.dtype[np.float64]],
    cand: np.ndarray[Any, np.dtype[np.float64]],
    options: ComparisonOptions,
    rng: np.random.Generator,
) -> list[tuple[float, float]]:
    """Per percentile, the ``1 - alpha`` percentile-bootstrap interval of cand_q / base_q."""
    base_q = _bootstrap_percentiles(base, options, rng)
    cand_q = _bootstrap_percentiles(cand, options, rng)
    ratios = np.divide(cand_q, base_q, out=np.full_like(cand_q, np.inf), where=base_q > 0)
    tails = (100 * options.alpha / 2, 100 * (1 - options.alpha / 2))
    bounds = np.percentile(ratios, tails, axis=1)  # shape (2, percentiles)
    return [(float(low), float(high)) for low, high in bounds.T]


def _bootstrap_percentiles(
    values: np.ndarray[Any, np.dtype[np.float64]],
    options: ComparisonOptions,
    rng: np.random.Generator,
) -> np.ndarray[Any, np.dtype[np.float64]]:
    if values.size > options.max_bootstrap_samples:
        values = rng.choice(values, size=options.max_bootstrap_samples, replace=False)
    draws = values[rng.integers(0, values.size, size=(options.resamples, values.size))]
    return np.asarray(np.percentile(draws, LATENCY_PERCENTILES, axis=1), dtype=np.float64)


# --- comparability ----------------------------------------------------------------------

_ENVIRONMENT_IGNORED = ("python.executable", "git.")
"""Where the interpreter lives says nothing about speed; the revision is a change, not a
warning."""


def _warnings(baseline: LoadedRun, candidate: LoadedRun) -> Iterator[Difference]:
    b, c = baseline.manifest, candidate.manifest
    yield from differences({"size": b.size}, {"size": c.size})
    yield from differences(flatten(b.params, "params."), flatten(c.params, "params."))
    yield from differences(
        {"profiler": baseline.profiler, **flatten(b.profiler.get("options", {}), "profiler.")},
        {"profiler": candidate.profiler, **flatten(c.profiler.get("options", {}), "profiler.")},
    )
    environment = differences(
        flatten(b.environment, "environment."), flatten(c.environment, "environment.")
    )
    yield from (
        d
        for d in environment
        if not any(d.field.startswith(f"environment.{i}") for i in _ENVIRONMENT_IGNORED)
    )
    for side, manifest in (("baseline", b), ("candidate", c)):
        if manifest.status is not RunStatus.COMPLETE:
            yield Difference(
                f"status ({side})",
                manifest.status.value if side == "baseline" else "",
                manifest.status.value if side == "candidate" else "",
            )


def _changes(baseline: LoadedRun, candidate: LoadedRun) -> Iterator[Difference]:
    b, c = baseline.manifest, candidate.manifest
    yield from differences(flatten(b.queue, "queue."), flatten(c.queue, "queue."))
    yield from differences(
        flatten(b.environment.get("git", {}), "git."), flatten(c.environment.get("git", {}), "git.")
    )


def differences(baseline: Mapping[str, str], candidate: Mapping[str, str]) -> list[Difference]:
    missing = "(not set)"
    return [
        Difference(key, baseline.get(key, missing), candidate.get(key, missing))
        for key in sorted(baseline.keys() | candidate.keys())
        if baseline.get(key) != candidate.get(key)
    ]


def flatten(value: Any, prefix: str) -> dict[str, str]:
    """Nested mappings as ``{"a.b": "value"}`` with values as text."""
    if isinstance(value, Mapping):
        flat: dict[str, str] = {}
        for key, inner in value.items():
            flat.update(flatten(inner, f"{prefix}{key}."))
        return flat
    return {prefix.removesuffix("."): _text(value)}


def _text(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ",".join(_text(v) for v in value)
    return str(value)


def _ref(run: LoadedRun) -> RunRef:
    m = run.manifest
    return RunRef(
        m.run_id, str(run.folder), m.workload, m.size, run.profiler, m.status.value, m.started_at
    )


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, Iterable) and not isinstance(value, str | bytes):
        return [_plain(v) for v in value]
    return value
