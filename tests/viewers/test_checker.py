"""The view checker's pieces that need no browser, and its bad-input errors."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest

from queueprof.viewers.browser import BrowserOptions, is_external
from queueprof.viewers.checks import _Findings, _missing_tracks, _trace_names
from queueprof.viewers.errors import ViewerSetupError
from queueprof.viewers.runs import PAGES, find_apps
from queueprof.viewers.server import Routes
from runs.files import MEMRAY_LEAKS as LEAKS

from .conftest import memray_leak_page, queueprof


def test_routes_serve_files_and_app_folders_but_never_climb_out(tmp_path: Path) -> None:
    # GIVEN an app folder with an index and a file beside it that is not part of the app
    app = tmp_path / "app"
    (app / "sub").mkdir(parents=True)
    (app / "index.html").write_text("app")
    (app / "sub" / "index.html").write_text("sub")
    (tmp_path / "secret.txt").write_text("no")
    trace = tmp_path / "trace.json"
    trace.write_text("{}")
    routes = Routes(folders={"/": app}, files={"/localtrace": trace}, bodies={"/info": b"{}"})
    # WHEN paths are resolved THEN exact routes win, folders give their index.html,
    # and nothing outside the app folder is reachable
    assert routes.resolve("/localtrace") == trace
    assert routes.resolve("/info") == b"{}"
    assert routes.resolve("/") == app / "index.html"
    assert routes.resolve("/sub/") == app / "sub" / "index.html"
    assert routes.resolve("/../secret.txt") is None
    assert routes.resolve("/sub/../../secret.txt") is None
    assert routes.resolve("/missing.js") is None


@pytest.mark.parametrize(
    ("url", "external"),
    [
        ("http://127.0.0.1:8123/index.html", False),
        ("ws://127.0.0.1:9001/websocket", False),
        ("data:image/png;base64,AAAA", False),
        ("blob:http://127.0.0.1:8123/1234", False),
        ("chrome://newtab/", False),
        ("https://fonts.googleapis.com/css?family=x", True),
        ("http://localhost:8123/", True),
        ("http://10.0.0.1/", True),
    ],
)
def test_only_loopback_and_in_browser_urls_count_as_local(url: str, external: bool) -> None:
    # GIVEN a URL a page requested WHEN it is classified THEN only 127.0.0.1 is local
    # (the browser resolves no other name, so even localhost is refused)
    assert is_external(url) is external


def test_trace_names_are_the_tracks_perfetto_shows(tmp_path: Path) -> None:
    # GIVEN a trace with a named process, two named lanes of which one has slices, and a
    # counter with two series
    trace = {
        "traceEvents": [
            {"ph": "M", "name": "process_name", "pid": 1, "tid": 1, "args": {"name": "proc"}},
            {"ph": "M", "name": "thread_name", "pid": 1, "tid": 2, "args": {"name": "worker w1"}},
            {"ph": "M", "name": "thread_name", "pid": 1, "tid": 3, "args": {"name": "idle"}},
            {"ph": "X", "name": "claim", "pid": 1, "tid": 2, "ts": 1.0, "dur": 2.0},
            {"ph": "C", "name": "queue", "pid": 1, "ts": 1.0, "args": {"depth": 3, "ready": 1}},
            {"ph": "C", "name": "queue", "pid": 1, "ts": 2.0, "args": {"depth": 2, "ready": 0}},
        ],
        "file_info": {"files": {}},
    }
    findings = _Findings()
    # WHEN its expected tracks are read
    path = tmp_path / "viztracer.trace.json"
    path.write_bytes(orjson.dumps(trace))
    names, file_info = _trace_names(path, findings)
    # THEN the lane without slices is left out, counters give one track per series
    assert names == ["proc", "worker w1", "queue depth", "queue ready"]
    assert file_info == {"files": {}}
    assert findings.file_problems == []


def test_track_titles_match_whole_names_only() -> None:
    # GIVEN Perfetto's titles, "<name> <tid>"
    titles = ["worker w10 1000000010", "queue depth"]
    # WHEN names are looked up THEN "worker w1" is not found in "worker w10"'s title
    assert _missing_tracks(["worker w10", "queue depth", "worker w1"], titles) == ["worker w1"]


def test_a_truncated_trace_is_a_file_problem_even_before_the_viewer(tmp_path: Path) -> None:
    # GIVEN a Chrome trace cut off in the middle of an event
    path = tmp_path / "viztracer.trace.json"
    path.write_text('{"traceEvents": [{"ph": "X", "name": "claim", "ts": 1')
    findings = _Findings()
    # WHEN its tracks are read THEN it is named truncated or malformed
    assert _trace_names(path, findings) == ([], {})
    assert findings.file_problems[0].startswith("not valid JSON, the file is truncated")


def test_the_speedscope_app_folder_must_hold_the_app(tmp_path: Path) -> None:
    # GIVEN a folder that is not speedscope's release build
    # WHEN it is given as the app THEN the error names it and the install script
    from queueprof.viewers.checks import Viewer

    with pytest.raises(ViewerSetupError, match=r"holds no index\.html.*install-viewers\.sh"):
        find_apps(tmp_path, [Viewer.SPEEDSCOPE])
    with pytest.raises(ViewerSetupError, match="--speedscope-app DIR"):
        find_apps(None, [Viewer.SPEEDSCOPE])


@pytest.mark.parametrize(
    ("width", "height", "timeout"), [(100, 900, 60.0), (1400, 900, 0.0), (1400, 90000, 60.0)]
)
def test_browser_options_refuse_sizes_and_timeouts_out_of_range(
    width: int, height: int, timeout: float
) -> None:
    # GIVEN a window size or timeout out of range WHEN options are made THEN they are refused
    with pytest.raises(ViewerSetupError):
        BrowserOptions(width=width, height=height, timeout_s=timeout)


@pytest.mark.slow
def test_view_check_without_a_browser_says_how_to_install_it(
    bare_copy: Path, tmp_path: Path
) -> None:
    # GIVEN a run with an HTML report and a chromium path where there is none
    run = bare_copy
    (run / "report.html").write_text("<html><body><h2>a</h2><h2>b</h2></body></html>")
    # WHEN view-check is run THEN it exits 2 naming the missing browser and the fix
    done = queueprof(
        "view-check", str(run), "--chromium", str(tmp_path / "no-chromium"), cwd=tmp_path
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"chromium not found at '{tmp_path / 'no-chromium'}'" in done.stderr
    assert "scripts/install-viewers.sh" in done.stderr


@pytest.mark.slow
def test_view_check_of_a_run_with_nothing_to_open_says_what_to_run(
    bare_copy: Path, tmp_path: Path
) -> None:
    # GIVEN a bare run (no profiler) that was never analysed
    # WHEN view-check is run on it THEN it exits 2 and says how to get something to open
    done = queueprof("view-check", str(bare_copy), cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "holds no profile, trace or HTML report" in done.stderr
    assert "--profiler" in done.stderr


def test_view_check_of_a_folder_that_is_not_a_run_names_it(tmp_path: Path) -> None:
    # GIVEN a folder without a manifest WHEN view-check is pointed at it THEN exit 2, named
    done = queueprof("view-check", str(tmp_path), cwd=tmp_path)
    assert done.returncode == 2
    assert str(tmp_path) in done.stderr
    assert "not a run folder" in done.stderr


def _leaks_page(tmp_path: Path, trace_python_allocators: bool) -> str:
    """The text of a real memray leak page of a small capture (tags stripped)."""
    page = memray_leak_page(
        tmp_path / f"leaks-{trace_python_allocators}.html",
        trace_python_allocators=trace_python_allocators,
    )
    return re.sub(r"<[^>]+>", " ", page.read_text(encoding="utf-8"))


def test_a_leak_page_that_disowns_its_results_fails_the_check(tmp_path: Path) -> None:
    # GIVEN memray's leak page of a capture without Python-allocator tracing, and one with
    expect = PAGES[LEAKS]
    # WHEN the check reads what each page says THEN only the first is refused, by memray's
    # own words
    assert expect.disowning(_leaks_page(tmp_path, trace_python_allocators=False))
    assert expect.disowning(_leaks_page(tmp_path, trace_python_allocators=True)) == []
