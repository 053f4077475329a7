"""Ctrl-C in the middle of a profiled run, through the real command."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from profilers.speedscope import validate
from tests.cli.test_cli import _env, _wait_for_done_tasks
from workloads.runfolder import Manifest, RunStatus

SPEEDSCOPE = {"pyinstrument": "pyinstrument.speedscope.json", "py-spy": "py-spy.speedscope.json"}


@pytest.mark.slow
@pytest.mark.parametrize("profiler", ["pyinstrument", "py-spy"])
def test_sigint_leaves_an_interrupted_run_with_readable_profiles(
    tmp_path: Path, profiler: str
) -> None:
    # GIVEN a profiled latency run far longer than the test
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "queueprof",
            "run",
            "latency",
            "--param",
            "tasks=100000",
            "--profiler",
            profiler,
            "--no-baseline",
            "--run-id",
            "cut",
            "--quiet",
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(TMPDIR=str(scratch)),
    )
    try:
        # WHEN it has finished some tasks and only queueprof gets SIGINT
        _wait_for_done_tasks(scratch, at_least=20, child=child)
        child.send_signal(signal.SIGINT)
        _, stderr = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    # THEN the run is marked interrupted, every listed artifact exists, and the profile
    # loads in speedscope's format
    assert child.returncode == 130, stderr
    folder = tmp_path / "traces" / "cut"
    manifest = Manifest.from_json((folder / "manifest.json").read_bytes())
    assert manifest.status is RunStatus.INTERRUPTED
    assert manifest.profiler["name"] == profiler
    listed = {entry["path"] for entry in manifest.artifacts}
    assert SPEEDSCOPE[profiler] in listed
    for path in listed:
        assert (folder / path).stat().st_size > 0, path
    assert validate(orjson.loads((folder / SPEEDSCOPE[profiler]).read_bytes())) == []
