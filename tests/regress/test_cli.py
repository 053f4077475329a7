"""``queueprof regress`` and ``bench --save`` through the real command."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from runs.files import REGRESS_REPORT
from taskqueue import QueueConfig

from .conftest import PROJECT_ROOT, queueprof

# Loaded by the gate's own interpreter (sitecustomize on PYTHONPATH): every claim statement
# takes 2 ms more, plus 0.1 ms per task it claims, on the SQLite thread, as a claim query that
# lost its index would (so claims of one task and batched claims both slow down). Nothing
# ships it.
PLANTED_CLAIM_SLOWDOWN = """
import time

from taskqueue.store import Store

_claim_returning = Store.claim_returning


def _slow_claim(self, *args, **kwargs):
    claimed = _claim_returning(self, *args, **kwargs)
    time.sleep(0.002 + 0.0001 * len(claimed))
    return claimed


Store.claim_returning = _slow_claim
"""


def gate(
    baseline: Path, *extra: str, pythonpath: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """The smoke gate's wall-clock half, one round, against ``baseline``, run in the
    baseline's folder (the instruction gate has its own tests: test_instructions.py)."""
    return queueprof(
        "regress", "--size", "smoke", "--rounds", "1", "--only", "wall", "--baseline", baseline,
        "--quiet", *extra, cwd=baseline.parent, pythonpath=pythonpath,
    )  # fmt: skip


@pytest.mark.slow
def test_a_slowdown_planted_in_the_claim_path_fails_the_gate(
    smoke_baseline: Path, tmp_path: Path
) -> None:
    # GIVEN a baseline of the unchanged tree, and a claim statement 2 ms + 0.1 ms per task slower
    plant = tmp_path / "plant"
    plant.mkdir()
    (plant / "sitecustomize.py").write_text(PLANTED_CLAIM_SLOWDOWN)
    # WHEN the gate runs
    done = gate(smoke_baseline, pythonpath=plant)
    # THEN it exits 1 and its table names the claim metric as regressed, with the numbers
    assert done.returncode == 1, done.stdout + done.stderr
    claim_line = next(line for line in done.stdout.splitlines() if "claim_p50_ms_1_worker" in line)
    assert "REGRESSED" in claim_line
    assert "+200%" in claim_line  # the band it was judged against
    assert "gate FAILED" in done.stdout
    (folder,) = (smoke_baseline.parent / "traces").glob("*-gate-*")
    report = orjson.loads((folder / REGRESS_REPORT).read_bytes())
    assert "claim_p50_ms_1_worker" in report["regressions"]
    assert "process_tasks_per_s_1_worker" in report["regressions"]
    claim = next(m for m in report["metrics"] if m["name"] == "claim_p50_ms_1_worker")
    assert claim["relative_change"] > claim["band"]
    # and the gated runs are ordinary run folders, one per workload
    assert sorted(p.name for p in folder.iterdir() if p.is_dir()) == ["r1-dbops", "r1-throughput"]


@pytest.mark.slow
def test_the_unchanged_tree_passes_a_wide_gate(smoke_baseline: Path) -> None:
    # GIVEN the same tree as the baseline, judged with a band of +500% (nothing changed)
    done = gate(smoke_baseline, "--noise", "5")
    # THEN the gate passes with every gated metric within it
    assert done.returncode == 0, done.stdout + done.stderr
    assert "gate passed" in done.stdout
    assert "REGRESSED" not in done.stdout


def test_a_missing_baseline_exits_2_naming_the_file_and_the_fix(tmp_path: Path) -> None:
    done = queueprof("regress", "--size", "smoke", cwd=tmp_path)
    assert done.returncode == 2
    assert "results/baseline_smoke.json does not exist" in done.stderr
    assert "queueprof bench --size smoke --save results/baseline_smoke.json" in done.stderr
    assert not (tmp_path / "traces").exists()  # refused before anything ran


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x00garbage", "is not JSON"),
        (b'{"kind": "bench", "schema_version": 0}', "schema_version 0"),
    ],
)
def test_a_garbage_or_wrong_schema_baseline_exits_2(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "b.json"
    path.write_bytes(content)
    done = gate(path)
    assert done.returncode == 2
    assert message in done.stderr
    assert str(path) in done.stderr
    assert "queueprof bench --size smoke --save" in done.stderr


@pytest.mark.slow
def test_a_baseline_of_another_size_or_strategy_is_refused(smoke_baseline: Path) -> None:
    # WHEN the smoke baseline is used for a default-size gate
    done = queueprof("regress", "--baseline", smoke_baseline, cwd=smoke_baseline.parent)
    # THEN the gate refuses with the reason, before running anything
    assert done.returncode == 2
    assert "measured at size 'smoke'" in done.stderr
    # WHEN it is used with another queue strategy
    done = gate(smoke_baseline, "--queue", "claim_batch=1,ack_batch=1")
    assert done.returncode == 2
    assert "another queue strategy" in done.stderr
    assert f"claim_batch {QueueConfig().claim_batch} -> 1" in done.stderr
    assert "queueprof bench --size smoke --save" in done.stderr
    # WHEN the noise band is out of range
    done = gate(smoke_baseline, "--noise", "0")
    assert done.returncode == 2
    assert "--noise 0.0" in done.stderr
    assert not (smoke_baseline.parent / "traces").exists()


@pytest.mark.slow
def test_a_baseline_of_another_suite_is_refused(smoke_baseline: Path) -> None:
    # GIVEN a baseline whose gated throughput run processed other task counts
    data = orjson.loads(smoke_baseline.read_bytes())
    data["gate"]["suite"]["runs"]["throughput"]["tasks"] = 999
    smoke_baseline.write_bytes(orjson.dumps(data))
    done = gate(smoke_baseline)
    assert done.returncode == 2
    assert "another gate suite: runs.throughput.tasks 999 -> 1500" in done.stderr


@pytest.mark.slow
def test_ctrl_c_during_the_gate_exits_130_and_writes_no_baseline(tmp_path: Path) -> None:
    # GIVEN a gate slowed by the planted claim delay, so its first run lasts seconds
    plant = tmp_path / "plant"
    plant.mkdir()
    (plant / "sitecustomize.py").write_text(PLANTED_CLAIM_SLOWDOWN)
    parts = [str(plant), str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")]
    with subprocess.Popen(
        [sys.executable, "-m", "queueprof", "regress", "--size", "smoke", "--update-baseline",
         "--baseline", "b.json", "--quiet"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, parts))},
    ) as child:  # fmt: skip
        try:
            # WHEN it gets SIGINT once its first gated run has started
            deadline = time.monotonic() + 120
            while not list(tmp_path.glob("traces/*-gate-*/r1-throughput/manifest.json")):
                assert child.poll() is None, child.communicate()
                assert time.monotonic() < deadline, "the gated run never started"
                time.sleep(0.05)
            time.sleep(0.5)
            child.send_signal(signal.SIGINT)
            stdout, stderr = child.communicate(timeout=120)
        except BaseException:
            child.kill()  # a failed test must not leave the gate running
            raise
    # THEN it exits 130, says there is no verdict, and writes no baseline
    assert child.returncode == 130, stdout + stderr
    assert "no verdict" in stderr
    assert not (tmp_path / "b.json").exists()
