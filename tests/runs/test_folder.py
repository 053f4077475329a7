"""The run folder has one writer of manifest.json, claims its folder once, and loses no change."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest

from runs import (
    MANIFEST,
    Artifact,
    ArtifactKind,
    Manifest,
    RunFolder,
    RunIdError,
    RunStatus,
    UsageError,
)

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("runs", "formats", "taskqueue", "workloads", "profilers", "analysis", "queueprof")


def manifest(run_id: str = "r1") -> Manifest:
    return Manifest(
        run_id=run_id,
        workload="throughput",
        size="smoke",
        params={},
        profiler={"name": "none", "options": {}},
        queue={},
        targets_files=(),
        environment={},
        command=(),
        started_at="2026-12-04T00:00:00+0000",
    )


def artifact(name: str, kind: ArtifactKind = ArtifactKind.CPU_PROFILE) -> Artifact:
    return Artifact(kind, name, "speedscope", "npx speedscope")


def test_only_runs_folder_writes_the_manifest() -> None:
    """GIVEN every module of the project WHEN searched for writes of the manifest THEN only
    ``runs/folder.py`` writes it (the manifest's name may appear elsewhere, its writes not)."""
    write = re.compile(r"(write_atomic|write_text|write_bytes|open)\(.*(MANIFEST|manifest)", re.I)
    writers = {
        path.relative_to(ROOT).as_posix()
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if any(write.search(line) for line in path.read_text().splitlines())
    }
    assert writers == {"runs/folder.py"}


def test_a_folder_is_claimed_once(tmp_path: Path) -> None:
    RunFolder.create(tmp_path / "r1", manifest())
    with pytest.raises(RunIdError, match="already exists") as caught:
        RunFolder.create(tmp_path / "r1", manifest())
    assert isinstance(caught.value, UsageError)
    assert RunFolder(tmp_path / "r1").read().status is RunStatus.RUNNING


def test_concurrent_changes_are_all_kept(tmp_path: Path) -> None:
    """Sixteen threads each add an artifact: none of the read-modify-writes is lost."""
    folder = RunFolder.create(tmp_path / "r1", manifest())

    def add(index: int) -> None:
        RunFolder(folder.path).add_artifacts([artifact(f"a{index}.json")])

    threads = [threading.Thread(target=add, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    paths = sorted(a["path"] for a in folder.read().artifacts)
    assert paths == sorted(f"a{i}.json" for i in range(16))


def test_finish_and_replace(tmp_path: Path) -> None:
    folder = RunFolder.create(tmp_path / "r1", manifest())
    folder.finish(
        RunStatus.COMPLETE,
        artifacts=[artifact("p.json"), artifact("old.png", ArtifactKind.SCREENSHOT)],
        profiler={"name": "pyinstrument", "options": {"interval": 0.001}},
    )
    folder.replace_artifacts(
        ArtifactKind.SCREENSHOT, [artifact("new.png", ArtifactKind.SCREENSHOT)]
    )
    done = folder.read()
    assert done.status is RunStatus.COMPLETE
    assert done.ended_at is not None
    assert done.profiler["name"] == "pyinstrument"
    assert [a["path"] for a in done.artifacts] == ["p.json", "new.png"]
    assert (folder.path / MANIFEST).is_file()
