"""SIGTERM, SIGHUP and Ctrl-C end a run alike, in every phase: through the real command.

Each test starts ``python -m queueprof run latency`` with far more load than it will run,
waits until the run has finished some tasks (read from its own scratch database), sends one
signal to the queueprof process only, and then checks the folder, the temp folder and that
no process the run started is still alive.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from runs import Manifest, RunStatus, WorkloadResult
from tests.cli.test_cli import _env, finished_tasks

LONG_RUN = ("latency", "--size", "smoke", "--param", "tasks=100000", "--run-id", "cut", "--quiet")
"""200 s of offered load at the latency workload's 500 tasks/s: far longer than any test."""
PROCESS_MODE = ("--param", "mode=process", "--param", "workers=3")
NO_BASELINE = "--no-baseline"


class Run:
    """A ``queueprof run`` child, the processes it started so far, and its temp folder."""

    def __init__(self, tmp_path: Path, *extra: str) -> None:
        self.tmp_path = tmp_path
        self.scratch = tmp_path / "scratch"
        self.scratch.mkdir()
        self.child = subprocess.Popen(
            [sys.executable, "-m", "queueprof", "run", *LONG_RUN, *extra],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            # py-spy is found beside the interpreter
            env=_env(
                TMPDIR=str(self.scratch),
                PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]),
            ),
        )
        self.descendants: dict[int, psutil.Process] = {}

    @property
    def folder(self) -> Path:
        return self.tmp_path / "traces" / "cut"

    def wait_for_done_tasks(self, *, at_least: int = 20, baseline: bool = False) -> None:
        """Until a scratch database of the run (of its bare baseline with ``baseline``) has
        finished ``at_least`` tasks, noting every process the run has started meanwhile."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            self._note_descendants()
            assert self.child.poll() is None, self.child.communicate()
            for path in self.scratch.rglob("latency-*.db"):
                in_baseline = "-baseline-" in str(path)
                if in_baseline is baseline and finished_tasks(path) >= at_least:
                    self._note_descendants()
                    return
            time.sleep(0.05)
        pytest.fail(f"the run finished no {at_least} tasks within 60 s")

    def signal(self, signum: signal.Signals) -> tuple[str, str]:
        """Send ``signum`` to the queueprof process only; its stdout and stderr once ended."""
        self.child.send_signal(signum)
        try:
            return self.child.communicate(timeout=60)
        finally:
            self.kill()

    def kill(self) -> None:
        """What a failed test must not leave behind: the run and everything it started."""
        if self.child.poll() is None:
            self.child.kill()
            self.child.wait()
        for process in self.descendants.values():
            if process.is_running():
                process.kill()

    def survivors(self) -> list[str]:
        """The processes the run started that are still alive (given a few seconds to exit)."""
        _, alive = psutil.wait_procs(list(self.descendants.values()), timeout=5)
        return [f"{p.pid} {' '.join(p.cmdline()[:6])}" for p in alive if _alive(p)]

    def leftovers(self) -> list[Path]:
        """Files and folders the run left in its temp folder."""
        return [p for p in self.scratch.iterdir() if p.name.startswith("queueprof-")] + list(
            self.scratch.rglob("*.db")
        )

    def _note_descendants(self) -> None:
        try:
            for process in psutil.Process(self.child.pid).children(recursive=True):
                self.descendants.setdefault(process.pid, process)
        except psutil.NoSuchProcess:
            pass


def _alive(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.slow
@pytest.mark.parametrize(
    ("extra", "signum"),
    [
        pytest.param((), signal.SIGTERM, id="bare-sigterm"),
        pytest.param((), signal.SIGHUP, id="bare-sighup"),
        pytest.param(
            ("--profiler", "pyinstrument", NO_BASELINE), signal.SIGTERM, id="pyinstrument"
        ),
        pytest.param(("--profiler", "py-spy", NO_BASELINE), signal.SIGTERM, id="py-spy"),
        pytest.param(PROCESS_MODE, signal.SIGTERM, id="process"),
        pytest.param(PROCESS_MODE, signal.SIGHUP, id="process-sighup"),
    ],
)
def test_sigterm_and_sighup_end_a_run_like_ctrl_c_and_leave_no_process_behind(
    tmp_path: Path, extra: tuple[str, ...], signum: signal.Signals
) -> None:
    # GIVEN a run far longer than the test that has finished some tasks
    run = Run(tmp_path, *extra)
    try:
        run.wait_for_done_tasks()
        # WHEN only the queueprof process gets SIGTERM (a process manager) or SIGHUP
        _, stderr = run.signal(signum)
    finally:
        run.kill()
    # THEN it ends as on Ctrl-C: exit 130, the folder interrupted with the partial results
    # and its profiler's name, the scratch databases gone, and nothing it started alive
    assert run.child.returncode == 130, stderr
    manifest = Manifest.from_json((run.folder / "manifest.json").read_bytes())
    assert manifest.status is RunStatus.INTERRUPTED
    profiler = extra[1] if extra[:1] == ("--profiler",) else "none"
    assert manifest.profiler["name"] == profiler
    result = WorkloadResult.from_json((run.folder / "results.json").read_bytes())
    assert not result.complete
    assert any(signum.name in note for note in result.notes), result.notes
    assert result.latencies["e2e"].count >= 20
    assert run.leftovers() == []
    # py-spy and the run under it; three workers (and multiprocessing's resource tracker)
    started = {"py-spy": 2, "process": 3}.get("process" if extra == PROCESS_MODE else profiler, 0)
    assert len(run.descendants) >= started, "the test saw too few of the processes started"
    assert run.survivors() == []


@pytest.mark.slow
@pytest.mark.parametrize("profiler", ["pyinstrument", "py-spy"])
def test_ctrl_c_during_the_bare_baseline_ends_the_run_interrupted_with_no_temp_folders(
    tmp_path: Path, profiler: str
) -> None:
    # GIVEN a profiled run still in its bare baseline phase (which runs first)
    run = Run(tmp_path, "--profiler", profiler)
    try:
        run.wait_for_done_tasks(baseline=True)
        # WHEN the queueprof process gets SIGINT (Ctrl-C)
        _, stderr = run.signal(signal.SIGINT)
    finally:
        run.kill()
    # THEN it stops there, exit 130: the folder it claimed says interrupted, with no
    # metrics and a note that the profiled run never started; no baseline is kept, no temp
    # folder is left (it used to go on to a complete profiled run under pyinstrument, and
    # end in a traceback with temp folders left under py-spy)
    assert run.child.returncode == 130, stderr
    assert "Traceback" not in stderr
    manifest = Manifest.from_json((run.folder / "manifest.json").read_bytes())
    assert manifest.status is RunStatus.INTERRUPTED
    assert manifest.profiler["name"] == profiler
    result = WorkloadResult.from_json((run.folder / "results.json").read_bytes())
    assert not result.complete
    assert result.metrics == {}
    assert any("during the bare baseline" in note for note in result.notes), result.notes
    assert not (run.folder / "baseline").exists()
    assert run.leftovers() == []
    assert run.survivors() == []


@pytest.mark.slow
def test_worker_processes_exit_when_the_run_is_killed_outright(tmp_path: Path) -> None:
    # GIVEN a process-mode run whose workers run until told to stop
    run = Run(tmp_path, *PROCESS_MODE)
    try:
        run.wait_for_done_tasks()
        # WHEN the run is killed with SIGKILL (no handler, no clean-up)
        run.child.kill()
        run.child.communicate(timeout=60)
        # THEN its workers notice within seconds and exit (they used to run for ever)
        assert len(run.descendants) >= 3
        assert run.survivors() == []
    finally:
        run.kill()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("extra", "baseline"),
    [
        pytest.param((NO_BASELINE,), False, id="profiled-run"),
        pytest.param((), True, id="bare-baseline"),
    ],
)
def test_a_sigkilled_py_spy_launcher_leaves_no_process_behind(
    tmp_path: Path, extra: tuple[str, ...], baseline: bool
) -> None:
    # GIVEN a run under py-spy (py-spy and the run under it, or the bare baseline child)
    run = Run(tmp_path, "--profiler", "py-spy", *extra)
    try:
        run.wait_for_done_tasks(baseline=baseline)
        # WHEN the queueprof process that launched them is killed outright
        run.child.kill()
        run.child.communicate(timeout=60)
        # THEN py-spy and every process under it end within seconds (py-spy used to keep
        # running, and the run under it, until the run's own end), and the run under it
        # ended like an interrupted one: its scratch databases are gone
        assert len(run.descendants) >= (1 if baseline else 2)
        assert run.survivors() == []
        assert list(run.scratch.rglob("*.db")) == []
    finally:
        run.kill()
    if not baseline:
        # AND the folder says interrupted, not running
        manifest = Manifest.from_json((run.folder / "manifest.json").read_bytes())
        assert manifest.status is RunStatus.INTERRUPTED
