"""workloads: drive the queue and measure it.

One module per workload (throughput, latency, dbops, concurrency, stress, memory), each with
one frozen params dataclass and size presets; :mod:`.registry` maps names to them;
:mod:`.runner` runs one into a run folder (the result model is :mod:`runs`).
"""

from .base import Workload
from .context import PartialResults, RunContext
from .errors import ParameterError, ResultFormatError, TargetsError, WorkloadError
from .params import Size, WorkloadParams

__all__ = [
    "ParameterError",
    "PartialResults",
    "ResultFormatError",
    "RunContext",
    "Size",
    "TargetsError",
    "Workload",
    "WorkloadError",
    "WorkloadParams",
]
