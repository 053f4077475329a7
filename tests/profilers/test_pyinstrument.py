"""pyinstrument wrapper: real runs at smoke size, artifacts checked by format."""

from __future__ import annotations

import orjson
import pytest

from profilers import ProfilerOptionError, ProfilerUnavailable, PyinstrumentProfiler
from profilers.pyinstrument_wrapper import PyinstrumentOptions
from profilers.speedscope import validate

from .conftest import RunUnder


def test_writes_session_speedscope_and_html_with_the_sqlite_threads(run_under: RunUnder) -> None:
    # GIVEN a small workload WHEN run under pyinstrument
    profiler = run_under("pyinstrument", ["interval=0.0005"])
    artifacts = profiler.finish()
    # THEN every artifact exists, and the speedscope file is valid and has a profile for the
    # event loop and one for the aiosqlite thread, whose stacks reach the queue's store
    paths = {a.path for a in artifacts}
    assert paths == {
        "pyinstrument.pyisession",
        "pyinstrument-sqlite-threads.pyisession",
        "pyinstrument.speedscope.json",
        "pyinstrument.html",
    }
    for artifact in artifacts:
        assert (profiler.run_dir / artifact.path).stat().st_size > 0
    document = orjson.loads((profiler.run_dir / "pyinstrument.speedscope.json").read_bytes())
    assert validate(document) == []
    names = [p["name"] for p in document["profiles"]]
    assert names[0].startswith("event loop")
    assert any(n.startswith("aiosqlite thread") for n in names[1:])
    frames = [f["name"] for f in document["shared"]["frames"]]
    thread_profile = document["profiles"][1]
    thread_frames = {frames[i] for stack in thread_profile["samples"] for i in stack}
    assert any(name.startswith("Store.") for name in thread_frames), thread_frames


def test_session_files_load_back_with_pyinstrument(run_under: RunUnder) -> None:
    from pyinstrument.session import Session

    profiler = run_under("pyinstrument", [])
    profiler.finish()
    session = Session.load(profiler.run_dir / "pyinstrument.pyisession")
    assert session.sample_count > 0


def test_html_report_has_no_network_dependency(run_under: RunUnder) -> None:
    profiler = run_under("pyinstrument", ["threads=false"])
    profiler.finish()
    html = (profiler.run_dir / "pyinstrument.html").read_text()
    assert '<script src="http' not in html


def test_bad_option_names_the_option_and_the_valid_ones() -> None:
    with pytest.raises(ProfilerOptionError, match=r"'intervl'.*valid: interval, threads"):
        PyinstrumentOptions.parse(["intervl=1"])
    with pytest.raises(ProfilerOptionError, match=r"interval=5.0 must be"):
        PyinstrumentOptions.parse(["interval=5"])
    with pytest.raises(ProfilerOptionError, match=r"expected float"):
        PyinstrumentOptions.parse(["interval=fast"])


def test_missing_pyinstrument_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_pyinstrument(name: str, *args, **kwargs):
        if name == "pyinstrument":
            raise ImportError("No module named 'pyinstrument'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pyinstrument)
    with pytest.raises(ProfilerUnavailable, match="pip install pyinstrument"):
        PyinstrumentProfiler.check_available()
