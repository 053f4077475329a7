"""Profiler wrappers: one module per tool behind the protocol in :mod:`profilers.base`."""

from __future__ import annotations

from runs import Artifact, ArtifactKind

from .base import (
    Profiler,
    ProfilerError,
    ProfilerOptionError,
    ProfilerOptions,
    ProfilerUnavailable,
)
from .memray_wrapper import MemrayProfiler
from .none import NoProfiler
from .pyinstrument_wrapper import PyinstrumentProfiler
from .pyspy_wrapper import PySpyProfiler
from .viztracer_wrapper import VizTracerProfiler

REGISTRY: dict[str, type[Profiler]] = {
    cls.name: cls
    for cls in (
        NoProfiler,
        PyinstrumentProfiler,
        MemrayProfiler,
        PySpyProfiler,
        VizTracerProfiler,
    )
}
"""Every profiler by the name users type (``--profiler NAME``)."""


def get_profiler(name: str) -> type[Profiler]:
    """The profiler class called ``name``; :class:`ProfilerOptionError` lists the valid ones."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ProfilerOptionError(
            f"unknown profiler {name!r}; choose one of {', '.join(REGISTRY)}"
        ) from None


__all__ = [
    "REGISTRY",
    "Artifact",
    "ArtifactKind",
    "MemrayProfiler",
    "NoProfiler",
    "Profiler",
    "ProfilerError",
    "ProfilerOptionError",
    "ProfilerOptions",
    "ProfilerUnavailable",
    "PySpyProfiler",
    "PyinstrumentProfiler",
    "VizTracerProfiler",
    "get_profiler",
]
