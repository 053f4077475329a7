"""Collapsed stacks (``thread;root;...;leaf count``, one line per distinct stack)."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

from ..errors import ArtifactError
from ..profile import Frame, SampledProfile, Stack, guess_role
from .jsonfile import read_bytes
from .limits import PARSED_VALUES

FIX = "re-run the workload with `--profiler py-spy`"

_LABEL = re.compile(r"^(?P<name>.*?) \((?P<file>.*):(?P<line>\d+)\)$")


def load_collapsed(path: Path, *, whole_process: bool = True) -> list[SampledProfile]:
    """One profile per thread (the first element of each stack), weights in samples."""
    data = read_bytes(path, "the collapsed stacks", FIX)
    PARSED_VALUES.check(path, data.count(b"\n") + data.count(b";"), "the collapsed stacks")
    text = data.decode("utf-8", errors="replace")
    index: dict[str, int] = {}
    frames: list[Frame] = []
    threads: dict[str, tuple[list[Stack], list[float]]] = defaultdict(lambda: ([], []))
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        stack_text, _, count_text = line.rpartition(" ")
        try:
            count = float(count_text)
        except ValueError:
            raise ArtifactError(
                path,
                f"line {number} does not end with a sample count ({line[-40:]!r}); "
                "is this a collapsed-stack file?",
                FIX,
            ) from None
        if not stack_text:
            raise ArtifactError(path, f"line {number} has a count but no stack", FIX)
        thread, *labels = stack_text.split(";")
        stack = []
        for label in labels:
            found = index.get(label)
            if found is None:
                found = index[label] = len(frames)
                frames.append(parse_label(label))
            stack.append(found)
        stacks, weights = threads[thread]
        stacks.append(tuple(stack))
        weights.append(count)
    shared = tuple(frames)
    return [
        SampledProfile(
            name=thread,
            role=guess_role(thread, shared, stacks),
            frames=shared,
            stacks=stacks,
            weights=weights,
            unit="samples",
            whole_process=whole_process,
        )
        for thread, (stacks, weights) in threads.items()
    ]


def parse_label(label: str) -> Frame:
    """``name (file:line)`` -> :class:`Frame`; a label without a location is just a name."""
    match = _LABEL.match(label)
    if match is None:
        return Frame(label)
    return Frame(match["name"], match["file"], int(match["line"]))
