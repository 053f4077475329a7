"""Per-operation latency distributions from every sample (never from averages)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

CDF_PROBABILITIES = (*(p / 100 for p in range(0, 100)), 0.995, 0.999, 1.0)
"""Where each distribution's CDF is sampled: every percent, then the far tail."""
BINS_PER_DECADE = 50
"""Resolution of :class:`LatencyHistogram`: neighbouring bin edges 4.7 % apart."""
SMALLEST_MS = 1e-6
"""One nanosecond, the clocks' resolution: a zero duration is counted in this bin."""


@dataclass(frozen=True, slots=True)
class LatencyHistogram:
    """Every sample of one operation counted in log-spaced bins: the true count and the
    shape of the distribution, compact enough to keep in ``findings.json``.

    Bin ``k`` holds the samples in ``[10**(k / bins_per_decade), 10**((k + 1) / bins_per_decade))``
    milliseconds; only bins holding samples are listed, in increasing order.
    """

    bins_per_decade: int
    bins: tuple[int, ...]
    counts: tuple[int, ...]

    @property
    def count(self) -> int:
        """How many samples were counted."""
        return sum(self.counts)

    def lower_edges_ms(self) -> np.ndarray[Any, Any]:
        """The lower edge of each listed bin, in milliseconds."""
        return np.power(10.0, np.asarray(self.bins, dtype=np.float64) / self.bins_per_decade)

    def upper_edges_ms(self) -> np.ndarray[Any, Any]:
        """The upper edge of each listed bin, in milliseconds."""
        return np.power(10.0, (np.asarray(self.bins, dtype=np.float64) + 1) / self.bins_per_decade)


def log_histogram(
    values_ms: np.ndarray[Any, Any], bins_per_decade: int = BINS_PER_DECADE
) -> LatencyHistogram:
    """Count ``values_ms`` (durations in milliseconds) into :class:`LatencyHistogram` bins."""
    values = np.maximum(np.asarray(values_ms, dtype=np.float64), SMALLEST_MS)
    index = np.floor(np.log10(values) * bins_per_decade).astype(np.int64)
    bins, counts = np.unique(index, return_counts=True)
    return LatencyHistogram(
        bins_per_decade, tuple(int(b) for b in bins), tuple(int(c) for c in counts)
    )


@dataclass(frozen=True, slots=True)
class LatencyDistribution:
    """One operation's latency, in milliseconds, from ``count`` samples."""

    op: str
    source: str
    """The artifact the samples came from."""
    count: int
    total_ms: float
    mean_ms: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    cdf_ms: tuple[float, ...]
    """Latency at each of :data:`CDF_PROBABILITIES`."""
    histogram: LatencyHistogram
    """Every sample, binned: what the CDF plots are drawn from (with the true count)."""


def distribution(op: str, source: str, values_ms: np.ndarray[Any, Any]) -> LatencyDistribution:
    """Summarise ``values_ms`` (one operation's latencies in milliseconds; not empty)."""
    values = np.asarray(values_ms, dtype=np.float64)
    if values.size == 0:
        raise ValueError(f"{op}: no samples")
    quantiles = np.quantile(values, CDF_PROBABILITIES)
    p50, p95, p99, p999 = np.quantile(values, (0.5, 0.95, 0.99, 0.999))
    return LatencyDistribution(
        op=op,
        source=source,
        count=int(values.size),
        total_ms=float(values.sum()),
        mean_ms=float(values.mean()),
        p50_ms=float(p50),
        p95_ms=float(p95),
        p99_ms=float(p99),
        p999_ms=float(p999),
        max_ms=float(values.max()),
        cdf_ms=tuple(float(q) for q in quantiles),
        histogram=log_histogram(values),
    )


def from_nanoseconds(
    samples: Mapping[str, np.ndarray[Any, Any]], source: str
) -> tuple[LatencyDistribution, ...]:
    """A distribution per operation of ``samples`` (nanoseconds), largest total first."""
    found = [
        distribution(op, source, np.asarray(values, dtype=np.float64) / 1e6)
        for op, values in samples.items()
        if len(values)
    ]
    return tuple(sorted(found, key=lambda d: -d.total_ms))


def from_microseconds(
    samples: Mapping[str, np.ndarray[Any, Any]], source: str
) -> tuple[LatencyDistribution, ...]:
    """Like :func:`from_nanoseconds`, for durations in microseconds (trace spans)."""
    return from_nanoseconds(
        {op: np.asarray(v, dtype=np.float64) * 1e3 for op, v in samples.items()}, source
    )
