"""pyinstrument's own session files (``.pyisession``), read with ``Session.load``."""

from __future__ import annotations

from pathlib import Path

from formats.pyinstrument import parse_identifier as pyinstrument_frame

from ..errors import ArtifactError
from ..profile import Frame, SampledProfile, Stack, ThreadRole, guess_role
from .jsonfile import read_json_object

FIX = "re-run the workload with `--profiler pyinstrument`"


def load_session(path: Path, *, role: ThreadRole | None = None) -> SampledProfile:
    """The samples of the session in ``path`` (the thread frame at the root is dropped).

    pyinstrument stores each sample as a stack of frame identifiers
    (``function\\x00file\\x00line`` plus ``\\x01``-separated attributes, ``c`` the class) and
    its duration in seconds. ``role`` overrides the role guessed from the stacks.
    """
    # The file is JSON: read it ourselves first so a damaged file gets our error message.
    data = read_json_object(path, "the pyinstrument session", FIX)
    try:
        from pyinstrument.session import Session
    except ImportError:
        raise ArtifactError(
            path, "pyinstrument is not installed", "install it with `pip install pyinstrument`"
        ) from None
    try:
        session = Session.from_json(data)
    except (KeyError, TypeError, ValueError) as error:
        raise ArtifactError(
            path, f"not a pyinstrument session ({type(error).__name__}: {error})", FIX
        ) from None
    index: dict[str, int] = {}
    frames: list[Frame] = []
    stacks: list[Stack] = []
    weights: list[float] = []
    for record_stack, seconds in session.frame_records:
        stack = []
        for identifier in record_stack[1:]:
            found = index.get(identifier)
            if found is None:
                found = index[identifier] = len(frames)
                frames.append(parse_identifier(identifier))
            stack.append(found)
        stacks.append(tuple(stack))
        weights.append(float(seconds))
    name = str(session.target_description or path.name)
    return SampledProfile(
        name=name,
        role=role or guess_role(name, frames, stacks),
        frames=tuple(frames),
        stacks=stacks,
        weights=weights,
        unit="seconds",
    )


def parse_identifier(identifier: str) -> Frame:
    """A :class:`Frame` from a pyinstrument frame identifier (``[await]`` stays as it is)."""
    return Frame(*pyinstrument_frame(identifier))
