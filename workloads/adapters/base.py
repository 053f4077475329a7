"""The queue adapter protocol: how the comparison workload drives any queue.

An adapter wraps one queue library behind four primitives (enqueue, claim, complete and, where
the queue has one, status) so the same scenarios run over our queue and other people's. Its
:class:`AdapterSpec` is plain data, importable without the library: the pip package to
install, what the queue promises about delivery, and which of the library's functions do
which operation (:class:`CodePath`), so ``analysis/operations.py`` attributes profiler samples
in a foreign queue to enqueue, claim, complete and status from the same declaration.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

# The declarations are plain data on the ground floor: a run folder keeps them
# (adapters.json) and the analysis reads them back without importing any adapter.
from runs.adapters import (
    ADAPTER_OPERATIONS,
    DONE,
    STATUS_WORDS,
    AdapterSpec,
    AdapterUnavailableError,
    CodePath,
)

__all__ = [
    "ADAPTER_OPERATIONS",
    "DONE",
    "STATUS_WORDS",
    "AdapterSpec",
    "AdapterUnavailableError",
    "CodePath",
    "Contender",
    "Opener",
    "QueueAdapter",
    "adapter_methods",
]


def adapter_methods(file: str, *, handler: tuple[str, ...] = ()) -> tuple[CodePath, ...]:
    """The CodePaths of an adapter's own four methods in ``file`` (a path suffix such as
    ``my_queue_bench/adapter.py``): the time spent in each is that operation's, too.
    ``handler`` names the adapter's task function, when it has one."""
    paths = [CodePath(op, file, (op,)) for op in ("enqueue", "claim", "complete", "status")]
    if handler:
        paths.append(CodePath("handler", file, handler))
    return tuple(paths)


class QueueAdapter(Protocol):
    """One open queue, driven one operation at a time by the comparison scenarios.

    Handles are the adapter's own: ``enqueue`` returns a reference that ``status`` accepts,
    ``claim`` returns claimed tasks that ``complete`` accepts. Synchronous libraries may block
    the event loop inside these coroutines; each adapter says in its docstring why it does or
    does not use a thread.
    """

    @property
    def spec(self) -> AdapterSpec:
        """The adapter's declaration."""
        ...

    async def enqueue(self, payload: Mapping[str, Any]) -> object:
        """Add one task with ``payload``; returns a reference for :meth:`status`."""
        ...

    async def claim(self, n: int) -> Sequence[object]:
        """Take up to ``n`` ready tasks (empty when none is ready)."""
        ...

    async def complete(self, claimed: Sequence[object]) -> None:
        """Mark claimed tasks done (acknowledge them), storing each one's result."""
        ...

    async def status(self, ref: object) -> str | None:
        """One of :data:`STATUS_WORDS` (``pending``, ``running``, ``done``, ``dead``, ``unknown``,
        exactly, lower case); None for a task the queue does not know.

        Only called when :attr:`AdapterSpec.has_status` is true. Any other answer makes the
        comparison fail with :class:`~workloads.errors.AdapterContractError`.
        """
        ...

    async def close(self) -> None:
        """Release the queue's connections."""
        ...


Opener = Callable[[Path], Awaitable[QueueAdapter]]
"""Opens an adapter on a fresh scratch folder (each queue makes its files inside it)."""


@dataclass(frozen=True)
class Contender:
    """One queue with one setting, as a row of the comparison.

    ``claim_batch`` is how many tasks a drain asks for per claim (the queue's own strategy
    for ours; 1 for queues whose API hands out one task at a time).
    """

    name: str
    spec: AdapterSpec
    settings: str
    """The settings in words (durability first), for the table and the manifest."""
    open: Opener
    claim_batch: int = 1
    peer: bool = False
    """True for other people's queues (the ones the goal's ratio is taken against)."""
    strategy: Mapping[str, Any] = field(default_factory=dict)
