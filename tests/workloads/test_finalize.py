"""Workload.finalize: derived figures computed after the run, outside the profiler's session."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest

from runs import RunStatus, WorkloadResult
from workloads.memory import MemoryParams, MemoryWorkload
from workloads.runner import execute

from .test_runner import CrashParams, LoopCheckingWorkload, RecordingProfiler, _plan


def _chunks(rows: list[tuple[float, float, float, float]]) -> WorkloadResult:
    return WorkloadResult(
        workload="memory",
        size="smoke",
        params={},
        queue={},
        complete=True,
        duration_s=1.0,
        series={"chunks": tuple(rows)},
        series_columns={"chunks": ("tasks_done", "rss_bytes", "heap_bytes", "elapsed_s")},
    )


def test_memory_fits_growth_per_1k_tasks_from_the_chunks_after_warm_up() -> None:
    # GIVEN chunks whose RSS grows 2 KiB and heap 1 KiB per 1,000 tasks after a wild warm-up
    rows = [(1_000.0, 9e9, 9e9, 0.1)] + [
        (1_000.0 * k, 10_000.0 + 2048.0 * k, 500.0 + 1024.0 * k, 0.1 * k) for k in range(2, 7)
    ]
    params = MemoryParams(chunks=6, chunk_tasks=1_000, warmup_chunks=1)
    # WHEN the workload finalizes the result
    result = MemoryWorkload().finalize(params, _chunks(rows))
    # THEN the slopes are those of the rows after the warm-up, with the note that says why
    assert result.metrics["rss_growth_kib_per_1k_tasks"] == pytest.approx(2.0)
    assert result.metrics["heap_growth_kib_per_1k_tasks"] == pytest.approx(1.0)
    assert any("record_timings" in note for note in result.notes)


def test_memory_finalize_leaves_a_result_without_enough_chunks_as_it_is() -> None:
    # An interrupted run may stop before two chunks are past the warm-up.
    partial = _chunks([(1_000.0, 1.0, 1.0, 0.1), (2_000.0, 2.0, 2.0, 0.2)])
    params = MemoryParams(chunks=6, chunk_tasks=1_000, warmup_chunks=1)
    assert MemoryWorkload().finalize(params, partial) == partial


class FinalizeWatchingWorkload(LoopCheckingWorkload):
    """Records, from finalize, whether a profiler session or an event loop was running."""

    seen: tuple[bool, bool] | None = None

    def finalize(self, params: CrashParams, result: WorkloadResult) -> WorkloadResult:
        try:
            asyncio.get_running_loop()
            loop = True
        except RuntimeError:
            loop = False
        FinalizeWatchingWorkload.seen = (RecordingProfiler.active, loop)
        return dataclasses.replace(result, metrics={"derived": 1.0})


def test_the_runner_finalizes_after_the_session_and_the_loop(tmp_path: Path) -> None:
    outcome = execute(_plan(FinalizeWatchingWorkload(), tmp_path))
    assert outcome.status is RunStatus.COMPLETE
    assert FinalizeWatchingWorkload.seen == (False, False)
    assert outcome.result.metrics == {"derived": 1.0}


class FailingFinalizeWorkload(LoopCheckingWorkload):
    def finalize(self, params: CrashParams, result: WorkloadResult) -> WorkloadResult:
        raise ValueError("fit diverged")


def test_a_failing_finalize_marks_the_run_failed_with_its_error(tmp_path: Path) -> None:
    outcome = execute(_plan(FailingFinalizeWorkload(), tmp_path))
    assert outcome.status is RunStatus.FAILED
    assert outcome.error is not None
    assert (outcome.error.type, outcome.error.message) == ("ValueError", "fit diverged")
