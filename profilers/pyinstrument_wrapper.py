"""pyinstrument, started inside the running event loop, plus a sampler of the SQLite threads.

pyinstrument samples only the thread it starts on, and attributes async time to the awaiting
coroutine only when started inside the running loop. aiosqlite runs each connection's SQL on
its own thread, which the event-loop profile shows as one opaque ``[await]``; so the stacks
of every connection thread (registered as it opens, through :mod:`taskqueue.observe`) are
sampled too, and saved as pyinstrument sessions of their own.

Those threads are sampled from outside, by one sampler thread reading
``sys._current_frames()`` every ``interval``, not by a pyinstrument profiler on each of them:
a profiler is a ``setprofile`` hook, and on Python 3.11 any profile hook sends every bytecode
of its thread through the deoptimised tracing path and calls back on each of the ~160 Python
and C calls per task a connection thread makes; that made the connection thread's CPU time
1.36-1.40x bare in 5,000- and 10,000-task drains, against 0.91-1.05x with the sampler. The
sampler costs one stack walk per connection thread per interval (none while a thread still
waits in the call of its previous sample). Its stacks hold Python frames only, as py-spy's
do: a statement running in SQLite is charged to the store function that executes it.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from formats.pyinstrument import parse_identifier
from formats.speedscope import FrameKey, SpeedscopeBuilder
from runs.files import PYINSTRUMENT_HTML as HTML
from runs.files import PYINSTRUMENT_SPEEDSCOPE as SPEEDSCOPE
from taskqueue import QueueObserver, observing

from .base import Artifact, ArtifactKind, Profiler, ProfilerError, ProfilerOptions
from .base import ProfilerUnavailable as Unavailable

SESSION = "pyinstrument.pyisession"
THREADS_SESSION = "pyinstrument-sqlite-threads.pyisession"


@dataclass(frozen=True)
class PyinstrumentOptions(ProfilerOptions):
    interval: float = 0.001
    """Seconds between samples of the event loop."""
    threads: bool = True
    """Also sample each aiosqlite connection thread."""
    thread_interval: float = 0.005
    """Seconds between samples of the connection threads. Each sample takes the GIL from
    the event loop, which lets go of it only every ``sys.getswitchinterval()`` (5 ms) while
    it runs Python: sampling faster than that mostly forces switches. At 1 ms the sampler
    made a 10,000-task drain 1.55x bare against 1.20x for pyinstrument alone; at 5 ms,
    measure it with `python -m benchmarks.profiler_overhead`."""
    timing_thread: bool = False
    """Event loop: read the time a timer thread keeps instead of the clock on each call event.
    Cheaper (the loop's CPU time under pyinstrument 2.57x -> 2.38x bare in a 5,000-task
    drain), but off by default: with the machine loaded the timer thread can fall so far
    behind that a short run's event-loop profile comes back with no samples at all."""

    def __post_init__(self) -> None:
        for name in ("interval", "thread_interval"):
            value = getattr(self, name)
            if not 0.00001 <= value <= 1:
                raise ValueError(f"{name}={value!r} must be 0.00001..1 seconds")


@dataclass
class _SampledThread:
    """What the sampler has recorded of one connection thread so far."""

    key: str
    root: str
    """pyinstrument's identifier of the thread, the root of each of its stacks."""
    started: float
    """``time.time()`` when the connection opened (a session's start time)."""
    cpu_started: float
    """The thread's ``time.thread_time()`` then: its CPU time goes into the session."""
    last_sample: float
    records: list[tuple[list[str], float]] = field(default_factory=list)
    samples: int = 0
    last_frame: tuple[FrameType, int] | None = None
    """The innermost frame of the previous sample and its instruction: while both are
    unchanged the thread is still in that call (waiting, mostly), so the stack is too."""


IDLE_WAIT_MOST = 0.05
"""Seconds: the longest the sampler sleeps between samples while no call is on a connection
thread."""


class _ThreadSampler(QueueObserver):
    """Samples every open connection thread's stack from one thread of its own.

    Each sample weighs the wall time since that thread's previous one; a sample whose stack
    is the previous one's (a thread waiting for its next statement) extends that record
    instead of adding one, which keeps the session file small and its timeline unchanged.
    """

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.sessions: list[tuple[str, Any]] = []
        self._open: dict[int, _SampledThread] = {}
        self._lock = threading.Lock()
        self._running = False
        self._sampler: threading.Thread | None = None
        self._calls = 0
        """Calls on the connection threads now (queued or running), from ``thread_call``."""
        self._work = threading.Event()
        """Set when the first call is sent to a connection thread: wakes an idle sampler."""

    def start(self) -> None:
        """Start the sampler thread (it samples whatever connections are open)."""
        self._running = True
        self._sampler = threading.Thread(
            target=self._run, name="queueprof-sqlite-thread-sampler", daemon=True
        )
        self._sampler.start()

    def stop(self) -> None:
        """Stop the sampler thread and wait for it."""
        self._running = False
        self._work.set()
        if self._sampler is not None:
            self._sampler.join()
            self._sampler = None

    def connection_opened(self, key: str) -> None:
        thread = threading.current_thread()
        now = time.perf_counter()
        entry = _SampledThread(
            key=key,
            root=f"{thread.name}\x00<thread>\x00{thread.ident}",
            started=time.time(),
            cpu_started=time.thread_time(),
            last_sample=now,
        )
        with self._lock:
            self._open[threading.get_ident()] = entry

    def connection_closing(self, key: str) -> None:
        cpu = time.thread_time()
        with self._lock:
            entry = self._open.pop(threading.get_ident(), None)
        if entry is not None:
            entry.last_frame = None  # keeps no frame (and its locals) alive past the thread
            self.sessions.append((entry.key, self._session(entry, cpu - entry.cpu_started)))

    @property
    def unfinished(self) -> int:
        """Connection threads still open (their samples cannot be collected)."""
        return len(self._open)

    @property
    def sample_count(self) -> int:
        """Samples taken of the connection threads whose sessions are collected."""
        return sum(session.sample_count for _, session in self.sessions)

    def thread_call(self, started: bool) -> None:
        if started:
            self._calls += 1
            if self._calls == 1:
                self._work.set()
        else:
            self._calls -= 1

    def _run(self) -> None:
        from pyinstrument.low_level.stat_profile import get_frame_info

        # Each sample takes the GIL from the event loop. While no call is on a connection
        # thread (most of the time when the queue runs short calls inline) every thread waits
        # for its next job and its stack is known: one sample marks the start of the wait,
        # then the sampler sleeps until a call is sent (or IDLE_WAIT_MOST passes), and takes
        # the next sample one interval later: a sample at the wake-up itself would find the
        # thread still waiting, the call not yet picked up.
        # time.sleep while busy, not Event.wait: one C call per interval instead of a
        # Condition's Python-level wait.
        while self._running:
            if self._calls == 0:
                self._sample(get_frame_info)
                self._work.wait(IDLE_WAIT_MOST)
                self._work.clear()
            time.sleep(self.interval)
            self._sample(get_frame_info)

    def _sample(self, frame_info: Any) -> None:
        with self._lock:
            if not self._open:
                return
            frames = sys._current_frames()
            now = time.perf_counter()
            for ident, entry in self._open.items():
                frame = frames.get(ident)
                if frame is not None:
                    self._record(entry, frame, now, self.interval, frame_info)

    @staticmethod
    def _record(
        entry: _SampledThread, frame: FrameType, now: float, interval: float, frame_info: Any
    ) -> None:
        """Add one sample, weighing the time since the previous one.

        After a longer wait (the sampler sleeps while no call is on the connection threads)
        a thread whose stack changed is taken to have moved one ``interval`` before this
        sample: the rest of the wait goes to its previous stack, the one it waited in.
        """
        weight = now - entry.last_sample
        entry.last_sample = now
        entry.samples += 1
        where = (frame, frame.f_lasti)
        if entry.records and entry.last_frame == where:
            entry.records[-1] = (entry.records[-1][0], entry.records[-1][1] + weight)
            return
        if entry.records and weight > interval:
            entry.records[-1] = (entry.records[-1][0], entry.records[-1][1] + weight - interval)
            weight = interval
        entry.last_frame = where
        stack = _stack(frame, entry.root, frame_info)
        if entry.records and entry.records[-1][0] == stack:
            entry.records[-1] = (stack, entry.records[-1][1] + weight)
        else:
            entry.records.append((stack, weight))

    def _session(self, entry: _SampledThread, cpu_time: float) -> Any:
        from pyinstrument.session import Session

        return Session(
            frame_records=entry.records,
            start_time=entry.started,
            duration=time.time() - entry.started,
            min_interval=self.interval,
            max_interval=self.interval,
            sample_count=entry.samples,
            start_call_stack=[entry.root],
            target_description=f"aiosqlite connection {entry.key}",
            cpu_time=cpu_time,
            sys_path=list(sys.path),
            sys_prefixes=Session.current_sys_prefixes(),
        )


def _stack(frame: FrameType, root: str, frame_info: Any) -> list[str]:
    """Root-first pyinstrument identifiers of ``frame`` and its callers, under ``root``."""
    stack = []
    current: FrameType | None = frame
    while current is not None:
        stack.append(frame_info(current))
        current = current.f_back
    stack.append(root)
    stack.reverse()
    return stack


class PyinstrumentProfiler(Profiler):
    name = "pyinstrument"
    description = "statistical CPU/wall profiler, async-aware, plus the aiosqlite threads"
    options_type = PyinstrumentOptions
    queue_options = "capture_sql=true"  # SQL hotspots for the analysis; baseline gets it too

    def __init__(self, options: ProfilerOptions, run_dir: Path) -> None:
        super().__init__(options, run_dir)
        assert isinstance(options, PyinstrumentOptions)
        self.opts = options
        self._main: Any = None
        self._threads = _ThreadSampler(options.thread_interval)
        self.problems: list[str] = []

    @classmethod
    def check_available(cls) -> None:
        try:
            import pyinstrument  # noqa: F401
        except ImportError:
            raise Unavailable(
                "pyinstrument is not installed; install it with `pip install pyinstrument` "
                "(or `pip install queueprof[profilers]`)"
            ) from None

    @contextmanager
    def session(self) -> Iterator[None]:
        from pyinstrument import Profiler as Pyinstrument

        profiler = Pyinstrument(
            interval=self.opts.interval,
            async_mode="enabled",
            use_timing_thread=self.opts.timing_thread,
        )
        profiler.start(target_description="queueprof workload (event loop)")
        try:
            if self.opts.threads:
                self._threads.start()
                try:
                    with observing(self._threads):
                        yield
                finally:
                    self._threads.stop()
            else:
                yield
        finally:
            self._main = profiler.stop()

    def finish(self, *, interrupted: bool = False) -> list[Artifact]:
        if self._main is None:
            raise ProfilerError("pyinstrument recorded nothing: the workload never started")
        from pyinstrument.renderers import HTMLRenderer
        from pyinstrument.session import Session

        run_dir = self.run_dir
        self._main.save(run_dir / SESSION)
        artifacts = [
            Artifact(
                ArtifactKind.CPU_PROFILE,
                SESSION,
                "pyinstrument-session",
                f"pyinstrument --load {SESSION} -r html",
                "event-loop profile (async mode), pyinstrument's own format",
            )
        ]
        builder = SpeedscopeBuilder(name=f"queueprof {run_dir.name} (pyinstrument)")
        builder.add_sampled("event loop (async-aware wall time)", _samples(self._main))
        thread_sessions = self._threads.sessions
        if thread_sessions:
            combined = thread_sessions[0][1]
            for _, other in thread_sessions[1:]:
                combined = Session.combine(combined, other)
            combined.save(run_dir / THREADS_SESSION)
            artifacts.append(
                Artifact(
                    ArtifactKind.CPU_PROFILE,
                    THREADS_SESSION,
                    "pyinstrument-session",
                    f"pyinstrument --load {THREADS_SESSION} -r html",
                    f"the {len(thread_sessions)} aiosqlite connection thread(s), sampled "
                    "from outside (Python frames), combined",
                )
            )
            for key, thread_session in thread_sessions:
                label = "shared" if key == "__main__" else key
                builder.add_sampled(f"aiosqlite thread ({label})", _samples(thread_session))
        builder.write(run_dir / SPEEDSCOPE)
        artifacts.append(
            Artifact(
                ArtifactKind.CPU_PROFILE,
                SPEEDSCOPE,
                "speedscope",
                f"npx speedscope {SPEEDSCOPE}  (or drop it on a local speedscope)",
                f"{builder.profile_count} profiles: event loop + each connection thread",
            )
        )
        html = HTMLRenderer().render(self._main)
        (run_dir / HTML).write_text(html, encoding="utf-8")
        artifacts.append(
            Artifact(
                ArtifactKind.REPORT,
                HTML,
                "html",
                f"open {HTML} in a browser (works offline)",
                "pyinstrument's interactive call tree of the event loop",
            )
        )
        if self._threads.unfinished:
            self.problems.append(
                f"{self._threads.unfinished} connection thread(s) were still open when the run "
                "ended, so their samples are missing (a TaskQueue was not closed)"
            )
        return artifacts

    def manifest(self) -> dict[str, Any]:
        entry = super().manifest()
        if self._main is not None:
            entry["summary"] = {
                "samples": self._main.sample_count,
                "thread_sessions": len(self._threads.sessions),
                "thread_samples": self._threads.sample_count,
                "duration_s": self._main.duration,
            }
        if self.problems:
            entry["problems"] = list(self.problems)
        return entry


def _samples(session: Any) -> Iterator[tuple[list[FrameKey], float]]:
    """(root-first stack, seconds) from a pyinstrument session; the thread frame is dropped."""
    cache: dict[str, FrameKey] = {}
    for stack, seconds in session.frame_records:
        frames = []
        for identifier in stack[1:]:
            key = cache.get(identifier)
            if key is None:
                key = cache[identifier] = _frame_key(identifier)
            frames.append(key)
        yield frames, seconds


def _frame_key(identifier: str) -> FrameKey:
    return FrameKey(*parse_identifier(identifier))
