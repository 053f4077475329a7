"""The queue adapter protocol: how the comparison workload drives any queue.

An adapter wraps one queue library behind four primitives (enqueue, claim, complete and, where
the queue has one, status) so the same scenarios run over our queue and other people's. Its
:class:`AdapterSpec` is plain data, importable without the library: the pip package to
install, what the queue promises about delivery, and which of the library's functions do
which operation (:class:`CodePath`), so ``analysis/operations.py`` attributes profiler samples
in a foreign queue to enqueue, claim, complete and status from the same declaration.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

from ..errors import AdapterUnavailableError

ADAPTER_OPERATIONS = ("enqueue", "claim", "complete", "status", "handler")
"""Operation names a :class:`CodePath` may give (the analysis's category names)."""


@dataclass(frozen=True, slots=True)
class CodePath:
    """Functions in one source file that do one queue operation.

    ``file`` is a path suffix as profilers record it (``huey/storage.py``); ``functions`` are
    bare function names as they appear in that file. The innermost mapped frame of a sample
    decides its operation, so a generic helper (``BaseSqlStorage.sql``) is left out and takes
    the operation of whichever mapped function called it.
    """

    op: str
    file: str
    functions: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.op not in ADAPTER_OPERATIONS:
            valid = ", ".join(ADAPTER_OPERATIONS)
            raise ValueError(f"CodePath op {self.op!r} for {self.file}: use one of {valid}")
        if not self.file or not self.functions:
            raise ValueError(f"CodePath for {self.op!r}: give a file suffix and function names")


@dataclass(frozen=True, slots=True)
class AdapterSpec:
    """What is known about an adapter without importing its library."""

    name: str
    """The library's name in tables and in op-samples (``huey.claim``)."""
    module: str
    """The import name of the library (``persistqueue``)."""
    package: str | None
    """The pip package that provides ``module``; None when queueprof itself ships it."""
    exactly_once: bool
    """True when a worker killed between claim and completion neither loses nor doubles the task."""
    guarantee: str
    """The delivery guarantee in two words (``at-most-once``), next to the queue's figures."""
    delivery: str
    """One sentence on what happens to a task whose worker dies, shown next to its figures."""
    code_paths: tuple[CodePath, ...] = ()
    has_status: bool = True
    """False when the queue has no per-task status query (the status scenario is skipped)."""

    def load(self) -> ModuleType:
        """Import the library, or raise :class:`AdapterUnavailableError` naming what to install."""
        try:
            return importlib.import_module(self.module)
        except ImportError as error:
            package = self.package or self.module
            raise AdapterUnavailableError(
                f"the {self.name} adapter needs the {package!r} package, which is not installed "
                f"({error}); install it with `pip install 'queueprof[peers]'` "
                f"(or `pip install {package}`), or leave {self.name} out of --param contenders"
            ) from None

    def available(self) -> bool:
        """True when :meth:`load` would succeed."""
        try:
            self.load()
        except AdapterUnavailableError:
            return False
        return True


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
        """``done`` when the task has completed, another state name otherwise; None if unknown.

        Only called when :attr:`AdapterSpec.has_status` is true.
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
