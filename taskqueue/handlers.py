"""Task handlers for the workloads, and the registry worker engines look them up in.

A handler takes the claimed :class:`~taskqueue.models.Task` and returns a JSON-serialisable
result; it may be a plain function or a coroutine function. Raising fails the attempt.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from .errors import InvalidArgumentError
from .models import Task

Handler = Callable[[Task], Any] | Callable[[Task], Awaitable[Any]]

_retained: list[bytearray] = []
"""Memory the ``alloc`` handler keeps on purpose (``keep: true``), to plant a leak."""


def noop(task: Task) -> None:
    """Do nothing: measures the queue alone."""


async def sleep(task: Task) -> None:
    """Await ``payload["seconds"]`` (default 0.001): an I/O-bound task."""
    await asyncio.sleep(_field(task, "seconds", 0.001, float))


def cpu(task: Task) -> int:
    """Spin ``payload["iterations"]`` (default 10,000) loop steps: a CPU-bound task."""
    total = 0
    for i in range(_field(task, "iterations", 10_000, int)):
        total += i * i
    return total


def alloc(task: Task) -> int:
    """Allocate ``payload["bytes"]`` (default 64 KiB); keep it if ``payload["keep"]``."""
    block = bytearray(_field(task, "bytes", 65_536, int))
    if isinstance(task.payload, dict) and task.payload.get("keep"):
        _retained.append(block)
    return len(block)


def fail(task: Task) -> str:
    """Raise on the first ``payload["times"]`` attempts (default: always), then succeed."""
    times = _field(task, "times", task.max_attempts + 1, int)
    if task.attempts <= times:
        raise RuntimeError(f"planned failure on attempt {task.attempts} of task {task.id}")
    return "recovered"


BUILTIN: Mapping[str, Handler] = {
    "noop": noop,
    "sleep": sleep,
    "cpu": cpu,
    "alloc": alloc,
    "fail": fail,
}


def resolve(spec: str | Mapping[str, Handler] | None) -> dict[str, Handler]:
    """Handlers from a spec a worker process can receive by name.

    ``None`` or ``"builtin"``: :data:`BUILTIN`. ``"module:attribute"``: a mapping (or a
    function returning one) importable in the worker. A mapping is used as is.
    """
    if spec is None or spec == "builtin":
        return dict(BUILTIN)
    if isinstance(spec, Mapping):
        return dict(spec)
    module_name, _, attribute = spec.partition(":")
    if not attribute:
        raise InvalidArgumentError(
            f"handlers {spec!r}: expected 'builtin' or 'package.module:attribute'"
        )
    try:
        found = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise InvalidArgumentError(f"handlers {spec!r}: cannot import ({error})") from None
    handlers = found() if callable(found) else found
    if not isinstance(handlers, Mapping):
        raise InvalidArgumentError(f"handlers {spec!r}: is not a mapping of task type to handler")
    return dict(handlers)


def _field(task: Task, name: str, default: Any, kind: type) -> Any:
    payload = task.payload
    if payload is None or (isinstance(payload, dict) and name not in payload):
        return default
    if not isinstance(payload, dict):
        raise TypeError(f"{task.type} task {task.id}: payload must be an object, got {payload!r}")
    try:
        return kind(payload[name])
    except (TypeError, ValueError):
        raise TypeError(
            f"{task.type} task {task.id}: payload[{name!r}]={payload[name]!r} "
            f"is not {kind.__name__}"
        ) from None
