"""The workloads on the PostgreSQL backend: same results, scratch databases dropped.

Each run gets ``--queue backend=<server>`` (the test server of tests/pg.py); afterwards no
database the run made is left on the server, the manifest names the backend without its
password, and the SQL capture and schema snapshot are in the folder.
"""

from __future__ import annotations

import importlib.util
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from analysis.load.pgserver import load_server_activity
from runs import MANIFEST, RESULTS, Manifest, RunStatus, WorkloadResult
from runs.files import PG_ACTIVITY
from taskqueue import QueueConfig
from tests.cli.test_cli import _env
from tests.helpers.db import fetch
from workloads.errors import ParameterError
from workloads.pgschema import SCHEMA_POSTGRES_JSON
from workloads.runner import execute, plan_run
from workloads.sqlcapture import UNATTRIBUTED

from .test_smoke import EXPECTED_LATENCIES, EXPECTED_METRICS


def _scratch_left(server: str, workload: str) -> list[str]:
    """The scratch databases of ``workload``'s runs on the server (other runs may share it)."""
    rows = fetch(server, "SELECT datname FROM pg_database")
    return sorted(str(r[0]) for r in rows if str(r[0]).startswith(f"qp_{workload}_"))


@pytest.mark.slow
@pytest.mark.parametrize(
    "name", ["throughput", "latency", "dbops", "concurrency", "memory", "stress"]
)
def test_a_workload_runs_on_postgres_and_drops_its_databases(
    name: str, tmp_path: Path, pg_server: str
) -> None:
    # GIVEN a smoke-size plan on the PostgreSQL backend, with the SQL capture on
    plan = plan_run(
        name,
        size="smoke",
        out_dir=tmp_path,
        run_id=f"pg-{name}",
        queue=f"backend={pg_server},capture_sql=true",
    )
    # WHEN it runs
    outcome = execute(plan)
    # THEN it completed with the figures the SQLite run has
    assert outcome.status is RunStatus.COMPLETE, outcome.error
    folder = tmp_path / f"pg-{name}"
    result = WorkloadResult.from_dict(orjson.loads((folder / RESULTS).read_bytes()))
    assert EXPECTED_METRICS[name] <= set(result.metrics)
    assert EXPECTED_LATENCIES[name] <= set(result.latencies)
    if name in ("throughput", "concurrency"):
        assert all(step.workers for step in result.steps), "per-worker figures per step"
    # AND the manifest names the backend
    manifest = Manifest.from_json((folder / MANIFEST).read_bytes())
    assert manifest.queue["backend"] == QueueConfig(backend=pg_server).to_dict()["backend"]
    server = manifest.environment["postgresql"]
    assert server["settings"]["server_version"]
    assert "synchronous_commit" in server["settings"]
    # AND the statements were captured per operation, and the schema snapshotted
    captured = orjson.loads((folder / "sql-statements.json").read_bytes())
    text = orjson.dumps(captured).decode()
    assert "FOR UPDATE SKIP LOCKED" in text
    assert UNATTRIBUTED not in {s.get("op") for s in captured.get("statements", [])}
    schema = orjson.loads((folder / SCHEMA_POSTGRES_JSON).read_bytes())
    chosen = next(d for d in schema["databases"] if d["name"] == schema["chosen"])
    assert chosen["tasks_rows"] > 0
    assert any("tasks_ready" in index for index in chosen["indexes"])
    assert chosen["plans"]["claim_skip-locked"]["seq_scans"] == []
    assert chosen["plans"]["claim_skip-locked"]["sorts"] == []
    # AND the server side was sampled by operation while the run worked
    activity = load_server_activity(folder / PG_ACTIVITY)
    assert activity.polls > 0
    assert not activity.problems
    assert {s.op for s in activity.samples} & {"enqueue", "claim", "status"}
    assert PG_ACTIVITY in {a["path"] for a in manifest.artifacts}
    # AND no database of the run is left on the server (by their names: other runs of the
    # same workload, in other tests, may have theirs there meanwhile)
    ran = {str(d["name"]) for d in schema["databases"]}
    assert ran
    assert all(db.startswith(f"qp_{name}_") for db in ran), ran
    assert not ran & set(_scratch_left(pg_server, name))


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "postgresql://alice:s3cret@db.example:5432/queues",
            "postgresql://alice:***@db.example:5432/queues",
        ),
        (
            "postgresql://alice@db.example/queues?sslmode=require&password=s3cret",
            "postgresql://alice@db.example/queues?sslmode=require&password=***",
        ),
        ("postgres://db.example/queues", "postgres://db.example/queues"),
        ("postgresql://al:ice:s3cret@h/q", "postgresql://al:***@h/q"),
        (
            "postgresql://al:s3cret@x@h/q?application_name=a@b",
            "postgresql://al:***@h/q?application_name=a@b",
        ),
    ],
)
def test_the_password_stays_out_of_the_manifest(url: str, shown: str) -> None:
    config = QueueConfig(backend=url)
    assert config.to_dict()["backend"] == shown
    assert "s3cret" not in orjson.dumps(config.to_dict()).decode()


def test_a_sqlite_strategy_reads_as_before_the_backend_existed() -> None:
    # Baselines compare strategies as dicts: the Postgres knobs must not appear in SQLite's.
    assert not {"backend", "pg_claim", "pg_pool", "pg_synchronous_commit"} & set(
        QueueConfig().to_dict()
    )


@pytest.mark.parametrize(
    ("text", "wrong"),
    [
        ("backend=mysql://x", "backend='mysql://x'"),
        ("pg_claim=nowait", "pg_claim='nowait'"),
        ("pg_pool=0", "pg_pool=0"),
        ("pg_synchronous_commit=maybe", "pg_synchronous_commit='maybe'"),
    ],
)
def test_bad_postgres_options_are_refused_by_name(text: str, wrong: str, tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match=wrong.replace("(", r"\(")):
        plan_run("throughput", size="smoke", out_dir=tmp_path, queue=text)


def test_an_unreachable_server_fails_the_run_with_the_fix(tmp_path: Path) -> None:
    # A port nothing listens on: the run fails (exit 1) naming the server and what to do.
    plan = plan_run(
        "throughput",
        size="smoke",
        out_dir=tmp_path,
        run_id="unreachable",
        queue="backend=postgresql://nobody@127.0.0.1:1/postgres",
    )
    outcome = execute(plan)
    assert outcome.status is RunStatus.FAILED
    assert outcome.error is not None
    assert "cannot be reached" in outcome.error.message
    assert "start it, or fix the URL" in outcome.error.message


@pytest.mark.parametrize(
    "text",
    [
        "pg_pool=4",
        "pg_claim=for-update",
        "pg_synchronous_commit=off",
        "pg_activity_ms=0",
        "pg_claim_commit=session",
        "pg_acks=behind",
    ],
)
def test_a_postgres_only_option_on_a_sqlite_run_is_refused(text: str, tmp_path: Path) -> None:
    # It was dropped without a word, and the SQLite run looked like one with the option.
    name = text.split("=")[0]
    with pytest.raises(ParameterError, match=f"{name} is for the PostgreSQL backend only"):
        plan_run("throughput", size="smoke", out_dir=tmp_path, queue=text)
    assert not (tmp_path / "traces").exists()


def test_a_full_disk_at_the_end_of_a_run_still_drops_its_scratch_databases(
    tmp_path: Path, pg_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a run whose first end-of-run file cannot be written (the disk is full), before
    # the scratch databases' snapshot, which used to be the step that dropped them
    from taskqueue import pgadmin
    from workloads.capture import RunCapture

    made: list[str] = []
    real_name = pgadmin.scratch_name

    def recorded_name(label: str) -> str:
        # A prefix of its own: the other tests of this file look for qp_throughput_*.
        made.append(real_name(f"full-disk-{label}"))
        return made[-1]

    def disk_full(self: RunCapture, run_dir: Path) -> list[object]:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pgadmin, "scratch_name", recorded_name)
    monkeypatch.setattr(RunCapture, "write", disk_full)
    plan = plan_run(
        "throughput", size="smoke", out_dir=tmp_path, run_id="full", queue=f"backend={pg_server}"
    )
    # WHEN it runs
    outcome = execute(plan)
    # THEN it failed, and none of the databases it made is left on the server
    assert outcome.status is RunStatus.FAILED
    assert made
    assert not set(made) & set(_scratch_left(pg_server, "full_disk"))


def test_a_server_that_refuses_the_database_says_to_fix_the_url_not_to_start_it(
    tmp_path: Path, pg_server: str
) -> None:
    # The server answers and refuses (no such database): starting it again would not help.
    missing = pg_server.rsplit("/", 1)[0] + "/qp_no_such_database_for_this_test"
    plan = plan_run(
        "throughput", size="smoke", out_dir=tmp_path, run_id="refused", queue=f"backend={missing}"
    )
    outcome = execute(plan)
    assert outcome.status is RunStatus.FAILED
    assert outcome.error is not None
    assert "refused the connection" in outcome.error.message
    assert "qp_no_such_database_for_this_test" in outcome.error.message
    assert "start it" not in outcome.error.message


@pytest.mark.slow
def test_stress_kills_worker_processes_on_postgres_and_loses_nothing(
    tmp_path: Path, pg_server: str
) -> None:
    # GIVEN process workers on the Postgres backend, one SIGKILLed every half second
    plan = plan_run(
        "stress",
        size="smoke",
        out_dir=tmp_path,
        run_id="pg-stress-kills",
        params=("mode=process", "kill_every_s=0.5"),
        queue=f"backend={pg_server}",
    )
    # WHEN the load runs and drains
    outcome = execute(plan)
    # THEN workers were killed holding leases, and the database's own audit (a trigger on
    # the tasks table) found nothing lost and nothing completed twice
    assert outcome.status is RunStatus.COMPLETE, outcome.error
    assert outcome.result.counters["workers_killed"] >= 1
    assert outcome.result.counters["lost"] == 0
    assert outcome.result.counters["duplicated"] == 0
    assert outcome.result.counters["done"] > 0
    assert outcome.result.metrics["lost_tasks"] == 0
    assert outcome.result.metrics["duplicated_tasks"] == 0


def test_the_postgres_backend_without_asyncpg_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A machine with nothing but Python: SQLite runs, Postgres says what to install.
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "asyncpg" else real(name, *a)
    )
    with pytest.raises(ParameterError, match=r"needs asyncpg.*pip install"):
        plan_run("throughput", size="smoke", out_dir=tmp_path, queue="backend=postgresql://x/y")
    plan_run("throughput", size="smoke", out_dir=tmp_path)


def _latency_databases(server: str) -> set[str]:
    rows = fetch(server, "SELECT datname FROM pg_database WHERE datname LIKE 'qp_latency%'")
    return {str(r[0]) for r in rows}


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_an_interrupted_run_drops_its_scratch_databases(
    tmp_path: Path, pg_server: str, signum: signal.Signals
) -> None:
    before = _latency_databases(pg_server)
    # GIVEN a long run on the Postgres backend, from the real command
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "queueprof",
            "run",
            "latency",
            "--size",
            "smoke",
            "--param",
            "tasks=100000",
            "--queue",
            f"backend={pg_server}",
            "--run-id",
            "cut",
            "--quiet",
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    try:
        # WHEN its scratch database exists and it is signalled
        deadline = time.monotonic() + 60
        while not _latency_databases(pg_server) - before:
            assert child.poll() is None, child.communicate()
            assert time.monotonic() < deadline, "the run made no scratch database in 60 s"
            time.sleep(0.1)
        time.sleep(1.0)
        child.send_signal(signum)
        child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
    # THEN the run ended interrupted, and its database is gone from the server
    manifest = Manifest.from_json((tmp_path / "traces" / "cut" / MANIFEST).read_bytes())
    assert manifest.status is RunStatus.INTERRUPTED
    assert _latency_databases(pg_server) - before == set()
