"""The one result model every workload returns, and its JSON form (``results.json``).

Values are frozen dataclasses. The JSON carries ``schema_version`` at the top level and is
written with sorted keys; :func:`result_from_json` refuses a version it does not know.
Latency summaries are computed from all samples (never from averages).
"""

from __future__ import annotations

import dataclasses
from array import array
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from .errors import ResultFormatError

SCHEMA_VERSION = 1
"""Version of ``results.json``, ``manifest.json`` and the bench file. Bump on any change."""

PERCENTILES = (50.0, 95.0, 99.0, 99.9)


@dataclass(frozen=True, slots=True)
class LatencySummary:
    """Distribution of one operation's latency, in milliseconds, from every sample."""

    count: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    p999_ms: float | None
    max_ms: float | None
    mean_ms: float | None

    @classmethod
    def from_samples(cls, ns_samples: Iterable[int] | np.ndarray[Any, Any]) -> LatencySummary:
        """Summarise durations in nanoseconds (e.g. ``queue.stats.timings_ns["claim"]``)."""
        if isinstance(ns_samples, array):  # the queue's own storage: read it without copying
            values = np.frombuffer(ns_samples, dtype=np.int64).astype(np.float64)
        elif isinstance(ns_samples, np.ndarray):
            values = ns_samples.astype(np.float64)
        else:
            values = np.asarray(list(ns_samples), dtype=np.float64)
        if values.size == 0:
            return cls(0, None, None, None, None, None, None)
        p50, p95, p99, p999 = (float(v) / 1e6 for v in np.percentile(values, PERCENTILES))
        return cls(
            count=int(values.size),
            p50_ms=p50,
            p95_ms=p95,
            p99_ms=p99,
            p999_ms=p999,
            max_ms=float(values.max()) / 1e6,
            mean_ms=float(values.mean()) / 1e6,
        )

    @classmethod
    def from_seconds(cls, seconds: Sequence[float]) -> LatencySummary:
        """Summarise durations given in seconds (e.g. timestamps subtracted)."""
        return cls.from_samples(np.asarray(seconds, dtype=np.float64) * 1e9)


@dataclass(frozen=True, slots=True)
class Verdict:
    """One target checked: ``measured <comparator> target`` passed or not."""

    metric: str
    measured: float
    target: float
    comparator: str
    unit: str
    passed: bool
    description: str = ""


@dataclass(frozen=True, slots=True)
class WorkerShare:
    """What one worker of a step did: "10 workers" must mean ten workers each did work."""

    name: str
    completed: int
    """Tasks this worker completed."""
    busy_s: float
    """Seconds it was working (not idle, not waiting for its turn on a shared event loop):
    see ``taskqueue.EngineStats.busy_s``."""


@dataclass(frozen=True, slots=True)
class StepResult:
    """One sub-run of a workload (e.g. one worker count in one worker mode)."""

    label: str
    settings: Mapping[str, Any]
    metrics: Mapping[str, float]
    latencies: Mapping[str, LatencySummary] = field(default_factory=dict)
    counters: Mapping[str, int] = field(default_factory=dict)
    workers: tuple[WorkerShare, ...] = ()
    """Per worker of the step, in worker order (empty in results written before it was
    recorded); the step's metrics hold the fairness figures derived from it."""


@dataclass(frozen=True, slots=True)
class WorkloadResult:
    """What one workload run measured.

    ``metrics`` are the headline numbers, named as the targets file names them;
    ``latencies`` are per-operation summaries over the whole run; ``counters`` are error and
    event counts (SQLITE_BUSY retries, claim conflicts, lost tasks...); ``series`` are time
    series as rows of numbers with their column names in ``series_columns``.
    """

    workload: str
    size: str
    params: Mapping[str, Any]
    queue: Mapping[str, Any]
    complete: bool
    duration_s: float
    metrics: Mapping[str, float] = field(default_factory=dict)
    latencies: Mapping[str, LatencySummary] = field(default_factory=dict)
    counters: Mapping[str, int] = field(default_factory=dict)
    steps: tuple[StepResult, ...] = ()
    series: Mapping[str, tuple[tuple[float, ...], ...]] = field(default_factory=dict)
    series_columns: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    verdicts: tuple[Verdict, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        """True when no verdict failed."""
        return all(v.passed for v in self.verdicts)

    def with_verdicts(self, verdicts: Sequence[Verdict]) -> WorkloadResult:
        """A copy carrying ``verdicts``."""
        return dataclasses.replace(self, verdicts=tuple(verdicts))

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form, with ``schema_version``."""
        body = _plain(self)
        assert isinstance(body, dict)
        return {"schema_version": SCHEMA_VERSION, **body}

    def to_json(self) -> bytes:
        """Indented JSON with sorted keys."""
        return orjson.dumps(self.to_dict(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "results") -> WorkloadResult:
        """Read :meth:`to_dict` output back; refuses an unknown ``schema_version``."""
        check_schema_version(data, source)
        try:
            return cls(
                workload=data["workload"],
                size=data["size"],
                params=dict(data["params"]),
                queue=dict(data["queue"]),
                complete=bool(data["complete"]),
                duration_s=float(data["duration_s"]),
                metrics=dict(data.get("metrics", {})),
                latencies=_latencies(data.get("latencies", {})),
                counters=dict(data.get("counters", {})),
                steps=tuple(
                    StepResult(
                        label=s["label"],
                        settings=dict(s["settings"]),
                        metrics=dict(s["metrics"]),
                        latencies=_latencies(s.get("latencies", {})),
                        counters=dict(s.get("counters", {})),
                        workers=tuple(WorkerShare(**w) for w in s.get("workers", ())),
                    )
                    for s in data.get("steps", ())
                ),
                series={k: tuple(tuple(r) for r in v) for k, v in data.get("series", {}).items()},
                series_columns={k: tuple(v) for k, v in data.get("series_columns", {}).items()},
                verdicts=tuple(Verdict(**v) for v in data.get("verdicts", ())),
                notes=tuple(data.get("notes", ())),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ResultFormatError(
                f"{source}: not a valid workload result ({type(error).__name__}: {error}); "
                "was it written by queueprof?"
            ) from None

    @classmethod
    def from_json(cls, text: bytes | str, *, source: str = "results.json") -> WorkloadResult:
        """Parse JSON text written by :meth:`to_json`."""
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError as error:
            raise ResultFormatError(f"{source}: not JSON ({error})") from None
        if not isinstance(data, dict):
            raise ResultFormatError(f"{source}: expected a JSON object at the top level")
        return cls.from_dict(data, source=source)


def check_schema_version(data: Mapping[str, Any], source: str) -> None:
    """Raise :class:`ResultFormatError` unless ``data`` has this version's ``schema_version``."""
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ResultFormatError(
            f"{source}: schema_version {version!r} is not supported (this queueprof reads "
            f"version {SCHEMA_VERSION}); re-run the workload or use the queueprof that wrote it"
        )


def _latencies(data: Mapping[str, Any]) -> dict[str, LatencySummary]:
    return {name: LatencySummary(**summary) for name, summary in data.items()}


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
