"""Reading the parts of a run folder that comparison, scaling and bundles need.

This is not a loader of its own: the manifest and results are parsed by the workloads
package's readers (:meth:`Manifest.from_json`, :meth:`WorkloadResult.from_json`) and the op
samples by :func:`numpy.load`; this module only finds the files, turns every failure into a
:class:`RunFolderError` that names the folder and the fix, and keeps the pieces together.
"""

from __future__ import annotations

import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from workloads.capture import OP_SAMPLES
from workloads.errors import ResultFormatError
from workloads.results import WorkloadResult
from workloads.runfolder import MANIFEST, RESULTS, Manifest

from ._compare_errors import RunFolderError

OP_PREFIX = "op/"
SPEEDSCOPE_FORMAT = "speedscope"


@dataclass(frozen=True, slots=True)
class RunData:
    """One run folder as the comparison sees it."""

    path: Path
    manifest: Manifest
    result: WorkloadResult
    op_samples: Mapping[str, np.ndarray[Any, np.dtype[np.int64]]] = field(default_factory=dict)
    """Per queue operation, every duration in nanoseconds (empty when the run kept none)."""

    @property
    def run_id(self) -> str:
        """The run's id, as its manifest names it."""
        return self.manifest.run_id

    @property
    def profiler(self) -> str:
        """Name of the profiler the run was wrapped in (``none`` for a bare run)."""
        return str(self.manifest.profiler.get("name", "none"))

    def speedscope_profile(self) -> Path | None:
        """The run's speedscope CPU profile, if its manifest lists one that exists."""
        for artifact in self.manifest.artifacts:
            if artifact.get("format") == SPEEDSCOPE_FORMAT:
                path = self.path / artifact["path"]
                if path.is_file():
                    return path
        return None


def load_run(path: Path) -> RunData:
    """Read ``path`` (a ``traces/<run-id>/`` folder): manifest, results and op samples."""
    if not path.is_dir():
        raise RunFolderError(
            f"{path}: no such run folder; pass a folder under traces/ (`queueprof list` shows them)"
        )
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise RunFolderError(
            f"{path}: no {MANIFEST} here, so this is not a run folder; "
            "pass a folder written by `queueprof run`"
        )
    try:
        manifest = Manifest.from_json(manifest_path.read_bytes(), source=str(manifest_path))
        results_path = path / (manifest.results or RESULTS)
        if not results_path.is_file():
            raise RunFolderError(
                f"{path}: the run ({manifest.status.value}) left no {results_path.name}; "
                "re-run the workload to get results to compare"
            )
        result = WorkloadResult.from_json(results_path.read_bytes(), source=str(results_path))
    except ResultFormatError as error:
        raise RunFolderError(str(error)) from error
    return RunData(path, manifest, result, _op_samples(path / OP_SAMPLES))


def _op_samples(path: Path) -> dict[str, np.ndarray[Any, np.dtype[np.int64]]]:
    if not path.is_file():
        return {}
    try:
        with np.load(path) as archive:
            return {
                name.removeprefix(OP_PREFIX): np.asarray(archive[name], dtype=np.int64)
                for name in archive.files
                if name.startswith(OP_PREFIX)
            }
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise RunFolderError(
            f"{path}: cannot read the op samples ({error}); the file is damaged — "
            "re-run the workload, or delete the file to compare without samples"
        ) from error
