"""Errors of the comparison, scaling, plotting, diff and bundle modules of ``analysis``.

All derive from :class:`~analysis.errors.AnalysisError` (itself a
:class:`~queueprof.errors.QueueprofError`); those caused by the user's input are also
:class:`~queueprof.errors.UsageError` (exit status 2). Each message names the input, what is
wrong with it, and what to do instead.
"""

from __future__ import annotations

from queueprof.errors import UsageError

from .errors import AnalysisError, RunFolderError

__all__ = [
    "CompareError",
    "CompareOptionError",
    "NotComparableError",
    "PlotInputError",
    "ProfileDiffError",
    "RunFolderError",
    "ScalingError",
]


class CompareError(AnalysisError):
    """Base of the errors raised by ``analysis.compare``, ``scaling``, ``plots``, ``diffgraph``."""


class NotComparableError(CompareError, UsageError):
    """Two runs measure different things (e.g. different workloads) and cannot be compared."""


class ScalingError(CompareError, UsageError):
    """The points given to the scalability fit cannot support one (too few, not numbers...)."""


class ProfileDiffError(CompareError, UsageError):
    """Two profiles cannot be diffed (different profilers or units, none present...)."""


class PlotInputError(CompareError, UsageError):
    """Data handed to a plot function cannot be drawn (empty, mismatched lengths...)."""


class CompareOptionError(CompareError, UsageError):
    """An option of the comparison (noise band, significance level...) is out of range."""
