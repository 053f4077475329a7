"""Values that cross the queue's API: tasks handed to workers, statuses, new-task specs."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import partial
from itertools import repeat
from operator import itemgetter
from typing import Any, NamedTuple

import orjson


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

    ``attempts`` counts this claim, so the first run sees 1. ``(id, claim)`` identifies the
    claim: completing or failing a task whose lease has since expired and been reclaimed changes
    nothing, which is what keeps a task from being completed twice. On SQLite ``claim`` is
    ``attempts``; on PostgreSQL it is a random token each claim writes to the row, because a
    claim committed without waiting for the WAL flush can be forgotten by a server crash and
    the task claimed again with the same ``attempts`` (``pg_claim_commit``).

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
    claim: int


new_task = partial(tuple.__new__, Task)
"""``new_task((id, type, payload, priority, attempts, max_attempts, worker, lease_until,
claim))``:
a :class:`Task` from a claimed row in one C call, without ``Task.__new__``'s argument
handling (the fields come in their order)."""


_ID = itemgetter(0)
_PAYLOAD = itemgetter(2)
_PRIORITY = itemgetter(3)


@dataclass(frozen=True, slots=True)
class BadPayload:
    """A claimed row whose stored payload is not JSON: the store dead-letters it."""

    id: int
    claim: int
    """The claim's key, as :attr:`Task.claim`: what the dead-lettering fail matches."""
    reason: str


def claimed_tasks(
    rows: list[Any], worker: str, lease_until: float, claim: int | None = None
) -> tuple[list[Task], list[BadPayload]]:
    """Tasks from claimed rows ``(id, type, payload text, priority, attempts, max_attempts)``
    of one claim whose token is ``claim`` (None: each task's ``attempts`` is its key),
    highest priority first, then oldest (RETURNING's order is unspecified), and the rows whose
    payload is not JSON (changed outside the queue), for the store to dead-letter.

    Two sorts with C-level keys instead of one with a Python key per task: the second is
    stable, also with ``reverse``, so equal priorities stay in id order. The payloads are
    decoded as one JSON array: one call per claim, not one per task (each call is also an
    event for every profiler's hook). Sorts ``rows`` in place."""
    if not rows:
        return [], []
    if len(rows) > 1:
        rows.sort(key=_ID)
        rows.sort(key=_PRIORITY, reverse=True)
    try:
        payloads = orjson.loads("[" + ",".join(map(_PAYLOAD, rows)) + "]")
        if len(payloads) != len(rows):
            raise ValueError("a payload holds more than one JSON value")
    except (ValueError, TypeError):  # orjson.JSONDecodeError is a ValueError
        return _claimed_one_by_one(rows, worker, lease_until, claim)
    # Laid out column by column with C iterators: no bytecode per task (see sql.py).
    ids, types, _, priorities, attempts, max_attempts = zip(*rows, strict=True)
    fields = zip(
        ids,
        types,
        payloads,
        priorities,
        attempts,
        max_attempts,
        repeat(worker),
        repeat(lease_until),
        attempts if claim is None else repeat(claim),
        strict=False,
    )
    return list(map(new_task, fields)), []


def _claimed_one_by_one(
    rows: list[Any], worker: str, lease_until: float, claim: int | None
) -> tuple[list[Task], list[BadPayload]]:
    """Claimed rows, one payload at a time, when the batch did not decode: a row whose stored
    payload is not JSON is set aside with the reason instead of failing the whole claim on
    every retry."""
    tasks, bad = [], []
    for id_, type_, text, priority, attempts, max_attempts in rows:
        key = attempts if claim is None else claim
        try:
            payload = orjson.loads(text)
        except (orjson.JSONDecodeError, TypeError) as error:
            reason = (
                f"stored payload is not JSON ({error}): the row was changed outside the "
                "queue; dead-lettered when claimed, enqueue the task again"
            )
            bad.append(BadPayload(id_, key, reason))
            continue
        tasks.append(
            new_task(
                (id_, type_, payload, priority, attempts, max_attempts, worker, lease_until, key)
            )
        )
    return tasks, bad


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
