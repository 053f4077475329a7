"""The manifest of a run folder (``traces/<run-id>/``), its artifacts, run ids, listing.

The manifest is the contract with ``analysis/``: what ran (workload, parameters, profiler,
queue strategy), where (environment), when, how it ended (``status``) and which artifacts the
folder holds.
"""

from __future__ import annotations

import dataclasses
import re
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import orjson

from .errors import ResultFormatError, RunIdError, UnsafePathError
from .files import MANIFEST, RESULTS, check_relative_path, read_regular_file
from .results import SCHEMA_VERSION, check_schema_version

MAX_MANIFEST_BYTES = 16 << 20
"""A manifest is a few kB; a larger file is not one (and is never read whole)."""

_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class RunStatus(StrEnum):
    """How a run ended (``running`` while it runs, or if the process died outright)."""

    RUNNING = "running"
    COMPLETE = "complete"
    INTERRUPTED = "interrupted"
    FAILED = "failed"


ARTIFACT_KEYS = ("kind", "path", "format", "viewer")
PROGRAM_WORKLOAD = "program"
"""The workload of a run of someone's program (``queueprof profile -- python app.py``)."""
"""Keys every manifest artifact entry has (``description`` is optional)."""


class ArtifactKind(StrEnum):
    """What an artifact holds (the analysis picks loaders by kind and format)."""

    CPU_PROFILE = "cpu-profile"
    TIMELINE = "timeline"
    ALLOCATIONS = "allocations"
    SAMPLES = "samples"
    SQL = "sql"
    REPORT = "report"
    DECLARATION = "declaration"
    """What the run declares about its code: the queue adapters' specs (``adapters.json``)."""
    SCREENSHOT = "screenshot"
    """A PNG of another artifact as its viewer showed it (``queueprof view-check``)."""
    SCHEMA = "schema"
    """The schema and planner statistics the run's databases ended with (``schema.sql``)."""


@dataclass(frozen=True, slots=True)
class Artifact:
    """One file a run wrote into its folder, as the manifest lists it."""

    kind: ArtifactKind
    path: str
    """Relative to the run folder."""
    format: str
    """``speedscope``, ``pyinstrument-session``, ``html``, ``chrome-trace``,
    ``memray-capture``, ``collapsed``, ``json``, ``npz``, ``png``."""
    viewer: str
    """How a person opens it, as a command or instruction."""
    description: str = ""

    def to_dict(self) -> dict[str, str]:
        """The manifest entry."""
        return {
            "kind": str(self.kind),
            "path": self.path,
            "format": self.format,
            "viewer": self.viewer,
            "description": self.description,
        }


@dataclass(frozen=True, slots=True)
class RunError:
    """Why a run failed."""

    type: str
    message: str
    traceback: str


@dataclass(frozen=True, slots=True)
class Manifest:
    """``manifest.json``: everything needed to interpret a run folder."""

    run_id: str
    workload: str
    size: str
    params: Mapping[str, Any]
    profiler: Mapping[str, Any]
    queue: Mapping[str, Any]
    targets_files: tuple[str, ...]
    environment: Mapping[str, Any]
    command: tuple[str, ...]
    started_at: str
    status: RunStatus = RunStatus.RUNNING
    ended_at: str | None = None
    error: RunError | None = None
    artifacts: tuple[Mapping[str, str], ...] = ()
    results: str | None = None
    """File name of the results in the folder, once written."""

    def finished(
        self,
        status: RunStatus,
        *,
        artifacts: Sequence[Artifact] = (),
        error: RunError | None = None,
        results: str | None = RESULTS,
    ) -> Manifest:
        """A copy marking the run as ended now."""
        return dataclasses.replace(
            self,
            status=status,
            ended_at=now_iso(),
            artifacts=tuple(_artifact_entry(a) for a in artifacts),
            error=error,
            results=results,
        )

    def to_json(self) -> bytes:
        """Indented JSON with sorted keys and ``schema_version``."""
        body = {"schema_version": SCHEMA_VERSION, **dataclasses.asdict(self)}
        return orjson.dumps(body, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)

    @classmethod
    def read(cls, path: Path) -> Manifest:
        """The manifest in the file ``path``: a regular file of at most
        :data:`MAX_MANIFEST_BYTES` (a FIFO would hang a listing, a 2 GB file fill memory)."""
        try:
            text = read_regular_file(path, MAX_MANIFEST_BYTES)
        except UnsafePathError as error:
            raise ResultFormatError(str(error)) from None
        except OSError as error:
            raise ResultFormatError(f"{path}: cannot be read ({error.strerror})") from None
        if len(text) > MAX_MANIFEST_BYTES:
            raise ResultFormatError(
                f"{path}: larger than {MAX_MANIFEST_BYTES:,} bytes; a manifest is a few kB"
            )
        return cls.from_json(text, source=str(path))

    @classmethod
    def from_json(cls, text: bytes | str, *, source: str = MANIFEST) -> Manifest:
        """Read :meth:`to_json` output back; refuses an unknown ``schema_version``."""
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError as error:
            raise ResultFormatError(f"{source}: not JSON ({error})") from None
        if not isinstance(data, dict):
            raise ResultFormatError(f"{source}: expected a JSON object at the top level")
        check_schema_version(data, source)
        data.pop("schema_version")
        try:
            return cls(**_checked_fields(data, source))
        except (KeyError, TypeError, ValueError) as error:
            raise ResultFormatError(f"{source}: not a valid run manifest ({error})") from None


@dataclass(frozen=True, slots=True)
class RunSummary:
    """One past run, as ``queueprof list`` shows it."""

    run_id: str
    path: Path
    workload: str
    status: str
    started_at: str
    profiler: str = "none"
    problem: str | None = field(default=None)
    """Set when the folder's manifest cannot be read."""


def _artifact_entry(artifact: Artifact) -> dict[str, str]:
    entry = artifact.to_dict()
    missing = [key for key in ARTIFACT_KEYS if key not in entry]
    if missing:
        raise ValueError(f"artifact {entry!r} lacks {', '.join(missing)}")
    return entry


_TEXT_FIELDS = ("workload", "size", "started_at")
_OBJECT_FIELDS = ("params", "profiler", "queue", "environment")
_TEXT_LIST_FIELDS = ("targets_files", "command")
_ERROR_KEYS = ("type", "message", "traceback")


def _checked_fields(data: dict[str, Any], source: str) -> dict[str, Any]:
    """The constructor arguments of :class:`Manifest`, every field's type checked.

    Every reader (``analyze``, ``list``, ``compare``, ``report``) goes through here, so a
    hostile or damaged manifest is refused once, by name, instead of crashing later where a
    field is used (``params`` as a list, ``profiler`` as a string) or steering a path out of
    the folder (a ``run_id`` of ``../../x``, an artifact path with ``..``).
    """
    run_id = data["run_id"]
    if not isinstance(run_id, str) or not _RUN_ID.match(run_id):
        raise ValueError(
            f"run_id {run_id!r} is not a safe folder name (letters, digits, '.', '_', '-')"
        )
    for name in _TEXT_FIELDS:
        _expect(data, name, str)
    for name in _OBJECT_FIELDS:
        _expect(data, name, dict)
    for name in _TEXT_LIST_FIELDS:
        items = _expect(data, name, list)
        if not all(isinstance(item, str) for item in items):
            raise ValueError(f"{name} must be a list of strings")
    _check_profiler(data["profiler"])
    ended = data.get("ended_at")
    if ended is not None and not isinstance(ended, str):
        raise ValueError(f"ended_at must be a string or null, not {type(ended).__name__}")
    failure = data.get("error")
    if failure is not None and not (
        isinstance(failure, dict)
        and set(failure) == set(_ERROR_KEYS)
        and all(isinstance(failure[key], str) for key in _ERROR_KEYS)
    ):
        raise ValueError(f"error must be null or an object of strings {', '.join(_ERROR_KEYS)}")
    results = data.get("results")
    if results is not None:
        check_relative_path(results, "results")
    return {
        **data,
        "status": RunStatus(_expect(data, "status", str)),
        "targets_files": tuple(data["targets_files"]),
        "command": tuple(data["command"]),
        "artifacts": tuple(_checked_entry(a, source) for a in _expect(data, "artifacts", list)),
        "error": None if failure is None else RunError(**failure),
    }


def _check_profiler(entry: dict[str, Any]) -> None:
    """The parts of the profiler entry readers use: name, options, problems, overhead."""
    for name, kind in (("name", str), ("options", dict), ("overhead", dict), ("problems", list)):
        value = entry.get(name)
        if value is not None and not isinstance(value, kind):
            raise ValueError(f"profiler.{name} must be a JSON {kind.__name__}, not {value!r:.80}")


def _expect(data: dict[str, Any], name: str, kind: type) -> Any:
    value = data[name]
    if not isinstance(value, kind):
        raise ValueError(
            f"{name} must be a JSON {'object' if kind is dict else kind.__name__}, "
            f"not {type(value).__name__}"
        )
    return value


def _checked_entry(entry: Any, source: str) -> dict[str, str]:
    if not isinstance(entry, dict) or any(key not in entry for key in ARTIFACT_KEYS):
        raise ResultFormatError(
            f"{source}: artifact entry {entry!r:.200} needs {', '.join(ARTIFACT_KEYS)}"
        )
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in entry.items()):
        raise ValueError(f"artifact entry {entry!r:.200}: every value must be a string")
    check_relative_path(entry["path"], "artifact path")
    return dict(entry)


def now_iso() -> str:
    """The current local time, ISO 8601 with offset, to the second."""
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def new_run_id(workload: str) -> str:
    """A sortable, readable id: ``20261128-153012-throughput-a1b2``."""
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{workload}-{secrets.token_hex(2)}"


def check_run_id(run_id: str) -> str:
    """``run_id`` if it is a safe folder name, else :class:`RunIdError`."""
    if not _RUN_ID.match(run_id):
        raise RunIdError(
            f"--run-id {run_id!r}: use letters, digits, '.', '_' and '-' only (up to 128), "
            "starting with a letter or digit"
        )
    return run_id


def list_runs(out_dir: Path) -> list[RunSummary]:
    """Every run folder in ``out_dir`` (newest first), including unreadable ones."""
    if not out_dir.is_dir():
        return []
    runs = []
    for folder in sorted(out_dir.iterdir(), reverse=True):
        manifest_path = folder / MANIFEST
        if not folder.is_dir() or not manifest_path.is_file():
            continue
        try:
            manifest = Manifest.read(manifest_path)
        except ResultFormatError as error:
            runs.append(RunSummary(folder.name, folder, "?", "unreadable", "?", "?", str(error)))
            continue
        runs.append(
            RunSummary(
                manifest.run_id,
                folder,
                manifest.workload,
                manifest.status.value,
                manifest.started_at,
                str(manifest.profiler.get("name", "none")),
            )
        )
    return runs
