"""The runner's paths: failed with the error, profiler session inside the loop, no half-writes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from runs import (
    MANIFEST,
    RESULTS,
    Manifest,
    RunStatus,
    StepResult,
    UsageError,
    WorkloadResult,
    list_runs,
)
from workloads.context import RunContext
from workloads.params import Size, WorkloadParams, param
from workloads.runner import RunPlan, execute, parse_queue, plan_run
from workloads.targets import default_targets


@dataclass(frozen=True)
class CrashParams(WorkloadParams):
    workload_name = "crash"

    steps_before_crash: int = param(1, "steps recorded before the crash", minimum=0)


class CrashingWorkload:
    """Records steps, then raises: the failed path."""

    name = "throughput"  # so the throughput targets apply to what it recorded
    description = "records a step, then crashes"
    params_type = CrashParams
    queue_defaults = ""
    sizes: Mapping[Size, CrashParams] = {size: CrashParams() for size in Size}

    async def run(self, params: CrashParams, ctx: RunContext) -> WorkloadResult:
        for index in range(params.steps_before_crash):
            ctx.partial.step(StepResult(f"step {index}", {"workers": 1}, {"x": 1.0}))
            ctx.partial.metric("process_tasks_per_s_1_worker", 75.0)
        raise RuntimeError("the disk caught fire")

    def finalize(self, params: CrashParams, result: WorkloadResult) -> WorkloadResult:
        return result


class LoopCheckingWorkload(CrashingWorkload):
    """Completes, noting whether the profiler session was open inside the running loop."""

    async def run(self, params: CrashParams, ctx: RunContext) -> WorkloadResult:
        ctx.partial.note(f"profiler active: {RecordingProfiler.active}")
        return ctx.partial.result(complete=True)


class FakeArtifact:
    def to_dict(self) -> dict[str, str]:
        return {"kind": "cpu-profile", "path": "fake.json", "format": "speedscope", "viewer": "x"}


class RecordingProfiler:
    active = False
    entered_in_loop = False
    finished_with: bool | None = None

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir

    def manifest(self) -> dict[str, Any]:
        return {"name": "fake", "options": {"interval": 0.001}}

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        asyncio.get_running_loop()  # raises if not inside the running loop
        RecordingProfiler.entered_in_loop = True
        RecordingProfiler.active = True
        try:
            yield
        finally:
            RecordingProfiler.active = False

    def finish(self, *, interrupted: bool = False) -> Sequence[FakeArtifact]:
        RecordingProfiler.finished_with = interrupted
        return [FakeArtifact()]


def _plan(workload: CrashingWorkload, tmp_path: Path, profiler: Any = None) -> RunPlan:
    run_dir = tmp_path / "run"
    return RunPlan(
        workload=workload,
        params=CrashParams(),
        size=Size.SMOKE,
        queue_config=parse_queue(""),
        targets=default_targets(),
        run_dir=run_dir,
        profiler=(profiler or RecordingProfiler)(run_dir),
    )


def test_a_crash_marks_the_run_failed_with_error_and_partial_results(tmp_path: Path) -> None:
    # WHEN a workload raises after recording a step
    outcome = execute(_plan(CrashingWorkload(), tmp_path))
    # THEN the outcome and the manifest say failed, with the error and its traceback
    assert outcome.status is RunStatus.FAILED
    assert outcome.exit_code == 1
    manifest = Manifest.from_json((outcome.run_dir / MANIFEST).read_bytes())
    assert manifest.status is RunStatus.FAILED
    assert manifest.error is not None
    assert manifest.error.type == "RuntimeError"
    assert manifest.error.message == "the disk caught fire"
    assert "Traceback" in manifest.error.traceback
    assert "CrashingWorkload" in manifest.error.traceback or "run" in manifest.error.traceback
    # ... and the results hold what was recorded, marked incomplete, with verdicts
    result = WorkloadResult.from_json((outcome.run_dir / RESULTS).read_bytes())
    assert not result.complete
    assert [s.label for s in result.steps] == ["step 0"]
    assert [v.metric for v in result.verdicts] == ["process_tasks_per_s_1_worker"]
    # the profiler still finished (its artifacts are listed)
    assert RecordingProfiler.finished_with is False
    assert manifest.artifacts[0]["path"] == "fake.json"


def test_the_profiler_session_is_entered_inside_the_running_loop(tmp_path: Path) -> None:
    RecordingProfiler.entered_in_loop = False
    outcome = execute(_plan(LoopCheckingWorkload(), tmp_path))
    assert outcome.status is RunStatus.COMPLETE
    assert RecordingProfiler.entered_in_loop
    assert outcome.result.notes == ("profiler active: True",)
    manifest = orjson.loads((outcome.run_dir / MANIFEST).read_bytes())
    assert manifest["profiler"] == {"name": "fake", "options": {"interval": 0.001}}
    assert manifest["artifacts"] == [FakeArtifact().to_dict()]


def test_past_runs_are_listed_with_their_status(tmp_path: Path) -> None:
    execute(_plan(CrashingWorkload(), tmp_path))
    (run,) = list_runs(tmp_path)
    assert (run.run_id, run.status, run.profiler) == ("run", "failed", "fake")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"workload_name": "nope"}, "unknown workload 'nope'; valid: throughput, latency"),
        ({"size": "huge"}, "unknown size 'huge'; valid: smoke, default, full"),
        ({"params": ["tasks=-1"]}, "parameter tasks=-1 is out of range"),
        ({"queue": "claim_batch=0"}, "--queue 'claim_batch=0': claim_batch=0"),
        ({"queue": "colour=red"}, "unknown queue option 'colour'"),
        ({"run_id": "../escape"}, "--run-id '../escape'"),
    ],
)
def test_bad_input_is_refused_before_anything_is_written(
    tmp_path: Path, kwargs: dict[str, Any], message: str
) -> None:
    out = tmp_path / "traces"
    arguments: dict[str, Any] = {"workload_name": "throughput", "out_dir": out, **kwargs}
    with pytest.raises(UsageError) as caught:
        plan_run(arguments.pop("workload_name"), **arguments)
    assert message in str(caught.value)
    assert not out.exists()


def test_an_existing_run_folder_is_not_overwritten(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    with pytest.raises(UsageError, match="already exists"):
        plan_run("throughput", out_dir=tmp_path, run_id="taken")


def test_workload_queue_defaults_apply_under_user_options() -> None:
    config = parse_queue("claim_batch=10", "lease_s=1")
    assert (config.lease_s, config.claim_batch, config.record_timings) == (1.0, 10, True)
    assert parse_queue("lease_s=5", "lease_s=1").lease_s == 5.0
