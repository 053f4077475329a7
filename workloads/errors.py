"""Errors of the workloads package."""

from __future__ import annotations

from runs import QueueprofError, ResultFormatError, UsageError
from runs.adapters import AdapterUnavailableError

__all__ = [
    "AdapterContractError",
    "AdapterReferenceError",
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


class AdapterContractError(WorkloadError):
    """An adapter broke its contract (a status word, a CodePath, a lost or doubled task);
    the message names the adapter, what it did and what the contract says."""


class AdapterReferenceError(WorkloadError, UsageError):
    """``--adapter`` or an entry point names no adapter (bad ``module:attr``, wrong type)."""
