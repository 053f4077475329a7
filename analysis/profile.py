"""The neutral form every sampling profiler's output is loaded into.

pyinstrument, py-spy (speedscope or collapsed stacks) and pyinstrument's own session files
all become :class:`SampledProfile` values: one per thread, each a list of (stack, weight)
samples over one shared frame table. The attribution works on this form only, so it is
tested on hand-built profiles.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True, slots=True)
class Frame:
    """One function as a profiler names it (``TaskQueue.claim``, ``[await]``)."""

    name: str
    file: str | None = None
    line: int | None = None

    @property
    def function(self) -> str:
        """The bare function name, without its class (``claim`` for ``TaskQueue.claim``)."""
        return self.name.rsplit(".", 1)[-1]

    @property
    def label(self) -> str:
        """``name (file)``: how reports name the function (lines vary between samples)."""
        return f"{self.name} ({self.file})" if self.file else self.name


class ThreadRole(StrEnum):
    """What a sampled thread does for the queue."""

    EVENT_LOOP = "event loop"
    SQLITE_THREAD = "aiosqlite threads"
    OTHER_THREAD = "other threads"


Stack = tuple[int, ...]
"""Indices into the profile's frame table, root first."""


@dataclass(frozen=True, slots=True)
class SampledProfile:
    """One thread's samples: ``stacks[i]`` (root first) weighed ``weights[i]``."""

    name: str
    role: ThreadRole
    frames: Sequence[Frame]
    stacks: Sequence[Stack]
    weights: Sequence[float]
    unit: str
    """``seconds`` or ``samples``."""
    whole_process: bool = False
    """True when the profiler sampled the whole process (py-spy): samples taken before the
    event loop started or after it ended are outside the workload run."""

    def __post_init__(self) -> None:
        if len(self.stacks) != len(self.weights):
            raise ValueError(
                f"profile {self.name!r}: {len(self.stacks)} stacks but {len(self.weights)} weights"
            )

    @property
    def total(self) -> float:
        """The sum of every sample's weight."""
        return float(sum(self.weights))


_SQLITE_THREAD_FUNCTION = "_connection_worker_thread"
_LOOP_FUNCTIONS = frozenset({"run_forever", "_run_once", "run_until_complete"})


def guess_role(name: str, frames: Sequence[Frame], stacks: Sequence[Stack]) -> ThreadRole:
    """The role of a thread from its name, else from what its stacks run.

    aiosqlite names its threads after ``_connection_worker_thread`` and every stack of one
    runs that function; an event loop's stacks run ``run_forever``.
    """
    lowered = name.lower()
    if _SQLITE_THREAD_FUNCTION in name or lowered.startswith("aiosqlite thread"):
        return ThreadRole.SQLITE_THREAD
    if lowered.startswith("event loop"):
        return ThreadRole.EVENT_LOOP
    functions = {frames[i].function for stack in stacks for i in stack}
    if _SQLITE_THREAD_FUNCTION in functions:
        return ThreadRole.SQLITE_THREAD
    if functions & _LOOP_FUNCTIONS:
        return ThreadRole.EVENT_LOOP
    return ThreadRole.OTHER_THREAD


_PY_SPY_THREAD = re.compile(r"^Process (?P<pid>\d+) Thread (?P<tid>\d+)\b")


def program_main_thread(profiles: Sequence[SampledProfile]) -> list[SampledProfile]:
    """``profiles`` of a profiled program whose main thread runs no event loop (a plain
    synchronous consumer loop), with that thread in the event loop's role: it is the thread
    that calls the program's operations, as the loop is for an async one. The main thread is
    the one whose thread id is its process id (py-spy's ``Process N Thread N``), else the
    most sampled. Nothing changes when a thread already has the role."""
    if not profiles or any(p.role is ThreadRole.EVENT_LOOP for p in profiles):
        return list(profiles)
    candidates = [p for p in profiles if p.role is ThreadRole.OTHER_THREAD]
    if not candidates:
        return list(profiles)
    named = [
        p
        for p in candidates
        if (match := _PY_SPY_THREAD.match(p.name)) is not None and match["pid"] == match["tid"]
    ]
    main = named[0] if named else max(candidates, key=lambda p: len(p.stacks))
    # Its samples are all the program's: no event loop bounds the run inside the process.
    promoted = dataclasses.replace(main, role=ThreadRole.EVENT_LOOP, whole_process=False)
    return [promoted if p is main else p for p in profiles]


def in_event_loop(frames: Sequence[Frame], stack: Stack) -> bool:
    """True when ``stack`` runs inside an asyncio event loop (``run_forever`` and friends)."""
    return any(frames[i].function in _LOOP_FUNCTIONS for i in stack)
