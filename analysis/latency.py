"""Per-operation latency distributions from every sample (never from averages)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

CDF_PROBABILITIES = (*(p / 100 for p in range(0, 100)), 0.995, 0.999, 1.0)
"""Where each distribution's CDF is sampled: every percent, then the far tail."""


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
    """Latency at each of :data:`CDF_PROBABILITIES` (for plots)."""


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
