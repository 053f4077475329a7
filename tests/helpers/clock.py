"""A clock the tests move by hand, passed to ``TaskQueue(clock=...)``."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class FakeClock:
    """Wall-clock seconds that only change when a test calls :meth:`advance`."""

    now: float = 1_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
