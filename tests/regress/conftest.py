"""Gate measurements built by hand (unit tests) and one real smoke baseline (CLI tests)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

from queueprof.gate import (
    GATED_METRICS,
    GateMeasurement,
    GatePlan,
    MetricRounds,
    calibration_name,
    gate_suite,
    plan_gate,
)
from workloads.calibration import Calibration

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def queueprof(
    *args: str | Path, cwd: Path, pythonpath: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m queueprof ARGS`` in ``cwd``; ``pythonpath`` is put first on the path."""
    parts = [str(PROJECT_ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    if pythonpath is not None:
        parts.insert(0, str(pythonpath))
    return subprocess.run(
        [sys.executable, "-m", "queueprof", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(parts), "COLUMNS": "200"},
    )


def smoke_plan(tmp_path: Path, queue: str = "") -> GatePlan:
    """The smoke gate, planned (validated, nothing run) into ``tmp_path/gate``."""
    return plan_gate(gate_suite("smoke"), queue=queue, out_dir=tmp_path / "gate", command=("test",))


def measurement(
    plan: GatePlan,
    measured: Mapping[str, tuple[float, ...]],
    calibration: Calibration | None = None,
) -> GateMeasurement:
    """A measurement of ``plan`` with the given figures per metric (others: 1.0 per round)."""
    rounds = len(next(iter(measured.values()))) if measured else 1
    calibration = calibration or Calibration(10_000.0, 100_000.0)
    return GateMeasurement(
        size=plan.suite.size.value,
        rounds=rounds,
        suite=plan.description,
        queue=plan.queue,
        calibrations=(calibration,) * rounds,
        metrics={
            m.name: MetricRounds(
                m.name, m.kind, calibration_name(m, False), measured.get(m.name, (1.0,) * rounds)
            )
            for m in GATED_METRICS
        },
    )


@pytest.fixture(scope="session")
def real_smoke_baseline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A baseline measured for real: the smoke gate, one round (made once per session)."""
    folder = tmp_path_factory.mktemp("baseline")
    path = folder / "baseline.json"
    done = queueprof(
        "regress", "--size", "smoke", "--rounds", "1", "--update-baseline",
        "--baseline", path, "--quiet", cwd=folder,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return path


@pytest.fixture
def smoke_baseline(real_smoke_baseline: Path, tmp_path: Path) -> Path:
    """A copy of the real smoke baseline to read or tamper with."""
    copy = tmp_path / "results" / "baseline_smoke.json"
    copy.parent.mkdir()
    shutil.copy(real_smoke_baseline, copy)
    return copy
