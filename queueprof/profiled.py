"""A workload run under a profiler, with its bare baseline measured in the same invocation.

In-process profilers (pyinstrument, memray, viztracer) plug into the runner's profiler slot:
their session is entered inside the running event loop around the workload, and their
``finish`` runs on the way out, also when the run fails or is interrupted. Launchers (py-spy)
run ``queueprof run`` itself as their child. Either way the same workload first runs bare
into ``<run>/baseline/``, and the manifest's profiler entry gets the overhead ratios.
"""

from __future__ import annotations

import dataclasses
import functools
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from profilers import Profiler, ProfilerError, get_profiler
from runs import (
    BASELINE,
    MANIFEST,
    RunFolder,
    RunStatus,
    WorkloadResult,
    check_run_id,
    keyvalue,
    new_run_id,
)
from workloads.runner import BareRun, ProfilerFactory, RunOutcome, RunPlan, execute, plan_run


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
        )

    def child_argv(self, out_dir: Path, run_id: str) -> list[str]:
        """This request as a ``queueprof run`` command line (bare, quiet)."""
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
        ]
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
    """Run ``request`` under ``profiler_name``; returns the profiled run's outcome."""
    cls = get_profiler(profiler_name)
    options = cls.options_type.parse(profiler_options)
    cls.check_available()
    request = dataclasses.replace(request, queue=_under(request.queue, cls.queue_options))
    if cls.name == "none":
        baseline = False
    if cls.launcher:
        return _launch(request, cls, profiler_options, baseline)
    plan = request.plan(profiler=functools.partial(cls, options))
    bare = _bare_run(request, plan.run_id) if baseline else None
    outcome = execute(plan, show_progress=show_progress)
    if bare is not None:
        _attach_baseline(outcome.run_dir, bare)
    return outcome


def _under(user_queue: str, profiler_queue: str) -> str:
    """The profiler's queue options with the user's ``--queue`` over them.

    A key the user sets is left out of the profiler's part, so it is not "given twice";
    the user's value wins, as it did when the two were simply joined.
    """
    try:
        users = {pair.key for pair in keyvalue.pairs(keyvalue.split_list(user_queue))}
        kept = [
            pair.item
            for pair in keyvalue.pairs(keyvalue.split_list(profiler_queue))
            if pair.key not in users
        ]
    except keyvalue.KeyValueError:
        kept = [profiler_queue]  # planning names the user's bad item
    return ",".join(part for part in (*kept, user_queue) if part)


def _bare_run(request: RunRequest, run_id: str, *, in_child: bool = False) -> Path | None:
    """The same workload without a profiler, in a temporary folder; None if it did not complete.

    ``in_child`` runs it as a ``queueprof run`` process, as a launcher runs its profiled
    side, so both sides pay the same start-up. A failed bare run leaves nothing behind.
    """
    scratch = Path(tempfile.mkdtemp(prefix="queueprof-baseline-"))
    bare_id = f"{run_id}-{BASELINE}"
    if in_child:
        done = subprocess.run(
            request.child_argv(scratch, bare_id), capture_output=True, text=True, check=False
        )
        complete = done.returncode == 0
    else:
        complete = execute(request.plan(out_dir=scratch, run_id=bare_id)).status is (
            RunStatus.COMPLETE
        )
    if not complete:
        shutil.rmtree(scratch, ignore_errors=True)
        return None
    return scratch / bare_id


def _launch(
    request: RunRequest, cls: type[Profiler], raw_options: Sequence[str], baseline: bool
) -> RunOutcome:
    run_id = check_run_id(request.run_id or new_run_id(request.workload))
    run_dir = request.out_dir / run_id
    if run_dir.exists():
        raise ProfilerError(f"run folder {str(run_dir)!r} already exists; choose another --run-id")
    # Validate everything in this process first: a bad --param must not start a child.
    request.plan(run_id=run_id)
    bare = _bare_run(request, run_id, in_child=True) if baseline else None
    request.out_dir.mkdir(parents=True, exist_ok=True)
    profiler = cls(cls.options_type.parse(raw_options), run_dir)
    command = profiler.command(request.child_argv(request.out_dir, run_id))
    interrupted = False
    # py-spy runs in a session of its own: on Ctrl-C it would stop at once and kill the run
    # before the run had marked its folder interrupted. The SIGINT goes to the run alone,
    # and py-spy writes its profile when the run exits.
    with subprocess.Popen(
        command, stderr=subprocess.PIPE, text=True, start_new_session=True
    ) as child:
        try:
            _, stderr = child.communicate()
        except KeyboardInterrupt:
            interrupted = True
            _interrupt_workload(child.pid)
            _, stderr = child.communicate()
    if not (run_dir / MANIFEST).exists():
        raise ProfilerError(f"{cls.name} did not run the workload: {profiler.explain(stderr)}")
    problems: list[str] = []
    try:
        artifacts = profiler.finish(interrupted=interrupted)
    except ProfilerError as error:  # the run's own results stand; say what is missing
        artifacts, problems = [], [str(error)]
    folder = RunFolder(run_dir)
    manifest = folder.add_artifacts(
        artifacts,
        profiler=profiler.manifest() | ({"problems": problems} if problems else {}),
        command=request.command,
    )
    if bare is not None:
        _attach_baseline(run_dir, bare)
    result = folder.read_results()
    return RunOutcome(run_dir, manifest.status, result, manifest.error)


def _interrupt_workload(launcher_pid: int) -> None:
    """SIGINT to the launcher's children (the run); to the launcher if it has none yet."""
    try:
        launcher = psutil.Process(launcher_pid)
        targets = launcher.children(recursive=False) or [launcher]
        for target in targets:
            target.send_signal(signal.SIGINT)
    except psutil.NoSuchProcess:
        pass  # already gone: nothing left to interrupt


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
