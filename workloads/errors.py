"""Errors of the workloads package."""

from __future__ import annotations

from runs import QueueprofError, ResultFormatError, UsageError

__all__ = [
    "AdapterUnavailableError",
    "ParameterError",
    "ResultFormatError",
    "RunFailedError",
    "TargetsError",
    "WorkloadError",
]


class WorkloadError(QueueprofError):
    """Base of the errors a workload, its results or the runner raise."""


class ParameterError(WorkloadError, UsageError):
    """A workload parameter, size, queue option or run option is unknown or out of range."""


class TargetsError(WorkloadError, UsageError):
    """A targets file cannot be read, or names an unknown target or a bad value."""


class RunFailedError(WorkloadError):
    """A run crashed; its folder is marked ``failed`` and holds the error and traceback."""


class AdapterUnavailableError(WorkloadError, UsageError):
    """A queue adapter's library is not installed; the message names the pip package and extra."""
