"""A run folder (``traces/<run-id>/``): its manifest, its results and its artifacts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from runs import MANIFEST, RESULTS, Manifest, ResultFormatError, WorkloadResult
from runs.adapters import AdapterSpec, read_adapter_specs
from runs.errors import UnsafePathError
from runs.files import ADAPTERS, file_inside, optional_file_inside

from ..errors import ArtifactError, RunFolderError
from .capture import NsArray, load_op_samples
from .jsonfile import read_bytes

RUN_FIX = "re-run the workload (`queueprof run WORKLOAD`)"
SAMPLES_FORMAT = "npz"
SPEEDSCOPE_FORMAT = "speedscope"


@dataclass(frozen=True)
class LoadedRun:
    """A run folder's manifest and results, with the artifacts the manifest lists."""

    folder: Path
    manifest: Manifest
    result: WorkloadResult

    @property
    def run_id(self) -> str:
        return self.manifest.run_id

    @property
    def profiler(self) -> str:
        """The profiler's name (``none`` for a bare run)."""
        return str(self.manifest.profiler.get("name", "none"))

    @property
    def artifacts(self) -> Sequence[Mapping[str, str]]:
        return self.manifest.artifacts

    @cached_property
    def adapter_specs(self) -> tuple[AdapterSpec, ...]:
        """The queue adapters' specs the run stored (``adapters.json``; empty if none)."""
        try:
            return read_adapter_specs(self.folder)
        except (ResultFormatError, UnsafePathError) as error:
            raise ArtifactError(
                self.folder / ADAPTERS,
                _problem(error),
                f"{RUN_FIX}, or delete {ADAPTERS} to map frames by queueprof's own adapters",
            ) from None

    def optional_file(self, name: str, fix: str) -> Path | None:
        """The file ``name`` if the folder holds one (a regular file inside it), None if it
        holds nothing of that name; anything else there is an :class:`ArtifactError`."""
        return optional_run_file(self.folder, name, fix)

    @cached_property
    def op_samples(self) -> Mapping[str, NsArray]:
        """Per queue operation, every duration in nanoseconds (empty when the run kept none)."""
        samples_path = self.artifact(fmt=SAMPLES_FORMAT)
        return {} if samples_path is None else dict(load_op_samples(samples_path).ops)

    def speedscope_profile(self) -> Path | None:
        """The run's speedscope CPU profile, if its manifest lists one."""
        return self.artifact(fmt=SPEEDSCOPE_FORMAT)

    def artifact(self, *, fmt: str, path: str | None = None) -> Path | None:
        """The listed artifact of format ``fmt`` (and name ``path``), or None if not listed.

        A listed artifact that is not a regular file inside the folder is an
        :class:`ArtifactError`.
        """
        for entry in self.manifest.artifacts:
            if entry["format"] == fmt and (path is None or entry["path"] == path):
                return inside_run(
                    self.folder,
                    entry["path"],
                    f"the manifest lists this {entry['kind']} artifact but the file is missing",
                    f"restore the file or re-run the workload ({RUN_FIX})",
                )
        return None


def inside_run(folder: Path, relative: str, missing: str, fix: str) -> Path:
    """``folder / relative`` if it is a regular file inside the run folder, else
    :class:`ArtifactError` (``missing`` says what is missing, ``fix`` what to do)."""
    try:
        return file_inside(folder, relative)
    except FileNotFoundError:
        raise ArtifactError(folder / relative, missing, fix) from None
    except UnsafePathError as error:
        raise ArtifactError(folder / relative, _problem(error), fix) from None


def optional_run_file(folder: Path, name: str, fix: str) -> Path | None:
    """The file ``name`` if ``folder`` holds one (a regular file inside it), None if it holds
    nothing of that name; a link out of the folder, a folder or a FIFO there is an
    :class:`ArtifactError` (``fix`` says what to do), and is never read."""
    try:
        return optional_file_inside(folder, name)
    except UnsafePathError as error:
        raise ArtifactError(folder / name, _problem(error), fix) from None


def _problem(error: Exception) -> str:
    return str(error).split(": ", 1)[-1]


def resolve_run(argument: str, traces: Path = Path("traces")) -> Path:
    """The run folder ``argument`` names: a folder path, or a run id under ``traces``."""
    candidates = [Path(argument)]
    if "/" not in argument and argument not in (".", ".."):
        candidates.append(traces / argument)
    for candidate in candidates:
        if (candidate / MANIFEST).is_file():
            return candidate
    tried = " or ".join(repr(str(c)) for c in candidates)
    if any(c.is_dir() for c in candidates):
        raise RunFolderError(
            f"{tried}: no {MANIFEST} in the folder, so it is not a run folder; pass a folder "
            "that `queueprof run` wrote (see `queueprof list`)"
        )
    raise RunFolderError(
        f"run {argument!r} not found (looked for {tried}); pass a run folder or a run id "
        f"from `queueprof list --out {traces}`"
    )


def load_run(folder: Path) -> LoadedRun:
    """Read the manifest and results of the run folder ``folder``."""
    manifest_path = inside_run(folder, MANIFEST, "the run manifest is missing", RUN_FIX)
    try:
        manifest = Manifest.from_json(
            read_bytes(manifest_path, "the run manifest", RUN_FIX), source=str(manifest_path)
        )
    except ResultFormatError as error:
        raise ArtifactError(manifest_path, str(error).split(": ", 1)[-1], RUN_FIX) from None
    results_path = inside_run(
        folder, manifest.results or RESULTS, "the run's results are missing", RUN_FIX
    )
    try:
        result = WorkloadResult.from_json(
            read_bytes(results_path, "the run's results", RUN_FIX), source=str(results_path)
        )
    except ResultFormatError as error:
        raise ArtifactError(results_path, str(error).split(": ", 1)[-1], RUN_FIX) from None
    return LoadedRun(folder, manifest, result)


def open_run(argument: Path | str, traces: Path = Path("traces")) -> LoadedRun:
    """The run folder ``argument`` names (a path, or a run id under ``traces``), read."""
    return load_run(resolve_run(str(argument), traces))


def latest_runs(traces: Path, count: int) -> list[Path]:
    """The ``count`` newest run folders in ``traces`` (newest first), by start time."""
    if not traces.is_dir():
        raise RunFolderError(f"--latest: {str(traces)!r} is not a folder; run a workload first")
    runs = []
    for folder in traces.iterdir():
        manifest_path = folder / MANIFEST
        if folder.is_dir() and manifest_path.is_file():
            try:
                started = Manifest.read(manifest_path).started_at
            except ResultFormatError:
                started = ""
            runs.append((started, folder.name, folder))
    runs.sort(reverse=True)
    if len(runs) < count:
        raise RunFolderError(
            f"--latest {count}: {str(traces)!r} holds {len(runs)} run folder(s); run more "
            "workloads or ask for fewer"
        )
    return [folder for _, _, folder in runs[:count]]
