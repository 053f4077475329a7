"""The profiler protocol: one small interface every wrapper implements.

A profiler wraps one workload run and leaves artifacts in the run folder. Two shapes exist:

- in-process (pyinstrument, memray, viztracer, none): :meth:`Profiler.session` is a context
  manager the runner enters *inside* the running event loop, around ``workload.run``; after
  the loop ends the runner calls :meth:`Profiler.finish`, which writes reports and returns the
  artifacts.
- launcher (py-spy): the profiler runs the whole workload as a child process
  (:meth:`Profiler.command`), then :meth:`Profiler.finish` converts what it wrote.

Options are one frozen dataclass per profiler (:class:`ProfilerOptions`): CLI
``--profiler-option key=value`` and the manifest entry both derive from its fields.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import textwrap
import types
import typing
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, ClassVar

from runs import keyvalue
from runs.errors import QueueprofError, UsageError
from runs.manifest import Artifact as Artifact  # re-exported for the wrappers
from runs.manifest import ArtifactKind as ArtifactKind


class ProfilerError(QueueprofError):
    """Base class of the errors profilers raise; messages say what to do next."""


class ProfilerUnavailable(ProfilerError, UsageError):
    """The profiler cannot run here (not installed, no permission...): exit status 2."""


class ProfilerOptionError(ProfilerError, UsageError, ValueError):
    """A ``--profiler-option`` is unknown or has a bad value: exit status 2."""


@dataclass(frozen=True)
class ProfilerOptions:
    """Base of every profiler's options; subclasses add frozen fields with defaults."""

    def to_dict(self) -> dict[str, Any]:
        """The manifest entry."""
        return dataclasses.asdict(self)

    @classmethod
    def parse(cls, pairs: Sequence[str]) -> ProfilerOptions:
        """Build from ``key=value`` strings; errors name the key and list the valid ones."""
        known = {f.name: f for f in fields(cls)}
        hints = typing.get_type_hints(cls)
        values: dict[str, Any] = {}
        try:
            for pair in keyvalue.pairs(pairs):
                if pair.key not in known:
                    valid = ", ".join(known) or "none (this profiler takes no options)"
                    raise ProfilerOptionError(
                        f"--profiler-option {pair.key!r} is not an option of this profiler; "
                        f"valid: {valid}"
                    )
                values[pair.key] = _coerce(pair.key, hints[pair.key], pair.raw)
        except keyvalue.KeyValueError as error:
            raise ProfilerOptionError(
                f"--profiler-option {error.item!r}: expected {error.expected}"
            ) from None
        try:
            return cls(**values)
        except ValueError as error:
            raise ProfilerOptionError(f"--profiler-option: {error}") from None

    @classmethod
    def describe(cls) -> list[OptionSpec]:
        """Every option with its type, default and help, for ``queueprof list``."""
        hints = typing.get_type_hints(cls)
        helps = _field_docstrings(cls)
        return [
            OptionSpec(f.name, _shown_type(hints[f.name]), f.default, helps.get(f.name, ""))
            for f in fields(cls)
        ]


@dataclass(frozen=True)
class OptionSpec:
    """One profiler option as ``queueprof list`` shows it."""

    name: str
    type_name: str
    default: Any
    help: str
    """The docstring under the option's field, on one line ("" when it has none)."""


class Profiler(ABC):
    """One profiling tool wrapped for a workload run."""

    name: ClassVar[str]
    description: ClassVar[str]
    options_type: ClassVar[type[ProfilerOptions]] = ProfilerOptions
    launcher: ClassVar[bool] = False
    """True when the profiler runs the workload as a child process (see :meth:`command`)."""
    queue_options: ClassVar[str] = ""
    """Queue options (``key=value,...``) the profiler needs, e.g. SQL capture for lanes."""

    def __init__(self, options: ProfilerOptions, run_dir: Path) -> None:
        self.options = options
        self.run_dir = run_dir

    @classmethod
    def check_available(cls) -> None:
        """Raise :class:`ProfilerUnavailable`, with the fix, if the tool cannot run here."""
        return None

    @contextmanager
    def session(self) -> Iterator[None]:
        """Bracket the workload; entered inside the running event loop (in-process only)."""
        yield

    def command(self, child: Sequence[str]) -> list[str]:
        """The command that runs ``child`` under this profiler (launchers only)."""
        raise ProfilerError(f"{self.name} is not a launcher profiler")

    def explain(self, stderr: str) -> str:
        """Why a launcher's child failed, from its stderr, with the fix where one is known."""
        return stderr.strip()[-800:] or "no output"

    def launcher_env(self) -> dict[str, str]:
        """Environment variables a launcher runs with, besides this process's own."""
        return {}

    def owns_line(self, line: str) -> bool:
        """True for a line the launcher printed itself (not its child), on its standard
        output or its standard error."""
        return False

    def read_output(self, own_lines: Sequence[str], stderr: str) -> None:
        """Read what a launcher printed about its run, once it ended: its own lines of
        standard output (:meth:`owns_line`) and its standard error. What it says goes into
        :meth:`manifest`; nothing of it is printed as it is."""
        return None

    @abstractmethod
    def finish(self, *, interrupted: bool = False) -> list[Artifact]:
        """Write reports from what was recorded and list every artifact now in the run folder.

        Called once after the run, also when it was interrupted or failed: write what can be
        written, and raise :class:`ProfilerError` naming what is missing and why otherwise.
        """

    def manifest(self) -> dict[str, Any]:
        """The manifest's profiler entry: name and options."""
        return {"name": self.name, "options": self.options.to_dict()}


def _field_docstrings(cls: type) -> dict[str, str]:
    """The docstring written under each field of ``cls`` and its bases, read from the source.

    The options keep their help as attribute docstrings (the way the dataclasses read best);
    Python drops those at runtime, so they are read back from the class's source.
    """
    helps: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        try:
            source = textwrap.dedent(inspect.getsource(klass))
        except (OSError, TypeError):  # builtins, or no source shipped: list without help
            continue
        body = ast.parse(source).body[0]
        if not isinstance(body, ast.ClassDef):
            continue
        for field_node, doc_node in zip(body.body, body.body[1:], strict=False):
            if (
                isinstance(field_node, ast.AnnAssign)
                and isinstance(field_node.target, ast.Name)
                and isinstance(doc_node, ast.Expr)
                and isinstance(doc_node.value, ast.Constant)
                and isinstance(doc_node.value.value, str)
            ):
                helps[field_node.target.id] = " ".join(doc_node.value.value.split())
    return helps


def _shown_type(hint: Any) -> str:
    choices = _literal_choices(hint)
    return _type_name(hint) if choices is None else "|".join(map(str, choices))


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", str(hint))


def _coerce(key: str, hint: Any, raw: str) -> Any:
    choices = _literal_choices(hint)
    if choices is not None:
        if raw not in choices:
            raise ProfilerOptionError(
                f"--profiler-option {key}={raw!r}: choose one of {', '.join(map(str, choices))}"
            )
        return raw
    base = _non_optional(hint)
    if raw.lower() in ("none", "null", "") and base is not hint:
        return None
    try:
        return keyvalue.coerce(base, raw)
    except keyvalue.KeyValueError:
        raise ProfilerOptionError(
            f"--profiler-option {key}={raw!r}: expected {_type_name(base)}"
        ) from None


def _literal_choices(hint: Any) -> tuple[Any, ...] | None:
    if typing.get_origin(hint) is typing.Literal:
        return typing.get_args(hint)
    return None


def _non_optional(hint: Any) -> Any:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return hint


Registry = Mapping[str, type[Profiler]]
