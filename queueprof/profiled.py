"""A workload run under a profiler, with its bare baseline measured in the same invocation.

In-process profilers (pyinstrument, memray, viztracer) plug into the runner's profiler slot:
their session is entered inside the running event loop around the workload, and their
``finish`` runs on the way out, also when the run fails or is interrupted. Launchers (py-spy)
run ``queueprof run`` itself as their child. Either way the same workload first runs bare
into ``<run>/baseline/``, and the manifest's profiler entry gets the overhead ratios.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from profilers import Profiler, ProfilerError, get_profiler
from runs import (
    BASELINE,
    RunError,
    RunFolder,
    RunStatus,
    WorkloadResult,
    check_run_id,
    keyvalue,
    new_run_id,
)
from workloads.interrupts import Interrupts, describe, interrupts
from workloads.params import Size
from workloads.runner import (
    EXIT_CODES,
    BareRun,
    ClaimedBy,
    ProfilerFactory,
    RunOutcome,
    RunPlan,
    claim,
    end_unstarted,
    execute,
    plan_run,
    run_error,
)

from .watchdog import EXIT_WITH_PARENT, interrupt_run, watched


@dataclass(frozen=True)
class RunRequest:
    """What the user asked for, as ``queueprof run`` arguments."""

    workload: str
    size: str = "default"
    params: tuple[str, ...] = ()
    queue: str = ""
    targets_file: Path | None = None
    out_dir: Path = Path("traces")
    run_id: str | None = None
    command: tuple[str, ...] = ()

    def plan(
        self,
        *,
        out_dir: Path | None = None,
        run_id: str | None = None,
        profiler: ProfilerFactory | None = None,
        claimed: bool = False,
    ) -> RunPlan:
        """This request validated into a plan (nothing written); raises on bad input."""
        return plan_run(
            self.workload,
            size=self.size,
            params=self.params,
            queue=self.queue,
            targets_file=self.targets_file,
            out_dir=self.out_dir if out_dir is None else out_dir,
            run_id=self.run_id if run_id is None else run_id,
            profiler=profiler or BareRun,
            command=self.command,
            claimed=claimed,
        )

    def argv(self) -> list[str]:
        """This request as the ``queueprof run`` command a user types (``--size`` only when
        not the default): what a run's manifest and a report show to reproduce it."""
        argv = ["queueprof", "run", self.workload]
        if self.size != Size.DEFAULT.value:
            argv += ["--size", self.size]
        return argv + self._run_options()

    def child_argv(self, out_dir: Path, run_id: str, *, claimed: bool = False) -> list[str]:
        """This request as a ``queueprof run`` command line (bare, quiet); ``claimed``: into
        the folder this process claimed for it (``--claimed``)."""
        argv = [
            sys.executable,
            "-m",
            "queueprof",
            "run",
            self.workload,
            "--size",
            self.size,
            "--out",
            str(out_dir),
            "--run-id",
            run_id,
            "--quiet",
            *(["--claimed"] if claimed else []),
        ]
        return argv + self._run_options()

    def _run_options(self) -> list[str]:
        """``--param``, ``--queue`` and ``--targets``, as both command lines give them."""
        argv: list[str] = []
        for param in self.params:
            argv += ["--param", param]
        if self.queue:
            argv += ["--queue", self.queue]
        if self.targets_file is not None:
            argv += ["--targets", str(self.targets_file)]
        return argv


def profile(
    request: RunRequest,
    profiler_name: str,
    profiler_options: Sequence[str] = (),
    *,
    baseline: bool = True,
    show_progress: bool = False,
) -> RunOutcome:
    """Run ``request`` under ``profiler_name``; returns the profiled run's outcome.

    The run folder is claimed first, before the bare baseline or any child process starts:
    of two runs racing on one run id, the loser stops right there (``RunIdError``, exit 2)
    and touches nothing. SIGINT, SIGTERM or SIGHUP during the baseline end the claimed
    folder ``interrupted`` with no metrics and a note saying so (the profiled run never
    started); the baseline's temporary folder is removed either way.
    """
    cls = get_profiler(profiler_name)
    options = cls.options_type.parse(profiler_options)
    cls.check_available()
    request = dataclasses.replace(request, queue=_under(request.queue, cls.queue_options))
    if cls.name == "none":
        baseline = False
    run_id = check_run_id(request.run_id or new_run_id(request.workload))
    profiler = cls(options, request.out_dir / run_id)
    plan = request.plan(run_id=run_id, profiler=lambda _run_dir: profiler)
    with interrupts() as signals:
        folder = claim(plan)
        bare: Baseline | None = None
        try:
            signals.raise_if_received()
            if baseline:
                bare = _bare_run(request, run_id, in_child=cls.launcher)
                if bare.status is RunStatus.INTERRUPTED:
                    return end_unstarted(
                        plan,
                        folder,
                        RunStatus.INTERRUPTED,
                        f"interrupted by {describe(signals.received)} during the bare baseline "
                        "run, before the profiled run started: no results",
                    )
            if cls.launcher:
                outcome = _launch(plan, profiler, request, folder, signals)
            else:
                outcome = execute(plan, folder=folder, show_progress=show_progress)
        except KeyboardInterrupt:  # between the steps, each of which ends its own interrupts
            with signals.held():
                if folder.read().status is not RunStatus.RUNNING:
                    return _outcome_of(folder)
                return end_unstarted(
                    plan,
                    folder,
                    RunStatus.INTERRUPTED,
                    f"interrupted by {describe(signals.received)} before the profiled run "
                    "started: no results",
                )
        except Exception as crash:  # the folder says how it ended, then the error goes on up
            with signals.held():
                if folder.read().status is RunStatus.RUNNING:
                    end_unstarted(plan, folder, RunStatus.FAILED, str(crash), run_error(crash))
            raise
        finally:
            if bare is not None and bare.folder is not None:
                with signals.held():
                    # Only a complete run's cost is the profiler's overhead: against a run
                    # that stopped early (or never started) the ratios would be noise.
                    if folder.read().status is RunStatus.COMPLETE:
                        _attach_baseline(plan.run_dir, bare.folder)
                    shutil.rmtree(bare.folder.parent, ignore_errors=True)
        return outcome


def run_claimed(request: RunRequest, *, show_progress: bool = False) -> RunOutcome:
    """The run a launcher (py-spy) starts as its child, into the folder the launcher claimed.

    ``queueprof run --claimed``: the folder must exist with a ``running`` manifest of this
    run id (:meth:`RunFolder.claimed`); the launcher's profiler entry stays in it.
    """
    run_dir = request.out_dir / check_run_id(request.run_id or "")
    folder = RunFolder.claimed(run_dir)
    entry = folder.read().profiler
    plan = request.plan(profiler=lambda _run_dir: ClaimedBy(entry), claimed=True)
    return execute(plan, folder=folder, show_progress=show_progress)


def _under(user_queue: str, profiler_queue: str) -> str:
    """The profiler's queue options with the user's ``--queue`` over them.

    A key the user sets is left out of the profiler's part, so it is not "given twice";
    the user's value wins, as it did when the two were simply joined.
    """
    try:
        items = keyvalue.overridden(
            keyvalue.split_pairs(profiler_queue), keyvalue.split_pairs(user_queue)
        )
    except keyvalue.KeyValueError:
        return ",".join(part for part in (profiler_queue, user_queue) if part)  # planning names it
    return ",".join(items)


@dataclass(frozen=True)
class Baseline:
    """How the bare baseline run ended, and its folder (in a temporary folder) if complete."""

    status: RunStatus
    folder: Path | None


def _bare_run(request: RunRequest, run_id: str, *, in_child: bool = False) -> Baseline:
    """The same workload without a profiler, in a temporary folder.

    ``in_child`` runs it as a ``queueprof run`` process, as a launcher runs its profiled
    side, so both sides pay the same start-up. A bare run that did not complete leaves
    nothing behind, also when it was interrupted or this function is.
    """
    with interrupts() as signals:
        with signals.held():
            scratch = Path(tempfile.mkdtemp(prefix="queueprof-baseline-"))
        bare_id = f"{run_id}-{BASELINE}"
        status = RunStatus.FAILED
        try:
            signals.raise_if_received()
            if in_child:
                ended = _run_child(
                    request.child_argv(scratch, bare_id),
                    interrupt=lambda child: child.send_signal(signals.received or signal.SIGINT),
                    quiet=True,
                )
                status = CHILD_STATUS.get(ended.returncode, RunStatus.FAILED)
                if ended.interrupted:
                    status = RunStatus.INTERRUPTED
            else:
                status = execute(request.plan(out_dir=scratch, run_id=bare_id)).status
        finally:
            if status is not RunStatus.COMPLETE:
                with signals.held():
                    shutil.rmtree(scratch, ignore_errors=True)
    return Baseline(status, scratch / bare_id if status is RunStatus.COMPLETE else None)


CHILD_STATUS = {code: status for status, code in EXIT_CODES.items()}
"""A ``queueprof run`` child's exit status as the status of its run."""

INTERRUPT_GRACE_S = 60.0
"""How long an interrupted child may take to finish its folder before its session is killed:
an interrupted smoke or default run ends in a few seconds."""

LEFTOVER_GRACE_S = 2.0
"""How long processes a child leaves in its session may take to exit on their own (e.g.
multiprocessing's resource tracker, which exits when the run's end closes its pipe)."""


@dataclass(frozen=True)
class ChildEnd:
    """How a child process ended."""

    returncode: int
    stderr: str
    interrupted: bool
    """An interrupt signal reached this process while the child ran (and was passed on)."""
    stdout: str = ""
    """What it printed, when asked for (``keep_stdout``)."""


def _run_child(
    command: Sequence[str],
    *,
    interrupt: Callable[[subprocess.Popen[str]], None],
    launcher: bool = False,
    quiet: bool = False,
    keep_stdout: bool = False,
    env: Mapping[str, str] | None = None,
) -> ChildEnd:
    """Run ``command`` in a session of its own until it ends; nothing it started outlives it.

    The child's session is its own so that a Ctrl-C at the terminal reaches this process
    only: ``interrupt`` passes it on once, in the order the child needs (py-spy, a
    ``launcher``: to the run, not to py-spy, which would stop at once and lose the profile).
    An interrupted child gets :data:`INTERRUPT_GRACE_S` to end; whatever is left in its
    session then is killed. Should this process die outright meanwhile (SIGKILL), a watchdog
    does the same (see :mod:`queueprof.watchdog`). ``quiet`` drops what the child prints,
    ``keep_stdout`` returns it instead; ``env`` adds to this process's environment.
    """
    interrupted = False
    with (
        subprocess.Popen(
            command,
            stdout=subprocess.PIPE if keep_stdout else subprocess.DEVNULL if quiet else None,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            env={**os.environ, **(env or {}), EXIT_WITH_PARENT: "1"},
        ) as child,
        watched(child.pid, launcher=launcher, grace_s=INTERRUPT_GRACE_S),
    ):
        try:
            stdout, stderr = child.communicate()
        except KeyboardInterrupt:
            interrupted = True
            interrupt(child)
            try:
                stdout, stderr = child.communicate(timeout=INTERRUPT_GRACE_S)
            except subprocess.TimeoutExpired:
                _kill_session(child.pid)
                stdout, stderr = child.communicate()
        _end_session(child.pid, LEFTOVER_GRACE_S)
    return ChildEnd(child.returncode, stderr or "", interrupted, stdout or "")


def _end_session(session: int, grace_s: float) -> None:
    """Wait up to ``grace_s`` for the processes left in ``session`` to exit, then kill them."""
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        try:
            os.killpg(session, 0)
        except ProcessLookupError:
            return  # nobody left
        time.sleep(0.05)
    _kill_session(session)


def _kill_session(session: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # already empty
        os.killpg(session, signal.SIGKILL)


def _launch(
    plan: RunPlan,
    profiler: Profiler,
    request: RunRequest,
    folder: RunFolder,
    signals: Interrupts,
) -> RunOutcome:
    """The run as a ``queueprof run --claimed`` child of ``profiler``, into ``folder``."""
    command = profiler.command(request.child_argv(request.out_dir, plan.run_id, claimed=True))
    ended = _run_child(
        command,
        interrupt=lambda child: interrupt_run(
            child.pid, signals.received or signal.SIGINT, launcher=True
        ),
        launcher=True,
        # What py-spy prints goes into the folder and the one report printed at the end;
        # the run under it prints its own summary, before py-spy's artifacts exist: dropped.
        keep_stdout=True,
        env=profiler.launcher_env(),
    )
    profiler.read_output(
        [line for line in ended.stdout.splitlines() if profiler.owns_line(line)], ended.stderr
    )
    with signals.held():
        if folder.read().status is RunStatus.RUNNING:  # the run never started, or was killed
            if ended.interrupted:
                return end_unstarted(
                    plan,
                    folder,
                    RunStatus.INTERRUPTED,
                    f"interrupted by {describe(signals.received)} before the run under "
                    f"{profiler.name} had finished its folder: no results",
                )
            message = f"{profiler.name} did not run the workload: {profiler.explain(ended.stderr)}"
            return end_unstarted(
                plan, folder, RunStatus.FAILED, message, RunError("ProfilerError", message, "")
            )
        problems: list[str] = []
        try:
            artifacts = profiler.finish(interrupted=ended.interrupted)
        except ProfilerError as error:  # the run's own results stand; say what is missing
            artifacts, problems = [], [str(error)]
        folder.add_artifacts(
            artifacts,
            profiler=profiler.manifest() | ({"problems": problems} if problems else {}),
            command=request.command,
        )
        return _outcome_of(folder)


def _outcome_of(folder: RunFolder) -> RunOutcome:
    """The outcome a finished folder records."""
    manifest = folder.read()
    return RunOutcome(folder.path, manifest.status, folder.read_results(), manifest.error)


def _attach_baseline(run_dir: Path, bare: Path) -> None:
    """Move the bare run into ``<run>/baseline`` and put the overhead into the manifest."""
    shutil.move(str(bare), run_dir / BASELINE)
    shutil.rmtree(bare.parent, ignore_errors=True)
    folder = RunFolder(run_dir)
    ratios = overhead(RunFolder(run_dir / BASELINE).read_results(), folder.read_results())
    folder.update(
        lambda manifest: dataclasses.replace(
            manifest,
            profiler={**manifest.profiler, "overhead": {**ratios, "baseline": BASELINE}},
        )
    )


def overhead(bare: WorkloadResult, profiled: WorkloadResult) -> dict[str, Any]:
    """How much slower the profiled run was: wall-time ratio and, per rate metric, bare/profiled.

    All are "profiled / bare" in cost terms: 1.25 means the profiler made the work 25% slower.
    ``ratio`` is the headline: the geometric mean of the rate ratios.
    """
    rates = {
        name: bare.metrics[name] / value
        for name, value in profiled.metrics.items()
        if "_per_s" in name and value > 0 and bare.metrics.get(name)
    }
    ratio = profiled.duration_s / bare.duration_s if bare.duration_s > 0 else None
    # The headline is the geometric mean over rate metrics: the worst of several noisy
    # ratios would overstate the cost, and wall time also counts set-up the profiler barely
    # touches. Workloads without rates (fixed-duration ones) fall back to wall time.
    headline = statistics.geometric_mean(rates.values()) if rates else ratio
    return {
        "wall_ratio": ratio,
        "rate_ratios": rates,
        "ratio": headline,
        "bare_duration_s": bare.duration_s,
        "profiled_duration_s": profiled.duration_s,
    }
