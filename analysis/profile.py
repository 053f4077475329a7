"""The neutral form every sampling profiler's output is loaded into.

pyinstrument, py-spy (speedscope or collapsed stacks) and pyinstrument's own session files
all become :class:`SampledProfile` values: one per thread, each a list of (stack, weight)
samples over one shared frame table. The attribution works on this form only, so it is
tested on hand-built profiles.
"""

from __future__ import annotations

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


def in_event_loop(frames: Sequence[Frame], stack: Stack) -> bool:
    """True when ``stack`` runs inside an asyncio event loop (``run_forever`` and friends)."""
    return any(frames[i].function in _LOOP_FUNCTIONS for i in stack)
