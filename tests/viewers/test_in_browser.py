"""``queueprof view-check`` in the real browser: real run folders, real viewers."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from runs import Manifest

from .conftest import ViewerSetup, memray_leak_page, queueprof

PNG = b"\x89PNG\r\n\x1a\n"


def _screenshots(folder: Path) -> dict[str, str]:
    manifest = Manifest.from_json((folder / "manifest.json").read_bytes())
    return {a["path"]: a["description"] for a in manifest.artifacts if a["kind"] == "screenshot"}


@pytest.mark.slow
def test_fresh_runs_render_and_the_report_shows_their_screenshots(
    viewers: ViewerSetup, runs: Path
) -> None:
    # GIVEN a fresh pyinstrument run and a fresh viztracer run
    # WHEN view-check opens their artifacts
    done = queueprof(
        "view-check", "cpu", "trace", "--traces", str(runs),
        "--speedscope-app", str(viewers.speedscope_app), cwd=runs,
    )  # fmt: skip
    # THEN every artifact rendered: the speedscope profiles by name, the trace's lanes
    assert done.returncode == 0, done.stdout + done.stderr
    assert "rendered" in done.stdout
    assert "FAILED" not in done.stdout
    assert "event loop (async-aware wall time)" in done.stdout
    assert "worker w0 (queue ops)" in done.stdout
    assert "queue depth" in done.stdout
    # AND each run folder holds a PNG per artifact, listed in its manifest as rendered
    cpu = _screenshots(runs / "cpu")
    assert set(cpu) == {
        "screenshots/pyinstrument.speedscope.json.png",
        "screenshots/pyinstrument.html.png",
    }
    trace = _screenshots(runs / "trace")
    assert set(trace) == {"screenshots/viztracer.trace.json.png"}
    for folder, shots in ((runs / "cpu", cpu), (runs / "trace", trace)):
        for path, description in shots.items():
            assert (folder / path).read_bytes().startswith(PNG)
            assert description.endswith(": rendered")
    # AND the analysis report of the run embeds them
    analyzed = queueprof("analyze", "trace", "--traces", str(runs), "--format", "html", cwd=runs)
    assert analyzed.returncode == 0, analyzed.stderr
    page = (runs / "trace" / "report.html").read_text()
    assert "In the viewers" in page
    assert page.count('src="data:image/png;base64,') == 1


@pytest.mark.slow
def test_truncated_speedscope_file_fails_naming_the_file(viewers: ViewerSetup, runs: Path) -> None:
    # GIVEN a speedscope profile cut off halfway, as an interrupted write leaves it
    profile = runs / "cpu" / "pyinstrument.speedscope.json"
    data = profile.read_bytes()
    profile.write_bytes(data[: len(data) // 2])
    # WHEN view-check opens it in speedscope
    done = queueprof(
        "view-check", "cpu", "--traces", str(runs),
        "--speedscope-app", str(viewers.speedscope_app), cwd=runs,
    )  # fmt: skip
    # THEN it fails, naming the file and what speedscope said, with the fix
    assert done.returncode == 1, done.stdout + done.stderr
    # (the command ran in `runs`, where the run id is also a relative folder path)
    assert "cpu/pyinstrument.speedscope.json (speedscope): speedscope could not import it" in (
        done.stderr
    )
    assert "JSON" in done.stderr
    assert "re-run the workload" in done.stderr
    # AND the screenshot of the failed import is kept and marked as failed
    shots = _screenshots(runs / "cpu")
    assert "FAILED" in shots["screenshots/pyinstrument.speedscope.json.png"]
    assert shots["screenshots/pyinstrument.html.png"].endswith(": rendered")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("damage", "perfetto_says"),
    [
        (lambda data: data[: len(data) // 2], "JSON trace file is incomplete"),
        (lambda data: b"\x00\x01 not a trace " + data[:100], "Cannot open this file"),
    ],
    ids=["truncated", "not-a-trace"],
)
def test_malformed_chrome_trace_fails_naming_the_file(
    viewers: ViewerSetup, runs: Path, damage: object, perfetto_says: str
) -> None:
    # GIVEN a viztracer trace that is damaged
    trace = runs / "trace" / "viztracer.trace.json"
    assert callable(damage)
    trace.write_bytes(damage(trace.read_bytes()))
    # WHEN view-check opens it in the Perfetto UI
    done = queueprof("view-check", "trace", "--traces", str(runs), cwd=runs)
    # THEN it fails, naming the file and quoting Perfetto's error dialog
    assert done.returncode == 1, done.stdout + done.stderr
    assert "trace/viztracer.trace.json (perfetto): Perfetto showed an error" in done.stderr
    assert perfetto_says in done.stderr
    assert "not valid JSON" in done.stderr


@pytest.mark.slow
def test_a_page_that_opens_an_alert_or_fetches_from_outside_fails(
    viewers: ViewerSetup, runs: Path
) -> None:
    # GIVEN an HTML report that shows its content but also opens an alert and loads a script
    # from another machine
    page = runs / "cpu" / "pyinstrument.html"
    page.write_text(
        '<!DOCTYPE html><html><body><div class="frame">Handle._run</div>'
        '<script src="https://cdn.example.org/d3.js"></script>'
        '<script>alert("import failed")</script></body></html>'
    )
    # WHEN view-check opens it
    done = queueprof(
        "view-check", "cpu", "--traces", str(runs),
        "--speedscope-app", str(viewers.speedscope_app), cwd=runs,
    )  # fmt: skip
    # THEN it fails on both counts, naming the page
    assert done.returncode == 1, done.stdout + done.stderr
    failure = next(line for line in done.stderr.splitlines() if "pyinstrument.html" in line)
    assert "the page opened an alert: import failed" in failure
    assert "requested https://cdn.example.org/d3.js (off this machine)" in failure
    # AND the speedscope profile of the same run still passed
    assert "1 of 2 artifacts did not render" in done.stderr


@pytest.mark.slow
def test_a_profile_file_with_one_profile_renders_by_its_name(
    viewers: ViewerSetup, runs: Path
) -> None:
    # GIVEN a speedscope file that holds only the event loop's profile (speedscope then
    # titles it by its name alone, without "(1/N)")
    profile = runs / "cpu" / "pyinstrument.speedscope.json"
    document = orjson.loads(profile.read_bytes())
    document["profiles"] = document["profiles"][:1]
    profile.write_bytes(orjson.dumps(document))
    # WHEN view-check opens it
    done = queueprof(
        "view-check", "cpu", "--traces", str(runs),
        "--speedscope-app", str(viewers.speedscope_app), cwd=runs,
    )  # fmt: skip
    # THEN it rendered, showing that one profile
    assert done.returncode == 0, done.stdout + done.stderr
    assert "shows 1: event loop (async-aware wall time)" in done.stdout


@pytest.mark.slow
def test_the_report_with_its_plots_is_screenshotted(viewers: ViewerSetup, runs: Path) -> None:
    # GIVEN a run's report.html, with its latency CDF drawn inline
    analyzed = queueprof("analyze", "cpu", "--traces", str(runs), "--format", "html", cwd=runs)
    assert analyzed.returncode == 0, analyzed.stderr
    assert '<div class="plot"><svg' in (runs / "cpu" / "report.html").read_text()
    # WHEN view-check opens the run's artifacts and its report
    done = queueprof(
        "view-check", "cpu", "--traces", str(runs),
        "--speedscope-app", str(viewers.speedscope_app), cwd=runs,
    )  # fmt: skip
    # THEN the report rendered and its screenshot is kept beside the others
    assert done.returncode == 0, done.stdout + done.stderr
    shots = _screenshots(runs / "cpu")
    assert shots["screenshots/report.html.png"].endswith(": rendered")
    assert (runs / "cpu" / "screenshots" / "report.html.png").read_bytes().startswith(PNG)


@pytest.mark.slow
def test_a_leak_page_that_says_it_misleads_fails(viewers: ViewerSetup, runs: Path) -> None:
    # GIVEN memray's leak page of a capture made without Python-allocator tracing, listed
    # in the run's manifest as the memray wrapper used to list it
    folder = runs / "cpu"
    memray_leak_page(folder / "memray-leaks.html", trace_python_allocators=False)
    manifest = orjson.loads((folder / "manifest.json").read_bytes())
    manifest["artifacts"].append(
        {
            "kind": "allocations",
            "path": "memray-leaks.html",
            "format": "html",
            "viewer": "open memray-leaks.html in a browser (works offline)",
            "description": "leak flame graph",
        }
    )
    (folder / "manifest.json").write_bytes(orjson.dumps(manifest))
    # WHEN view-check opens it THEN it fails on memray's own banner, naming the page
    done = queueprof(
        "view-check", "cpu", "--traces", str(runs),
        "--speedscope-app", str(viewers.speedscope_app), cwd=runs,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    failure = next(line for line in done.stderr.splitlines() if "memray-leaks.html" in line)
    assert "not to be trusted" in failure
