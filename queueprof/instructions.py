"""The instruction gate: the queue's operations counted in CPU instructions under callgrind.

Wall-clock figures on the shared 2-core VM move by tens of percent between unchanged runs,
so the wall-clock gate's bands are +125% to +250%. Instructions executed do not depend on
what else the machine runs: :mod:`workloads.instructions` runs each operation (enqueue,
enqueue_many, claim, complete, status) in a phase of its own under
``valgrind --tool=callgrind --dump-before=getppid``, callgrind writes one part file per phase,
and each phase's total over its calls (or tasks) is a gated metric. Two runs of the unchanged
tree agree to a few parts per million, so the bands are tight (+3%), and a failing metric
names its operation and the C functions that grew (self instructions per call or task).

Instruction counts depend on the interpreter's build, SQLite's, the libraries' and
valgrind's: a baseline measured with another of those (:func:`toolchain`) is refused, not
compared. What instructions cannot see (thread hand-offs, lock waits, sleeps, I/O) is the
wall-clock gate's job (:mod:`queueprof.gate`).

The measurement is a run folder like any other (``<gate>/instructions/``): ``results.json``
with the metrics, the phases' callgrind files (``callgrind_annotate``, KCachegrind) and one
speedscope file with a profile per phase (:data:`runs.files.CALLGRIND_SPEEDSCOPE`).
"""

from __future__ import annotations

import dataclasses
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import orjson

import taskqueue.queue as taskqueue_module
import workloads.instructions as program
from formats.callgrind import CallgrindProfile, read_profile, speedscope_samples
from formats.speedscope import FrameKey, SpeedscopeBuilder
from runs import (
    Artifact,
    ArtifactKind,
    Manifest,
    QueueprofError,
    RunError,
    RunFolder,
    RunStatus,
    WorkloadResult,
    now_iso,
)
from runs.files import CALLGRIND_LOG, CALLGRIND_PHASE, CALLGRIND_SPEEDSCOPE, INSTRUCTION_PHASES
from taskqueue import QueueConfig
from workloads.environment import capture_environment
from workloads.errors import RunFailedError
from workloads.instructions import InstructionParams
from workloads.params import Size

INSTRUCTIONS_SCHEMA_VERSION = 1
"""Version of the gate section's ``instructions`` entry. Bump on any change of its layout."""

INSTRUCTION_BAND = 0.03
"""Relative instruction increase judged as no change. On the reference VM, 20 unchanged
gates in a row (10 of them beside a busy loop) gave every metric the same count to 0.02%
(status; the others 0.003% or less); an edit outside the phases (the workload's set-up code)
shifted counts by up to 0.21% against a baseline counted before it, most likely by moving
when the garbage collector runs. +3% is 14x that; a claim planted with +8.5% instructions
failed every time."""

FUNCTION_SHARE_KEPT = 0.001
"""Functions with at least this share of a phase's instructions are stored with it (the
baseline keeps them, so a regression can be diffed function by function)."""

FUNCTIONS_SHOWN = 5
"""Functions named per regressed operation: those whose instructions grew the most."""

CALLGRIND_TIMEOUT_S = 900.0
"""Longest a callgrind run may take (about 40 s on the loaded reference VM at smoke size)."""

INSTRUCTION_SUITES: Mapping[Size, InstructionParams] = {
    Size.SMOKE: InstructionParams(enqueue_calls=200, batches=10, batch=100, status_calls=200),
    Size.DEFAULT: InstructionParams(enqueue_calls=400, batches=20, batch=100, status_calls=400),
    Size.FULL: InstructionParams(enqueue_calls=1000, batches=50, batch=100, status_calls=1000),
}
"""How much each phase does at each size. Per call or task, the figures hardly depend on it:
from smoke to default (twice the work) enqueue_many, complete and status moved < 0.5%,
enqueue +0.8% and claim +2.6% (twice the rows in the table and its index). A baseline is
only compared with a gate of its own size."""


@dataclass(frozen=True, slots=True)
class InstructionMetric:
    """One gated instruction metric: a phase's instructions over its calls or tasks."""

    phase: str
    per: str
    """``call`` or ``task``: single-task operations per call, batched ones per task."""

    @property
    def name(self) -> str:
        """The metric's name, e.g. ``claim_instructions_per_task``."""
        return f"{self.phase}_instructions_per_{self.per}"


INSTRUCTION_METRICS: tuple[InstructionMetric, ...] = (
    InstructionMetric("enqueue", "call"),
    InstructionMetric("enqueue_many", "task"),
    InstructionMetric("claim", "task"),
    InstructionMetric("complete", "task"),
    InstructionMetric("status", "call"),
)
"""Every phase of :mod:`workloads.instructions`, judged per call or per task."""

CYCLE_PHASES = ("enqueue_many", "claim", "complete")
CYCLE_METRIC = "cycle_instructions_per_task"
"""One task's trip through the batched path (enqueue_many, claim, complete), per task."""


class InstructionGateError(QueueprofError):
    """The instruction gate cannot run here (no valgrind): exit 2, nothing measured."""

    exit_code = 2


@dataclass(frozen=True, slots=True)
class PhaseCount:
    """One phase as callgrind counted it."""

    phase: str
    operation: str
    """The queue operation (the analysis's operation map) the phase's calls are."""
    calls: int
    tasks: int
    instructions: int
    functions: Mapping[str, int]
    """``object:function`` -> self instructions in the phase (those above
    :data:`FUNCTION_SHARE_KEPT` of it)."""

    def per(self, unit: str) -> float:
        """Instructions per ``call`` or per ``task``."""
        return self.instructions / (self.calls if unit == "call" else self.tasks)

    def function_per(self, unit: str) -> dict[str, float]:
        """Each kept function's self instructions per ``call`` or ``task``."""
        divisor = self.calls if unit == "call" else self.tasks
        return {name: count / divisor for name, count in self.functions.items()}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return dataclasses.asdict(self) | {"functions": dict(self.functions)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PhaseCount:
        """Read :meth:`to_dict` output (KeyError, TypeError or ValueError if malformed)."""
        count = cls(
            phase=str(data["phase"]),
            operation=str(data["operation"]),
            calls=int(data["calls"]),
            tasks=int(data["tasks"]),
            instructions=int(data["instructions"]),
            functions={str(k): int(v) for k, v in dict(data["functions"]).items()},
        )
        if count.calls < 1 or count.tasks < 1 or count.instructions < 1:
            raise ValueError(f"phase {count.phase}: calls, tasks and instructions must be >= 1")
        return count


@dataclass(frozen=True, slots=True)
class InstructionMeasurement:
    """Every phase's count, with what ran and on which toolchain."""

    size: str
    params: Mapping[str, Any]
    queue: Mapping[str, Any]
    """The strategy the phases ran (``dispatch`` is always ``inline``)."""
    toolchain: Mapping[str, Any]
    phases: Mapping[str, PhaseCount]
    run_folder: str = ""
    seconds: float = 0.0
    """Wall time of the callgrind run (what the gate adds to CI)."""

    @property
    def metrics(self) -> dict[str, float]:
        """Every gated figure by name (see :data:`INSTRUCTION_METRICS`, :data:`CYCLE_METRIC`)."""
        found = {m.name: self.phases[m.phase].per(m.per) for m in INSTRUCTION_METRICS}
        found[CYCLE_METRIC] = sum(self.phases[p].per("task") for p in CYCLE_PHASES)
        return found

    def to_dict(self) -> dict[str, Any]:
        """The gate section's ``instructions`` entry, with its own ``schema_version``."""
        return {
            "schema_version": INSTRUCTIONS_SCHEMA_VERSION,
            "size": self.size,
            "params": dict(self.params),
            "queue": dict(self.queue),
            "toolchain": dict(self.toolchain),
            "phases": {name: phase.to_dict() for name, phase in self.phases.items()},
            "metrics": self.metrics,
            "run_folder": self.run_folder,
            "seconds": self.seconds,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> InstructionMeasurement:
        """Read :meth:`to_dict` output (KeyError, TypeError or ValueError if malformed)."""
        if data.get("schema_version") != INSTRUCTIONS_SCHEMA_VERSION:
            raise ValueError(
                f"instructions schema_version {data.get('schema_version')!r}, this queueprof "
                f"reads {INSTRUCTIONS_SCHEMA_VERSION}"
            )
        phases = {str(k): PhaseCount.from_dict(v) for k, v in dict(data["phases"]).items()}
        missing = [m.phase for m in INSTRUCTION_METRICS if m.phase not in phases]
        if missing:
            raise ValueError(f"no count for phase(s) {', '.join(missing)}")
        return cls(
            size=str(data["size"]),
            params=dict(data["params"]),
            queue=dict(data["queue"]),
            toolchain=dict(data["toolchain"]),
            phases=phases,
            run_folder=str(data.get("run_folder", "")),
            seconds=float(data.get("seconds", 0.0)),
        )


@dataclass(frozen=True, slots=True)
class InstructionPlan:
    """A validated instruction measurement: valgrind found, nothing run yet."""

    size: str
    params: InstructionParams
    queue: QueueConfig
    """The strategy as run (``dispatch=inline``, see :mod:`workloads.instructions`)."""
    queue_text: str
    valgrind: str
    toolchain: Mapping[str, Any]
    run_dir: Path
    command: tuple[str, ...] = ()


def find_valgrind() -> str:
    """The valgrind binary; :class:`InstructionGateError` with the install command if none."""
    found = shutil.which("valgrind")
    if found is None:
        raise InstructionGateError(
            "valgrind is not installed: the instruction gate counts instructions under "
            "callgrind. Install it (Debian: `apt-get update && apt-get install -y valgrind`) "
            "or run only the wall-clock gate with `--only wall`"
        )
    return found


def toolchain(valgrind: str) -> dict[str, Any]:
    """What instruction counts depend on besides the queue's code: the interpreter's build,
    SQLite's, the compiled libraries the queue calls, valgrind, the architecture."""
    version = subprocess.run(
        [valgrind, "--version"], capture_output=True, text=True, check=False, timeout=60
    ).stdout.strip()
    return {
        "python": sys.version,
        "implementation": platform.python_implementation(),
        "sqlite": sqlite3.sqlite_version,
        "orjson": _version("orjson"),
        "aiosqlite": _version("aiosqlite"),
        "valgrind": version,
        "machine": platform.machine(),
    }


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def plan_instructions(
    size: Size, *, queue: str, run_dir: Path, command: Sequence[str] = ()
) -> InstructionPlan:
    """Validate the instruction measurement of ``size`` into ``run_dir`` (nothing runs)."""
    config = program.measured_config(QueueConfig.parse(queue))
    valgrind = find_valgrind()
    return InstructionPlan(
        size.value,
        INSTRUCTION_SUITES[size],
        config,
        queue,
        valgrind,
        toolchain(valgrind),
        run_dir,
        tuple(command),
    )


def measure_instructions(plan: InstructionPlan) -> InstructionMeasurement:
    """Run the phases under callgrind into the plan's run folder; the counts.

    Raises :class:`RunFailedError` naming the folder when the run fails (its manifest says
    why, status ``failed``).
    """
    folder = RunFolder.create(
        plan.run_dir,
        Manifest(
            run_id=plan.run_dir.name,
            workload="instructions",
            size=plan.size,
            params=plan.params.to_dict(),
            profiler={"name": "callgrind", "options": {"valgrind": plan.toolchain["valgrind"]}},
            queue=plan.queue.to_dict(),
            targets_files=(),
            environment=capture_environment(),
            command=plan.command,
            started_at=now_iso(),
        ),
    )
    started = time.monotonic()
    try:
        profiles, phases = _run_callgrind(plan)
    except (RunFailedError, OSError, subprocess.TimeoutExpired) as error:
        folder.finish(RunStatus.FAILED, error=RunError(type(error).__name__, str(error), ""))
        raise RunFailedError(
            f"instruction run {plan.run_dir} failed: {error}; its manifest has the details"
        ) from None
    except KeyboardInterrupt:
        folder.finish(RunStatus.INTERRUPTED)
        raise
    seconds = time.monotonic() - started
    counts = {
        phase.name: _phase_count(phase, profile)
        for phase, profile in zip(phases, profiles, strict=True)
    }
    measurement = InstructionMeasurement(
        size=plan.size,
        params=plan.params.to_dict(),
        queue=plan.queue.to_dict(),
        toolchain=plan.toolchain,
        phases=counts,
        run_folder=str(plan.run_dir),
        seconds=seconds,
    )
    # One profile, each phase under the TaskQueue method it called: the analysis's operation
    # map then attributes the instructions to enqueue, claim, complete and status.
    builder = SpeedscopeBuilder(
        f"instructions per operation ({plan.size})", exporter="queueprof callgrind"
    )
    queue_file = str(Path(taskqueue_module.__file__).resolve())
    builder.add_sampled(
        "instructions by operation (callgrind)",
        [
            sample
            for phase, profile in zip(phases, profiles, strict=True)
            for sample in speedscope_samples(
                profile, FrameKey(f"TaskQueue.{phase.method}", queue_file)
            )
        ],
        unit="none",
    )
    builder.write(plan.run_dir / CALLGRIND_SPEEDSCOPE)
    folder.write_results(
        WorkloadResult(
            workload="instructions",
            size=plan.size,
            params=plan.params.to_dict(),
            queue=plan.queue.to_dict(),
            complete=True,
            duration_s=seconds,
            metrics=measurement.metrics,
            counters={f"{name}_instructions": c.instructions for name, c in counts.items()},
            notes=(
                "instructions counted by callgrind, one phase per operation; the SQL runs "
                "on the event loop's thread (dispatch=inline)",
            ),
        )
    )
    artifacts = [
        Artifact(
            ArtifactKind.REPORT,
            CALLGRIND_SPEEDSCOPE,
            "speedscope",
            f"npx speedscope {CALLGRIND_SPEEDSCOPE}",
            "self instructions by C function under each operation's TaskQueue method "
            "(weights are instructions, not time)",
        ),
        *(
            Artifact(
                ArtifactKind.REPORT,
                CALLGRIND_PHASE.format(phase=phase.name),
                "callgrind",
                f"callgrind_annotate {CALLGRIND_PHASE.format(phase=phase.name)} (or kcachegrind)",
                f"callgrind's profile of the {phase.name} phase",
            )
            for phase in phases
        ),
    ]
    folder.finish(RunStatus.COMPLETE, artifacts=artifacts)
    return measurement


def _run_callgrind(plan: InstructionPlan) -> tuple[list[CallgrindProfile], list[program.Phase]]:
    out = plan.run_dir / "callgrind.out"
    phases_file = plan.run_dir / INSTRUCTION_PHASES
    root = Path(program.__file__).resolve().parents[1]
    path = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    env = {
        **os.environ,
        # A pinned hash seed: set and dict layouts, hence instructions, repeat exactly.
        "PYTHONHASHSEED": "0",
        # The caller's path first: a sitecustomize planted there reaches the workload.
        "PYTHONPATH": os.pathsep.join([*path, str(root)]),
    }
    command = [
        plan.valgrind,
        "--tool=callgrind",
        "--dump-before=getppid",
        f"--callgrind-out-file={out}",
        sys.executable,
        # -P: run the file as a script without its folder on the path, and without
        # importing the workloads package (rich and the runner: seconds under callgrind).
        "-P",
        str(Path(program.__file__).resolve()),
        "--out",
        str(phases_file),
        "--queue",
        plan.queue_text,
        "--params",
        orjson.dumps(plan.params.to_dict()).decode(),
    ]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env=env,
        timeout=CALLGRIND_TIMEOUT_S,
        check=False,
    )
    (plan.run_dir / CALLGRIND_LOG).write_text(done.stderr)
    if done.returncode != 0:
        tail = "\n".join(done.stderr.splitlines()[-15:])
        raise RunFailedError(f"callgrind exited {done.returncode}:\n{tail}")
    document = orjson.loads(phases_file.read_bytes())
    phases = [program.Phase(**p) for p in document["phases"]]
    # Part 1 is start-up and warm-up, part k+2 is phase k, the last part is shutdown.
    dumps = sorted(
        plan.run_dir.glob("callgrind.out.*"), key=lambda p: int(p.name.rpartition(".")[2])
    )
    if len(dumps) != len(phases) + 1:
        raise RunFailedError(
            f"callgrind wrote {len(dumps)} dumps, expected {len(phases) + 1} (one per phase "
            "boundary): something else called getppid() inside the workload"
        )
    profiles = []
    for phase, dump in zip(phases, dumps[1:], strict=True):
        kept = plan.run_dir / CALLGRIND_PHASE.format(phase=phase.name)
        dump.rename(kept)
        profiles.append(read_profile(kept))
    dumps[0].unlink()
    out.unlink(missing_ok=True)
    return profiles, phases


def _phase_count(phase: program.Phase, profile: CallgrindProfile) -> PhaseCount:
    floor = profile.total * FUNCTION_SHARE_KEPT
    return PhaseCount(
        phase=phase.name,
        operation=phase.operation,
        calls=phase.calls,
        tasks=phase.tasks,
        instructions=profile.total,
        functions={
            f"{key.object}:{key.name}": count
            for key, count in profile.top(len(profile.functions))
            if count >= floor
        },
    )


@dataclass(frozen=True, slots=True)
class FunctionChange:
    """One C function's self instructions per call or task, baseline vs this run."""

    function: str
    """``object:function`` (an address when the library has no symbol for it)."""
    baseline: float
    candidate: float

    @property
    def added(self) -> float:
        """Instructions per unit this run added (negative: removed)."""
        return self.candidate - self.baseline

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "function": self.function,
            "baseline": self.baseline,
            "candidate": self.candidate,
            "added": self.added,
        }


def function_changes(
    baseline: PhaseCount, candidate: PhaseCount, unit: str, count: int = FUNCTIONS_SHOWN
) -> tuple[FunctionChange, ...]:
    """The ``count`` functions whose self instructions per ``unit`` grew the most.

    A function below the baseline's kept share counts as that share at most, so a function
    that appears only in the candidate is not credited with more growth than it had.
    """
    base = baseline.function_per(unit)
    cand = candidate.function_per(unit)
    divisor = baseline.calls if unit == "call" else baseline.tasks
    floor = baseline.instructions * FUNCTION_SHARE_KEPT / divisor
    changes = [
        FunctionChange(name, base.get(name, min(floor, value)), value)
        for name, value in cand.items()
    ]
    changes += [
        FunctionChange(name, value, 0.0) for name, value in base.items() if name not in cand
    ]
    changes.sort(key=lambda c: -c.added)
    return tuple(changes[:count])
