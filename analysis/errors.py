"""The analysis's errors: one base class, messages that name the file, the problem and the fix."""

from __future__ import annotations

from pathlib import Path

from runs import QueueprofError, UsageError


class AnalysisError(QueueprofError):
    """Base of every error ``analysis/`` raises on purpose."""


class ArtifactError(AnalysisError, UsageError):
    """An artifact cannot be read: empty, truncated, not the expected format, or missing.

    Exit status 2: the input is bad, not the tool.
    """

    def __init__(self, path: Path | str, problem: str, fix: str) -> None:
        self.path = str(path)
        self.problem = problem
        self.fix = fix
        super().__init__(f"{self.path}: {problem}; {fix}")


class RunFolderError(AnalysisError, UsageError):
    """A RUN argument does not name a readable run folder (exit status 2)."""


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
