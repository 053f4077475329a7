"""Execute one workload run into its run folder.

:func:`plan_run` validates every input and writes nothing; :func:`execute` then creates
``<out>/<run-id>/`` with ``manifest.json`` (status ``running``), runs the workload in ONE
``asyncio.run`` with the profiler's session entered inside the running loop, lets the profiler
finish (write its artifacts) after the loop, lets the workload derive its fits from the
results (:meth:`~workloads.base.Workload.finalize`, unprofiled), and ends with
``results.json`` and the final manifest (``complete``, ``interrupted`` on SIGINT with the
partial results, or ``failed`` with the error and traceback).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal
import tempfile
import threading
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from runs import (
    Artifact,
    Manifest,
    RunError,
    RunFolder,
    RunStatus,
    WorkloadResult,
    check_run_id,
    new_run_id,
    now_iso,
)
from runs.adapters import AdapterSpec
from taskqueue import InvalidArgumentError, QueueConfig, observing

from .base import Workload
from .capture import RunCapture, write_declarations
from .context import PartialResults, RunContext
from .environment import capture_environment
from .errors import ParameterError
from .params import Size, WorkloadParams
from .progress import NullProgress, Progress, RichProgress
from .registry import get_workload
from .sqlcapture import SqliteCapture
from .targets import Targets, load_targets


class RunProfiler(Protocol):
    """What the runner needs from a profiler (``profilers.base.Profiler`` has this shape)."""

    def manifest(self) -> dict[str, Any]:
        """The manifest's profiler entry: ``{"name": ..., "options": {...}}``."""
        ...

    def session(self) -> AbstractContextManager[object]:
        """A context manager around ``workload.run``, entered inside the running event loop."""
        ...

    def finish(self, *, interrupted: bool = False) -> Sequence[Artifact]:
        """After the loop has ended: write reports and list the artifacts in the run folder."""
        ...


ProfilerFactory = Callable[[Path], RunProfiler]
"""Builds the run's profiler for a run folder (e.g. ``functools.partial(Cls, options)``)."""

EXIT_CODES: Mapping[RunStatus, int] = {
    RunStatus.COMPLETE: 0,
    RunStatus.FAILED: 1,
    RunStatus.INTERRUPTED: 130,
}


class BareRun:
    """No profiler: the run as it is, with no artifacts (the baseline)."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir

    def manifest(self) -> dict[str, Any]:
        """``{"name": "none", "options": {}}``."""
        return {"name": "none", "options": {}}

    def session(self) -> AbstractContextManager[object]:
        """A null context."""
        return contextlib.nullcontext()

    def finish(self, *, interrupted: bool = False) -> Sequence[Artifact]:
        """Nothing written."""
        return []


@dataclass(frozen=True)
class RunPlan:
    """A validated run, ready to execute; nothing has been written yet."""

    workload: Workload[Any]
    params: WorkloadParams
    size: Size
    queue_config: QueueConfig
    targets: Targets
    run_dir: Path
    profiler: RunProfiler
    command: tuple[str, ...] = ()

    @property
    def run_id(self) -> str:
        """The run folder's name."""
        return self.run_dir.name


@dataclass(frozen=True)
class RunOutcome:
    """How a run ended and what it measured."""

    run_dir: Path
    status: RunStatus
    result: WorkloadResult
    error: RunError | None = None

    @property
    def exit_code(self) -> int:
        """0 complete, 130 interrupted, 1 failed."""
        return EXIT_CODES[self.status]


def plan_run(
    workload_name: str,
    *,
    size: str = Size.DEFAULT.value,
    params: Sequence[str] = (),
    queue: str = "",
    targets_file: Path | None = None,
    out_dir: Path = Path("traces"),
    run_id: str | None = None,
    profiler: ProfilerFactory = BareRun,
    command: Sequence[str] = (),
) -> RunPlan:
    """Validate every input; raises :class:`ParameterError` or ``TargetsError`` (exit 2)."""
    workload = get_workload(workload_name)
    try:
        size_value = Size(size)
    except ValueError:
        raise ParameterError(
            f"unknown size {size!r}; valid: {', '.join(s.value for s in Size)}"
        ) from None
    chosen = workload.sizes[size_value].with_overrides(params)
    chosen.check_ready()
    queue_config = parse_queue(queue, workload.queue_defaults)
    targets = load_targets(targets_file)
    run_dir = out_dir / check_run_id(run_id or new_run_id(workload.name))
    if run_dir.exists():
        raise ParameterError(
            f"run folder {str(run_dir)!r} already exists; choose another --run-id or --out"
        )
    if out_dir.exists() and not out_dir.is_dir():
        raise ParameterError(f"--out {str(out_dir)!r} is not a folder; name a folder")
    return RunPlan(
        workload=workload,
        params=chosen,
        size=size_value,
        queue_config=queue_config,
        targets=targets,
        run_dir=run_dir,
        profiler=profiler(run_dir),
        command=tuple(command),
    )


def parse_queue(text: str, defaults: str = "") -> QueueConfig:
    """``--queue key=value,...`` over the workload's defaults, with timings always on."""
    try:
        config = QueueConfig.parse(text, base=QueueConfig.parse(defaults))
    except InvalidArgumentError as error:
        raise ParameterError(f"--queue {text!r}: {error}") from None
    return dataclasses.replace(config, record_timings=True)


def execute(plan: RunPlan, *, show_progress: bool = False) -> RunOutcome:
    """Run ``plan`` into its folder; never raises for a failed or interrupted workload."""
    environment = capture_environment()  # before the folder exists: nothing half-written
    manifest = Manifest(
        run_id=plan.run_id,
        workload=plan.workload.name,
        size=plan.size.value,
        params=plan.params.to_dict(),
        profiler=plan.profiler.manifest(),
        queue=plan.queue_config.to_dict(),
        targets_files=plan.targets.sources,
        environment=environment,
        command=plan.command,
        started_at=now_iso(),
    )
    folder = RunFolder.create(plan.run_dir, manifest)

    partial = PartialResults(plan.workload.name, plan.size.value, plan.params.to_dict())
    partial.queue = plan.queue_config.to_dict()
    artifacts: Sequence[Artifact] = ()
    capture = RunCapture()
    declared: dict[str, AdapterSpec] = {}
    status = RunStatus.COMPLETE
    error: RunError | None = None
    result: WorkloadResult | None = None
    with tempfile.TemporaryDirectory(prefix=f"queueprof-{plan.run_id}-") as scratch:
        progress_cm: AbstractContextManager[Progress] = (
            RichProgress(plan.workload.name)
            if show_progress
            else contextlib.nullcontext(NullProgress())
        )
        try:
            with progress_cm as progress:
                ctx = RunContext(
                    Path(scratch), plan.queue_config, partial, progress, adapter_specs=declared
                )
                with _sqlite_capture(plan.queue_config.capture_sql, capture):
                    result = asyncio.run(_inside_loop(plan, ctx, capture))
            if result is None:
                status = RunStatus.INTERRUPTED
        except KeyboardInterrupt:  # Ctrl-C outside the loop's own handler (start-up, shutdown)
            status = RunStatus.INTERRUPTED
        except Exception as crash:  # noqa: BLE001 - a crash is data: recorded in the run folder
            status = RunStatus.FAILED
            error = RunError(
                type(crash).__name__,
                str(crash),
                "".join(traceback.format_exception(crash)),
            )
        try:
            artifacts = [
                *capture.write(plan.run_dir),
                *write_declarations(plan.run_dir, declared.values()),
                *plan.profiler.finish(interrupted=status is RunStatus.INTERRUPTED),
            ]
        except Exception as crash:  # noqa: BLE001 - recorded in the run folder like any crash
            status = RunStatus.FAILED
            error = error or RunError(
                type(crash).__name__, str(crash), "".join(traceback.format_exception(crash))
            )
    if status is not RunStatus.COMPLETE or result is None:
        result = partial.result(complete=False)
    try:
        # Outside the profiler's session and the loop: fits are not the workload's cost.
        result = plan.workload.finalize(plan.params, result)
    except Exception as crash:  # noqa: BLE001 - recorded in the run folder like any crash
        status = RunStatus.FAILED
        error = error or RunError(
            type(crash).__name__, str(crash), "".join(traceback.format_exception(crash))
        )
    result = result.with_verdicts(plan.targets.evaluate(plan.workload.name, result.metrics))
    folder.write_results(result)
    # The profiler's entry is read again: summaries (peak memory, overflow...) exist only now.
    folder.finish(status, artifacts=artifacts, error=error, profiler=plan.profiler.manifest())
    return RunOutcome(plan.run_dir, status, result, error)


@contextlib.contextmanager
def _sqlite_capture(enabled: bool, capture: RunCapture) -> Iterator[None]:
    """With ``capture_sql``, every other sqlite3 connection's statements too (adapters)."""
    if not enabled:
        yield
        return
    sqlite = SqliteCapture()
    try:
        with sqlite.installed():
            yield
    finally:
        capture.add_sqlite(sqlite)


async def _inside_loop(
    plan: RunPlan, ctx: RunContext, capture: RunCapture
) -> WorkloadResult | None:
    """The run inside the event loop; None when SIGINT interrupted it."""
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    assert main is not None
    interrupted = threading.Event()

    def on_sigint() -> None:
        if not interrupted.is_set():
            interrupted.set()
            ctx.partial.note("interrupted by SIGINT (Ctrl-C); results are partial")
            main.cancel()

    handle_sigint = threading.current_thread() is threading.main_thread()
    if handle_sigint:
        loop.add_signal_handler(signal.SIGINT, on_sigint)
    try:
        with observing(capture), plan.profiler.session():
            return await plan.workload.run(plan.params, ctx)
    except asyncio.CancelledError:
        if not interrupted.is_set():
            raise
        main.uncancel()
        return None
    except Exception as error:
        if not interrupted.is_set():
            raise
        # The interrupt made something fail on its way out (e.g. a worker process that got
        # the same Ctrl-C): the run was interrupted, and the note keeps what failed.
        ctx.partial.note(f"after the interrupt: {type(error).__name__}: {error}")
        return None
    finally:
        if handle_sigint:
            loop.remove_signal_handler(signal.SIGINT)
