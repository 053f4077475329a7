"""Values that cross the queue's API: tasks handed to workers, statuses, new-task specs."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import partial
from typing import Any, NamedTuple


class TaskState(StrEnum):
    """Where a task is in its life. ``done`` and ``dead`` are terminal."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    DEAD = "dead"


TERMINAL_STATES = frozenset({TaskState.DONE, TaskState.DEAD})


@dataclass(frozen=True, slots=True)
class NewTask:
    """One task to enqueue with :meth:`TaskQueue.enqueue_many`."""

    type: str
    payload: Any = None
    priority: int = 0
    delay: float = 0.0
    max_attempts: int = 3


class Task(NamedTuple):
    """A claimed task, as a worker sees it. Immutable.

    ``attempts`` counts this claim, so the first run sees 1. ``(id, attempts)`` identifies the
    claim: completing or failing a task whose lease has since expired and been reclaimed changes
    nothing, which is what keeps a task from being completed twice.

    A named tuple rather than a frozen dataclass: a claim builds one per task, and a frozen
    dataclass's ``__init__`` sets each field through ``object.__setattr__`` (2.0 us a task
    here, and nine calls that every profile hook sees; see :data:`new_task`).
    """

    id: int
    type: str
    payload: Any
    priority: int
    attempts: int
    max_attempts: int
    worker: str
    lease_until: float


new_task = partial(tuple.__new__, Task)
"""``new_task((id, type, payload, priority, attempts, max_attempts, worker, lease_until))``:
a :class:`Task` from a claimed row in one C call, without ``Task.__new__``'s argument
handling (the fields come in their order)."""


@dataclass(frozen=True, slots=True)
class TaskStatus:
    """A task's row, as :meth:`TaskQueue.status` reads it."""

    id: int
    type: str
    state: TaskState
    priority: int
    attempts: int
    max_attempts: int
    worker: str | None
    run_at: float
    lease_until: float | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    result: Any
    error: str | None

    @property
    def finished(self) -> bool:
        """True once the task is ``done`` or ``dead``."""
        return self.state in TERMINAL_STATES


@dataclass(frozen=True, slots=True)
class ReclaimResult:
    """What one sweep of expired leases did."""

    requeued: int
    dead: int
