"""The ground floor: the run-folder contract every other room of queueprof speaks.

The one error base, the manifest and artifact models, the result model, :class:`RunFolder`
(the only writer of ``manifest.json``), atomic writes, run ids, every file name a run folder
holds, and the one ``key=value`` parser. It imports nothing of queueprof's own.
"""

from __future__ import annotations

from .errors import QueueprofError, ResultFormatError, RunIdError, UsageError
from .files import BASELINE, MANIFEST, RESULTS, write_atomic
from .folder import RunFolder
from .manifest import (
    Artifact,
    ArtifactKind,
    Manifest,
    RunError,
    RunStatus,
    RunSummary,
    check_run_id,
    list_runs,
    new_run_id,
    now_iso,
)
from .results import (
    PERCENTILES,
    SCHEMA_VERSION,
    LatencySummary,
    StepResult,
    Verdict,
    WorkerShare,
    WorkloadResult,
    check_schema_version,
)

__all__ = [
    "BASELINE",
    "MANIFEST",
    "PERCENTILES",
    "RESULTS",
    "SCHEMA_VERSION",
    "Artifact",
    "ArtifactKind",
    "LatencySummary",
    "Manifest",
    "QueueprofError",
    "ResultFormatError",
    "RunError",
    "RunFolder",
    "RunIdError",
    "RunStatus",
    "RunSummary",
    "StepResult",
    "UsageError",
    "Verdict",
    "WorkerShare",
    "WorkloadResult",
    "check_run_id",
    "check_schema_version",
    "list_runs",
    "new_run_id",
    "now_iso",
    "write_atomic",
]
