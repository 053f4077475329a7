"""Progress reporting for workloads: a rich progress bar, or nothing.

Workloads call :class:`Progress` methods as they go; the runner decides whether anyone sees
them (a terminal, not ``--quiet``) by handing them :class:`RichProgress` or :class:`NullProgress`.
"""

from __future__ import annotations

from types import TracebackType
from typing import Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.progress import Progress as RichBar


class Progress(Protocol):
    """What a workload reports while it runs."""

    @property
    def visible(self) -> bool:
        """True when someone sees the progress (workloads may skip costly polling otherwise)."""
        ...

    def phase(self, description: str, total: float | None = None) -> None:
        """Start a new phase (a new bar); ``total`` None shows an indeterminate bar."""
        ...

    def update(self, completed: float) -> None:
        """Set how much of the current phase is done."""
        ...

    def advance(self, amount: float = 1.0) -> None:
        """Add ``amount`` to the current phase."""
        ...


class NullProgress:
    """Reports nowhere: tests, pipes and ``--quiet``."""

    @property
    def visible(self) -> bool:
        """Always False."""
        return False

    def phase(self, description: str, total: float | None = None) -> None:
        """Ignored."""

    def update(self, completed: float) -> None:
        """Ignored."""

    def advance(self, amount: float = 1.0) -> None:
        """Ignored."""


class RichProgress:
    """A transient rich progress bar on stderr; use as a context manager around the run."""

    def __init__(self, title: str, console: Console | None = None) -> None:
        self._title = title
        self._bar = RichBar(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console or Console(stderr=True),
            transient=True,
        )
        self._task: TaskID | None = None

    @property
    def visible(self) -> bool:
        """Always True."""
        return True

    def __enter__(self) -> RichProgress:
        self._bar.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._bar.stop()

    def phase(self, description: str, total: float | None = None) -> None:
        """Replace the current bar with a new one."""
        if self._task is not None:
            self._bar.remove_task(self._task)
        self._task = self._bar.add_task(f"{self._title}: {description}", total=total)

    def update(self, completed: float) -> None:
        """Move the current bar to ``completed``."""
        if self._task is not None:
            self._bar.update(self._task, completed=completed)

    def advance(self, amount: float = 1.0) -> None:
        """Move the current bar on by ``amount``."""
        if self._task is not None:
            self._bar.advance(self._task, amount)
