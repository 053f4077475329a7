"""What the runner hands a workload: scratch space, progress, queue config, partial sink."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runs import Artifact, LatencySummary, StepResult, WorkloadResult
from runs.adapters import AdapterSpec
from taskqueue import QueueConfig

from .progress import NullProgress, Progress


def idle_workers_note(step: StepResult) -> str | None:
    """``"<step>: 3 of 10 workers did no task (w7, w8, w9)"``, or None when every worker of
    ``step`` completed at least one task (or it records no workers)."""
    idle = [w.name for w in step.workers if w.completed == 0]
    if not idle:
        return None
    working = len(step.workers) - len(idle)
    return (
        f"{step.label}: {len(idle)} of {len(step.workers)} workers did no task "
        f"({', '.join(idle)}); the step's figures are those of {working} working "
        f"worker{'s' if working != 1 else ''}"
    )


class PartialResults:
    """Where a workload records what it measured, as it measures it.

    The workload builds its final result from here (:meth:`result`), and the runner builds
    the result of an interrupted or crashed run from the same records, so partial results
    are whatever had been recorded when the run stopped.
    """

    def __init__(self, workload: str, size: str, params: Mapping[str, Any]) -> None:
        self.workload = workload
        self.size = size
        self.params = dict(params)
        self.queue: dict[str, Any] = {}
        self.metrics: dict[str, float] = {}
        self.latencies: dict[str, LatencySummary] = {}
        self.counters: dict[str, int] = {}
        self.steps: list[StepResult] = []
        self.series: dict[str, list[tuple[float, ...]]] = {}
        self.series_columns: dict[str, tuple[str, ...]] = {}
        self.notes: list[str] = []
        self._started = time.perf_counter()

    def step(self, step: StepResult) -> None:
        """Record a finished sub-run; a worker of it that did no task is noted in plain words."""
        self.steps.append(step)
        idle = idle_workers_note(step)
        if idle is not None:
            self.note(idle)

    def metric(self, name: str, value: float) -> None:
        """Record a headline number (named as in the targets file, where it has a target)."""
        self.metrics[name] = float(value)

    def latency(self, name: str, summary: LatencySummary) -> None:
        """Record a per-operation latency summary for the whole run."""
        self.latencies[name] = summary

    def count(self, name: str, value: int) -> None:
        """Record an error or event count (replaces an earlier value of the same name)."""
        self.counters[name] = int(value)

    def declare_series(self, name: str, columns: Sequence[str]) -> None:
        """Start a time series with the given column names."""
        self.series[name] = []
        self.series_columns[name] = tuple(columns)

    def sample(self, name: str, row: Sequence[float]) -> None:
        """Append one row to a declared series."""
        columns = self.series_columns[name]
        if len(row) != len(columns):
            raise ValueError(f"series {name!r} row {row!r} does not match columns {columns!r}")
        self.series[name].append(tuple(float(v) for v in row))

    def note(self, text: str) -> None:
        """Record something a reader of the results should know."""
        self.notes.append(text)

    def result(self, *, complete: bool) -> WorkloadResult:
        """Everything recorded so far as a :class:`WorkloadResult`."""
        return WorkloadResult(
            workload=self.workload,
            size=self.size,
            params=dict(self.params),
            queue=dict(self.queue),
            complete=complete,
            duration_s=time.perf_counter() - self._started,
            metrics=dict(self.metrics),
            latencies=dict(self.latencies),
            counters=dict(self.counters),
            steps=tuple(self.steps),
            series={k: tuple(v) for k, v in self.series.items()},
            series_columns=dict(self.series_columns),
            notes=tuple(self.notes),
        )


@dataclass
class RunContext:
    """Everything a workload gets from the runner besides its params."""

    scratch: Path
    """A private temporary folder for databases; the runner deletes it after the run."""
    queue_config: QueueConfig
    """The queue strategy to use (with ``record_timings`` on)."""
    partial: PartialResults
    progress: Progress = field(default_factory=NullProgress)
    adapter_specs: dict[str, AdapterSpec] = field(default_factory=dict)
    """The queue adapters the run drove, by name; the runner keeps them in ``adapters.json``."""
    _names: itertools.count[int] = field(default_factory=itertools.count, repr=False)
    artifacts: list[tuple[Artifact, bytes]] = field(default_factory=list)
    """Files the workload measured for the analysis (e.g. ``heap-growth.json``): the runner
    writes them into the run folder and lists them in the manifest, also for a partial run."""

    def keep_artifact(self, artifact: Artifact, data: bytes) -> None:
        """Have the runner write ``data`` as ``artifact.path`` in the run folder."""
        self.artifacts.append((artifact, data))

    def declare_adapters(self, specs: Iterable[AdapterSpec]) -> None:
        """Record the specs of adapters the run drives (the analysis maps frames from them)."""
        for spec in specs:
            self.adapter_specs[spec.name] = spec

    scratch_databases: list[tuple[str, str]] = field(default_factory=list)
    """(server URL, name) of each PostgreSQL scratch database made for the run: the runner
    snapshots their schemas and drops them at its end, also after an interrupt."""

    def database(self, label: str = "queue") -> Path | str:
        """Where a fresh queue goes (never reused within a run): with the SQLite backend a
        path in the scratch folder; with ``backend=postgresql://...`` the URL of a new
        scratch database on that server (:attr:`scratch_databases`)."""
        server = self.queue_config.backend
        if server == "sqlite":
            return self.sqlite_database(label)
        from taskqueue import pgadmin  # asyncpg is needed only for PostgreSQL

        name = pgadmin.scratch_name(f"{label}-{next(self._names)}")
        self.scratch_databases.append((server, name))  # before: dropped even half made
        return pgadmin.create_database_now(server, name)

    def sqlite_database(self, label: str = "queue") -> Path:
        """A fresh SQLite file path in the scratch folder, whatever the backend (for
        code that reads the file itself: other queues' adapters)."""
        return self.scratch / f"{label}-{next(self._names)}.db"
