"""pgqueuer and procrastinate, the PostgreSQL peers, through the plugin route.

``examples/queueprof-pgqueuer`` and ``examples/queueprof-procrastinate`` are distributions of
their own: the session fixture pip-installs a temporary copy of each into a folder that the
tests put on ``sys.path`` or ``PYTHONPATH`` (their libraries from PyPI when the environment
lacks them). They need a PostgreSQL server where this user may CREATE DATABASE: the one
``QUEUEPROF_PG`` names, or libpq's defaults. Without one the tests skip and say so, except
under ``CI=true``, where they fail.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from runs.adapters import AdapterUnavailableError, read_adapter_specs
from tests.adapters.test_plugins import PROJECT_ROOT, env_with, queueprof
from workloads.adapters import plugins
from workloads.adapters import postgres as scratch
from workloads.adapters.check import run_checks

PACKAGES = ("queueprof-pgqueuer", "queueprof-procrastinate")
LIBRARIES = ("pgqueuer", "procrastinate", "asyncpg", "psycopg", "psycopg_pool")
PEERS = ("pgqueuer", "pgqueuer-batch100", "procrastinate", "procrastinate-c10")
NOWHERE = "postgresql://nobody@127.0.0.1:9/postgres"
"""A DSN no server answers (the discard port)."""


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the PostgreSQL peers' tests must run here)")
    pytest.skip(reason)


async def _server_answers() -> str | None:
    try:
        import asyncpg
    except ImportError:
        return "asyncpg is not installed, so no PostgreSQL server can be reached"
    dsn = scratch.server_dsn()
    try:
        connection = await asyncpg.connect(
            dsn or None, timeout=5, **({} if dsn else {"database": "postgres"})
        )
    except (OSError, TimeoutError, asyncpg.PostgresError) as error:
        where = f"{scratch.DSN_VARIABLE}={dsn!r}" if dsn else "the local socket (libpq defaults)"
        return f"no PostgreSQL server answers at {where}: {error}; start one or set the variable"
    await connection.close()
    return None


@pytest.fixture(scope="session")
def postgres() -> None:
    """A PostgreSQL server answers (else skip, or fail under CI=true)."""
    missing = asyncio.run(_server_answers())
    if missing:
        _unavailable(missing)


@pytest.fixture(scope="session")
def peers_site(postgres: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both example packages, built from a temporary copy and pip-installed into one folder."""
    site = tmp_path_factory.mktemp("peers-site")
    sources = tmp_path_factory.mktemp("peers-src")
    copies = []
    for package in PACKAGES:
        copy = sources / package
        shutil.copytree(
            PROJECT_ROOT / "examples" / package,
            copy,
            ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build"),
        )
        copies.append(str(copy))
    # The libraries come from PyPI only when this environment lacks them.
    have_all = all(importlib.util.find_spec(name) is not None for name in LIBRARIES)
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--target", str(site)]
    done = subprocess.run(
        [*command, *(["--no-deps"] if have_all else []), *copies],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if done.returncode != 0:
        _unavailable(f"the peer packages could not be installed: {done.stderr.strip()[-400:]}")
    for package in PACKAGES:
        module = package.replace("-", "_")
        assert any(site.glob(f"{module}-*.dist-info/entry_points.txt")), package
    return site


@pytest.fixture
def peers_on_path(peers_site: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The installed peers importable in this process; the plugin scan forgotten around it."""
    monkeypatch.syspath_prepend(str(peers_site))
    plugins._scan_plugins.cache_clear()
    yield peers_site
    plugins._scan_plugins.cache_clear()


def smoke_comparison(
    contenders: str, tasks: int, traces: Path, env: dict[str, str], cwd: Path, *more: str
) -> subprocess.CompletedProcess[str]:
    """``queueprof run comparison`` at smoke size, quietly, into ``traces``."""
    return queueprof(
        *("run", "comparison", "--size", "smoke", "--quiet", "--out", str(traces)),
        *("--param", f"contenders={contenders}", "--param", f"tasks={tasks}", *more),
        env=env,
        cwd=cwd,
    )


def scratch_databases_under(folder: Path, server: str | None = None) -> list[str]:
    """The scratch databases on ``server`` (default: the peers' server) whose adapter folder
    is inside ``folder``."""

    async def query() -> list[str]:
        admin = await scratch._admin(scratch.server_dsn() if server is None else server)
        try:
            rows = await admin.fetch(
                "SELECT datname, shobj_description(oid, 'pg_database') AS note "
                "FROM pg_database WHERE datname LIKE $1",
                scratch.PREFIX + "%",
            )
        finally:
            await admin.close()
        inside = []
        for row in rows:
            note: Any = json.loads(row["note"] or "{}")
            if Path(note.get("folder", "/")).is_relative_to(folder.resolve()):
                inside.append(row["datname"])
        return inside

    return asyncio.run(query())


def test_the_peers_are_found_by_their_entry_points_and_keep_the_contract(
    peers_on_path: Path,
) -> None:
    # GIVEN both packages installed, each declaring the queueprof.adapters entry point
    found = plugins.installed_plugins()
    # WHEN the contract suite runs against each contender they declare
    assert set(PEERS) <= set(found)
    results = asyncio.run(run_checks([found[name] for name in PEERS]))
    # THEN every promise holds, and each peer says what it is and what it promises
    failed = [(r.contender, r.name, r.detail) for r in results if not r.passed]
    assert not failed
    assert len(results) == 7 * len(PEERS)
    assert found["pgqueuer"].spec.guarantee == "at-least-once"
    assert found["procrastinate"].spec.guarantee == "at-most-once"
    assert found["pgqueuer"].claim_batch == 10
    assert found["procrastinate-c10"].claim_batch == 10
    assert "defaults" in found["pgqueuer"].settings
    assert "defaults" in found["procrastinate"].settings
    assert "best documented" in found["pgqueuer-batch100"].settings


def test_adapter_check_passes_by_entry_point_name(peers_site: Path, tmp_path: Path) -> None:
    done = queueprof("adapter", "check", *PEERS, env=env_with(peers_site), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{7 * len(PEERS)} of {7 * len(PEERS)} checks passed" in done.stdout


@pytest.mark.parametrize("name", ["pgqueuer", "procrastinate"])
def test_status_follows_a_task_and_an_unknown_id_is_none(
    peers_on_path: Path, tmp_path: Path, name: str
) -> None:
    contender = plugins.installed_plugins()[name]

    async def story() -> list[str | None]:
        adapter = await contender.open(tmp_path)
        try:
            ref = await adapter.enqueue({"seq": 1})
            seen = [await adapter.status(ref)]
            claimed = await adapter.claim(1)
            seen.append(await adapter.status(ref))
            await adapter.complete(claimed)
            seen.append(await adapter.status(ref))
            seen.append(await adapter.status(10**9))
            return seen
        finally:
            await adapter.close()

    assert asyncio.run(story()) == ["pending", "running", "done", None]


async def _server_setting(name: str) -> str:
    admin = await scratch._admin(scratch.server_dsn())
    try:
        return str(await admin.fetchval(f"SHOW {name}"))
    finally:
        await admin.close()


async def _session_commit(adapter: Any) -> str:
    """The synchronous_commit of the adapter's own connection (the packages' private
    attributes: the settings text must say what the connection really does)."""
    if hasattr(adapter, "_connection"):
        return str(await adapter._connection.fetchval("SHOW synchronous_commit"))
    row = await adapter._app.connector.execute_query_one_async(
        "SELECT current_setting('synchronous_commit') AS value"
    )
    return str(row["value"])


@pytest.mark.parametrize(
    ("name", "tuned"),
    [
        ("pgqueuer", False),
        ("pgqueuer-batch100", True),
        ("procrastinate", False),
        ("procrastinate-c10", True),
    ],
)
def test_the_settings_say_what_the_connection_does(
    peers_on_path: Path, tmp_path: Path, name: str, tuned: bool
) -> None:
    contender = plugins.installed_plugins()[name]

    async def session() -> str:
        adapter = await contender.open(tmp_path)
        try:
            return await _session_commit(adapter)
        finally:
            await adapter.close()

    expected = "off" if tuned else asyncio.run(_server_setting("synchronous_commit"))
    assert asyncio.run(session()) == expected
    assert ("synchronous_commit=off" in contender.settings) is tuned
    assert ("best documented settings" in contender.settings) is tuned


def test_a_scratch_database_is_the_folders_until_the_folder_is_gone(
    postgres: None, tmp_path: Path
) -> None:
    # GIVEN a scratch database made for a folder
    folder = tmp_path / "first"
    folder.mkdir()
    made = asyncio.run(scratch.scratch_database(folder, "Some Queue!"))
    assert made.name.startswith(scratch.PREFIX + "some_queue_")
    # WHEN the folder is opened again THEN it is the same database
    again = asyncio.run(scratch.scratch_database(folder, "Some Queue!"))
    assert (again.name, made.fresh, again.fresh) == (made.name, True, False)
    assert scratch_databases_under(tmp_path) == [made.name]
    # WHEN the folder is gone and another scratch database is made
    shutil.rmtree(folder)
    other = tmp_path / "second"
    other.mkdir()
    second = asyncio.run(scratch.scratch_database(other, "q"))
    # THEN the sweep dropped the first; drop() drops the second
    assert scratch_databases_under(tmp_path) == [second.name]
    asyncio.run(second.drop())
    assert scratch_databases_under(tmp_path) == []
    # ... and its folder, opened again, says its database is gone instead of making a new one
    with pytest.raises(AdapterUnavailableError, match="no longer on the server"):
        asyncio.run(scratch.scratch_database(other, "q"))


def test_a_released_folder_loses_its_database_at_once(postgres: None, tmp_path: Path) -> None:
    # GIVEN a folder with a scratch database and one without (a queue on files)
    folder, files = tmp_path / "done", tmp_path / "files"
    folder.mkdir()
    files.mkdir()
    asyncio.run(scratch.scratch_database(folder, "done"))
    assert len(scratch_databases_under(tmp_path)) == 1
    # WHEN both are released, the folders still there and this process running
    asyncio.run(scratch.release_scratch_database(folder))
    asyncio.run(scratch.release_scratch_database(files))
    # THEN the database is gone now, not at exit, and the folder says so when reopened
    assert scratch_databases_under(tmp_path) == []
    with pytest.raises(AdapterUnavailableError, match="no longer on the server"):
        asyncio.run(scratch.scratch_database(folder, "done"))


def test_each_comparison_scenario_drops_its_database_when_it_ends(
    postgres: None, tmp_path: Path
) -> None:
    # GIVEN our queue on PostgreSQL as a comparison contender, each scenario in a folder
    from taskqueue import QueueConfig
    from workloads.adapters.catalog import contenders
    from workloads.comparison import Recorder, measure

    contender = contenders(QueueConfig())["taskqueue-pg"]
    folders: list[Path] = []

    def folder_for(label: str) -> Path:
        folders.append(tmp_path / f"{len(folders)}-{label}")
        return folders[-1]

    # WHEN two rounds of both scenarios (and a backlog sweep) run in this process
    asyncio.run(
        measure(
            [contender],
            {contender.name: Recorder(contender.name)},
            folder_for,
            tasks=30,
            rounds=2,
            backlogs=(20,),
            backlog_probe=10,
        )
    )
    # THEN every folder had a database, and none is left while the process still runs:
    # the next scenario never ran beside a finished one's
    assert len(folders) == 6
    assert all((folder / scratch.MARKER).is_file() for folder in folders)
    assert scratch_databases_under(tmp_path) == []


def test_a_killed_process_leaves_no_scratch_database_behind(postgres: None, tmp_path: Path) -> None:
    # GIVEN a process that makes a scratch database and is killed with SIGKILL
    folder = tmp_path / "killed"
    folder.mkdir()
    script = (
        "import asyncio, os, signal, sys\n"
        "from pathlib import Path\n"
        "from workloads.adapters.postgres import scratch_database\n"
        "asyncio.run(scratch_database(Path(sys.argv[1]), 'killed'))\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(folder)],
        env=env_with(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert len(scratch_databases_under(tmp_path)) == 1  # its atexit never ran
    # WHEN the next scratch database is made on this host
    later = tmp_path / "later"
    later.mkdir()
    made = asyncio.run(scratch.scratch_database(later, "later"))
    # THEN the dead process's database is gone
    assert scratch_databases_under(tmp_path) == [made.name]
    asyncio.run(made.drop())


def test_an_open_that_fails_drops_the_database_it_made_and_keeps_a_reopened_one(
    peers_on_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pgqueuer.queries import Queries

    contender = plugins.installed_plugins()["pgqueuer"]

    async def broken(self: Queries, *args: object) -> bool:
        raise RuntimeError("schema step failed")

    # GIVEN pgqueuer's schema install failing half-way through a first open
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    with monkeypatch.context() as patched:
        patched.setattr(Queries, "install", broken)
        # WHEN the adapter is opened THEN the error is the install's and no database is left
        with pytest.raises(RuntimeError, match="schema step failed"):
            asyncio.run(contender.open(fresh))
    assert scratch_databases_under(fresh) == []

    # GIVEN a folder holding one task, whose reopen fails
    kept = tmp_path / "kept"
    kept.mkdir()

    async def enqueue_one() -> None:
        adapter = await contender.open(kept)
        await adapter.enqueue({"seq": 1})
        await adapter.close()

    async def claim_all() -> int:
        adapter = await contender.open(kept)
        try:
            return len(await adapter.claim(5))
        finally:
            await adapter.close()

    asyncio.run(enqueue_one())
    with monkeypatch.context() as patched:
        patched.setattr(Queries, "schema_is_installed", broken)
        with pytest.raises(RuntimeError, match="schema step failed"):
            asyncio.run(claim_all())
    # THEN the folder keeps its database and its task
    assert len(scratch_databases_under(kept)) == 1
    assert asyncio.run(claim_all()) == 1


def test_no_server_is_a_clear_error(
    peers_on_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(scratch.DSN_VARIABLE, NOWHERE)
    with pytest.raises(AdapterUnavailableError, match="no PostgreSQL server answers at"):
        asyncio.run(plugins.installed_plugins()["procrastinate"].open(tmp_path))


def test_a_comparison_without_a_server_fails_naming_the_variable(
    peers_site: Path, tmp_path: Path
) -> None:
    env = {**env_with(peers_site), scratch.DSN_VARIABLE: NOWHERE}
    done = smoke_comparison("pgqueuer", 5, tmp_path / "traces", env, tmp_path)
    # The server is first asked for inside the run: the run fails, and its folder says why.
    assert done.returncode == 1, done.stdout + done.stderr
    assert "no PostgreSQL server answers at QUEUEPROF_PG=" in done.stderr
    (manifest,) = (tmp_path / "traces").glob("*/manifest.json")
    recorded = orjson.loads(manifest.read_bytes())
    assert recorded["status"] == "failed"
    assert "QUEUEPROF_PG" in orjson.dumps(recorded).decode()


@pytest.mark.slow
def test_a_short_comparison_runs_the_postgres_peers_next_to_our_queue(
    peers_site: Path, tmp_path: Path
) -> None:
    # GIVEN the peers installed (on PYTHONPATH, as --target installs them)
    traces = tmp_path / "traces"
    # WHEN the comparison names them with our queue, then the run is analysed
    contenders = ",".join(("taskqueue", *PEERS))
    done = smoke_comparison(
        contenders, 60, traces, env_with(peers_site), tmp_path, "--run-id", "pg"
    )
    assert done.returncode == 0, done.stderr + done.stdout
    run = traces / "pg"
    results = orjson.loads((run / "results.json").read_bytes())
    rows = {step["settings"]["contender"]: step for step in results["steps"]}
    # THEN each peer drained and cycled every task, each 'done', as a peer of ours
    for name in PEERS:
        row = rows[name]
        assert row["counters"].get("lost", 0) == 0, name
        assert row["counters"].get("status_not_done", 0) == 0, name
        assert row["metrics"]["drain_tasks_per_s"] > 0, name
        assert row["metrics"]["cycle_tasks_per_s"] > 0, name
    assert rows["pgqueuer"]["settings"]["version"] != "unknown"
    assert "drain_x_best_peer" in results["metrics"]
    assert any(note.startswith("best peer on the drain: ") for note in results["notes"])
    assert {spec.name for spec in read_adapter_specs(run)} >= {"pgqueuer", "procrastinate"}
    # ... the scratch databases are gone with the process
    assert scratch_databases_under(tmp_path) == []
    # ... and the analysis reads the run
    analysed = queueprof("analyze", str(run), "--format", "json", env=env_with(), cwd=tmp_path)
    assert analysed.returncode == 0, analysed.stderr
    findings = orjson.loads((run / "findings.json").read_bytes())
    assert findings["findings"] or findings.get("insufficient_evidence")


def test_on_server_names_the_scratch_server_inside_it_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN QUEUEPROF_PG naming one server
    monkeypatch.setenv(scratch.DSN_VARIABLE, NOWHERE)
    chosen = "postgresql://me@127.0.0.1:5432/postgres"
    # WHEN a run chooses another one THEN scratch databases go there inside it, and back after
    with scratch.on_server(chosen):
        assert scratch.server_dsn() == chosen
    assert scratch.server_dsn() == NOWHERE


@pytest.mark.parametrize(
    ("dsn", "url"),
    [
        ("", "postgresql:///queueprof_scratch_x"),
        (
            "postgresql://me@127.0.0.1:5432/postgres",
            "postgresql://me@127.0.0.1:5432/queueprof_scratch_x",
        ),
        (
            "postgres://me:pw@h/db?sslmode=disable",
            "postgres://me:pw@h/queueprof_scratch_x?sslmode=disable",
        ),
    ],
)
def test_our_queue_opens_its_scratch_database_by_url(dsn: str, url: str) -> None:
    assert scratch.ScratchDatabase(dsn, "queueprof_scratch_x").url() == url


def test_a_key_value_server_has_no_url_and_the_error_says_so() -> None:
    database = scratch.ScratchDatabase("host=/tmp password=s3cret", "queueprof_scratch_x")
    with pytest.raises(AdapterUnavailableError, match="set it to postgresql://") as raised:
        database.url()
    assert "s3cret" not in str(raised.value)


@pytest.mark.slow
def test_our_postgres_backend_runs_beside_the_peers_on_the_runs_server(
    peers_site: Path, pg_server: str, tmp_path: Path
) -> None:
    # GIVEN the peers installed, and QUEUEPROF_PG naming no server: the peers must follow
    # the run's --queue backend, or they fail to connect; the run's scratch folder (where
    # each contender's folder is) inside tmp_path
    run_id = "pgours"
    traces = tmp_path / "traces"
    scratch_root = tmp_path / "scratch"
    scratch_root.mkdir()
    env = {**env_with(peers_site), scratch.DSN_VARIABLE: NOWHERE, "TMPDIR": str(scratch_root)}
    ours = ("taskqueue", "taskqueue-1x1", "taskqueue-pg-commit-off")
    tasks = 40
    # WHEN the comparison runs our queue on PostgreSQL next to a peer at each setting
    done = smoke_comparison(
        ",".join((*ours, "pgqueuer-batch100", "procrastinate")),
        tasks,
        traces,
        env,
        tmp_path,
        *("--run-id", run_id, "--queue", f"backend={pg_server}"),
    )
    assert done.returncode == 0, done.stderr + done.stdout
    results = orjson.loads((traces / run_id / "results.json").read_bytes())
    rows = {step["settings"]["contender"]: step for step in results["steps"]}
    # THEN each of our rows ran on that server, every task done, drain and cycle apart,
    # with its one worker's share
    for name in ours:
        row = rows[name]
        assert row["settings"]["strategy"]["backend"] == pg_server, name
        assert row["counters"].get("lost", 0) == 0, name
        assert row["counters"].get("status_not_done", 0) == 0, name
        assert row["metrics"]["drain_tasks_per_s"] > 0, name
        assert row["metrics"]["cycle_tasks_per_s"] > 0, name
        assert {"drain.claim", "drain.complete", "cycle.claim", "cycle.complete"} <= set(
            row["latencies"]
        ), name
        (worker,) = row["workers"]
        assert worker["completed"] == 2 * tasks, name
    assert rows["taskqueue-pg-commit-off"]["settings"]["strategy"]["pg_synchronous_commit"] == (
        "off"
    )
    assert rows["taskqueue"]["settings"]["strategy"]["pg_synchronous_commit"] == "on"
    # ... the peers ran too, on the same server
    for name in ("pgqueuer-batch100", "procrastinate"):
        assert rows[name]["counters"].get("lost", 0) == 0, name
    # ... both scenarios are set against the best peer
    metrics = results["metrics"]
    assert {"drain_x_best_peer", "cycle_x_best_peer"} <= set(metrics)
    assert "cycle_x_best_peer_taskqueue_pg_commit_off" in metrics
    assert any(note.startswith("best peer on the cycle: ") for note in results["notes"])
    # ... and no scratch database of the run is left on the server
    assert scratch_databases_under(scratch_root, pg_server) == []
