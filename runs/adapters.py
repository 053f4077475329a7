"""What a queue adapter declares, as plain data that a run folder keeps (``adapters.json``).

The comparison workload drives other people's queues through adapters; the analysis splits
profiler time by queue and operation from the same declarations. Both sides read them from
here, and a run stores the declarations it used, so a machine without the adapter's package
attributes the run's samples exactly as the machine that recorded them did.

The contracts, written out once:

- a queue adapter's operations are :data:`ADAPTER_OPERATIONS`; a profiled program's map
  (``--ops``, guarantee ``undeclared``) may also name operations of its own (``render``,
  ``fetch_page``: lower case, digits and underscores). A :class:`CodePath` with an operation
  outside those, an empty file or no function is refused when it is built;
- ``status()`` answers one of :data:`STATUS_WORDS` (lower case, exactly) or None for a task
  the queue does not know; anything else is a broken adapter, not a slow one.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson

from .errors import ResultFormatError, UsageError
from .files import ADAPTERS, optional_file_inside, read_regular_file, write_atomic

ADAPTER_OPERATIONS = ("enqueue", "claim", "complete", "status", "handler")
"""Operation names a queue adapter's :class:`CodePath` may give (the analysis's categories)."""

NOT_OPERATIONS = ("other", "idle", "wait", "idle_wait")
"""Names the analysis gives to time outside every operation: no code path may claim them."""

UNATTRIBUTED_SQL = "sql"
"""The operation the SQL capture records for a statement run outside every known operation
(no ``--ops`` function, none of the queue's, no adapter call on the stack)."""

_OPERATION_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}\Z")


def check_operation_name(op: str) -> None:
    """Raise ValueError unless ``op`` can name an operation (see the module's contracts)."""
    if not isinstance(op, str) or not _OPERATION_NAME.match(op):
        raise ValueError(
            f"operation {op!r}: use a lower-case name of letters, digits and underscores "
            "(e.g. fetch_page), starting with a letter, at most 64 characters"
        )
    if op in NOT_OPERATIONS:
        raise ValueError(
            f"operation {op!r}: the analysis uses that name for time outside every "
            "operation; name the work itself (e.g. render)"
        )


STATUS_WORDS = ("pending", "running", "done", "dead", "unknown")
"""What ``status()`` may answer, exactly and in lower case (taskqueue's own state names):
waiting to be claimed, claimed and not finished, completed, given up on (dead-lettered), and
``unknown`` for a queue that cannot tell the unfinished states apart (huey keeps nothing
about a task until it has finished). None means the queue has no such task."""

GUARANTEES = ("exactly-once", "at-least-once", "at-most-once", "reference", "undeclared")
"""What :attr:`AdapterSpec.guarantee` may say: what happens to a task whose worker dies
between claim and completion (``reference``: not a queue, a baseline to compare with;
``undeclared``: a profiled program's ``--ops`` map, which says nothing about delivery)."""

DONE = "done"
"""The status word of a completed task (the drain scenario counts the others)."""

ADAPTERS_VERSION = 1


class AdapterUnavailableError(UsageError):
    """A queue adapter's library is not installed; the message names the pip package and extra."""


@dataclass(frozen=True, slots=True)
class CodePath:
    """Functions in one source file that do one queue operation.

    ``file`` is a path suffix as profilers record it (``huey/storage.py``); ``functions`` are
    bare function names as they appear in that file. The innermost mapped frame of a sample
    decides its operation, so a generic helper (``BaseSqlStorage.sql``) is left out and takes
    the operation of whichever mapped function called it. ``queueprof adapter check`` proves
    each name is defined in that file.
    """

    op: str
    file: str
    functions: tuple[str, ...]

    def __post_init__(self) -> None:
        try:
            check_operation_name(self.op)
        except ValueError as error:
            raise ValueError(f"CodePath for {self.file}: {error}") from None
        if isinstance(self.functions, str):
            raise ValueError(
                f"CodePath {self.op!r} for {self.file}: functions is one string "
                f"({self.functions!r}); give a tuple of names, e.g. ({self.functions!r},)"
            )
        if not self.file or not self.functions:
            raise ValueError(f"CodePath for {self.op!r}: give a file suffix and function names")

    def to_dict(self) -> dict[str, Any]:
        """The JSON form kept in ``adapters.json``."""
        return {"op": self.op, "file": self.file, "functions": list(self.functions)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CodePath:
        """The inverse of :meth:`to_dict`."""
        return cls(str(data["op"]), str(data["file"]), tuple(str(f) for f in data["functions"]))


@dataclass(frozen=True, slots=True)
class SqlCaller:
    """The function of a program's own code that ran a captured statement."""

    file: str
    """Its source file as Python names it (``co_filename``)."""
    function: str
    """Its bare name (``pop``), as profilers name frames."""
    qualname: str
    """Its qualified name (``JobStore.pop``), for reports."""

    def to_dict(self) -> dict[str, str]:
        """The JSON form kept in ``sql-statements.json``."""
        return {"file": self.file, "function": self.function, "qualname": self.qualname}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SqlCaller:
        """The inverse of :meth:`to_dict`; a missing or non-text field is a ValueError."""
        values = [data.get(key) for key in ("file", "function", "qualname")]
        if not all(isinstance(value, str) and value for value in values):
            raise ValueError(f"caller {dict(data)!r} needs the texts file, function, qualname")
        return cls(*(str(value) for value in values))


@dataclass(frozen=True, slots=True)
class AdapterSpec:
    """What is known about an adapter without importing its library."""

    name: str
    """The library's name in tables and in op-samples (``huey.claim``)."""
    module: str
    """The import name of the library (``persistqueue``)."""
    package: str | None
    """The pip package that provides ``module``; None when queueprof itself ships it."""
    exactly_once: bool
    """True when a worker killed between claim and completion neither loses nor doubles the task."""
    guarantee: str
    """The delivery guarantee in two words (``at-most-once``), next to the queue's figures."""
    delivery: str
    """One sentence on what happens to a task whose worker dies, shown next to its figures."""
    code_paths: tuple[CodePath, ...] = ()
    """Which of the library's (and the adapter's) functions do which operation."""
    has_status: bool = True
    """False when the queue has no per-task status query (the status scenario is skipped)."""

    def __post_init__(self) -> None:
        if self.guarantee not in GUARANTEES:
            raise ValueError(
                f"AdapterSpec {self.name!r}: guarantee {self.guarantee!r} is not one of "
                f"{', '.join(GUARANTEES)}"
            )
        if self.exactly_once != (self.guarantee == "exactly-once"):
            raise ValueError(
                f"AdapterSpec {self.name!r}: exactly_once={self.exactly_once} contradicts "
                f"guarantee {self.guarantee!r}"
            )
        if self.guarantee != "undeclared":
            # A queue's code paths name the queue's operations: an unknown name is a typo,
            # which would otherwise turn the time of those functions into an operation of
            # its own that no queue table shows.
            for path in self.code_paths:
                if path.op not in ADAPTER_OPERATIONS:
                    raise ValueError(
                        f"AdapterSpec {self.name!r}: CodePath op {path.op!r} for {path.file}: "
                        f"use one of {', '.join(ADAPTER_OPERATIONS)}"
                    )

    def load(self) -> ModuleType:
        """Import the library, or raise :class:`AdapterUnavailableError` naming what to install."""
        try:
            return importlib.import_module(self.module)
        except ImportError as error:
            package = self.package or self.module
            raise AdapterUnavailableError(
                f"the {self.name} adapter needs the {package!r} package, which is not installed "
                f"({error}); install it with `pip install 'queueprof[peers]'` "
                f"(or `pip install {package}`), or leave {self.name} out of --param contenders"
            ) from None

    def available(self) -> bool:
        """True when :meth:`load` would succeed."""
        try:
            self.load()
        except AdapterUnavailableError:
            return False
        return True

    def to_dict(self) -> dict[str, Any]:
        """The JSON form kept in ``adapters.json``."""
        return {
            "name": self.name,
            "module": self.module,
            "package": self.package,
            "exactly_once": self.exactly_once,
            "guarantee": self.guarantee,
            "delivery": self.delivery,
            "has_status": self.has_status,
            "code_paths": [path.to_dict() for path in self.code_paths],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AdapterSpec:
        """The inverse of :meth:`to_dict`."""
        package = data.get("package")
        return cls(
            name=str(data["name"]),
            module=str(data["module"]),
            package=None if package is None else str(package),
            exactly_once=bool(data["exactly_once"]),
            guarantee=str(data["guarantee"]),
            delivery=str(data["delivery"]),
            code_paths=tuple(CodePath.from_dict(p) for p in data.get("code_paths", ())),
            has_status=bool(data.get("has_status", True)),
        )


def write_adapter_specs(run_dir: Path, specs: Sequence[AdapterSpec]) -> Path:
    """Write ``adapters.json`` (each spec once, by name); returns its path."""
    unique = {spec.name: spec for spec in specs}
    document = {
        "schema_version": ADAPTERS_VERSION,
        "adapters": [unique[name].to_dict() for name in sorted(unique)],
    }
    path = run_dir / ADAPTERS
    write_atomic(path, orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    return path


MAX_ADAPTERS_BYTES = 16 << 20
"""The largest ``adapters.json`` read: a run's declarations take a few kB."""


def read_adapter_specs(run_dir: Path) -> tuple[AdapterSpec, ...]:
    """The specs a run stored (empty when it stored none: runs of older versions, bare runs).

    ``adapters.json`` must be a regular file inside ``run_dir`` of at most
    :data:`MAX_ADAPTERS_BYTES` (:class:`UnsafePathError` or :class:`ResultFormatError`
    otherwise): a link out of the folder is never read, a FIFO never waited on.
    """
    path = optional_file_inside(run_dir, ADAPTERS)
    if path is None:
        return ()
    try:
        data = read_regular_file(path, MAX_ADAPTERS_BYTES)
    except OSError as error:
        raise ResultFormatError(f"{path}: cannot be read ({error.strerror})") from None
    if len(data) > MAX_ADAPTERS_BYTES:
        raise ResultFormatError(
            f"{path}: larger than {MAX_ADAPTERS_BYTES:,} bytes; a run's adapters take a few kB"
        )
    try:
        document = orjson.loads(data)
        version = document.get("schema_version")
        if version != ADAPTERS_VERSION:
            raise ResultFormatError(
                f"{path}: adapters schema_version {version!r} is not {ADAPTERS_VERSION}; "
                "analyse it with the queueprof version that wrote it"
            )
        return tuple(AdapterSpec.from_dict(entry) for entry in document["adapters"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as error:
        raise ResultFormatError(
            f"{path}: not an adapters file this version reads ({error})"
        ) from None
