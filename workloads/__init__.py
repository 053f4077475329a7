"""workloads: drive the queue and measure it.

One module per workload (throughput, latency, dbops, concurrency, stress, memory), each with
one frozen params dataclass and size presets; :mod:`.registry` maps names to them;
:mod:`.runner` runs one into a run folder; :mod:`.results` is the result model.
"""

from .base import Workload
from .context import PartialResults, RunContext
from .errors import ParameterError, ResultFormatError, TargetsError, WorkloadError
from .params import Size, WorkloadParams
from .results import SCHEMA_VERSION, LatencySummary, StepResult, Verdict, WorkloadResult
from .runfolder import ArtifactRecord, Manifest, RunStatus

__all__ = [
    "SCHEMA_VERSION",
    "ArtifactRecord",
    "LatencySummary",
    "Manifest",
    "ParameterError",
    "PartialResults",
    "ResultFormatError",
    "RunContext",
    "RunStatus",
    "Size",
    "StepResult",
    "TargetsError",
    "Verdict",
    "Workload",
    "WorkloadError",
    "WorkloadParams",
    "WorkloadResult",
]
