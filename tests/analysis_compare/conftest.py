"""Real smoke runs, made once per session through the real CLI, and copies to tamper with."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ONE_AT_A_TIME = ("--queue", "claim_batch=1,ack_batch=1")
"""The unbatched strategy: a sample per task and operation, enough for rank tests at smoke size."""


def queueprof(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run ``python -m queueprof ARGS`` and return its result (never raises on exit status)."""
    return subprocess.run(
        [sys.executable, "-m", "queueprof", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def make_run(out: Path, run_id: str, *args: str) -> Path:
    """A real run folder ``out/run_id`` from ``queueprof run ARGS --size smoke``."""
    done = queueprof("run", *args, "--size", "smoke", "--quiet", "--out", out, "--run-id", run_id)
    assert done.returncode == 0, done.stderr
    return out / run_id


@pytest.fixture(scope="session")
def runs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the session's real runs live."""
    return tmp_path_factory.mktemp("traces")


@pytest.fixture(scope="session")
def throughput_run(runs_dir: Path) -> Path:
    """A bare throughput smoke run (op samples, no profile), one task per claim and ack."""
    return make_run(runs_dir, "throughput-bare", "throughput", *ONE_AT_A_TIME)


@pytest.fixture(scope="session")
def latency_run(runs_dir: Path) -> Path:
    """A latency smoke run: a different workload from :func:`throughput_run`."""
    return make_run(runs_dir, "latency-bare", "latency")


@pytest.fixture(scope="session")
def concurrency_run(runs_dir: Path) -> Path:
    """A concurrency smoke run in async mode only (1, 2, 5 workers)."""
    return make_run(runs_dir, "concurrency-async", "concurrency", "--param", "modes=async")


@pytest.fixture(scope="session")
def profiled_runs(runs_dir: Path) -> tuple[Path, Path]:
    """Two pyinstrument throughput runs: one task per claim and ack, then batches of 10."""
    options = ("throughput", "--profiler", "pyinstrument", "--no-baseline")
    return (
        make_run(runs_dir, "pyinstrument-default", *options, *ONE_AT_A_TIME),
        make_run(
            runs_dir,
            "pyinstrument-batched",
            *options,
            "--queue",
            "claim_batch=10,ack_batch=10,claim_budget_ms=0",
        ),
    )


@pytest.fixture(scope="session")
def dbops_runs(runs_dir: Path) -> tuple[Path, Path]:
    """Two bare dbops smoke runs: batched (the default), then one task per claim and ack."""
    return (
        make_run(runs_dir, "dbops-batched", "dbops"),
        make_run(runs_dir, "dbops-one-at-a-time", "dbops", *ONE_AT_A_TIME),
    )


@pytest.fixture
def run_copy(throughput_run: Path, tmp_path: Path) -> Path:
    """A private copy of :func:`throughput_run` that a test may change."""
    return Path(shutil.copytree(throughput_run, tmp_path / "copy" / throughput_run.name))
