"""A profiled run's plumbing: the run-id claim, and the queue options a profiler adds."""

from __future__ import annotations

import dataclasses
import subprocess
import tempfile
from pathlib import Path
from typing import Any, NoReturn

import pytest

from profilers.pyspy_wrapper import PySpyProfiler
from queueprof.profiled import RunRequest, _under, profile
from runs import Manifest, RunFolder, RunIdError, RunStatus
from tests.cli.test_cli import queueprof
from tests.runs.test_folder import manifest
from workloads import runner

RUN = ("run", "latency", "--size", "smoke")


def winner_manifest(run_id: str) -> Manifest:
    return dataclasses.replace(manifest(run_id), profiler={"name": "py-spy", "options": {}})


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def refuse(what: str) -> Any:
    def refused(*args: object, **kwargs: object) -> NoReturn:
        raise AssertionError(f"the loser of the race {what}")

    return refused


@pytest.mark.parametrize("profiler", ["py-spy", "pyinstrument", "none"])
def test_the_loser_of_a_run_id_race_exits_2_and_touches_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, profiler: str
) -> None:
    # GIVEN two runs on one run id, the other one claiming the folder after this one
    # checked it was free (just before this one's claim)
    winner: dict[str, bytes] = {}
    capture = runner.capture_environment

    def winner_claims_first() -> dict[str, Any]:
        environment = capture()  # runs `git` and `uname`: before processes are refused
        folder = RunFolder.create(tmp_path / "race", winner_manifest("race"))
        winner.update(snapshot(folder.path))
        monkeypatch.setattr(subprocess, "Popen", refuse("started a process"))
        monkeypatch.setattr(tempfile, "mkdtemp", refuse("made a temp folder"))
        return environment

    monkeypatch.setattr(runner, "capture_environment", winner_claims_first)
    monkeypatch.setattr(PySpyProfiler, "check_available", classmethod(lambda cls: None))
    request = RunRequest("latency", size="smoke", out_dir=tmp_path, run_id="race")
    # WHEN this one claims it
    with pytest.raises(RunIdError, match="already exists") as lost:
        profile(request, profiler)
    # THEN it stops with exit 2, before its baseline, its profiler or its child started
    # (the py-spy loser used to profile into the winner's folder and rewrite its manifest)
    assert lost.value.exit_code == 2
    assert snapshot(tmp_path / "race") == winner
    assert RunFolder(tmp_path / "race").read().status is RunStatus.RUNNING


def test_a_py_spy_run_on_a_taken_run_id_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    # GIVEN a folder another run has claimed
    folder = RunFolder.create(tmp_path / "traces" / "race", winner_manifest("race"))
    before = snapshot(folder.path)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    # WHEN a py-spy run is started on the same run id
    done = queueprof(
        *RUN, "--profiler", "py-spy", "--run-id", "race", cwd=tmp_path, TMPDIR=str(scratch)
    )
    # THEN it is refused as bad input (it used to exit 1), and nothing changed or was left
    assert done.returncode == 2, done.stderr
    assert "already exists" in done.stderr
    assert snapshot(folder.path) == before
    assert list(scratch.iterdir()) == []


def test_a_claimed_run_refuses_a_folder_no_launcher_claimed_for_it(tmp_path: Path) -> None:
    # GIVEN a folder whose run has ended WHEN a `run --claimed` is pointed at it THEN exit 2
    folder = RunFolder.create(tmp_path / "traces" / "done", winner_manifest("done"))
    folder.finish(RunStatus.COMPLETE)
    before = snapshot(folder.path)
    done = queueprof(*RUN, "--run-id", "done", "--claimed", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "cannot be run into again" in done.stderr
    assert snapshot(folder.path) == before


def test_a_queue_option_both_the_profiler_and_the_user_set_is_not_given_twice() -> None:
    # GIVEN py-spy's capture_sql=true WHEN the user sets capture_sql too THEN the user's
    # value is the only one (a key given twice is refused since keys must be unique)
    assert _under("capture_sql=false,claim_batch=3", "capture_sql=true") == (
        "capture_sql=false,claim_batch=3"
    )
    assert _under("", "capture_sql=true") == "capture_sql=true"
    assert _under("claim_batch=3", "capture_sql=true") == "capture_sql=true,claim_batch=3"
