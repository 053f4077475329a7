"""Fixtures of the viewer checks: the browser setup, and real run folders to open.

Tests that open a browser take :func:`viewers`; it skips them, with the reason, when
Chromium, chromedriver, selenium or the speedscope app is missing, except under
``QUEUEPROF_VIEWERS_REQUIRED=1`` (``tox -e viewers`` sets it after installing them all),
where a missing piece fails the test instead.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from queueprof.viewers.browser import BrowserOptions

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class ViewerSetup:
    """Where the speedscope app is; the browser is at the :class:`BrowserOptions` defaults."""

    speedscope_app: Path


def _missing() -> str | None:
    options = BrowserOptions()
    for path in (options.chromium, options.chromedriver):
        if not path.is_file():
            return f"{path} is not installed (scripts/install-viewers.sh or tox -e viewers)"
    if importlib.util.find_spec("selenium") is None:
        return "selenium is not installed (tox -e viewers installs it)"
    app = os.environ.get("QUEUEPROF_SPEEDSCOPE_APP")
    if not app or not (Path(app) / "index.html").is_file():
        return "QUEUEPROF_SPEEDSCOPE_APP names no speedscope app (tox -e viewers sets it)"
    return None


@pytest.fixture(scope="session")
def viewers() -> ViewerSetup:
    """The installed viewers, or a skip (a failure under QUEUEPROF_VIEWERS_REQUIRED=1)."""
    missing = _missing()
    if missing is not None:
        if os.environ.get("QUEUEPROF_VIEWERS_REQUIRED") == "1":
            pytest.fail(f"viewers required but {missing}")
        pytest.skip(f"viewers not installed: {missing}")
    return ViewerSetup(Path(os.environ["QUEUEPROF_SPEEDSCOPE_APP"]))


def queueprof(*args: str, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """The real command, through ``sys.executable -m queueprof``."""
    parts = [str(PROJECT_ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return subprocess.run(
        [sys.executable, "-m", "queueprof", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(parts), "COLUMNS": "200"},
    )


def smoke_run(out: Path, run_id: str, *args: str) -> Path:
    """A real smoke-size run folder ``out/run_id`` of ``queueprof run ARGS``."""
    done = queueprof(
        "run", *args, "--size", "smoke", "--no-baseline", "--quiet",
        "--out", str(out), "--run-id", run_id, cwd=out,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return out / run_id


@pytest.fixture(scope="session")
def bare_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real bare run: no profile, trace or report to open. Tests copy it to change it."""
    out = tmp_path_factory.mktemp("bare")
    return smoke_run(out, "bare", "throughput", "--param", "worker_counts=1")


@pytest.fixture
def bare_copy(bare_run: Path, tmp_path: Path) -> Path:
    """A fresh copy of :func:`bare_run` for one test to change."""
    return Path(shutil.copytree(bare_run, tmp_path / "run"))


@pytest.fixture(scope="session")
def pristine_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One pyinstrument and one viztracer run, made once; tests work on copies."""
    out = tmp_path_factory.mktemp("viewer-runs")
    smoke_run(out, "cpu", "throughput", "--profiler", "pyinstrument", "--param", "worker_counts=2")
    smoke_run(out, "trace", "throughput", "--profiler", "viztracer", "--param", "worker_counts=2")
    return out


@pytest.fixture
def runs(pristine_runs: Path, tmp_path: Path) -> Path:
    """A fresh copy of :func:`pristine_runs` for one test to change."""
    copy = tmp_path / "traces"
    shutil.copytree(pristine_runs, copy)
    return copy


def memray_leak_page(page: Path, *, trace_python_allocators: bool) -> Path:
    """memray's real leak flame graph (``--leaks``, offline) of a small capture, at ``page``."""
    import memray

    capture = page.with_suffix(".bin")
    kept = []
    with memray.Tracker(capture, trace_python_allocators=trace_python_allocators):
        kept.extend(bytearray(1024) for _ in range(100))
    command = [sys.executable, "-m", "memray", "flamegraph", "--leaks", "--no-web", "-f"]
    done = subprocess.run(
        [*command, "-o", str(page), str(capture)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    capture.unlink()
    return page
