"""Issue 16 items 1 and 2: a run folder may only reference regular files inside itself.

Every reader (``analyze``, ``list``, ``compare``, ``report --bundle``) reads the manifest
through ``Manifest.from_json``, which checks every field's type, the run id and every path;
artifacts are resolved with links followed and must stay inside the folder.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

import pytest

from analysis.errors import ArtifactError
from analysis.load.runfolder import load_run
from analysis.load.screenshots import load_screenshots
from queueprof.cli import main
from runs import Manifest, ResultFormatError

from .conftest import SECRET, add_artifact, edit_manifest, secret_file


def link_profile_to_secret(run_folder: Path, tmp_path: Path) -> None:
    """Replace the run's speedscope profile by a link to a file outside the folder."""
    profile = run_folder / "pyinstrument.speedscope.json"
    profile.unlink()
    profile.symlink_to(secret_file(tmp_path))


def every_byte_under(folder: Path) -> bytes:
    data = b""
    for path in folder.rglob("*"):
        if path.is_file():
            data += path.read_bytes()
            if path.suffix == ".zip":
                with zipfile.ZipFile(path) as archive:
                    data += b"".join(archive.read(name) for name in archive.namelist())
    return data


def test_bundle_refuses_a_run_id_that_climbs_out_of_the_bundle(
    run_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit_manifest(run_folder, lambda m: m.update(run_id="../../escaped"))
    status = main(["report", str(run_folder), "--bundle", str(tmp_path / "out" / "bundle")])
    assert status == 2
    assert "run_id" in capsys.readouterr().err
    assert not (tmp_path / "escaped").exists()
    assert not (tmp_path / "out").exists()


def test_bundle_refuses_an_artifact_path_with_dotdot(
    run_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret_file(tmp_path)
    add_artifact(run_folder, "../../outside/passwd")
    status = main(["report", str(run_folder), "--bundle", str(tmp_path / "bundle")])
    assert status == 2
    assert "leaves the run folder" in capsys.readouterr().err
    assert not (tmp_path / "bundle").exists()


def test_bundle_never_copies_a_symlinked_artifact_from_outside(
    run_folder: Path, tmp_path: Path
) -> None:
    (run_folder / "notes.json").symlink_to(secret_file(tmp_path))
    add_artifact(run_folder, "notes.json")
    bundle = tmp_path / "bundle"
    assert main(["report", str(run_folder), "--bundle", str(bundle)]) == 0
    assert b"SECRET-CONTENT" not in every_byte_under(tmp_path / "bundle")
    assert b"SECRET-CONTENT" not in (tmp_path / "bundle.zip").read_bytes()
    with zipfile.ZipFile(tmp_path / "bundle.zip") as archive:
        assert all(b"SECRET-CONTENT" not in archive.read(n) for n in archive.namelist())
    index = (bundle / "index.md").read_text()
    assert "notes.json" in index
    assert "outside its run folder" in index


def test_analyze_refuses_a_symlinked_artifact_without_printing_its_content(
    run_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    link_profile_to_secret(run_folder, tmp_path)
    assert main(["analyze", str(run_folder), "--format", "json"]) == 2
    err = capsys.readouterr().err
    assert "outside its run folder" in err
    assert "SECRET" not in err
    assert "root:x" not in err


def test_manifest_refuses_an_absolute_artifact_path(
    run_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    add_artifact(run_folder, "/etc/passwd", fmt="speedscope", kind="cpu-profile")
    assert main(["analyze", str(run_folder), "--format", "json"]) == 2
    err = capsys.readouterr().err
    assert "leaves the run folder" in err
    assert "root:" not in err


def test_results_must_not_point_into_another_run(run_folder: Path, tmp_path: Path) -> None:
    edit_manifest(run_folder, lambda m: m.update(results="../other/results.json"))
    with pytest.raises(ArtifactError, match="leaves the run folder"):
        load_run(run_folder)


def test_results_symlinked_into_another_run_is_refused(run_folder: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (run_folder / "results.json").rename(other / "results.json")
    (run_folder / "results.json").symlink_to(other / "results.json")
    with pytest.raises(ArtifactError, match="outside its run folder"):
        load_run(run_folder)


def test_screenshot_outside_the_folder_is_never_embedded(run_folder: Path, tmp_path: Path) -> None:
    png = tmp_path / "outside.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + SECRET)
    (run_folder / "shot.png").symlink_to(png)
    add_artifact(run_folder, "shot.png", fmt="png", kind="screenshot")
    with pytest.raises(ArtifactError, match="outside its run folder"):
        load_screenshots(load_run(run_folder))


def test_artifact_that_is_a_folder_is_refused(run_folder: Path) -> None:
    (run_folder / "profile.d").mkdir()
    add_artifact(run_folder, "profile.d", fmt="speedscope", kind="cpu-profile")
    with pytest.raises(ArtifactError, match="not a regular file"):
        load_run(run_folder).artifact(fmt="speedscope", path="profile.d")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("params", [1, 2]),
        ("profiler", "pyinstrument"),
        ("queue", None),
        ("environment", 3),
        ("workload", {"a": 1}),
        ("command", "queueprof run"),
        ("targets_files", [1]),
        ("status", 7),
        ("ended_at", 5),
        ("error", "boom"),
        ("artifacts", {"a": 1}),
        ("results", 5),
        ("run_id", "a/b"),
    ],
)
def test_manifest_field_of_the_wrong_type_is_refused_by_every_reader(
    run_folder: Path, field: str, value: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    edit_manifest(run_folder, lambda m: m.update({field: value}))
    with pytest.raises(ResultFormatError, match=field):
        Manifest.from_json((run_folder / "manifest.json").read_bytes())
    assert main(["analyze", str(run_folder), "--format", "json"]) == 2
    assert main(["compare", str(run_folder), str(run_folder)]) == 2
    assert main(["list", "--out", str(run_folder.parent)]) == 0
    assert "unreadable" in capsys.readouterr().out


def test_profiler_entry_parts_are_type_checked(run_folder: Path) -> None:
    edit_manifest(run_folder, lambda m: m["profiler"].update(options=[1], problems="x"))
    with pytest.raises(ResultFormatError, match=r"profiler\.options"):
        Manifest.from_json((run_folder / "manifest.json").read_bytes())


def test_view_check_never_opens_a_symlinked_artifact_in_the_browser(
    run_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    link_profile_to_secret(run_folder, tmp_path)
    # Refused before any browser is looked for: exit 2 whether or not Chromium is installed.
    assert main(["view-check", str(run_folder), "--chromium", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert "outside its run folder" in err
    assert "SECRET" not in err


def test_a_huge_or_fifo_manifest_is_refused_without_reading_it(tmp_path: Path) -> None:
    huge = tmp_path / "huge.json"
    with huge.open("wb") as out:
        out.truncate(1 << 30)  # sparse
    with pytest.raises(ResultFormatError, match="a manifest is a few kB"):
        Manifest.read(huge)
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    with pytest.raises(ResultFormatError, match="not a regular file"):
        Manifest.read(fifo)  # would block forever on a plain open()
