"""Resource sampling over time: CPU and RSS of this process and its children (psutil)."""

from __future__ import annotations

import threading
import time
from types import TracebackType

import psutil


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


class ResourceSampler:
    """A background thread sampling (elapsed s, CPU %, RSS bytes) of the process tree.

    CPU % is summed over processes (200 % = two cores busy). Use as a context manager;
    ``samples`` holds the rows and ``peak_rss`` the largest RSS seen.
    """

    def __init__(self, interval_s: float = 0.1) -> None:
        self.interval_s = interval_s
        self.samples: list[tuple[float, float, float]] = []
        self.peak_rss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="queueprof-sampler", daemon=True)
        self._root = psutil.Process()
        self._known: dict[int, psutil.Process] = {}

    def __enter__(self) -> ResourceSampler:
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

    def _run(self) -> None:
        started = time.perf_counter()
        while not self._stop.is_set():
            cpu, rss = self._sample()
            self.peak_rss = max(self.peak_rss, rss)
            self.samples.append((time.perf_counter() - started, cpu, float(rss)))
            self._stop.wait(self.interval_s)

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
