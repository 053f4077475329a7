"""memray: allocation capture around the workload, reports rendered offline.

The capture is aggregated by default (small whatever the run length); ``mode=full`` keeps
every allocation for temporal views. Reports are rendered with ``--no-web`` so the HTML
works without a network (memray's default loads d3 and plotly from a CDN).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import orjson

from runs.files import MEMRAY_CAPTURE as CAPTURE
from runs.files import MEMRAY_FLAMEGRAPH as FLAMEGRAPH
from runs.files import MEMRAY_LEAKS as LEAKS
from runs.files import MEMRAY_STATS as STATS

from .base import (
    Artifact,
    ArtifactKind,
    Profiler,
    ProfilerError,
    ProfilerOptions,
    ProfilerUnavailable,
)


@dataclass(frozen=True)
class MemrayOptions(ProfilerOptions):
    mode: Literal["aggregated", "full"] = "aggregated"
    """``aggregated`` keeps sizes per stack (small); ``full`` keeps every allocation."""
    native: bool = False
    """Record C stacks too (SQLite's own allocations by function)."""
    trace_python_allocators: bool = False
    """See pymalloc's small-object allocations one by one (slower, more exact). The leak
    flame graph is only rendered with it: without it, memory pymalloc keeps for reuse looks
    leaked."""


NO_LEAKS_PAGE = (
    f"no {LEAKS}: without trace_python_allocators=true, pymalloc's pools keep freed objects' "
    "memory and memray cannot tell it from leaked memory (its own page says the results are "
    "misleading); pass --profiler-option trace_python_allocators=true for a truthful leak "
    "flame graph. The memory workload's heap-growth.json holds the steady-state growth by "
    "allocation site either way"
)
"""Why a run has no leak flame graph, in its manifest and so in its report."""


class MemrayProfiler(Profiler):
    name = "memray"
    description = "allocation profiler: peak, leaks, flame graph by allocating stack"
    options_type = MemrayOptions

    def __init__(self, options: ProfilerOptions, run_dir: Path) -> None:
        super().__init__(options, run_dir)
        assert isinstance(options, MemrayOptions)
        self.opts = options
        self.summary: dict[str, Any] = {}
        self.problems: list[str] = []
        self._started = False

    @classmethod
    def check_available(cls) -> None:
        try:
            import memray  # noqa: F401
        except ImportError:
            raise ProfilerUnavailable(
                "memray is not installed; install it with `pip install memray` "
                "(or `pip install queueprof[profilers]`); it runs on Linux and macOS only"
            ) from None

    def attach_command(self, pid: int, duration_s: float) -> list[str]:
        """``memray attach`` tracking the running process ``pid`` for ``duration_s`` seconds.

        memray injects its tracker into the target through gdb or lldb (the target's Python
        must import the same memray, and attaching needs ptrace permission); the target
        writes the capture into this run folder and closes it when the duration ends.
        Afterwards :meth:`finish` renders the reports as for an in-process session.
        """
        command = [
            sys.executable,
            "-m",
            "memray",
            "attach",
            # the debugger's own output, which names why an injection failed
            "--verbose",
            "-f",
            "-o",
            str(self.run_dir / CAPTURE),
        ]
        if self.opts.mode == "aggregated":
            command.append("--aggregate")
        if self.opts.native:
            command.append("--native")
        if self.opts.trace_python_allocators:
            command.append("--trace-python-allocators")
        self._started = True  # the capture is the target's to write from here on
        return [*command, "--duration", f"{duration_s:g}", str(pid)]

    @contextmanager
    def session(self) -> Iterator[None]:
        import memray

        capture = self.run_dir / CAPTURE
        capture.unlink(missing_ok=True)
        file_format = (
            memray.FileFormat.AGGREGATED_ALLOCATIONS
            if self.opts.mode == "aggregated"
            else memray.FileFormat.ALL_ALLOCATIONS
        )
        with memray.Tracker(
            capture,
            native_traces=self.opts.native,
            trace_python_allocators=self.opts.trace_python_allocators,
            file_format=file_format,
        ):
            self._started = True
            yield

    def finish(self, *, interrupted: bool = False) -> list[Artifact]:
        capture = self.run_dir / CAPTURE
        if not self._started or not capture.exists():
            raise ProfilerError("memray wrote no capture: the workload never started")
        import memray

        try:
            reader = memray.FileReader(capture)
            meta = reader.metadata
        except (OSError, ValueError) as error:
            raise ProfilerError(f"memray capture {capture} cannot be read: {error}") from None
        self.summary = {
            "peak_memory_bytes": meta.peak_memory,
            "total_allocations": meta.total_allocations,
            "total_frames": meta.total_frames,
            "duration_s": (meta.end_time - meta.start_time).total_seconds(),
            "file_format": self.opts.mode,
        }
        reader.close()
        artifacts = [
            Artifact(
                ArtifactKind.ALLOCATIONS,
                CAPTURE,
                "memray-capture",
                f"memray summary {CAPTURE}  /  memray tree {CAPTURE}",
                f"memray capture ({self.opts.mode})",
            )
        ]
        self._memray("flamegraph", "--no-web", "-f", "-o", FLAMEGRAPH, CAPTURE)
        artifacts.append(
            Artifact(
                ArtifactKind.ALLOCATIONS,
                FLAMEGRAPH,
                "html",
                f"open {FLAMEGRAPH} in a browser (works offline)",
                "flame graph of memory at its peak, by allocating stack",
            )
        )
        if self.opts.trace_python_allocators:
            self._memray("flamegraph", "--no-web", "--leaks", "-f", "-o", LEAKS, CAPTURE)
            artifacts.append(
                Artifact(
                    ArtifactKind.ALLOCATIONS,
                    LEAKS,
                    "html",
                    f"open {LEAKS} in a browser (works offline)",
                    "flame graph of memory allocated during the run and still held at its end, "
                    "Python objects freed one by one (one-time allocations such as imports, "
                    "and the memory workload's own heap snapshots, are held too and show)",
                )
            )
        else:
            self.problems.append(NO_LEAKS_PAGE)
        (self.run_dir / STATS).write_bytes(
            orjson.dumps(self.summary | stack_stats(capture), option=orjson.OPT_INDENT_2)
        )
        artifacts.append(
            Artifact(
                ArtifactKind.ALLOCATIONS,
                STATS,
                "json",
                f"any JSON viewer; `memray summary {CAPTURE}` shows the same in a terminal",
                "peak and leaked memory by allocating stack (innermost frame first)",
            )
        )
        return artifacts

    def manifest(self) -> dict[str, Any]:
        entry = {**super().manifest(), "summary": self.summary}
        if self.problems:
            entry["problems"] = list(self.problems)
        return entry

    def _memray(self, *args: str) -> None:
        # The reporters run in a child: rendering a large capture in this process would
        # grow the very process whose memory the run reports.
        command = [sys.executable, "-m", "memray", *args]
        done = subprocess.run(
            command, cwd=self.run_dir, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise ProfilerError(
                f"`{' '.join(command[1:])}` failed in {self.run_dir} (exit {done.returncode}): "
                f"{(done.stderr or done.stdout).strip()[-500:]}"
            )


def stack_stats(capture: Path, top: int = 50) -> dict[str, Any]:
    """Peak and leaked memory by stack, from any capture (``memray stats`` refuses aggregated).

    Stacks are lists of [function, file, line], innermost first, as memray gives them.
    """
    import memray

    reader = memray.FileReader(capture)
    try:
        peak = _records(reader.get_high_watermark_allocation_records(merge_threads=True), top)
        leaked = _records(reader.get_leaked_allocation_records(merge_threads=True), top)
    finally:
        reader.close()
    return {"schema_version": 1, "peak_by_stack": peak, "leaked_by_stack": leaked}


def _records(records: Any, top: int) -> dict[str, Any]:
    rows = sorted(records, key=lambda r: r.size, reverse=True)
    return {
        "total_bytes": sum(r.size for r in rows),
        "total_allocations": sum(r.n_allocations for r in rows),
        "stacks": [
            {
                "bytes": r.size,
                "allocations": r.n_allocations,
                "allocator": str(r.allocator),
                "thread": r.thread_name,
                "stack": [list(frame) for frame in r.stack_trace()],
            }
            for r in rows[:top]
        ],
    }
