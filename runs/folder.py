"""A run folder on disk, and the ONLY code that writes its ``manifest.json``.

The runner creates the folder and finishes it; a launcher (py-spy) adds its profiler's entry
and artifacts after its child run ended; the overhead baseline adds its ratios; the viewer
check lists its screenshots. Each of those goes through :class:`RunFolder`, which re-reads
the manifest, applies one change and writes it back atomically while it holds an exclusive
lock on the folder, so two writers never lose each other's change.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import ResultFormatError, RunIdError
from .files import MANIFEST, RESULTS, output_error, write_atomic
from .manifest import Artifact, ArtifactKind, Manifest, RunError, RunStatus
from .results import WorkloadResult


class RunFolder:
    """``<out>/<run-id>/``: claim it once, then change its manifest one step at a time."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def manifest_path(self) -> Path:
        """``<folder>/manifest.json``."""
        return self.path / MANIFEST

    @classmethod
    def create(cls, path: Path, manifest: Manifest) -> RunFolder:
        """Claim ``path`` (it must not exist) and write its first manifest.

        ``mkdir`` is the claim: of two runs racing on one run id, exactly one creates the
        folder; the other gets :class:`RunIdError` and has written nothing.
        """
        fix = "pass --out with a folder you can write to (nothing was written)"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.mkdir()
        except FileExistsError:
            raise RunIdError(
                f"run folder {str(path)!r} already exists; choose another --run-id or --out"
            ) from None
        except OSError as error:  # read-only, full, under a file, no permission
            raise output_error(path, error, fix) from None
        folder = cls(path)
        try:
            with folder._locked():
                write_atomic(folder.manifest_path, manifest.to_json())
        except OSError as error:  # a full disk: leave no half-made folder behind
            with contextlib.suppress(OSError):  # best effort: the write error is the news
                path.rmdir()
            raise output_error(folder.manifest_path, error, fix) from None
        return folder

    @classmethod
    def claimed(cls, path: Path) -> RunFolder:
        """The folder a launcher claimed with :meth:`create` for the run it starts as a child.

        Refused with :class:`RunIdError` unless it holds the manifest of a run of that id that
        has not ended: the child of a launcher that lost a race never gets this far (the
        launcher stops at its own claim), and a finished run is never written into again.
        """
        folder = cls(path)
        try:
            manifest = folder.read()
        except (OSError, ResultFormatError) as error:
            raise RunIdError(
                f"{str(path)!r} is not a run folder claimed for this run ({error}); "
                "--claimed is for the child a launcher (py-spy) starts"
            ) from None
        if manifest.run_id != path.name or manifest.status is not RunStatus.RUNNING:
            raise RunIdError(
                f"run folder {str(path)!r} holds run {manifest.run_id!r}, "
                f"{manifest.status.value}; it cannot be run into again"
            )
        return folder

    def read(self) -> Manifest:
        """The manifest as it is now (``ResultFormatError`` if it cannot be read)."""
        return Manifest.read(self.manifest_path)

    def update(self, change: Callable[[Manifest], Manifest]) -> Manifest:
        """Re-read the manifest, apply ``change`` and write the result; returns it."""
        with self._locked():
            manifest = change(self.read())
            data = manifest.to_json()
            try:
                write_atomic(self.manifest_path, data)
            except OSError as error:
                if error.errno not in (errno.ENOSPC, errno.EDQUOT):
                    raise
                # A full disk has no room for the temporary copy, and a manifest left saying
                # `running` would lie about the run: rewrite it in place (truncating first
                # frees its own blocks for the new text, which is only a little longer).
                self.manifest_path.write_bytes(data)
        return manifest

    def finish(
        self,
        status: RunStatus,
        *,
        artifacts: Sequence[Artifact] = (),
        error: RunError | None = None,
        profiler: Mapping[str, Any] | None = None,
    ) -> Manifest:
        """Mark the run ended now, listing its artifacts (and the profiler's final entry)."""

        def ended(manifest: Manifest) -> Manifest:
            if profiler is not None:
                manifest = dataclasses.replace(manifest, profiler=profiler)
            return manifest.finished(status, artifacts=artifacts, error=error)

        return self.update(ended)

    def add_artifacts(
        self,
        artifacts: Sequence[Artifact],
        *,
        profiler: Mapping[str, Any] | None = None,
        command: Sequence[str] = (),
    ) -> Manifest:
        """List more artifacts; optionally replace the profiler entry and the command line."""

        def added(manifest: Manifest) -> Manifest:
            return dataclasses.replace(
                manifest,
                artifacts=(*manifest.artifacts, *(a.to_dict() for a in artifacts)),
                profiler=manifest.profiler if profiler is None else profiler,
                command=tuple(command) or manifest.command,
            )

        return self.update(added)

    def replace_artifacts(self, kind: ArtifactKind, artifacts: Sequence[Artifact]) -> Manifest:
        """Drop every artifact of ``kind`` and list ``artifacts`` instead (re-made screenshots)."""

        def replaced(manifest: Manifest) -> Manifest:
            kept = tuple(a for a in manifest.artifacts if a["kind"] != kind)
            return dataclasses.replace(
                manifest, artifacts=kept + tuple(a.to_dict() for a in artifacts)
            )

        return self.update(replaced)

    def set_profiler(self, entry: Mapping[str, Any]) -> Manifest:
        """Replace the manifest's profiler entry (e.g. with the overhead ratios added)."""
        return self.update(lambda manifest: dataclasses.replace(manifest, profiler=entry))

    def write_results(self, result: WorkloadResult) -> None:
        """``results.json``, atomically."""
        write_atomic(self.path / RESULTS, result.to_json())

    def read_results(self) -> WorkloadResult:
        """``results.json`` (``ResultFormatError`` if it cannot be read)."""
        path = self.path / RESULTS
        return WorkloadResult.from_json(path.read_bytes(), source=str(path))

    @contextmanager
    def _locked(self) -> Iterator[None]:
        # flock on the folder itself: held by one writer at a time, released if it dies.
        fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)
