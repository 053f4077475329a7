"""Workload parameters declared once, as frozen dataclasses.

Each workload has one params dataclass deriving from :class:`WorkloadParams`. Its fields,
declared with :func:`param`, are the single source for the CLI (``--param key=value``), the
size presets, validation, ``queueprof list`` and the manifest. Supported field types: ``int``,
``float``, ``bool``, ``str`` (with choices) and tuples of ``int`` or ``str`` (written
``1,5,10`` on the command line).
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar, Self

from runs import keyvalue
from taskqueue import QueueConfig

from .errors import ParameterError


class Size(StrEnum):
    """Size presets every workload defines."""

    SMOKE = "smoke"
    """A few seconds: CI and tests."""
    DEFAULT = "default"
    """Well under a minute."""
    FULL = "full"
    """Minutes: for numbers worth comparing."""


WORKER_MODES = ("async", "process")
INT_MIN, INT_MAX = -(2**63), 2**63 - 1
"""The whole numbers a parameter may hold: what JSON readers and SQLite take as integers."""
TASK_TYPES = ("noop", "sleep", "cpu", "alloc", "fail")


@dataclass(frozen=True, slots=True)
class ParamSpec:
    """What a parameter means and which values are valid."""

    help: str
    choices: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    optional_list: bool = False
    """A list parameter that may be empty (an optional extra, not a sweep)."""

    def valid(self) -> str:
        """The valid values, as an error message or ``queueprof list`` shows them."""
        if self.choices is not None:
            return "one of " + ", ".join(self.choices)
        if self.minimum is None and self.maximum is None:
            return "any number"
        low = "-inf" if self.minimum is None else _bound(self.minimum)
        high = "inf" if self.maximum is None else _bound(self.maximum)
        return f"{low}..{high}"


def _bound(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:g}"


def param(
    default: Any,
    help: str,
    *,
    choices: Sequence[str] | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    optional_list: bool = False,
) -> Any:
    """A params dataclass field with its help text and valid range or choices."""
    if isinstance(default, bool) and choices is None:
        choices = ("true", "false")
    spec = ParamSpec(
        help, None if choices is None else tuple(choices), minimum, maximum, optional_list
    )
    return dataclasses.field(default=default, metadata={"spec": spec})


@dataclass(frozen=True)
class WorkloadParams:
    """Base of every workload's params dataclass: validation, parsing and description.

    Subclasses are ``@dataclass(frozen=True)`` and declare every field with :func:`param`.
    They may extend ``__post_init__`` for checks across fields (call ``super().__post_init__()``).
    """

    workload_name: ClassVar[str] = "workload"

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            _check(f.name, hints[f.name], _spec(f), getattr(self, f.name))

    def check_ready(self) -> None:
        """Checks that need the environment (e.g. an optional package is installed).

        Run when a run is planned, before anything is written, not when params are built
        (size presets are built at import). Raise a :class:`~workloads.errors.UsageError`
        subclass naming the fix. The default checks nothing.
        """

    def check_queue(self, config: QueueConfig) -> None:
        """Checks of these params against the queue strategy (``--queue``), run when the
        plan is made; raise :class:`ParameterError` naming the fix. The default checks
        nothing."""

    @classmethod
    def specs(cls) -> list[tuple[str, str, ParamSpec, Any]]:
        """(name, type name, spec, default) of every parameter, in declaration order."""
        hints = typing.get_type_hints(cls)
        return [
            (f.name, _type_name(hints[f.name]), _spec(f), f.default)
            for f in dataclasses.fields(cls)
        ]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values (tuples become lists)."""
        return {
            f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v
            for f in dataclasses.fields(self)
        }

    def with_overrides(self, items: Iterable[str]) -> Self:
        """A copy with ``key=value`` strings applied (dashes and underscores interchangeable).

        Raises :class:`ParameterError` naming the key and the valid keys or values.
        """
        hints = typing.get_type_hints(type(self))
        known = {f.name: f for f in dataclasses.fields(self)}
        changes: dict[str, Any] = {}
        try:
            for pair in keyvalue.pairs(items):
                if pair.key not in known:
                    raise ParameterError(
                        f"unknown {self.workload_name} parameter {pair.key!r}; "
                        f"valid: {', '.join(known)} (see `queueprof list`)"
                    )
                spec = _spec(known[pair.key])
                changes[pair.key] = _parse(pair.key, hints[pair.key], spec, pair.raw)
        except keyvalue.KeyValueError as error:
            example = f", e.g. --param {next(iter(known))}=..."
            raise ParameterError(
                f"--param {error.item!r}: expected {error.expected}"
                + (example if error.expected == keyvalue.KEY_VALUE else "")
            ) from None
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Build from :meth:`to_dict` output (lists become tuples again)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ParameterError(
                f"unknown {cls.workload_name} parameter(s) {', '.join(unknown)}; "
                f"valid: {', '.join(sorted(known))}"
            )
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


def _spec(f: dataclasses.Field[Any]) -> ParamSpec:
    spec = f.metadata.get("spec")
    if not isinstance(spec, ParamSpec):
        raise TypeError(f"parameter {f.name!r} must be declared with workloads.params.param()")
    return spec


def _type_name(kind: Any) -> str:
    if typing.get_origin(kind) is tuple:
        return f"list of {typing.get_args(kind)[0].__name__}"
    return str(kind.__name__)


def _check(name: str, kind: Any, spec: ParamSpec, value: Any) -> None:
    if typing.get_origin(kind) is tuple:
        item_kind = typing.get_args(kind)[0]
        if not isinstance(value, tuple) or not (value or spec.optional_list):
            raise ParameterError(
                f"parameter {name}={value!r}: expected a non-empty list, e.g. {name}=1,5,10"
            )
        for item in value:
            _check_one(name, item_kind, spec, item, whole=value)
        return
    _check_one(name, kind, spec, value, whole=value)


def _check_one(name: str, kind: Any, spec: ParamSpec, value: Any, *, whole: Any) -> None:
    written = ",".join(map(str, whole)) if isinstance(whole, tuple) else repr(whole)
    shown = f"parameter {name}={written}"
    if kind is bool:
        if not isinstance(value, bool):
            raise ParameterError(f"{shown}: expected true or false")
        return
    if kind in (int, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ParameterError(f"{shown}: expected a number in {spec.valid()}")
        if kind is int and not isinstance(value, int):
            raise ParameterError(f"{shown}: expected a whole number in {spec.valid()}")
        if not math.isfinite(value):
            raise ParameterError(f"{shown}: expected a finite number in {spec.valid()}")
        if kind is int and not INT_MIN <= value <= INT_MAX:
            # The manifest and results are JSON with 64-bit integers (orjson), like SQLite's.
            raise ParameterError(
                f"{shown} is out of range; valid: {spec.valid()}, and a whole number "
                "parameter fits in 64 bits (-2**63..2**63-1)"
            )
        too_low = spec.minimum is not None and value < spec.minimum
        too_high = spec.maximum is not None and value > spec.maximum
        if too_low or too_high:
            raise ParameterError(f"{shown} is out of range; valid: {spec.valid()}")
        return
    if not isinstance(value, str):
        raise ParameterError(f"{shown}: expected text")
    if spec.choices is not None and value not in spec.choices:
        raise ParameterError(f"{shown}: unknown choice {value!r}; valid: {spec.valid()}")


def _parse(name: str, kind: Any, spec: ParamSpec, raw: str) -> Any:
    if typing.get_origin(kind) is tuple:
        item_kind = typing.get_args(kind)[0]
        try:
            parts = keyvalue.split_list(raw)
        except keyvalue.KeyValueError as error:
            raise ParameterError(f"parameter {name}={raw!r}: expected {error.expected}") from None
        return tuple(_parse_one(name, item_kind, spec, part) for part in parts)
    return _parse_one(name, kind, spec, raw)


def _parse_one(name: str, kind: Any, spec: ParamSpec, raw: str) -> Any:
    try:
        return keyvalue.coerce(kind, raw)
    except keyvalue.KeyValueError as error:
        valid = "" if kind is bool else f" in {spec.valid()}"
        raise ParameterError(
            f"parameter {name}={raw!r}: expected {error.expected}{valid}"
        ) from None


# Field constructors shared by the workloads, so one option reads the same everywhere.


def workers_param(default: int) -> Any:
    """Worker engines (async) or worker processes (process)."""
    return param(default, "worker engines or processes", minimum=1, maximum=64)


def worker_counts_param(default: tuple[int, ...]) -> Any:
    """The worker counts a stepped workload runs, one after the other."""
    return param(default, "worker counts to run, in order (e.g. 1,5,10)", minimum=1, maximum=64)


def tasks_param(default: int, help: str = "tasks per run") -> Any:
    """How many tasks a run (or each step) enqueues."""
    return param(default, help, minimum=1, maximum=10_000_000)


def mode_param(default: str = "async") -> Any:
    """Where workers run: one event loop or one process each."""
    return param(
        default, "worker mode: engines on one event loop, or OS processes", choices=WORKER_MODES
    )


def task_type_param(default: str = "noop") -> Any:
    """Which built-in handler the tasks use."""
    return param(default, "task handler (taskqueue.handlers)", choices=TASK_TYPES)


def payload_bytes_param(default: int = 0) -> Any:
    """Padding added to each task's payload."""
    return param(default, "bytes of padding in each task payload", minimum=0, maximum=4_194_304)
