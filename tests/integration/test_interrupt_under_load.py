"""Ctrl-C acts at once during a big enqueue or drain, through the real command.

Calls that run inline never suspend; before the queue gave the event loop away by itself,
the runner's SIGINT handler (an event-loop signal handler) waited for the loop: Ctrl-C took
41.5 s to act during a 500,000-task run.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runs import Manifest, RunStatus
from tests.conftest import PROJECT_ROOT

EXIT_AFTER_SIGINT_MOST_S = 3.0
"""From SIGINT to the process's exit: the handler itself runs within a turn (2 ms); the rest
is cancelling the engines, writing the interrupted folder and closing the queue."""


def _count(scratch: Path, state: str) -> int:
    for path in scratch.rglob("throughput-*.db"):
        try:
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
                return int(
                    db.execute("SELECT count(*) FROM tasks WHERE state = ?", (state,)).fetchone()[0]
                )
        except sqlite3.OperationalError:
            continue  # not created yet
    return 0


@pytest.mark.slow
@pytest.mark.parametrize(
    ("params", "state", "at_least"),
    [
        # One enqueue() per task: a producer's tight loop of inline calls.
        pytest.param(("tasks=300000", "enqueue_batch=1"), "pending", 2_000, id="enqueue"),
        # Five engines draining one-task claims, inline.
        pytest.param(("tasks=300000", "enqueue_batch=10000"), "done", 2_000, id="drain"),
    ],
)
def test_ctrl_c_stops_a_big_run_within_seconds(
    tmp_path: Path, params: tuple[str, ...], state: str, at_least: int
) -> None:
    # GIVEN a throughput run of 300,000 tasks, far longer than the test
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    command = [sys.executable, "-m", "queueprof", "run", "throughput", "--quiet"]
    for item in (*params, "worker_counts=5"):
        command += ["--param", item]
    command += ["--queue", "claim_batch=1,ack_batch=1", "--run-id", "cut", "--out", str(tmp_path)]
    parts = [str(PROJECT_ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(parts), "TMPDIR": str(scratch)}
    child = subprocess.Popen(
        command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        deadline = time.monotonic() + 120
        while _count(scratch, state) < at_least:
            assert child.poll() is None, child.communicate()
            assert time.monotonic() < deadline, f"no {at_least} tasks {state} within 120 s"
            time.sleep(0.05)
        # WHEN it gets SIGINT in the middle of that phase
        child.send_signal(signal.SIGINT)
        asked = time.perf_counter()
        _, stderr = child.communicate(timeout=120)
        took_s = time.perf_counter() - asked
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    # THEN it stopped within seconds and left an interrupted run folder
    assert child.returncode == 130, stderr
    assert took_s < EXIT_AFTER_SIGINT_MOST_S, f"exit {took_s:.1f} s after SIGINT"
    manifest = Manifest.from_json((tmp_path / "cut" / "manifest.json").read_bytes())
    assert manifest.status is RunStatus.INTERRUPTED
