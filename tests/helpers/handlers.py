"""Handlers that count executions, importable by name in worker processes.

Worker processes get their handlers as ``"tests.helpers.handlers:HANDLERS"``. Each execution
is appended to :data:`EXECUTED` (visible to in-process tests) and, when the task's payload
names a ``log`` folder, written as one line to that folder's ``<pid>.log`` (visible to the
parent of worker processes). Lines are flushed as written, so a line survives SIGKILL.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple, TextIO

from taskqueue import Task

SPEC = "tests.helpers.handlers:HANDLERS"
"""The name worker processes resolve."""

EXECUTED: list[tuple[int, int, str]] = []
"""(task id, attempt, worker) of every execution in this process."""

_logs: dict[str, TextIO] = {}


class LogLine(NamedTuple):
    """One execution event written by a handler."""

    event: str
    task_id: int
    attempt: int
    worker: str
    pid: int


def _write(task: Task, event: str) -> None:
    folder = task.payload.get("log") if isinstance(task.payload, dict) else None
    if folder is None:
        return
    log = _logs.get(folder)
    if log is None:
        log = _logs[folder] = open(  # noqa: SIM115 - kept open for the process's lifetime
            Path(folder) / f"{os.getpid()}.log", "a", buffering=1, encoding="utf-8"
        )
    log.write(f"{event} {task.id} {task.attempts} {task.worker}\n")


def record(task: Task) -> int:
    """Count the execution and return the task id."""
    EXECUTED.append((task.id, task.attempts, task.worker))
    _write(task, "done")
    return task.id


async def hang_first(task: Task) -> str:
    """Attempt 1 sleeps ``payload["seconds"]`` (long enough to be killed); later ones finish."""
    if task.attempts == 1:
        _write(task, "start")
        await asyncio.sleep(float(task.payload["seconds"]))
    EXECUTED.append((task.id, task.attempts, task.worker))
    _write(task, "done")
    return "finished"


HANDLERS: Mapping[str, Any] = {"record": record, "hang_first": hang_first}


def read_logs(folder: Path) -> list[LogLine]:
    """Every line every process wrote into ``folder``."""
    lines: list[LogLine] = []
    for path in sorted(folder.glob("*.log")):
        pid = int(path.stem)
        for text in path.read_text(encoding="utf-8").splitlines():
            event, task_id, attempt, worker = text.split(" ")
            lines.append(LogLine(event, int(task_id), int(attempt), worker, pid))
    return lines
