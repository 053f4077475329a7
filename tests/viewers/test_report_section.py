"""The screenshots in ``report.html``: listed in the manifest, embedded by ``analyze``."""

from __future__ import annotations

import base64
import dataclasses
from pathlib import Path

import pytest

from runs import MANIFEST, Artifact, ArtifactKind, Manifest

from .conftest import queueprof

# A 1x1 PNG: the section embeds whatever image view-check wrote.
PIXEL = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def _with_screenshot(run: Path, data: bytes, description: str) -> None:
    (run / "screenshots").mkdir()
    (run / "screenshots" / "trace.png").write_bytes(data)
    manifest = Manifest.from_json((run / MANIFEST).read_bytes())
    shot = Artifact(ArtifactKind.SCREENSHOT, "screenshots/trace.png", "png", "image", description)
    manifest = dataclasses.replace(manifest, artifacts=(*manifest.artifacts, shot.to_dict()))
    (run / MANIFEST).write_bytes(manifest.to_json())


@pytest.mark.slow
def test_report_embeds_each_listed_screenshot_with_its_verdict(
    bare_copy: Path, tmp_path: Path
) -> None:
    # GIVEN a run whose manifest lists a screenshot that view-check wrote
    run = bare_copy
    _with_screenshot(run, PIXEL, "viztracer.trace.json in the Perfetto UI: <rendered>")
    # WHEN the run is analysed to HTML
    done = queueprof("analyze", str(run), "--format", "html", cwd=tmp_path)
    # THEN report.html embeds the image itself (it stays one file) with its caption, escaped
    assert done.returncode == 0, done.stderr
    page = (run / "report.html").read_text()
    assert "In the viewers (queueprof view-check" in page
    assert f'src="data:image/png;base64,{base64.b64encode(PIXEL).decode()}"' in page
    assert "Perfetto UI: &lt;rendered&gt;" in page
    # AND report.md lists it by path
    done = queueprof("analyze", str(bare_copy), "--format", "md", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "- `screenshots/trace.png`: viztracer.trace.json in the Perfetto UI" in (
        (bare_copy / "report.md").read_text()
    )


@pytest.mark.slow
def test_report_without_screenshots_has_no_viewer_section(bare_copy: Path, tmp_path: Path) -> None:
    # GIVEN a run never checked in the viewers WHEN analysed THEN no empty section appears
    run = bare_copy
    done = queueprof("analyze", str(run), "--format", "html", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "In the viewers" not in (run / "report.html").read_text()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (PIXEL[:5], "is not a PNG image"),
        (None, "the manifest lists this screenshot but it is missing"),
    ],
    ids=["truncated", "missing"],
)
def test_a_broken_screenshot_is_named_with_the_fix(
    bare_copy: Path, tmp_path: Path, data: bytes | None, problem: str
) -> None:
    # GIVEN a listed screenshot that is cut short, or gone
    run = bare_copy
    _with_screenshot(run, data or PIXEL, "trace")
    if data is None:
        (run / "screenshots" / "trace.png").unlink()
    # WHEN the run is analysed THEN exit 2 names the file, the problem and view-check
    done = queueprof("analyze", str(run), "--format", "html", cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"{run / 'screenshots' / 'trace.png'}: {problem}" in done.stderr
    assert "queueprof view-check" in done.stderr


@pytest.mark.slow
def test_a_bundle_keeps_the_screenshots_where_its_manifest_says(
    bare_copy: Path, tmp_path: Path
) -> None:
    # GIVEN a run with a screenshot in its screenshots/ folder
    _with_screenshot(bare_copy, PIXEL, "trace in Perfetto: rendered")
    # WHEN it is bundled to share
    done = queueprof("report", str(bare_copy), "--bundle", str(tmp_path / "proposal"), cwd=tmp_path)
    # THEN the bundled run holds the screenshot at the path its bundled manifest lists
    assert done.returncode == 0, done.stdout + done.stderr
    bundled = tmp_path / "proposal" / Manifest.from_json((bare_copy / MANIFEST).read_bytes()).run_id
    listed = Manifest.from_json((bundled / MANIFEST).read_bytes()).artifacts
    assert "screenshots/trace.png" in [a["path"] for a in listed]
    assert (bundled / "screenshots" / "trace.png").read_bytes() == PIXEL
