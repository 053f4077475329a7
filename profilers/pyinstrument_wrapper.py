"""pyinstrument, started inside the running event loop, plus one sampler per SQLite thread.

pyinstrument samples only the thread it starts on, and attributes async time to the awaiting
coroutine only when started inside the running loop. aiosqlite runs each connection's SQL on
its own thread, which the event-loop profile shows as one opaque ``[await]``; so a second
profiler is started on every connection thread as it opens (through
:mod:`taskqueue.observe`) and stopped on that thread before it closes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from taskqueue import QueueObserver, observing

from .base import Artifact, ArtifactKind, Profiler, ProfilerError, ProfilerOptions
from .base import ProfilerUnavailable as Unavailable
from .speedscope import FrameKey, SpeedscopeBuilder

SESSION = "pyinstrument.pyisession"
THREADS_SESSION = "pyinstrument-sqlite-threads.pyisession"
SPEEDSCOPE = "pyinstrument.speedscope.json"
HTML = "pyinstrument.html"


@dataclass(frozen=True)
class PyinstrumentOptions(ProfilerOptions):
    interval: float = 0.001
    """Seconds between samples."""
    threads: bool = True
    """Also profile each aiosqlite connection thread."""
    timing_thread: bool = False
    """Read time from a timer thread instead of the clock on every call event (cheaper)."""

    def __post_init__(self) -> None:
        if not 0.00001 <= self.interval <= 1:
            raise ValueError(f"interval={self.interval!r} must be 0.00001..1 seconds")


class _ThreadSampler(QueueObserver):
    """Starts and stops a pyinstrument profiler on each connection thread."""

    def __init__(self, interval: float, timing_thread: bool) -> None:
        self.interval = interval
        self.timing_thread = timing_thread
        self._running: dict[int, tuple[str, Any]] = {}
        self.sessions: list[tuple[str, Any]] = []
        self._lock = threading.Lock()

    def connection_opened(self, key: str) -> None:
        from pyinstrument import Profiler as Pyinstrument

        profiler = Pyinstrument(
            interval=self.interval, async_mode="disabled", use_timing_thread=self.timing_thread
        )
        profiler.start(target_description=f"aiosqlite connection {key}")
        with self._lock:
            self._running[threading.get_ident()] = (key, profiler)

    def connection_closing(self, key: str) -> None:
        with self._lock:
            found = self._running.pop(threading.get_ident(), None)
        if found is not None:
            self.sessions.append((found[0], found[1].stop()))

    @property
    def unfinished(self) -> int:
        """Connection threads still running (their samples cannot be collected)."""
        return len(self._running)


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
        self._threads = _ThreadSampler(options.interval, options.timing_thread)
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
                with observing(self._threads):
                    yield
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
                    f"the {len(thread_sessions)} aiosqlite connection thread(s), combined",
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


def parse_identifier(identifier: str) -> tuple[str, str | None, int | None]:
    """(name, file, line) of a pyinstrument frame identifier.

    Identifiers are ``function\\x00file\\x00line`` followed by ``\\x01``-separated
    attributes, ``c<Class>`` among them; the name is ``Class.function`` when there is a class.
    Synthetic frames such as ``[await]`` come back as they are, with no file or line.
    """
    body, *attributes = identifier.split("\x01")
    function, _, rest = body.partition("\x00")
    file, _, line = rest.partition("\x00")
    owner = next((a[1:] for a in attributes if a.startswith("c")), None)
    name = f"{owner}.{function}" if owner and owner != "NoneType" else function
    return name, file or None, int(line) if line.isdigit() else None
