"""Screenshots of a run's artifacts in their viewers (``queueprof view-check`` writes them)."""

from __future__ import annotations

import base64

from runs import ArtifactKind

from ..errors import ArtifactError
from ..model import Screenshot
from .runfolder import LoadedRun, inside_run

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
FIX = "re-run `queueprof view-check {folder}`, which writes the screenshots again"


def load_screenshots(run: LoadedRun) -> tuple[Screenshot, ...]:
    """Every screenshot the manifest lists, with its PNG, in manifest order."""
    shots = []
    for entry in run.artifacts:
        if entry["kind"] != ArtifactKind.SCREENSHOT:
            continue
        fix = FIX.format(folder=run.folder)
        path = inside_run(
            run.folder, entry["path"], "the manifest lists this screenshot but it is missing", fix
        )
        try:
            data = path.read_bytes()
        except OSError as error:
            raise ArtifactError(path, f"cannot be read ({error.strerror})", fix) from None
        if not data.startswith(PNG_SIGNATURE):
            raise ArtifactError(path, "is not a PNG image (truncated or overwritten)", fix)
        shots.append(
            Screenshot(
                path=entry["path"],
                description=entry.get("description", ""),
                png_base64=base64.b64encode(data).decode("ascii"),
            )
        )
    return tuple(shots)
