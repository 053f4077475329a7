"""Execute one workload run into its run folder.

:func:`plan_run` validates every input and writes nothing; :func:`claim` creates
``<out>/<run-id>/`` with ``manifest.json`` (status ``running``), once; :func:`execute` runs
the workload in ONE ``asyncio.run`` with the profiler's session entered inside the running
loop, lets the profiler
finish (write its artifacts) after the loop, lets the workload derive its fits from the
results (:meth:`~workloads.base.Workload.finalize`, unprofiled), and ends with
``results.json`` and the final manifest (``complete``, ``interrupted`` on SIGINT with the
partial results, or ``failed`` with the error and traceback). SIGTERM and SIGHUP end a run
as SIGINT does (:mod:`workloads.interrupts`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib.util
import os
import shutil
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
    write_atomic,
)
from runs.adapters import AdapterSpec
from runs.files import RESULTS, output_error
from taskqueue import SERVER_ENV, InvalidArgumentError, QueueConfig, observing, redact_dsn
from taskqueue.config import POSTGRES_FIELDS

from .base import Workload
from .capture import RunCapture, write_declarations
from .context import PartialResults, RunContext
from .crossover import with_postgres_server
from .environment import capture_environment, postgres_environment
from .errors import ParameterError
from .interrupts import Interrupts, describe, interrupts
from .params import Size, WorkloadParams
from .pgactivity import ServerSampler, sampling
from .pgschema import drop_scratch_databases, finish_scratch_databases
from .progress import NullProgress, Progress, RichProgress
from .registry import get_workload
from .schema import snapshot_schemas
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


class ClaimedBy:
    """The profiler of a launcher that claimed the run folder and runs this process under
    it (py-spy): nothing runs in here, and the entry it wrote in the manifest stands, so
    the folder names its real profiler even if the launcher never gets to finish it."""

    def __init__(self, entry: Mapping[str, Any]) -> None:
        self.entry = dict(entry)

    def manifest(self) -> dict[str, Any]:
        """The launcher's entry, as claimed."""
        return dict(self.entry)

    def session(self) -> AbstractContextManager[object]:
        """A null context: the launcher samples from outside."""
        return contextlib.nullcontext()

    def finish(self, *, interrupted: bool = False) -> Sequence[Artifact]:
        """Nothing: the launcher lists its artifacts after this process ended."""
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
    claimed: bool = False,
) -> RunPlan:
    """Validate every input; raises :class:`ParameterError` or ``TargetsError`` (exit 2).

    ``claimed``: the run folder exists already, claimed for this run by a launcher.
    """
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
    if getattr(workload, "needs_postgres", False):
        # It runs on both backends: the server comes from --queue, else QUEUEPROF_PG.
        queue_config = with_postgres_server(queue_config, os.environ.get(SERVER_ENV))
    _check_postgres_only_options(queue_config, queue)
    chosen.check_queue(queue_config)
    if queue_config.backend != "sqlite" and importlib.util.find_spec("asyncpg") is None:
        raise ParameterError(
            f"--queue backend={redact_dsn(queue_config.backend)}: the PostgreSQL backend needs "
            "asyncpg, which is not installed; pip install 'queueprof[postgres]' (or asyncpg)"
        )
    targets = load_targets(targets_file)
    run_dir = out_dir / check_run_id(run_id or new_run_id(workload.name))
    if run_dir.exists() and not claimed:  # early word only: the claim is execute's mkdir
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


POSTGRES_ONLY = tuple(sorted(POSTGRES_FIELDS - {"backend"}))
"""``--queue`` options that only the PostgreSQL backend reads."""


def _check_postgres_only_options(config: QueueConfig, text: str) -> None:
    """Refuse a PostgreSQL-only option on a SQLite run: it would be dropped without a word,
    and the run measured as if it had been applied (``pg_claim=for-update`` on SQLite)."""
    if config.backend != "sqlite":
        return
    default = QueueConfig()
    given = [name for name in POSTGRES_ONLY if getattr(config, name) != getattr(default, name)]
    if given:
        raise ParameterError(
            f"--queue {text!r}: {', '.join(given)} {'is' if len(given) == 1 else 'are'} for the "
            "PostgreSQL backend only; add backend=postgresql://USER@HOST:PORT/DATABASE, or "
            "leave it out on SQLite"
        )


def parse_queue(text: str, defaults: str = "") -> QueueConfig:
    """``--queue key=value,...`` over the workload's defaults, with timings always on."""
    try:
        config = QueueConfig.parse(text, base=QueueConfig.parse(defaults))
    except InvalidArgumentError as error:
        raise ParameterError(f"--queue {text!r}: {error}") from None
    return dataclasses.replace(config, record_timings=True)


def claim(plan: RunPlan) -> RunFolder:
    """Create ``plan``'s run folder with its first manifest (``running``): the one claim.

    Of two runs racing on one run id exactly one gets the folder; the other gets
    ``RunIdError`` (exit 2) and has written nothing. An interrupt that arrives while the
    folder is made is held, not raised (the caller would lose the folder it must finish):
    the caller acts on ``Interrupts.received`` once it holds the folder.
    """
    environment = capture_environment()  # before the folder exists: nothing half-written
    if plan.queue_config.backend != "sqlite":
        environment["postgresql"] = postgres_environment(plan.queue_config.backend)
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
    with interrupts() as signals, signals.held():
        return RunFolder.create(plan.run_dir, manifest)


def execute(
    plan: RunPlan, *, folder: RunFolder | None = None, show_progress: bool = False
) -> RunOutcome:
    """Run ``plan`` into its folder; never raises for a failed or interrupted workload
    (:class:`runs.errors.OutputError` when the folder itself cannot be written).

    ``folder`` is the plan's folder when it was claimed already (:func:`claim`; a launcher's
    child gets it from :meth:`RunFolder.claimed`); by default the run claims it here.
    SIGINT, SIGTERM and SIGHUP all end the run ``interrupted`` (:mod:`.interrupts`).
    """
    with interrupts() as signals:
        if folder is None:
            folder = claim(plan)
        else:
            folder.update(lambda manifest: dataclasses.replace(manifest, started_at=now_iso()))
        return _execute(plan, folder, signals, show_progress=show_progress)


def _execute(
    plan: RunPlan, folder: RunFolder, signals: Interrupts, *, show_progress: bool
) -> RunOutcome:
    partial = PartialResults(plan.workload.name, plan.size.value, plan.params.to_dict())
    partial.queue = plan.queue_config.to_dict()
    artifacts: Sequence[Artifact] = ()
    kept: list[tuple[Artifact, bytes]] = []
    capture = RunCapture()
    declared: dict[str, AdapterSpec] = {}
    status = RunStatus.COMPLETE
    error: RunError | None = None
    result: WorkloadResult | None = None
    scratch_databases: list[tuple[str, str]] = []
    sampler: ServerSampler | None = None
    with signals.held():  # an interrupt now must not leave the folder behind
        scratch = Path(tempfile.mkdtemp(prefix=f"queueprof-{plan.run_id}-"))
    try:
        signals.raise_if_received()
        progress_cm: AbstractContextManager[Progress] = (
            RichProgress(plan.workload.name)
            if show_progress
            else contextlib.nullcontext(NullProgress())
        )
        with progress_cm as progress:
            ctx = RunContext(
                scratch,
                plan.queue_config,
                partial,
                progress,
                adapter_specs=declared,
                scratch_databases=scratch_databases,
            )
            kept = ctx.artifacts
            config = plan.queue_config
            with (
                sampling(config.backend, scratch_databases, config.pg_activity_ms) as sampler,
                _sqlite_capture(config.capture_sql, capture),
            ):
                result = asyncio.run(_inside_loop(plan, ctx, capture, signals))
        if result is None:
            status = RunStatus.INTERRUPTED
    except KeyboardInterrupt:  # outside the loop's own handler (start-up, shutdown)
        status = RunStatus.INTERRUPTED
        partial.note(f"interrupted by {describe(signals.received)}; results are partial")
    except Exception as crash:  # noqa: BLE001 - a crash is data: recorded in the run folder
        status = RunStatus.FAILED
        error = run_error(crash)
    # The run has ended: an interrupt from here on is recorded, not acted on, so the
    # profiler's files, the scratch folder's removal and the manifest are all whole.
    unwritten_file: OSError | None = None
    with signals.held():
        try:
            artifacts = [
                *capture.write(plan.run_dir),
                # Every queue is closed by now and the databases are still in scratch.
                *snapshot_schemas(scratch, plan.run_dir),
                # The database side, sampled while the scratch databases still existed.
                *(sampler.write(plan.run_dir) if sampler is not None else ()),
                # PostgreSQL scratch databases: snapshotted, then dropped (also on failure).
                *finish_scratch_databases(scratch_databases, plan.run_dir),
                *_write_kept(plan.run_dir, kept),
                *write_declarations(plan.run_dir, declared.values()),
                *plan.profiler.finish(interrupted=status is RunStatus.INTERRUPTED),
            ]
        except Exception as crash:  # noqa: BLE001 - recorded in the run folder like any crash
            status = RunStatus.FAILED
            error = error or run_error(crash)
            if isinstance(crash, OSError) and crash.filename:  # a full disk, a read-only --out
                unwritten_file = crash
            # A file before the snapshot could not be written (a full disk): the PostgreSQL
            # scratch databases were never dropped, and would keep the run's tasks on the
            # server for good.
            # (A failing drop is not recorded: the run's first error is the one to show.)
            with contextlib.suppress(Exception):
                drop_scratch_databases(scratch_databases)
        shutil.rmtree(scratch, ignore_errors=True)
        if status is not RunStatus.COMPLETE or result is None:
            result = partial.result(complete=False)
        try:
            # Outside the profiler's session and the loop: fits are not the workload's cost.
            result = plan.workload.finalize(plan.params, result)
        except Exception as crash:  # noqa: BLE001 - recorded in the run folder like any crash
            status = RunStatus.FAILED
            error = error or run_error(crash)
        result = result.with_verdicts(plan.targets.evaluate(plan.workload.name, result.metrics))
        unwritten: OSError | None = None
        try:
            folder.write_results(result)
        except OSError as crash:  # a full disk: still end the folder as failed, then say so
            unwritten, status = crash, RunStatus.FAILED
            error = RunError(type(crash).__name__, f"results.json not written: {crash}", "")
        fix = f"free space under {str(plan.run_dir.parent)!r} or pass another --out, and re-run"
        try:
            # The profiler's entry is read again: summaries (peak memory...) exist only now.
            folder.finish(
                status, artifacts=artifacts, error=error, profiler=plan.profiler.manifest()
            )
        except OSError as crash:
            raise output_error(
                folder.manifest_path, crash, f"{fix} (its manifest still says running)"
            ) from None
        if unwritten is not None:
            raise output_error(
                plan.run_dir / RESULTS, unwritten, f"{fix} (the run folder is marked failed)"
            )
        if unwritten_file is not None:
            raise output_error(
                Path(unwritten_file.filename),
                unwritten_file,
                f"{fix} (the run folder is marked failed)",
            )
    return RunOutcome(plan.run_dir, status, result, error)


def end_unstarted(
    plan: RunPlan, folder: RunFolder, status: RunStatus, note: str, error: RunError | None = None
) -> RunOutcome:
    """Finish a claimed folder whose workload never ran here (interrupted during the bare
    baseline, a launcher whose child never started or died): no metrics, ``note`` says why."""
    partial = PartialResults(plan.workload.name, plan.size.value, plan.params.to_dict())
    partial.queue = plan.queue_config.to_dict()
    partial.note(note)
    result = partial.result(complete=False)
    with interrupts() as signals, signals.held():
        folder.write_results(result)
        folder.finish(status, error=error, profiler=plan.profiler.manifest())
    return RunOutcome(plan.run_dir, status, result, error)


def _write_kept(run_dir: Path, kept: Sequence[tuple[Artifact, bytes]]) -> list[Artifact]:
    """Write the files a workload kept for the analysis (:meth:`RunContext.keep_artifact`)."""
    for artifact, data in kept:
        write_atomic(run_dir / artifact.path, data)
    return [artifact for artifact, _ in kept]


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


def run_error(crash: BaseException) -> RunError:
    """``crash`` as the manifest records it: type, message and traceback."""
    return RunError(type(crash).__name__, str(crash), "".join(traceback.format_exception(crash)))


async def _inside_loop(
    plan: RunPlan, ctx: RunContext, capture: RunCapture, signals: Interrupts
) -> WorkloadResult | None:
    """The run inside the event loop; None when an interrupt signal stopped it."""
    main = asyncio.current_task()
    assert main is not None
    interrupted = threading.Event()

    def on_interrupt(signum: signal.Signals) -> None:
        interrupted.set()
        ctx.partial.note(f"interrupted by {describe(signum)}; results are partial")
        main.cancel()

    try:
        with (
            signals.on_loop(asyncio.get_running_loop(), on_interrupt),
            observing(capture),
            plan.profiler.session(),
        ):
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
