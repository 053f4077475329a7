"""A run folder as comparison, scaling and bundles need it: the analysis's loaders, combined.

Nothing is parsed here: :func:`analysis.load.runfolder.resolve_run` finds the folder (a path,
or a run id under ``traces/``), :func:`analysis.load.runfolder.load_run` reads the manifest and
results, :func:`analysis.load.capture.load_op_samples` the op samples. This module keeps the
pieces together under the names the comparison uses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from workloads.results import WorkloadResult
from workloads.runfolder import Manifest

from .load.capture import NsArray, load_op_samples
from .load.runfolder import LoadedRun, resolve_run
from .load.runfolder import load_run as load_run_folder

SAMPLES_FORMAT = "npz"
SPEEDSCOPE_FORMAT = "speedscope"


@dataclass(frozen=True, slots=True)
class RunData:
    """One run folder: manifest, results and every operation's samples."""

    loaded: LoadedRun
    op_samples: Mapping[str, NsArray] = field(default_factory=dict)
    """Per queue operation, every duration in nanoseconds (empty when the run kept none)."""

    @property
    def path(self) -> Path:
        """The run folder."""
        return self.loaded.folder

    @property
    def manifest(self) -> Manifest:
        """``manifest.json``."""
        return self.loaded.manifest

    @property
    def result(self) -> WorkloadResult:
        """``results.json``."""
        return self.loaded.result

    @property
    def run_id(self) -> str:
        """The run's id, as its manifest names it."""
        return self.loaded.run_id

    @property
    def profiler(self) -> str:
        """Name of the profiler the run was wrapped in (``none`` for a bare run)."""
        return self.loaded.profiler

    def speedscope_profile(self) -> Path | None:
        """The run's speedscope CPU profile, if its manifest lists one."""
        return self.loaded.artifact(fmt=SPEEDSCOPE_FORMAT)


def load_run(run: Path | str, traces: Path = Path("traces")) -> RunData:
    """Read the run folder ``run`` (a path, or a run id under ``traces``) with its samples."""
    loaded = load_run_folder(resolve_run(str(run), traces))
    samples_path = loaded.artifact(fmt=SAMPLES_FORMAT)
    samples = {} if samples_path is None else dict(load_op_samples(samples_path).ops)
    return RunData(loaded, samples)
