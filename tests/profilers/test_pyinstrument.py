"""pyinstrument wrapper: real runs at smoke size, artifacts checked by format."""

from __future__ import annotations

import queue
import threading
import time

import orjson
import pytest

from formats.speedscope import validate
from profilers import ProfilerOptionError, ProfilerUnavailable, PyinstrumentProfiler
from profilers.pyinstrument_wrapper import PyinstrumentOptions

from .conftest import RunUnder


def test_writes_session_speedscope_and_html_with_the_sqlite_threads(run_under: RunUnder) -> None:
    # GIVEN a small workload with every operation on the connection thread (dispatch=thread)
    # WHEN run under pyinstrument, the threads sampled often enough that the few milliseconds
    # of SQL in this workload get samples however loaded the machine is
    profiler = run_under(
        "pyinstrument", ["interval=0.0005", "thread_interval=0.0002"], "dispatch=thread"
    )
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


def test_operations_run_inline_show_their_store_code_on_the_event_loop(
    run_under: RunUnder,
) -> None:
    # GIVEN the default dispatch, which runs short operations on the event loop's thread
    # WHEN the small workload runs under pyinstrument
    profiler = run_under("pyinstrument", ["interval=0.0005"])
    profiler.finish()
    # THEN the event loop's own profile holds the store's functions, where the SQL ran
    document = orjson.loads((profiler.run_dir / "pyinstrument.speedscope.json").read_bytes())
    frames = [f["name"] for f in document["shared"]["frames"]]
    loop = document["profiles"][0]
    loop_frames = {frames[i] for stack in loop["samples"] for i in stack}
    assert any(name.startswith("Store.") for name in loop_frames), loop_frames


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


def _wait_in_a_known_function(done: threading.Event) -> None:
    done.wait(5)


def test_thread_sampler_records_a_registered_thread_from_outside() -> None:
    from pyinstrument.session import Session

    from profilers.pyinstrument_wrapper import _ThreadSampler

    # GIVEN the sampler running and a thread that registers as a connection, then, during a
    # call the queue has sent it, waits in a known function for ~0.2 s, then closes
    sampler = _ThreadSampler(interval=0.002)
    sampler.start()
    sampler.thread_call(True)
    done = threading.Event()

    def connection() -> None:
        sampler.connection_opened("w0")
        timer = threading.Timer(0.2, done.set)
        timer.start()
        _wait_in_a_known_function(done)
        sampler.connection_closing("w0")

    worker = threading.Thread(target=connection)
    worker.start()
    worker.join()
    sampler.thread_call(False)
    sampler.stop()
    # THEN its session holds many samples whose stacks run through that function, folded
    # into few records (the stack does not change while it waits), weighing about 0.2 s
    [(key, session)] = sampler.sessions
    assert key == "w0"
    assert isinstance(session, Session)
    assert session.sample_count >= 20
    assert len(session.frame_records) < session.sample_count
    stacks = [stack for stack, _ in session.frame_records]
    assert all(stack[0].split("\x00")[1] == "<thread>" for stack in stacks)
    assert any("_wait_in_a_known_function" in frame for stack in stacks for frame in stack)
    assert 0.1 < sum(weight for _, weight in session.frame_records) < 1.0
    assert sampler.unfinished == 0


def test_thread_sampler_sleeps_while_no_call_is_on_a_connection_thread() -> None:
    from profilers.pyinstrument_wrapper import IDLE_WAIT_MOST, _ThreadSampler

    # GIVEN the sampler and a registered thread that waits ~0.3 s with no call sent to it,
    # then runs a call for ~0.1 s
    sampler = _ThreadSampler(interval=0.002)
    sampler.start()
    jobs: queue.SimpleQueue[None] = queue.SimpleQueue()

    def connection() -> None:
        sampler.connection_opened("w0")
        jobs.get()
        _busy_for(0.1)
        sampler.connection_closing("w0")

    worker = threading.Thread(target=connection)
    worker.start()
    time.sleep(0.3)
    sampler.thread_call(True)  # as the queue does when it sends a call
    jobs.put(None)
    worker.join()
    sampler.thread_call(False)
    sampler.stop()
    # THEN the idle wait took a few samples, the call many (every interval), and the
    # samples weigh the whole time, most of the call's time in the function it ran
    [(_, session)] = sampler.sessions
    assert session.sample_count < 0.3 / IDLE_WAIT_MOST + 0.1 / 0.002
    assert 0.3 < sum(weight for _, weight in session.frame_records) < 1.5
    busy = sum(w for stack, w in session.frame_records if any("_busy_for" in f for f in stack))
    assert 0.05 < busy < 0.2


def _busy_for(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        sum(range(50))


def test_thread_sampler_reports_connections_left_open() -> None:
    from profilers.pyinstrument_wrapper import _ThreadSampler

    sampler = _ThreadSampler(interval=0.01)
    sampler.connection_opened("w1")  # this thread plays a connection that never closes
    assert sampler.unfinished == 1
    assert sampler.sessions == []
