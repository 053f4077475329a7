"""Errors of the comparison, scaling, plotting and bundling modules of ``analysis``.

All are :class:`~queueprof.errors.QueueprofError` subclasses; those caused by the user's input
are also :class:`~queueprof.errors.UsageError` (exit status 2). Each message names the input,
what is wrong with it, and what to do instead.
"""

from __future__ import annotations

from queueprof.errors import QueueprofError, UsageError


class CompareError(QueueprofError):
    """Base of the errors raised by ``analysis.compare``, ``scaling``, ``plots``, ``diffgraph``."""


class RunFolderError(CompareError, UsageError):
    """A run folder is missing, unreadable, or lacks a file the analysis needs."""


class NotComparableError(CompareError, UsageError):
    """Two runs measure different things (e.g. different workloads) and cannot be compared."""


class ScalingError(CompareError, UsageError):
    """The points given to the scalability fit cannot support one (too few, not numbers...)."""


class ProfileDiffError(CompareError, UsageError):
    """Two profiles cannot be diffed (not speedscope, different profilers or units...)."""


class PlotInputError(CompareError, UsageError):
    """Data handed to a plot function cannot be drawn (empty, mismatched lengths...)."""


class CompareOptionError(CompareError, UsageError):
    """An option of the comparison (noise band, significance level...) is out of range."""
