"""speedscope files (pyinstrument's and py-spy's), checked with the writer's own validator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from formats.speedscope import validate

from ..errors import ArtifactError
from ..profile import Frame, SampledProfile, Stack, guess_role
from .jsonfile import read_json

FIX = "re-run the workload with the profiler (`queueprof run ... --profiler NAME`)"


def load_speedscope(path: Path, *, whole_process: bool = False) -> list[SampledProfile]:
    """Every sampled profile in the speedscope file ``path``, one per thread.

    ``whole_process`` marks profiles of a profiler that sampled the whole process (py-spy).
    Evented profiles are not written by any profiler here and are refused.
    """
    document = read_json(path, "the speedscope profile", FIX)
    problems = validate(document)
    if problems:
        shown = "; ".join(problems[:3]) + (
            f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        )
        raise ArtifactError(path, f"not a valid speedscope profile: {shown}", FIX)
    frames = tuple(_frame(entry) for entry in document["shared"]["frames"])
    profiles = []
    for entry in document["profiles"]:
        if entry.get("type") != "sampled":
            raise ArtifactError(
                path,
                f"profile {entry.get('name', '?')!r} is {entry.get('type')!r}; only sampled "
                "profiles are analysed",
                FIX,
            )
        name = str(entry.get("name", ""))
        stacks: list[Stack] = [tuple(stack) for stack in entry["samples"]]
        profiles.append(
            SampledProfile(
                name=name,
                role=guess_role(name, frames, stacks),
                frames=frames,
                stacks=stacks,
                weights=[float(w) for w in entry["weights"]],
                unit=str(entry.get("unit", "none")),
                whole_process=whole_process,
            )
        )
    return profiles


def _frame(entry: dict[str, Any]) -> Frame:
    line = entry.get("line")
    file = entry.get("file")
    return Frame(
        str(entry["name"]),
        str(file) if file else None,
        int(line) if isinstance(line, int) else None,
    )
