"""Sampling over time: CPU and RSS of this process and its children (psutil), and a
queue's tasks by state (its database, read on a connection of its own)."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from pathlib import Path
from types import TracebackType
from typing import Self

import numpy as np
import psutil

from taskqueue import is_dsn

from . import pgaudit


def tree_rss(root: psutil.Process | None = None) -> int:
    """Resident memory of ``root`` (default: this process) plus all its live children."""
    root = root or psutil.Process()
    total: int = root.memory_info().rss
    for child in root.children(recursive=True):
        try:
            total += child.memory_info().rss
        except psutil.NoSuchProcess:
            continue  # exited between listing and reading: it holds no memory any more
    return total


class PeriodicSampler(ABC):
    """A background thread calling :meth:`tick` every ``interval_s`` while the context is
    open, and once more as it closes (the final state, after the last change)."""

    def __init__(self, interval_s: float, name: str) -> None:
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    @abstractmethod
    def tick(self) -> None:
        """Take one sample (runs on the sampler's thread, and on the closing one last)."""

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        self.tick()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.tick()
            self._stop.wait(self.interval_s)


class ResourceSampler(PeriodicSampler):
    """A background thread sampling (elapsed s, CPU %, RSS bytes) of the process tree.

    CPU % is summed over processes (200 % = two cores busy). Use as a context manager;
    ``samples`` holds the rows and ``peak_rss`` the largest RSS seen.
    """

    def __init__(self, interval_s: float = 0.1) -> None:
        super().__init__(interval_s, "queueprof-sampler")
        self.samples: list[tuple[float, float, float]] = []
        self.peak_rss = 0
        self._root = psutil.Process()
        self._known: dict[int, psutil.Process] = {}
        self._started = time.perf_counter()

    def __enter__(self) -> Self:
        self._started = time.perf_counter()
        return super().__enter__()

    def tick(self) -> None:
        """One row: the tree's CPU % since the previous row, and its RSS."""
        cpu, rss = self._sample()
        self.peak_rss = max(self.peak_rss, rss)
        self.samples.append((time.perf_counter() - self._started, cpu, float(rss)))

    def _sample(self) -> tuple[float, int]:
        processes = [self._root, *self._root.children(recursive=True)]
        cpu = 0.0
        rss = 0
        for process in processes:
            # Keep one Process object per pid: cpu_percent() measures since its previous call.
            tracked = self._known.setdefault(process.pid, process)
            try:
                cpu += tracked.cpu_percent(None)
                rss += tracked.memory_info().rss
            except psutil.NoSuchProcess:
                self._known.pop(process.pid, None)
        return cpu, rss


QUEUE_COLUMNS = ("elapsed_s", "tasks_done", "tasks_pending", "tasks_running")
"""The columns of :class:`QueueDepthSampler` rows, as a results series declares them."""


class QueueDepthSampler(PeriodicSampler):
    """A background thread counting a queue's tasks by state over time.

    It reads the database (a SQLite file, or a ``postgresql://`` URL) on its own connection
    (WAL lets it read a SQLite file beside the writers),
    so the queue's own operation timings and round trips are untouched. Rows follow
    :data:`QUEUE_COLUMNS`; ``elapsed_s`` counts from ``started`` (a ``time.perf_counter()``
    value), so a workload can mark its own events (bursts, kills) on the same clock.
    """

    def __init__(self, path: Path | str, started: float, interval_s: float = 0.2) -> None:
        super().__init__(interval_s, "queueprof-depth")
        self.path = path
        self.started = started
        self.samples: list[tuple[float, float, float, float]] = []

    def tick(self) -> None:
        """One row: the tasks done, pending and running now."""
        try:
            counts = _counts_by_state(self.path)
        except sqlite3.Error:
            # Locked past the timeout, or the table not created yet: a gap in the series
            # says so better than a made-up row.
            return
        if counts is None:  # the server did not answer: a gap, as above
            return
        self.samples.append(
            (
                time.perf_counter() - self.started,
                float(counts.get("done", 0)),
                float(counts.get("pending", 0)),
                float(counts.get("running", 0)),
            )
        )


def _counts_by_state(path: Path | str) -> dict[str, int] | None:
    if is_dsn(path):
        return pgaudit.counts_by_state(str(path))
    with contextlib.closing(sqlite3.connect(path, timeout=5)) as db:
        return dict(db.execute("SELECT state, count(*) FROM tasks GROUP BY state"))


TIMELINE_POINTS = 60
"""Rows of a timeline rebuilt from the tasks' own times (:func:`queue_timeline`)."""


def task_times(path: Path | str) -> list[tuple[float, float | None, float | None]]:
    """Each task's created, last started and finished times, read after the run."""
    if is_dsn(path):
        return pgaudit.task_times(str(path))
    with contextlib.closing(sqlite3.connect(path, timeout=5)) as db:
        return list(db.execute("SELECT created_at, started_at, finished_at FROM tasks"))


def queue_timeline(
    times: list[tuple[float, float | None, float | None]], points: int = TIMELINE_POINTS
) -> list[tuple[float, float, float, float]]:
    """Rows of :data:`QUEUE_COLUMNS` over a finished run, rebuilt from each task's created,
    started and finished times: nothing samples the queue while it runs, so the workers'
    timings and profiles are untouched. At each of ``points`` times from the first enqueue to
    the last completion: tasks done, pending (created, not started) and running (started,
    not finished). A retried task counts from its last start. Empty when the tasks' times
    span no time."""
    if not times:
        return []
    created = np.sort(np.array([c for c, _, _ in times], dtype=np.float64))
    started = np.sort(np.array([s for _, s, _ in times if s is not None], dtype=np.float64))
    finished = np.sort(np.array([f for _, _, f in times if f is not None], dtype=np.float64))
    first = float(created[0])
    last = max(float(a[-1]) for a in (created, started, finished) if a.size)
    if last <= first:
        return []
    grid = np.linspace(first, last, max(points, 2))
    made = np.searchsorted(created, grid, side="right")
    began = np.searchsorted(started, grid, side="right")
    done = np.searchsorted(finished, grid, side="right")
    return [
        (float(t - first), float(d), float(max(m - b, 0)), float(max(b - d, 0)))
        for t, m, b, d in zip(grid, made, began, done, strict=True)
    ]
