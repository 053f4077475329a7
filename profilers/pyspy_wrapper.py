"""py-spy: samples the workload from outside, as a child process it starts.

py-spy reads the target's memory instead of running inside it, so it sees every thread (the
event loop and each aiosqlite thread), worker processes with ``subprocesses``, and with
``native`` SQLite's own C frames, at close to no cost to the target. Starting the target as
a child needs no extra privilege; attaching to a running pid may.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from runs.files import PYSPY_COLLAPSED as COLLAPSED
from runs.files import PYSPY_SPEEDSCOPE as SPEEDSCOPE

from .base import (
    Artifact,
    ArtifactKind,
    Profiler,
    ProfilerError,
    ProfilerOptions,
    ProfilerUnavailable,
)

PERMISSION_FIX = (
    "py-spy needs ptrace permission: run as root, or allow it with "
    "`sudo sysctl kernel.yama.ptrace_scope=0`, or in a container add the SYS_PTRACE "
    "capability (docker run --cap-add SYS_PTRACE)"
)


@dataclass(frozen=True)
class PySpyOptions(ProfilerOptions):
    rate: int = 100
    """Samples per second."""
    native: bool = False
    """Include C frames (SQLite, the interpreter) in the stacks."""
    subprocesses: bool = True
    """Follow child processes (worker processes in process mode)."""
    idle: bool = True
    """Keep samples of idle threads (waiting on the lock or the next job): wall time."""
    gil: bool = False
    """Only keep samples of the thread holding the GIL."""
    nonblocking: bool = True
    """Read stacks without pausing the target. Pausing (``false``) gives exactly consistent
    stacks but stops every thread on each sample, which nearly doubled a queue run's time on
    the reference machine; an occasional torn stack is the cheaper trade here."""

    def __post_init__(self) -> None:
        if not 1 <= self.rate <= 10_000:
            raise ValueError(f"rate={self.rate!r} must be 1..10000 samples per second")


def pyspy_binary() -> str | None:
    """The py-spy executable: next to this Python first (a venv), then on PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    if beside.exists():
        return str(beside)
    return shutil.which("py-spy")


class PySpyProfiler(Profiler):
    name = "py-spy"
    description = "sampling profiler from outside the process: all threads, workers, C frames"
    options_type = PySpyOptions
    queue_options = "capture_sql=true"  # SQL hotspots for the analysis; baseline gets it too
    launcher = True

    def __init__(self, options: ProfilerOptions, run_dir: Path) -> None:
        super().__init__(options, run_dir)
        assert isinstance(options, PySpyOptions)
        self.opts = options
        self.summary: dict[str, Any] = {}
        self.sampling: SamplingReport | None = None

    @classmethod
    def check_available(cls) -> None:
        binary = pyspy_binary()
        if binary is None:
            raise ProfilerUnavailable(
                "py-spy is not installed; install it with `pip install py-spy` "
                "(or `pip install queueprof[profilers]`)"
            )
        try:
            subprocess.run([binary, "--version"], capture_output=True, check=True, timeout=30)
        except (OSError, subprocess.SubprocessError) as error:
            raise ProfilerUnavailable(f"py-spy at {binary} does not run here: {error}") from None

    def command(self, child: Sequence[str]) -> list[str]:
        """py-spy recording ``child``, which it starts."""
        return [*self._record(), "--", *child]

    def attach_command(self, pid: int) -> list[str]:
        """py-spy recording the running process ``pid`` until it exits or gets SIGINT.

        It prints ``Sampling process ...`` on its standard output once attached (the
        interpreter's symbols read), before its first sample. Attaching needs ptrace
        permission over ``pid`` (see ``PERMISSION_FIX``)."""
        return [*self._record(), "--pid", str(pid)]

    def _record(self) -> list[str]:
        binary = pyspy_binary()
        if binary is None:
            self.check_available()
            raise AssertionError("unreachable")  # check_available raised
        command = [
            binary,
            "record",
            "--format",
            "speedscope",
            "--output",
            str(self.run_dir / SPEEDSCOPE),
            "--rate",
            str(self.opts.rate),
        ]
        for flag, on in (
            ("--native", self.opts.native),
            ("--subprocesses", self.opts.subprocesses),
            ("--idle", self.opts.idle),
            ("--gil", self.opts.gil),
            ("--nonblocking", self.opts.nonblocking),
        ):
            if on:
                command.append(flag)
        return command

    def explain(self, stderr: str) -> str:
        """A message for a py-spy run that failed, with the fix when it is a permission one."""
        own_log = (line for line in stderr.splitlines() if not _LOG_LINE.match(line))
        text = "\n".join(own_log).strip()[-800:]
        lowered = text.lower()
        if "permission" in lowered or "ptrace" in lowered or "operation not permitted" in lowered:
            return f"{PERMISSION_FIX}. py-spy said: {text}"
        return f"py-spy failed: {text or 'no output'}"

    def launcher_env(self) -> dict[str, str]:
        # py-spy logs each sampling error as a warning (the process it failed to read, and
        # why) only when its log level asks for warnings.
        return {"RUST_LOG": "warn"}

    def owns_line(self, line: str) -> bool:
        return line.startswith(LEDE) or _LOG_LINE.match(line) is not None

    def read_output(self, own_lines: Sequence[str], stderr: str) -> None:
        self.sampling = SamplingReport.read(own_lines, stderr)

    def finish(self, *, interrupted: bool = False) -> list[Artifact]:
        path = self.run_dir / SPEEDSCOPE
        if not path.exists():
            raise ProfilerError(
                f"py-spy wrote no profile ({path.name} missing)"
                + ("; the run was interrupted before py-spy saved it" if interrupted else "")
            )
        try:
            profile = orjson.loads(path.read_bytes())
        except orjson.JSONDecodeError as error:
            raise ProfilerError(f"{path} is not valid JSON ({error}); py-spy was cut off") from None
        lines, samples = collapse(profile)
        (self.run_dir / COLLAPSED).write_text("".join(lines), encoding="utf-8")
        self.summary = {
            "samples": samples,
            "threads": [p.get("name", "") for p in profile.get("profiles", [])],
        }
        return [
            Artifact(
                ArtifactKind.CPU_PROFILE,
                SPEEDSCOPE,
                "speedscope",
                f"npx speedscope {SPEEDSCOPE}  (or drop it on a local speedscope)",
                f"py-spy samples of every thread ({len(self.summary['threads'])} profiles)",
            ),
            Artifact(
                ArtifactKind.CPU_PROFILE,
                COLLAPSED,
                "collapsed",
                f"flamegraph.pl {COLLAPSED} > flame.svg, or any collapsed-stack viewer",
                "the same samples as collapsed stacks, one line per distinct stack",
            ),
        ]

    def manifest(self) -> dict[str, Any]:
        entry = {**super().manifest(), "summary": self.summary}
        if self.sampling is not None:
            entry["summary"] = {**self.summary, **self.sampling.to_dict()}
            entry["notes"] = self.sampling.notes()
        return entry


LEDE = "py-spy> "
"""How py-spy starts each line it prints itself (its child's output has no such start)."""

_LOG_LINE = re.compile(r"\[\S+ +(TRACE|DEBUG|INFO|WARN|ERROR) +py_spy")
"""A line of py-spy's log on its standard error (``[<time> WARN  py_spy] ...``)."""
_COUNTS = re.compile(r"Samples: (\d+) Errors: (\d+)")
_BEHIND = re.compile(r"([\d.]+)s behind in sampling")
_SAMPLING_ERROR = re.compile(r"Failed to get stack trace from (\d+): (.*)")


@dataclass(frozen=True)
class SamplingReport:
    """What py-spy said about its sampling: counts, errors and how far behind it fell.

    An error in py-spy's count is one sampling interval in which it could not read one
    process's Python stacks: that process's whole sample for the interval is dropped (its
    log names the process and the thread whose frames it failed to copy). py-spy stops
    sampling a process that has exited without counting an error, so these are reads of a
    live process that failed: with ``nonblocking`` (the default here) the target runs on
    while py-spy copies its frames from memory, and a thread that changed its stack during
    the copy (a call returning, a frame freed, a thread starting or ending) gives a read
    that does not hold together and is thrown away.
    """

    samples: int | None
    """Stack samples py-spy kept (one per thread per interval)."""
    errors: int | None
    """Sampling intervals lost, one per process whose stacks could not be read."""
    errors_by_process: Mapping[int, int]
    """Errors per process id, from py-spy's warnings."""
    behind_s: float
    """The furthest py-spy fell behind its rate (it prints this past one second)."""
    stopped: str
    """Why sampling stopped, as py-spy put it."""

    @classmethod
    def read(cls, own_lines: Sequence[str], stderr: str) -> SamplingReport:
        """The report from py-spy's own lines of output and its warnings on stderr."""
        samples = errors = None
        behind = 0.0
        stopped = ""
        for line in own_lines:
            text = line[len(LEDE) :].strip() if line.startswith(LEDE) else line.strip()
            if counts := _COUNTS.search(text):
                samples, errors = int(counts[1]), int(counts[2])
            elif late := _BEHIND.search(text):
                behind = max(behind, float(late[1]))
            elif text.startswith("Stopped sampling"):
                stopped = text
        by_process: Counter[int] = Counter()
        for line in stderr.splitlines():
            if failed := _SAMPLING_ERROR.search(line):
                by_process[int(failed[1])] += 1
        return cls(samples, errors, dict(by_process), behind, stopped)

    def to_dict(self) -> dict[str, Any]:
        """The manifest summary's fields."""
        return {
            "samples_reported": self.samples,
            "sampling_errors": self.errors,
            "sampling_errors_by_process": {str(k): v for k, v in self.errors_by_process.items()},
            "behind_s": self.behind_s,
            "stopped": self.stopped,
        }

    def notes(self) -> list[str]:
        """What a reader of the run should know, in plain words (nothing when all is well)."""
        notes: list[str] = []
        if self.errors:
            processes = len(self.errors_by_process)
            where = f" in {processes} process(es)" if processes else ""
            share = (
                f" ({self.errors / (self.samples + self.errors):.1%} of what was read)"
                if self.samples
                else ""
            )
            notes.append(
                f"py-spy: {self.errors} sampling error(s){where}{share}: each is one sampling "
                "interval in which py-spy could not read one live process's stacks, so that "
                "interval's sample of the process was dropped. With nonblocking=true the "
                "process runs on while py-spy copies its frames, and a thread whose stack "
                "changed mid-copy gives a torn read; a few are expected and do not bias the "
                "profile (nonblocking=false pauses the process for each sample instead)"
            )
        if self.behind_s > 0:
            notes.append(
                f"py-spy fell up to {self.behind_s:.1f} s behind its sampling rate (the "
                "machine was busy): the profile rests on fewer samples than the rate implies"
            )
        return notes


def collapse(profile: dict[str, Any]) -> tuple[list[str], int]:
    """Collapsed stacks (``thread;root;...;leaf count``) from a speedscope sampled profile.

    Counts are samples; py-spy weights every sample equally.
    """
    frames = profile["shared"]["frames"]
    names = [_frame_label(f) for f in frames]
    counts: Counter[str] = Counter()
    for entry in profile.get("profiles", []):
        thread = _clean(str(entry.get("name", "thread")))
        for stack in entry.get("samples", []):
            counts[";".join([thread, *(names[i] for i in stack)])] += 1
    lines = [f"{stack} {count}\n" for stack, count in sorted(counts.items())]
    return lines, sum(counts.values())


def _frame_label(frame: dict[str, Any]) -> str:
    label = str(frame.get("name", "?"))
    if frame.get("file"):
        label += f" ({frame['file']}:{frame.get('line') or 0})"
    return _clean(label)


_SEPARATORS = str.maketrans(
    {";": ":", **{c: " " for c in "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"}}
)


def _clean(label: str) -> str:
    """``label`` without the stack separator or anything a reader would split lines on."""
    return label.translate(_SEPARATORS)
