"""The analysis's errors: one base class, messages that name the file, the problem and the fix."""

from __future__ import annotations

from pathlib import Path

from queueprof.errors import QueueprofError, UsageError


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
