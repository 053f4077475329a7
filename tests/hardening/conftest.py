"""A real run folder (the analysis fixture) copied for each test to turn hostile."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

FIXTURE_RUN = Path(__file__).parents[1] / "analysis" / "fixtures" / "run"


@pytest.fixture
def run_folder(tmp_path: Path) -> Path:
    """A private copy of the fixture run at ``tmp_path/traces/run``."""
    return Path(shutil.copytree(FIXTURE_RUN, tmp_path / "traces" / "run"))


def edit_manifest(folder: Path, change: Callable[[dict[str, Any]], None]) -> None:
    """Apply ``change`` to the folder's manifest as plain JSON (as an attacker would)."""
    path = folder / "manifest.json"
    document = orjson.loads(path.read_bytes())
    change(document)
    path.write_bytes(orjson.dumps(document))


def add_artifact(folder: Path, path: str, fmt: str = "json", kind: str = "report") -> None:
    """List one more artifact in the folder's manifest."""
    edit_manifest(
        folder,
        lambda m: m["artifacts"].append(
            {"kind": kind, "path": path, "format": fmt, "viewer": "cat", "description": "x"}
        ),
    )


SECRET = b"root:x:0:0:SECRET-CONTENT:/root:/bin/bash\n"
"""The content of a file outside every run folder, which no output may ever show."""


def secret_file(tmp_path: Path) -> Path:
    """A file outside the run folder holding :data:`SECRET`."""
    path = tmp_path / "outside" / "passwd"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(SECRET)
    return path
