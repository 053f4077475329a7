"""Writing speedscope files (https://www.speedscope.app/file-format-schema.json).

One file can hold several profiles: the event loop and each aiosqlite connection thread are
written side by side, so the viewer's thread picker shows where the SQL work went.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

SCHEMA_URL = "https://www.speedscope.app/file-format-schema.json"


@dataclass(frozen=True, slots=True)
class FrameKey:
    """A function as speedscope shows it."""

    name: str
    file: str | None = None
    line: int | None = None


@dataclass
class SpeedscopeBuilder:
    """Interns frames and collects sampled profiles; :meth:`write` saves the file."""

    name: str
    exporter: str = "queueprof"
    _frames: list[FrameKey] = field(default_factory=list)
    _index: dict[FrameKey, int] = field(default_factory=dict)
    _profiles: list[dict[str, Any]] = field(default_factory=list)

    def frame(self, key: FrameKey) -> int:
        """The index of ``key`` in the shared frame table."""
        found = self._index.get(key)
        if found is None:
            found = self._index[key] = len(self._frames)
            self._frames.append(key)
        return found

    def add_sampled(
        self,
        name: str,
        samples: Iterable[tuple[Sequence[FrameKey], float]],
        unit: str = "seconds",
    ) -> None:
        """Add one profile of (stack root-first, weight) samples."""
        stacks: list[list[int]] = []
        weights: list[float] = []
        for stack, weight in samples:
            stacks.append([self.frame(key) for key in stack])
            weights.append(weight)
        self._profiles.append(
            {
                "type": "sampled",
                "name": name,
                "unit": unit,
                "startValue": 0,
                "endValue": sum(weights),
                "samples": stacks,
                "weights": weights,
            }
        )

    @property
    def profile_count(self) -> int:
        return len(self._profiles)

    def to_dict(self) -> dict[str, Any]:
        frames = []
        for key in self._frames:
            entry: dict[str, Any] = {"name": key.name}
            if key.file is not None:
                entry["file"] = key.file
            if key.line is not None:
                entry["line"] = key.line
            frames.append(entry)
        return {
            "$schema": SCHEMA_URL,
            "name": self.name,
            "exporter": self.exporter,
            "activeProfileIndex": 0,
            "shared": {"frames": frames},
            "profiles": self._profiles,
        }

    def write(self, path: Path) -> None:
        path.write_bytes(orjson.dumps(self.to_dict()))
