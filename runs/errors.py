"""The one error base of queueprof and the run-folder contract's own errors.

Every package defines its errors as subclasses of :class:`QueueprofError`; each carries the
process exit code the CLI should end with and a message that names the input and the fix.
"""

from __future__ import annotations


class QueueprofError(Exception):
    """Base of every error queueprof raises on purpose; ``exit_code`` is what the CLI returns."""

    exit_code: int = 1


class UsageError(QueueprofError):
    """Bad input on the command line or in a file it names (exit status 2)."""

    exit_code = 2


class ResultFormatError(QueueprofError):
    """A results or manifest file is not one this version can read."""


class RunIdError(UsageError):
    """A run id is not a safe folder name (exit status 2)."""


class UnsafePathError(UsageError):
    """A run folder names a file outside itself, or one that is not a regular file (exit 2)."""


class OutputError(UsageError):
    """A file or folder cannot be written: a read-only or full file system, a path under a
    file, no permission (exit status 2; the message says where else to write)."""
