"""The real ``queueprof`` command, run through ``sys.executable -m queueprof``."""

from __future__ import annotations

import configparser
import os
import re
import shlex
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from runs import SCHEMA_VERSION, Manifest, RunStatus, WorkloadResult

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def queueprof(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI to completion and capture what it printed (``env``: more variables)."""
    return subprocess.run(
        [sys.executable, "-m", "queueprof", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env=_env(**env),
    )


def _env(**extra: str) -> dict[str, str]:
    parts = [str(PROJECT_ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(parts), "COLUMNS": "200", **extra}


@pytest.mark.slow
def test_run_writes_a_run_folder_and_prints_the_verdicts(tmp_path: Path) -> None:
    # WHEN a smoke throughput run is started from the command line
    done = queueprof(
        "run",
        "throughput",
        "--size",
        "smoke",
        "--param",
        "worker_counts=1,5",
        "--run-id",
        "r1",
        cwd=tmp_path,
    )
    # THEN it exits 0, prints a targets table, and leaves traces/r1 with both files
    assert done.returncode == 0, done.stderr
    assert "targets" in done.stdout
    assert "process_tasks_per_s_1_worker" in done.stdout
    assert "PASS" in done.stdout or "FAIL" in done.stdout
    folder = tmp_path / "traces" / "r1"
    manifest = Manifest.from_json((folder / "manifest.json").read_bytes())
    result = WorkloadResult.from_json((folder / "results.json").read_bytes())
    assert manifest.status is RunStatus.COMPLETE
    assert manifest.command[:3] == ("queueprof", "run", "throughput")
    assert manifest.params["worker_counts"] == [1, 5]
    assert [s.settings["workers"] for s in result.steps] == [1, 5]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["run", "nope"], "unknown workload 'nope'; valid: throughput, latency, dbops"),
        (["run", "latency", "--size", "xl"], "unknown size 'xl'; valid: smoke, default, full"),
        (["run", "latency", "--param", "colour=red"], "valid: rate, tasks, workers"),
        (["run", "latency", "--param", "workers=0"], "workers=0 is out of range; valid: 1..64"),
        (["run", "latency", "--queue", "claim_style=magic"], "returning, immediate, deferred"),
        (["run", "latency", "--queue", "connection"], "expected key=value"),
        (["bench", "--size", "tiny"], "unknown size 'tiny'"),
    ],
)
def test_bad_input_exits_2_with_the_valid_choices_and_writes_nothing(
    tmp_path: Path, args: list[str], expected: str
) -> None:
    done = queueprof(*args, cwd=tmp_path)
    assert done.returncode == 2
    assert expected in done.stderr
    assert not (tmp_path / "traces").exists()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["latency", "--queue", "lease_s=nan"], "lease_s=nan: must be > 0, a finite number"),
        (["latency", "--queue", "claim_budget_ms=inf"], "claim_budget_ms=inf: must be >= 0"),
        (["latency", "--queue", "retry_backoff_s=nan"], "retry_backoff_s=nan: must be >= 0"),
        (["latency", "--queue", "claim_batch=1,claim_batch=5"], "each key once"),
        (["latency", "--queue", "claim_batch=1,,ack_batch=2"], "none of them empty"),
        (["latency", "--param", "tasks=10", "--param", "tasks=20"], "each key once"),
        (["stress", "--param", f"seed={2**64}"], "fits in 64 bits"),
        (["memory", "--param", f"chunks={2**64 + 1}"], "fits in 64 bits"),
        (["latency", "--profiler", "pyinstrument", "--queue", "lease_s=inf"], "lease_s=inf"),
        (["latency", "--profiler", "py-spy", "--queue", "retry_backoff_s=inf"], "finite"),
    ],
)
def test_non_finite_huge_repeated_or_empty_values_exit_2_and_write_nothing(
    tmp_path: Path, args: list[str], expected: str
) -> None:
    # GIVEN values that used to pass planning and then fail the run (exit 1, a folder) or
    # crash while the manifest was written (an empty folder)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    done = queueprof("run", *args, "--size", "smoke", cwd=tmp_path, TMPDIR=str(scratch))
    # THEN the command refuses them before anything starts: no folder, no temp files
    assert done.returncode == 2, done.stderr
    assert expected in done.stderr
    assert not (tmp_path / "traces").exists()
    assert not list(scratch.iterdir())


def test_a_bad_targets_file_exits_2_naming_file_and_key(tmp_path: Path) -> None:
    targets = tmp_path / "targets.toml"
    targets.write_text("[latency]\ne2e_p42_ms = 3\n")
    done = queueprof("run", "latency", "--targets", str(targets), cwd=tmp_path)
    assert done.returncode == 2
    assert str(targets) in done.stderr
    assert "'e2e_p42_ms' in [latency]" in done.stderr
    assert "e2e_p50_ms" in done.stderr
    assert not (tmp_path / "traces").exists()


def test_a_targets_file_changes_the_verdict(tmp_path: Path) -> None:
    targets = tmp_path / "strict.toml"
    targets.write_text("[throughput]\nprocess_tasks_per_s_1_worker = 1e12\n")
    done = queueprof(
        "run",
        "throughput",
        "--size",
        "smoke",
        "--param",
        "worker_counts=1",
        "--targets",
        str(targets),
        "--run-id",
        "strict",
        "--quiet",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "targets FAILED" in done.stdout
    result = orjson.loads((tmp_path / "traces" / "strict" / "results.json").read_bytes())
    (verdict,) = result["verdicts"]
    assert verdict["target"] == 1e12
    assert verdict["passed"] is False


def test_list_shows_workloads_params_profilers_and_runs(tmp_path: Path) -> None:
    run = queueprof(
        "run",
        "dbops",
        "--size",
        "smoke",
        "--param",
        "tasks=20",
        "--run-id",
        "past",
        "--quiet",
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    done = queueprof("list", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    for name in ("throughput", "latency", "dbops", "concurrency", "stress", "memory"):
        assert name in done.stdout
    assert "worker_counts" in done.stdout  # params with the values each size runs with
    header = re.search(r"param .* type .* smoke .* default .* full .* valid", done.stdout)
    assert header is not None
    tasks = re.search(r"tasks\W+int\W+300\W+3000\W+50000\W", done.stdout)  # throughput's
    assert tasks is not None, done.stdout
    assert "profilers: none" in done.stdout
    assert "min_duration_us" in done.stdout  # each profiler's options, as --profiler-option says
    assert "past" in done.stdout
    assert "complete" in done.stdout


@pytest.mark.slow
def test_bench_runs_the_seed_suite_and_saves_one_file(tmp_path: Path) -> None:
    done = queueprof(
        "bench",
        "--size",
        "smoke",
        "--save",
        "results/baseline_results.json",
        "--quiet",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    saved = orjson.loads((tmp_path / "results" / "baseline_results.json").read_bytes())
    assert saved["schema_version"] == SCHEMA_VERSION
    assert saved["kind"] == "bench"
    assert saved["environment"]["python"]["version"]
    assert [r["result"]["workload"] for r in saved["runs"]] == [
        "throughput",
        "latency",
        "dbops",
        "concurrency",
    ]
    throughput = saved["runs"][0]["result"]
    assert set(throughput["metrics"]) >= {
        "process_tasks_per_s_1_worker",
        "process_tasks_per_s_5_workers",
        "process_tasks_per_s_10_workers",
    }
    # and, being a baseline, the regression gate measured in the same invocation: a
    # calibration before every gated run, the strategy, each gated metric's rounds and cost
    gate = saved["gate"]
    assert len(gate["calibrations"]) == 2 * gate["rounds"]
    assert all(c["cycle_per_s"] > 0 for c in gate["calibrations"])
    assert all(c["batched_per_s"] > 0 for c in gate["calibrations"])
    assert gate["queue"]["throughput"]["claim_batch"] >= 1
    claim = gate["metrics"]["claim_p50_ms_1_worker"]
    assert len(claim["measured"]) == gate["rounds"]
    assert claim["cost"] > 0
    traces = sorted(p.name for p in (tmp_path / "traces").iterdir())
    assert len(traces) == 5
    assert sum("-gate-" in name for name in traces) == 1
    # and `queueprof regress` takes it as a smoke baseline
    again = queueprof(
        "regress", "--size", "smoke", "--rounds", "1", "--baseline",
        "results/baseline_results.json", "--noise", "9", "--quiet", cwd=tmp_path,
    )  # fmt: skip
    assert again.returncode == 0, again.stdout + again.stderr
    assert "gate passed" in again.stdout


@pytest.mark.slow
def test_sigint_leaves_an_interrupted_folder_with_partial_results(tmp_path: Path) -> None:
    # GIVEN a latency run far longer than the test (200 s of offered load)
    # WHEN it has completed some tasks (seen in its own database) and gets SIGINT
    child, stdout, stderr = interrupt_long_run(tmp_path)
    # THEN it exits 130 and the folder says interrupted, with the latencies measured so far
    assert child.returncode == 130, stderr
    assert "interrupted" in stdout
    folder = tmp_path / "traces" / "cut"
    manifest = Manifest.from_json((folder / "manifest.json").read_bytes())
    assert manifest.status is RunStatus.INTERRUPTED
    assert manifest.ended_at is not None
    result = WorkloadResult.from_json((folder / "results.json").read_bytes())
    assert not result.complete
    assert result.latencies["e2e"].count >= 20
    assert "e2e_p50_ms" in result.metrics
    assert any("SIGINT" in note for note in result.notes)
    # and the scratch databases are gone
    assert not list((tmp_path / "scratch").rglob("*.db"))


def interrupt_long_run(tmp_path: Path, *extra: str) -> tuple[subprocess.Popen[str], str, str]:
    """Start a latency run of 200 s (run id ``cut``), SIGINT it once it has finished 20 tasks.

    Returns the process (ended) and its stdout and stderr; ``extra`` are more ``run`` args.
    """
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    command = [
        sys.executable,
        "-m",
        "queueprof",
        "run",
        "latency",
        "--param",
        "tasks=100000",
        *extra,
        "--run-id",
        "cut",
        "--quiet",
    ]
    child = subprocess.Popen(
        command,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(TMPDIR=str(scratch)),
    )
    try:
        _wait_for_done_tasks(scratch, at_least=20, child=child)
        child.send_signal(signal.SIGINT)
        stdout, stderr = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    return child, stdout, stderr


def _wait_for_done_tasks(scratch: Path, *, at_least: int, child: subprocess.Popen[str]) -> None:
    """Poll the run's scratch database (read-only) until it has finished ``at_least`` tasks."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert child.poll() is None, child.communicate()
        if any(finished_tasks(path) >= at_least for path in scratch.rglob("latency-*.db")):
            return
        time.sleep(0.05)
    pytest.fail(f"the run finished no {at_least} tasks within 120 s")


def finished_tasks(path: Path) -> int:
    """Tasks done in the queue database at ``path``, read-only (0 before it has its table)."""
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
            (done,) = db.execute("SELECT count(*) FROM tasks WHERE state = 'done'").fetchone()
    except sqlite3.OperationalError:
        return 0  # not created yet
    return int(done)


@pytest.mark.slow
def test_a_users_param_replaces_the_tox_envs_own(tmp_path: Path) -> None:
    # GIVEN the profile-trace env's run command, as tox.ini has it, and a user's own
    # `tox -e profile-trace -- --param tasks=300` (it used to be refused as a key given twice)
    command = _as_tox_runs_it("profile-trace", ["--param", "tasks=300"])
    # WHEN it runs
    done = queueprof(*command[1:], "--no-baseline", "--quiet", "--run-id", "t", cwd=tmp_path)
    # THEN it runs with the user's size and keeps the env's other settings
    assert done.returncode == 0, done.stderr
    manifest = Manifest.from_json((tmp_path / "traces" / "t" / "manifest.json").read_bytes())
    assert manifest.params["tasks"] == 300
    assert manifest.params["worker_counts"] == [5]
    # AND a key the user gives twice is still refused, naming both values
    twice = queueprof("run", "dbops", "--param", "tasks=5", "--param", "tasks=6", cwd=tmp_path)
    assert twice.returncode == 2
    assert "tasks=6" in twice.stderr
    assert "tasks=5" in twice.stderr


def _as_tox_runs_it(env: str, posargs: list[str]) -> list[str]:
    """The first command of ``env`` in the project's tox.ini, with ``{posargs}`` replaced
    as tox does it: the user's words in its place, nothing else changed."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(PROJECT_ROOT / "tox.ini", encoding="utf-8")
    line = parser.get(f"testenv:{env}", "commands").strip().splitlines()[0]
    words: list[str] = []
    for word in shlex.split(line):
        words.extend(posargs if word == "{posargs}" else [word])
    return words


@pytest.mark.slow
def test_a_py_spy_run_prints_its_report_once_in_order_with_offline_viewers(
    tmp_path: Path,
) -> None:
    # GIVEN a run under py-spy (process workers: several processes to sample)
    done = queueprof(
        "run", "throughput", "--size", "smoke", "--profiler", "py-spy", "--no-baseline",
        "--param", "mode=process", "--param", "worker_counts=2", "--run-id", "spy",
        cwd=tmp_path,
        PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    # THEN the result and its artifacts are printed once, the summary before the artifacts,
    # with py-spy's own lines (and its web viewer's address) left out
    out = done.stdout
    assert out.count("artifacts in traces/spy/") == 1
    assert out.count("throughput (smoke) - complete") == 1
    assert out.index("throughput (smoke) - complete") < out.index("artifacts in traces/spy/")
    assert "py-spy.speedscope.json" in out
    assert "py-spy>" not in out
    assert "http" not in out
    assert "py_spy]" not in done.stderr
    # AND what py-spy said is in the manifest, with any error explained
    manifest = Manifest.from_json((tmp_path / "traces" / "spy" / "manifest.json").read_bytes())
    summary = manifest.profiler["summary"]
    assert summary["samples_reported"] > 0
    assert summary["sampling_errors"] is not None
    if summary["sampling_errors"]:
        assert "could not read one live process's stacks" in " ".join(out.split())
