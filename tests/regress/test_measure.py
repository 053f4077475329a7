"""How the gate's measurement ends on a signal, whichever of its steps the signal hits."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from types import SimpleNamespace

import pytest

import queueprof.gate as gate_module
from queueprof.gate import GATED_METRICS, GateInterrupted, measure_gate
from runs import RunStatus
from workloads.calibration import Calibration
from workloads.interrupts import interrupts
from workloads.runner import RunPlan

from .conftest import smoke_plan


def test_a_signal_recorded_while_a_run_finishes_its_folder_still_ends_the_gate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a run that gets SIGINT while it finishes its folder, which it then ends complete
    # (a run holds an interrupt over that step, so the folder is whole)
    runs: list[Path] = []

    def finishing_run(plan: RunPlan) -> SimpleNamespace:
        runs.append(plan.run_dir)
        with interrupts() as signals, signals.held():
            os.kill(os.getpid(), signal.SIGINT)
        return SimpleNamespace(run_dir=plan.run_dir, status=RunStatus.COMPLETE)

    monkeypatch.setattr(gate_module, "calibrate", lambda _settings: Calibration(1e4, 1e5))
    monkeypatch.setattr(gate_module, "execute", finishing_run)
    # WHEN the gate measures
    with pytest.raises(GateInterrupted) as ended:
        measure_gate(smoke_plan(tmp_path))
    # THEN it stops after that run with no verdict, naming the signal and the run
    assert len(runs) == 1
    assert "no verdict" in str(ended.value)
    assert "SIGINT" in str(ended.value)
    assert str(runs[0]) in str(ended.value)
    assert ended.value.exit_code == 130


def test_a_signal_between_two_runs_ends_the_gate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a signal that arrives after a run has returned, before the next calibration
    calls = {"calibrations": 0}

    def calibration(_settings: object) -> Calibration:
        calls["calibrations"] += 1
        if calls["calibrations"] == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return Calibration(1e4, 1e5)

    def complete_run(plan: RunPlan) -> SimpleNamespace:
        return SimpleNamespace(
            run_dir=plan.run_dir,
            status=RunStatus.COMPLETE,
            result=SimpleNamespace(metrics={metric.name: 1.0 for metric in GATED_METRICS}),
        )

    monkeypatch.setattr(gate_module, "calibrate", calibration)
    monkeypatch.setattr(gate_module, "execute", complete_run)
    # WHEN the gate measures
    with pytest.raises(GateInterrupted, match="no verdict"):
        measure_gate(smoke_plan(tmp_path))
    # THEN SIGTERM stopped it there, like Ctrl-C, and the handlers before it are back
    assert calls["calibrations"] == 2
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
