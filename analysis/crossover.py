"""Where one backend overtakes the other: SQLite against PostgreSQL over worker counts.

A crossover run (``queueprof run crossover``) drains the same tasks on both backends at each
worker count, in each worker mode; its steps carry ``backend``, ``mode`` and ``workers``
settings. :func:`crossover_points` pairs the two backends' figures at each count,
:func:`find_crossover` says for one metric and mode which backend leads at each count and
from which count on one of them leads to the end of the range after the other led, and
:func:`crossover_report` puts every metric and mode together with the finding in one
sentence. Everything is computed from the measured points; nothing is assumed about which
backend should win.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from runs import StepResult


class Better(StrEnum):
    """Which way a metric improves."""

    HIGHER = "higher"
    LOWER = "lower"


@dataclass(frozen=True, slots=True)
class CrossoverMetric:
    """A step metric both backends are compared on."""

    key: str
    """The step metric's name in ``results.json``."""
    label: str
    unit: str
    better: Better


THROUGHPUT = CrossoverMetric("tasks_per_s", "throughput", "tasks/s", Better.HIGHER)
METRICS = (
    THROUGHPUT,
    CrossoverMetric("busy_us_per_task", "cost per task", "µs of worker time", Better.LOWER),
    CrossoverMetric("claim_p99_ms", "claim p99", "ms", Better.LOWER),
    CrossoverMetric("cycle_p99_ms", "full-cycle p99", "ms", Better.LOWER),
)
"""What the crossover compares, the headline (throughput) first."""

LEVEL_BAND = 0.10
"""Within this fraction of each other the two backends are called level: steps run back to
back on a shared 2-core machine still differ by several percent between repeats, so a lead
smaller than this is not one the next run would be sure to show."""


class Lead(StrEnum):
    """Which backend is ahead at one worker count."""

    SQLITE = "sqlite"
    POSTGRESQL = "postgresql"
    LEVEL = "level"

    @property
    def shown(self) -> str:
        """``SQLite``, ``PostgreSQL``, ``level``."""
        return {"sqlite": "SQLite", "postgresql": "PostgreSQL", "level": "level"}[self.value]

    @property
    def other(self) -> Lead:
        """The other backend (``level`` stays ``level``)."""
        if self is Lead.LEVEL:
            return self
        return Lead.POSTGRESQL if self is Lead.SQLITE else Lead.SQLITE


class Shape(StrEnum):
    """How the lead changes over the measured range."""

    OVERTAKES = "overtakes"
    """One backend led, the other leads from some count to the end of the range."""
    LEADS_THROUGHOUT = "leads throughout"
    PULLS_AHEAD = "pulls ahead"
    """Level at the smaller counts, then one leads to the end: nobody was overtaken."""
    LEVEL_AT_TOP = "level at the top"
    """The largest count is level: no backend ends the range ahead."""
    TOO_FEW = "too few points"


@dataclass(frozen=True, slots=True)
class PairedPoint:
    """Both backends' value of one metric at one worker count."""

    workers: int
    sqlite: float
    postgresql: float

    def advantage(self, better: Better) -> float:
        """How many times better PostgreSQL is than SQLite here (> 1: PostgreSQL ahead)."""
        good, bad = (
            (self.postgresql, self.sqlite)
            if better is Better.HIGHER
            else (self.sqlite, self.postgresql)
        )
        if good == bad:
            return 1.0
        if bad <= 0:
            return math.inf
        return good / bad

    def lead(self, better: Better, band: float = LEVEL_BAND) -> Lead:
        """Who is ahead by more than ``band``, else ``level``."""
        advantage = self.advantage(better)
        if advantage >= 1.0 + band:
            return Lead.POSTGRESQL
        if advantage <= 1.0 / (1.0 + band):
            return Lead.SQLITE
        return Lead.LEVEL


@dataclass(frozen=True, slots=True)
class Crossover:
    """One metric in one worker mode over the measured worker counts."""

    mode: str
    metric: CrossoverMetric
    points: tuple[PairedPoint, ...]
    leads: tuple[Lead, ...]
    """Who is ahead at each point, in the points' order."""
    shape: Shape
    leader: Lead | None
    """Who is ahead from :attr:`at_workers` to the end of the range (the overtaker, for
    :attr:`Shape.OVERTAKES`); None when the range ends level or has too few points."""
    at_workers: int | None
    """The first measured count from which :attr:`leader` stays ahead to the end."""
    before_workers: int | None
    """The measured count just before :attr:`at_workers`."""
    estimated_workers: float | None
    """Where the advantage crosses 1, interpolated between the last count at which the other
    backend was ahead and the next (in log of the advantage): the measured counts bracket
    the crossing, this says where in between. None without a crossover."""
    summary: str
    """The lead in words, e.g. ``PostgreSQL overtakes SQLite at 10 process workers ...``."""

    @property
    def crosses(self) -> bool:
        """True when one backend overtakes the other within the measured range."""
        return self.shape is Shape.OVERTAKES


@dataclass(frozen=True)
class CrossoverReport:
    """Every metric in every mode, and the finding in one sentence."""

    crossovers: tuple[Crossover, ...]
    finding: str
    band: float = LEVEL_BAND

    @property
    def modes(self) -> tuple[str, ...]:
        """The worker modes, in the order of the run."""
        return tuple(dict.fromkeys(c.mode for c in self.crossovers))

    def of(self, mode: str, metric: CrossoverMetric) -> Crossover | None:
        """The crossover of ``metric`` in ``mode``, if the run measured it."""
        return next(
            (c for c in self.crossovers if c.mode == mode and c.metric == metric),
            None,
        )


def workers_phrase(count: float, mode: str) -> str:
    """``1 process worker``, ``10 async workers``, ``7.5 async workers``."""
    shown = f"{count:,.0f}" if float(count).is_integer() else f"{count:.1f}"
    mode_word = f"{mode} " if mode else ""
    return f"{shown} {mode_word}worker{'' if count == 1 else 's'}"


def find_crossover(
    points: Sequence[PairedPoint],
    metric: CrossoverMetric,
    mode: str = "",
    band: float = LEVEL_BAND,
) -> Crossover:
    """Who leads ``metric`` at each worker count of ``points``, and where one backend
    overtakes the other (see :class:`Shape`). Points are sorted by worker count."""
    ordered = tuple(sorted(points, key=lambda p: p.workers))
    leads = tuple(p.lead(metric.better, band) for p in ordered)

    def made(
        shape: Shape,
        summary: str,
        leader: Lead | None = None,
        at: int | None = None,
        before: int | None = None,
        estimate: float | None = None,
    ) -> Crossover:
        return Crossover(mode, metric, ordered, leads, shape, leader, at, before, estimate, summary)

    if len(ordered) < 2:
        counts = ", ".join(str(p.workers) for p in ordered) or "none"
        return made(
            Shape.TOO_FEW,
            f"{metric.label} with {mode or 'any'} workers: one worker count measured ({counts}); "
            "a crossover needs two or more",
        )
    first, last = ordered[0].workers, ordered[-1].workers
    span = f"from {first} to {workers_phrase(last, mode)}"
    final = leads[-1]
    if final is Lead.LEVEL:
        led = [lead for lead in leads if lead is not Lead.LEVEL]
        if not led:
            return made(
                Shape.LEVEL_AT_TOP,
                f"SQLite and PostgreSQL are level on {metric.label} (within {band:.0%}) at "
                f"every count {span}: no crossover in the range",
            )
        return made(
            Shape.LEVEL_AT_TOP,
            f"no crossover in {metric.label} {span}: {led[-1].shown} led at "
            f"{_counts(ordered, leads, led[-1])}, and the two are level (within {band:.0%}) "
            f"at {workers_phrase(last, mode)} ({_versus(ordered[-1], metric)})",
        )
    start = len(leads) - 1
    while start > 0 and leads[start - 1] is final:
        start -= 1
    if start == 0:
        ratios = [_times(p, metric, final) for p in ordered]
        return made(
            Shape.LEADS_THROUGHOUT,
            f"{final.shown} leads {metric.label} at every count {span} "
            f"({_range(ratios)} ahead): no crossover in the range",
            leader=final,
        )
    at, before = ordered[start], ordered[start - 1]
    if final.other not in leads[:start]:
        return made(
            Shape.PULLS_AHEAD,
            f"no crossover in {metric.label} {span}: level up to "
            f"{workers_phrase(before.workers, mode)}, then {final.shown} ahead from "
            f"{at.workers} ({_versus(at, metric)})",
            leader=final,
            at=at.workers,
            before=before.workers,
        )
    estimate = _crossing(ordered[: start + 1], metric, final)
    near = (
        f", the lines crossing near {estimate:.1f}"
        if estimate is not None and estimate != at.workers
        else ""
    )
    return made(
        Shape.OVERTAKES,
        f"{final.shown} overtakes {final.other.shown} on {metric.label} at "
        f"{workers_phrase(at.workers, mode)} ({_versus(at, metric)}; before that "
        f"{_history(ordered[:start], leads[:start])}{near})",
        leader=final,
        at=at.workers,
        before=before.workers,
        estimate=estimate,
    )


def _crossing(points: Sequence[PairedPoint], metric: CrossoverMetric, leader: Lead) -> float | None:
    """Where ``leader``'s advantage reaches 1 between the last point it did not hold it and
    the next one, interpolating the log of the advantage linearly in the worker count."""
    sign = 1.0 if leader is Lead.POSTGRESQL else -1.0
    logs = [sign * _log(p.advantage(metric.better)) for p in points]
    for i in range(len(points) - 1, 0, -1):
        low, high = logs[i - 1], logs[i]
        if low < 0.0 <= high and math.isfinite(low) and math.isfinite(high):
            w0, w1 = points[i - 1].workers, points[i].workers
            return w0 + (w1 - w0) * (0.0 - low) / (high - low)
    return None


def _log(value: float) -> float:
    if value <= 0.0:
        return -math.inf
    return math.log(value)


def _times(point: PairedPoint, metric: CrossoverMetric, leader: Lead) -> float:
    """How many times better ``leader`` is at ``point``."""
    advantage = point.advantage(metric.better)
    if leader is Lead.SQLITE:
        return 1.0 / advantage if advantage > 0 else math.inf
    return advantage


def _range(ratios: Sequence[float]) -> str:
    low, high = min(ratios), max(ratios)
    return f"{_x(low)}" if _x(low) == _x(high) else f"{_x(low)} to {_x(high)}"


def _x(ratio: float) -> str:
    if not math.isfinite(ratio):
        return "infinitely"
    return f"{ratio:.2f}x" if ratio < 10 else f"{ratio:.0f}x"


def _versus(point: PairedPoint, metric: CrossoverMetric) -> str:
    """``PostgreSQL 4,100 vs SQLite 3,200 tasks/s``."""
    return f"PostgreSQL {_value(point.postgresql)} vs SQLite {_value(point.sqlite)} {metric.unit}"


def _value(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _history(points: Sequence[PairedPoint], leads: Sequence[Lead]) -> str:
    """Who was ahead where, run by run: ``SQLite ahead at 1 and 2, PostgreSQL at 5``."""
    runs: list[tuple[Lead, list[str]]] = []
    for point, lead in zip(points, leads, strict=True):
        if runs and runs[-1][0] is lead:
            runs[-1][1].append(str(point.workers))
        else:
            runs.append((lead, [str(point.workers)]))
    parts: list[str] = []
    for lead, counts in runs:
        who = "level" if lead is Lead.LEVEL else lead.shown
        ahead = " ahead" if not parts and lead is not Lead.LEVEL else ""
        parts.append(f"{who}{ahead} at {_and(counts)}")
    return ", ".join(parts)


def _and(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _counts(points: Sequence[PairedPoint], leads: Sequence[Lead], lead: Lead) -> str:
    """The worker counts at which ``lead`` was ahead: ``1, 2 and 5``."""
    return _and([str(p.workers) for p, at in zip(points, leads, strict=True) if at is lead])


def crossover_points(
    steps: Iterable[StepResult],
) -> dict[tuple[str, str], list[PairedPoint]]:
    """Per (mode, metric key), both backends' values paired by worker count.

    Steps without a ``backend`` setting are not a crossover's and are left out; a worker
    count measured only on one backend has no pair and is left out; repeated steps of one
    backend at one count give their median.
    """
    values: dict[tuple[str, str, int, str], list[float]] = defaultdict(list)
    for step in steps:
        backend = step.settings.get("backend")
        workers = step.settings.get("workers")
        if backend not in (Lead.SQLITE, Lead.POSTGRESQL) or workers is None:
            continue
        mode = str(step.settings.get("mode", ""))
        for metric in METRICS:
            value = step.metrics.get(metric.key)
            if value is not None and math.isfinite(value):
                values[(mode, metric.key, int(workers), str(backend))].append(float(value))
    paired: dict[tuple[str, str], list[PairedPoint]] = defaultdict(list)
    keys = sorted({(mode, key, workers) for mode, key, workers, _ in values})
    for mode, key, workers in keys:
        sqlite = values.get((mode, key, workers, Lead.SQLITE.value))
        postgresql = values.get((mode, key, workers, Lead.POSTGRESQL.value))
        if sqlite and postgresql:
            paired[(mode, key)].append(
                PairedPoint(workers, statistics.median(sqlite), statistics.median(postgresql))
            )
    return dict(paired)


def crossover_report(
    steps: Iterable[StepResult], band: float = LEVEL_BAND
) -> CrossoverReport | None:
    """Every metric in every mode of a crossover run's steps, or None when the steps do not
    pair SQLite with PostgreSQL at any worker count (not a crossover run)."""
    paired = crossover_points(steps)
    if not paired:
        return None
    modes = tuple(dict.fromkeys(mode for mode, _ in paired))
    crossovers = tuple(
        find_crossover(paired[(mode, metric.key)], metric, mode, band)
        for mode in modes
        for metric in METRICS
        if (mode, metric.key) in paired
    )
    return CrossoverReport(crossovers, finding_sentence(crossovers), band)


def finding_sentence(crossovers: Sequence[Crossover]) -> str:
    """Throughput in every mode (crossings first), then every other metric that crosses,
    in one sentence."""
    headline = [c for c in crossovers if c.metric == THROUGHPUT]
    if not headline:
        headline = list(crossovers[:1])
    if not headline:
        return "No step paired SQLite with PostgreSQL: nothing to compare."
    ordered = sorted(headline, key=lambda c: not c.crosses)
    others = [c for c in crossovers if c.crosses and c not in headline]
    return "On this machine " + "; ".join(c.summary for c in (*ordered, *others)) + "."
