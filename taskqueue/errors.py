"""Errors raised by the task queue.

Every error derives from :class:`TaskQueueError` and its message names the input that was
wrong and what to do about it, so callers (and the ``queueprof`` CLI) can print it as is.
"""

from __future__ import annotations


class TaskQueueError(Exception):
    """Base class of every error the queue raises on purpose."""


class InvalidArgumentError(TaskQueueError, ValueError):
    """An argument is out of range or of the wrong kind (negative lease, unknown strategy...)."""


class InvalidPayloadError(InvalidArgumentError):
    """A payload or result cannot be stored as JSON."""


class QueueOpenError(TaskQueueError):
    """The database cannot be opened as a task queue (missing folder, not SQLite, other schema)."""


class QueueBusyError(TaskQueueError):
    """SQLite stayed busy (locked by other writers) longer than the configured deadline."""


class QueueClosedError(TaskQueueError):
    """The queue was used after :meth:`TaskQueue.close`."""


class QueueDatabaseError(TaskQueueError):
    """SQLite reported an error that is not contention (corrupt file, disk full, I/O error)."""
