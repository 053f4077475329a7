"""Profile any Python program (``queueprof profile``) or a running process (``queueprof
attach``) into an ordinary run folder that ``analyze`` and ``compare`` read.

The folder is claimed and finished through :class:`runs.RunFolder` like a workload's:
``manifest.json`` (workload ``program`` or ``attach``, the command line or pid, the profiler
and its options, the environment), ``results.json`` (duration and exit status; a program has
no metrics of ours), the profiler's artifacts, and ``adapters.json`` when ``--ops`` maps the
program's functions to operations.

In-process profilers (pyinstrument, memray, viztracer) run the script in a child Python
(:mod:`queueprof.program_child`) inside their session; py-spy launches the command as given,
or attaches to a pid. A program that exits non-zero leaves a ``failed`` folder whose
profile is still there to read.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from profilers import ProfilerError, get_profiler
from profilers.base import Profiler
from profilers.memray_wrapper import MemrayProfiler
from profilers.pyspy_wrapper import PySpyProfiler
from runs import (
    Artifact,
    ArtifactKind,
    Manifest,
    RunError,
    RunFolder,
    RunStatus,
    UsageError,
    WorkloadResult,
    check_run_id,
    new_run_id,
    now_iso,
)
from runs.adapters import AdapterSpec
from runs.files import MEMRAY_CAPTURE
from runs.manifest import PROGRAM_WORKLOAD
from workloads.capture import write_declarations
from workloads.environment import capture_environment
from workloads.runner import RunOutcome

from .ops import load_ops

PROGRAM = PROGRAM_WORKLOAD
ATTACH = "attach"
PYTHON_NAMES = ("python", "python3", f"python3.{sys.version_info.minor}")
ATTACH_PROFILERS = ("py-spy", "memray")


@dataclass(frozen=True)
class ProgramRequest:
    """``queueprof profile [options] -- COMMAND``."""

    command: tuple[str, ...]
    profiler: str = "pyinstrument"
    profiler_options: tuple[str, ...] = ()
    ops_file: Path | None = None
    out_dir: Path = Path("traces")
    run_id: str | None = None
    argv: tuple[str, ...] = ()


def profile_program(request: ProgramRequest) -> RunOutcome:
    """Run ``request.command`` under its profiler into a new run folder."""
    if not request.command:
        raise UsageError("queueprof profile: give the program after --, e.g. -- python app.py")
    cls = get_profiler(request.profiler)
    if cls.name == "none":
        raise UsageError("queueprof profile: choose a profiler (pyinstrument, memray, ...)")
    script = _script(request.command)
    if script is None and not cls.launcher:
        raise UsageError(
            f"{cls.name} runs inside the Python it profiles: write the program as "
            f"`-- python app.py ARGS` (got {' '.join(request.command)!r}); py-spy can run "
            "any command"
        )
    ops = (
        load_ops(request.ops_file, script or Path(request.command[0])) if request.ops_file else None
    )
    options = list(request.profiler_options)
    if cls.name == "viztracer" and script is not None and not _has(options, "include"):
        # viztracer records only the files it is told to: the program's folder.
        options.append(f"include={script.resolve().parent}")
    parsed = cls.options_type.parse(options)
    cls.check_available()
    run_dir = _claim(request.out_dir, request.run_id, PROGRAM)
    profiler = cls(parsed, run_dir)
    folder = _create(
        run_dir,
        PROGRAM,
        {"command": list(request.command), "ops": _str(request.ops_file)},
        profiler,
        request.argv,
    )
    notes: list[str] = []
    if script is None or _this_python(request.command)[0] != sys.executable:
        # py-spy runs any command; only a script on this Python runs where the capture is
        # installed (the in-process profilers refused the rest above).
        child = profiler.command(list(request.command))
        notes.append(NO_CAPTURE_COMMAND)
    else:
        # The script runs in queueprof's child, which captures every sqlite3 connection's
        # statements: inside an in-process profiler's session, or bare under py-spy.
        child = [
            sys.executable,
            "-m",
            "queueprof.program_child",
            "--profiler",
            "none" if cls.launcher else cls.name,
            "--run-dir",
            str(run_dir),
            *(arg for option in options for arg in ("--option", option) if not cls.launcher),
            "--",
            *request.command[1:],
        ]
        if cls.launcher:
            child = profiler.command(child)
    return _run_child(folder, profiler, child, ops, cls.launcher, notes)


NO_CAPTURE_COMMAND = (
    "no SQL capture: the command is not `python SCRIPT` on queueprof's Python, so it ran as "
    "given under py-spy, "
    "where queueprof cannot hook its sqlite3 connections (no statement timings, SQL hotspots, "
    "query plans or schema); run the program as `-- python app.py ARGS` to capture its SQL"
)
NO_CAPTURE_ATTACH = (
    "no SQL capture: attach samples a process that was already running, from outside; its "
    "sqlite3 connections were opened without queueprof's statement hooks, so there are no "
    "statement timings, SQL hotspots, query plans or schema snapshot. To capture them, start "
    "the program under queueprof: `queueprof profile --profiler py-spy -- python app.py`"
)


def _run_child(
    folder: RunFolder,
    profiler: Profiler,
    child: Sequence[str],
    ops: AdapterSpec | None,
    launcher: bool,
    notes: Sequence[str] = (),
) -> RunOutcome:
    # Before the start: the child reads the --ops map to name its statements' operations.
    artifacts = list(write_declarations(folder.path, [ops] if ops else []))
    started = time.perf_counter()
    interrupted = False
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(_python_path())}
    if launcher:
        env.update(profiler.launcher_env())
    own: list[str] = []
    with subprocess.Popen(
        child,
        stdout=subprocess.PIPE if launcher else None,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as process:
        # The program's own output goes on to the terminal as it comes; py-spy's lines are
        # kept for the run folder and the summary printed once at the end.
        relay = _relay(process, profiler, own) if launcher else None
        try:
            stderr = _stderr_of(process)
        except KeyboardInterrupt:
            interrupted = True
            process.send_signal(signal.SIGINT)
            stderr = _stderr_of(process)
        if relay is not None:
            relay.join()
    duration = time.perf_counter() - started
    problems: list[str] = []
    if launcher:
        profiler.read_output(own, stderr)
        try:
            artifacts += profiler.finish(interrupted=interrupted)
        except ProfilerError as error:
            problems.append(f"{error}; py-spy said: {profiler.explain(stderr)}")
    sys.stderr.writelines(
        line for line in stderr.splitlines(keepends=True) if not profiler.owns_line(line)
    )
    code = process.returncode
    return _finish(
        folder, profiler, artifacts, duration, code, interrupted, problems, launcher, notes
    )


def _relay(process: subprocess.Popen[str], profiler: Profiler, own: list[str]) -> threading.Thread:
    """A thread that copies ``process``'s standard output to ours, line by line, less the
    lines the launcher printed itself, which go to ``own``."""

    def copy() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            if profiler.owns_line(line):
                own.append(line)
            else:
                sys.stdout.write(line)
                sys.stdout.flush()

    relay = threading.Thread(target=copy, name="launcher output", daemon=True)
    relay.start()
    return relay


def _stderr_of(process: subprocess.Popen[str]) -> str:
    """Wait for ``process`` and return its standard error (its output is relayed apart)."""
    assert process.stderr is not None
    stderr = process.stderr.read()
    process.wait()
    return stderr


def attach(
    pid: int,
    *,
    duration_s: float,
    profiler_name: str = "py-spy",
    ops_file: Path | None = None,
    out_dir: Path = Path("traces"),
    run_id: str | None = None,
    argv: Sequence[str] = (),
) -> RunOutcome:
    """Sample the running process ``pid`` for ``duration_s`` seconds into a new run folder."""
    if profiler_name not in ATTACH_PROFILERS:
        raise UsageError(
            f"queueprof attach --profiler {profiler_name!r}: attaching works with "
            f"{' or '.join(ATTACH_PROFILERS)}"
        )
    try:
        target = psutil.Process(pid)
        cmdline = target.cmdline()
    except psutil.Error as error:
        raise UsageError(
            f"queueprof attach {pid}: no such process to attach to ({error})"
        ) from None
    if not 0 < duration_s <= 3600:
        raise UsageError(f"--duration {duration_s:g}: give 0 < seconds <= 3600")
    script = _script(cmdline)
    ops = load_ops(ops_file, script or Path(cmdline[0])) if ops_file else None
    cls = get_profiler(profiler_name)
    cls.check_available()
    run_dir = _claim(out_dir, run_id, ATTACH)
    profiler = cls(cls.options_type.parse([]), run_dir)
    folder = _create(
        run_dir,
        ATTACH,
        {"pid": pid, "command": cmdline, "duration_s": duration_s, "ops": _str(ops_file)},
        profiler,
        argv,
    )
    if isinstance(profiler, MemrayProfiler):
        return _attach_memray(folder, profiler, pid, duration_s, ops)
    assert isinstance(profiler, PySpyProfiler)
    command = [*profiler.attach_command(pid), "--duration", f"{duration_s:g}"]
    return _run_child(folder, profiler, command, ops, launcher=True, notes=[NO_CAPTURE_ATTACH])


MEMRAY_GRACE_S = 30.0
"""How long after the duration the target may take to close its capture (it writes it from
its own threads, between the program's bytecodes)."""


def _attach_memray(
    folder: RunFolder,
    profiler: MemrayProfiler,
    pid: int,
    duration_s: float,
    ops: AdapterSpec | None,
) -> RunOutcome:
    """memray attach: start tracking, wait while the target records, then render."""
    artifacts = list(write_declarations(folder.path, [ops] if ops else []))
    started = time.perf_counter()
    done = subprocess.run(
        profiler.attach_command(pid, duration_s), capture_output=True, text=True, check=False
    )
    problems: list[str] = []
    if done.returncode != 0:
        said = attach_failure(f"{done.stdout or ''}\n{done.stderr or ''}")
        problems.append(_memray_attach_error(said))
    else:
        capture = folder.path / MEMRAY_CAPTURE
        if not _capture_closed(capture, started + duration_s + MEMRAY_GRACE_S):
            problems.append(
                f"the target did not close its memray capture within {MEMRAY_GRACE_S:g} s of "
                f"the {duration_s:g} s duration ({capture})"
            )
        else:
            try:
                artifacts += profiler.finish()
            except ProfilerError as error:
                problems.append(str(error))
    duration = time.perf_counter() - started
    return _finish(
        folder, profiler, artifacts, duration, 0, False, problems, True, [NO_CAPTURE_ATTACH]
    )


def _capture_closed(capture: Path, deadline: float) -> bool:
    """Wait until memray can read the capture's end time (the target closed it)."""
    import memray

    while time.perf_counter() < deadline:
        if capture.exists():
            try:
                reader = memray.FileReader(capture)
            except (OSError, ValueError):
                pass  # still being written
            else:
                try:
                    if reader.metadata.end_time is not None:
                        return True
                finally:
                    reader.close()
        time.sleep(0.5)
    return False


def attach_failure(output: str) -> str:
    """What ``memray attach --verbose`` said of its failure: its last line, and the
    debugger's error in the command file it ran, when there is one (gdb's "Couldn't write
    extended state status: Bad address" where it cannot call into processes here)."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    if not lines:
        return ""
    said = lines[-1]
    for i, line in enumerate(lines[:-1]):
        if "Error in sourced command file" in line and i + 1 < len(lines) - 1:
            said += f" (the debugger: {lines[i + 1]})"
            break
    return said[-600:]


def _memray_attach_error(said: str) -> str:
    """Why ``memray attach`` failed, with what it needs and what works instead."""
    return (
        f"memray attach failed: {said or 'no output'}. It injects memray into the live "
        "process through gdb or lldb (install gdb), needs ptrace permission over it (run as "
        "root or `sysctl kernel.yama.ptrace_scope=0`), and the target's Python must import "
        "the same memray. Otherwise use `--profiler py-spy`, or start the program under "
        "memray: `queueprof profile --profiler memray -- python app.py`"
    )


def _finish(
    folder: RunFolder,
    profiler: Profiler,
    artifacts: list[Artifact],
    duration: float,
    code: int,
    interrupted: bool,
    problems: list[str],
    launcher: bool,
    notes: Sequence[str] = (),
) -> RunOutcome:
    manifest = folder.read()
    error = None
    if interrupted:
        status = RunStatus.INTERRUPTED
    elif code != 0:
        status = RunStatus.FAILED
        error = RunError(
            "ProgramExit",
            f"the program exited with status {code}" + "".join(f"; {p}" for p in problems),
            "",
        )
    else:
        status = RunStatus.COMPLETE
    if problems and status is RunStatus.COMPLETE:
        status = RunStatus.FAILED
        error = RunError("ProfilerError", "; ".join(problems), "")
    result = WorkloadResult(
        workload=manifest.workload,
        size=manifest.size,
        params=dict(manifest.params),
        queue={},
        complete=status is RunStatus.COMPLETE,
        duration_s=duration,
        counters={"exit_status": code},
        notes=(*problems, *notes),
    )
    folder.write_results(result)
    # An in-process profiler's child listed its artifacts and its final entry already.
    listed = [_artifact(entry) for entry in manifest.artifacts]
    entry = profiler.manifest() if launcher else dict(manifest.profiler)
    finished = folder.finish(status, artifacts=[*listed, *artifacts], error=error, profiler=entry)
    return RunOutcome(folder.path, finished.status, result, error)


def _artifact(entry: Mapping[str, str]) -> Artifact:
    return Artifact(
        ArtifactKind(entry["kind"]),
        entry["path"],
        entry["format"],
        entry["viewer"],
        entry.get("description", ""),
    )


def _this_python(command: Sequence[str]) -> list[str]:
    """``command`` with a bare ``python`` replaced by the Python running queueprof (the
    in-process profilers run the script there too, so both kinds profile the same Python)."""
    if command and Path(command[0]).name in PYTHON_NAMES and os.sep not in command[0]:
        return [sys.executable, *command[1:]]
    return list(command)


def _script(command: Sequence[str]) -> Path | None:
    """The script of ``python [-flags] app.py ...`` (None for ``-m``, ``-c`` or non-Python)."""
    if not command or Path(command[0]).name not in (*PYTHON_NAMES, Path(sys.executable).name):
        return None
    for arg in command[1:]:
        if arg in ("-m", "-c"):
            return None
        if not arg.startswith("-"):
            return Path(arg)
    return None


def _claim(out_dir: Path, run_id: str | None, kind: str) -> Path:
    run_dir = out_dir / check_run_id(run_id or new_run_id(kind))
    if run_dir.exists():
        raise UsageError(f"run folder {str(run_dir)!r} already exists; choose another --run-id")
    return run_dir


def _create(
    run_dir: Path, kind: str, params: dict[str, Any], profiler: Profiler, argv: Sequence[str]
) -> RunFolder:
    manifest = Manifest(
        run_id=run_dir.name,
        workload=kind,
        size="-",
        params=params,
        profiler=profiler.manifest(),
        queue={},
        targets_files=(),
        environment=capture_environment(),
        command=("queueprof", *argv),
        started_at=now_iso(),
    )
    return RunFolder.create(run_dir, manifest)


def _has(options: Sequence[str], key: str) -> bool:
    return any(option.split("=", 1)[0].strip() == key for option in options)


def _str(path: Path | None) -> str | None:
    return None if path is None else str(path)


def _python_path() -> list[str]:
    """The child's PYTHONPATH: queueprof's own folder first (the child imports it), then the
    caller's, so a checkout used through PYTHONPATH works as an installed queueprof does."""
    root = str(Path(__file__).resolve().parents[1])
    return [root, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
