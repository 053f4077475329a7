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


def validate(document: Any) -> list[str]:
    """Problems that would keep speedscope from loading ``document`` (empty list: valid).

    Checks what the viewer relies on: the schema marker, the shared frame table, every
    frame index in range, sampled profiles with ``samples`` and ``weights`` of one length,
    and evented profiles whose open/close (``O``/``C``) events balance, nest and are ordered.
    """
    problems: list[str] = []
    if not isinstance(document, dict):
        return ["top level is not a JSON object"]
    if document.get("$schema") != SCHEMA_URL:
        problems.append(f"$schema is {document.get('$schema')!r}, expected {SCHEMA_URL}")
    frames = (
        document.get("shared", {}).get("frames")
        if isinstance(document.get("shared"), dict)
        else None
    )
    if not isinstance(frames, list):
        return [*problems, "shared.frames is missing or not a list"]
    for index, frame in enumerate(frames):
        if not isinstance(frame, dict) or not isinstance(frame.get("name"), str):
            problems.append(f"frame {index} has no name")
    profiles = document.get("profiles")
    if not isinstance(profiles, list) or not profiles:
        return [*problems, "profiles is missing or empty"]
    for number, profile in enumerate(profiles):
        where = (
            f"profile {number} ({profile.get('name', '?')!r})"
            if isinstance(profile, dict)
            else f"profile {number}"
        )
        if not isinstance(profile, dict):
            problems.append(f"{where} is not an object")
            continue
        kind = profile.get("type")
        if kind == "sampled":
            problems.extend(_check_sampled(profile, len(frames), where))
        elif kind == "evented":
            problems.extend(_check_evented(profile, len(frames), where))
        else:
            problems.append(f"{where}: unknown type {kind!r}")
    return problems


def _check_sampled(profile: dict[str, Any], frame_count: int, where: str) -> list[str]:
    samples, weights = profile.get("samples"), profile.get("weights")
    if not isinstance(samples, list) or not isinstance(weights, list):
        return [f"{where}: samples and weights must be lists"]
    problems = []
    if len(samples) != len(weights):
        problems.append(f"{where}: {len(samples)} samples but {len(weights)} weights")
    for index, stack in enumerate(samples):
        if not isinstance(stack, list) or any(
            not isinstance(i, int) or not 0 <= i < frame_count for i in stack
        ):
            problems.append(f"{where}: sample {index} has a frame index out of range")
            break
    if any(not isinstance(w, int | float) or w < 0 for w in weights):
        problems.append(f"{where}: weights must be numbers >= 0")
    return problems


def _check_evented(profile: dict[str, Any], frame_count: int, where: str) -> list[str]:
    events = profile.get("events")
    if not isinstance(events, list):
        return [f"{where}: events must be a list"]
    open_frames: list[int] = []
    last = float(profile.get("startValue", 0))
    for index, event in enumerate(events):
        at, frame, kind = event.get("at"), event.get("frame"), event.get("type")
        if not isinstance(frame, int) or not 0 <= frame < frame_count:
            return [f"{where}: event {index} has a frame index out of range"]
        if not isinstance(at, int | float) or at < last:
            return [f"{where}: event {index} is out of order (at={at!r} after {last})"]
        last = at
        if kind == "O":
            open_frames.append(frame)
        elif kind == "C":
            if not open_frames or open_frames[-1] != frame:
                return [
                    f"{where}: event {index} closes frame {frame} that is not the innermost open"
                ]
            open_frames.pop()
        else:
            return [f"{where}: event {index} has type {kind!r}, expected O or C"]
    if open_frames:
        return [f"{where}: {len(open_frames)} frame(s) opened and never closed"]
    return []
