"""``queueprof profile -- python app.py`` and ``queueprof attach PID``: any program, into a
run folder that ``analyze`` reads and splits by the program's own ``--ops`` map."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from analysis.analyze import analyze
from analysis.load.capture import load_sql_statements
from analysis.operations import Category, Op, Operation
from queueprof.program import attach_failure
from runs import Manifest, RunStatus
from tests.cli.test_cli import queueprof

APP = """
import sqlite3
import sys


def open_db(path):
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    db.execute("CREATE TABLE IF NOT EXISTS jobs (id INTEGER PRIMARY KEY, body TEXT, state TEXT)")
    # Without it each claim read every job ever done, and in a program left running its
    # rounds grew until a 2 s attach sampled no enqueue at all (claim 1.95 s, complete 0.04 s).
    db.execute("CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state)")
    return db


def submit_order(db, n):
    db.execute("INSERT INTO jobs (body, state) VALUES (?, 'ready')", ("x" * 200,))


def next_job(db):
    row = db.execute(
        "SELECT id, body FROM jobs WHERE state = 'ready' ORDER BY body LIMIT 1"
    ).fetchone()
    if row:
        db.execute("UPDATE jobs SET state = 'taken' WHERE id = ?", (row[0],))
    return row


def finish(db, job_id):
    db.execute("UPDATE jobs SET state = 'done' WHERE id = ?", (job_id,))


def main(path, count, rounds):
    db = open_db(path)
    for _ in range(rounds):
        for n in range(count):
            submit_order(db, n)
        while (job := next_job(db)) is not None:
            finish(db, job[0])
    db.close()
    sys.exit(int(sys.argv[4]) if len(sys.argv) > 4 else 0)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
"""

OPS = """
enqueue = ["submit_order"]
claim = ["app.py:next_job"]
complete = ["finish"]
"""


@pytest.fixture
def app(tmp_path: Path) -> Path:
    (tmp_path / "app.py").write_text(APP)
    (tmp_path / "ops.toml").write_text(OPS)
    return tmp_path


def operation_shares(folder: Path) -> dict[Op, float]:
    (run,) = analyze([folder]).runs
    (attribution,) = run.attributions
    shares: dict[Op, float] = {}
    for role in attribution.roles:
        for entry in role.categories:
            shares[entry.category] = shares.get(entry.category, 0.0) + entry.wall
    return shares


@pytest.mark.slow
@pytest.mark.parametrize("profiler", ["pyinstrument", "py-spy"])
def test_a_script_gives_a_run_folder_that_analyze_splits_by_its_ops(
    app: Path, profiler: str
) -> None:
    # GIVEN a plain script using its own SQLite job table, and an --ops map of its functions
    # WHEN it is profiled
    done = queueprof(
        "profile",
        "--profiler",
        profiler,
        "--ops",
        "ops.toml",
        "--run-id",
        "p",
        "--",
        "python",
        "app.py",
        "jobs.db",
        "1500",
        "3",
        cwd=app,
    )
    # THEN the run folder is complete and analyze splits its time by the map's operations
    assert done.returncode == 0, done.stderr + done.stdout
    folder = app / "traces" / "p"
    manifest = Manifest.from_json((folder / "manifest.json").read_bytes())
    assert manifest.status is RunStatus.COMPLETE
    assert manifest.workload == "program"
    assert manifest.params["command"] == ["python", "app.py", "jobs.db", "1500", "3"]
    assert "adapters.json" in [a["path"] for a in manifest.artifacts]
    shares = operation_shares(folder)
    assert {Category.ENQUEUE, Category.CLAIM, Category.COMPLETE} <= set(shares), shares
    assert shares[Category.CLAIM] > 0
    # AND under every profiler (py-spy's too, which samples from outside) the script's own
    # connection's SQL is captured, each statement named by --ops, with its schema
    statements = load_sql_statements(folder / "sql-statements.json")
    by_op = {(s.op, s.sql.split()[0]) for s in statements}
    assert {("enqueue", "INSERT"), ("claim", "SELECT"), ("complete", "UPDATE")} <= by_op
    databases = orjson.loads((folder / "sql-statements.json").read_bytes())["databases"]
    assert any("CREATE TABLE jobs" in schema for schema in databases.values()), databases
    assert manifest.profiler["name"] == profiler


PAGES_APP = """
import sqlite3
import sys


def fetch_page(db, n):
    db.execute("INSERT INTO pages (body) VALUES (?)", ("x" * 200,))
    return db.execute("SELECT body FROM pages WHERE id = last_insert_rowid()").fetchone()[0]


def render(body):
    return sum(sum(ord(c) for c in body) for _ in range(200))


def main(path, count):
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    db.execute("CREATE TABLE IF NOT EXISTS pages (id INTEGER PRIMARY KEY, body TEXT)")
    for n in range(count):
        render(fetch_page(db, n))
    db.close()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
"""


@pytest.mark.slow
def test_an_ops_map_names_operations_of_the_programs_own(tmp_path: Path) -> None:
    # GIVEN a program that is no queue: it fetches pages and renders them, and an --ops map
    # naming those two operations (they used to be refused: "not an operation")
    (tmp_path / "pages.py").write_text(PAGES_APP)
    (tmp_path / "ops.toml").write_text(
        'render = ["render"]\nfetch_page = ["pages.py:fetch_page"]\n'
    )
    # WHEN it is profiled
    done = queueprof(
        "profile", "--ops", "ops.toml", "--run-id", "own", "--",
        "python", "pages.py", "pages.db", "300",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr + done.stdout
    folder = tmp_path / "traces" / "own"
    # THEN the analysis splits the time by the program's operations, render (CPU) leading
    shares = operation_shares(folder)
    assert {Operation("render"), Operation("fetch_page")} <= set(shares), shares
    assert shares[Operation("render")] > shares[Operation("fetch_page")]
    # AND the SQL capture names fetch_page's statements by it
    statements = load_sql_statements(folder / "sql-statements.json")
    assert {(s.op, s.sql.split()[0]) for s in statements} >= {
        ("fetch_page", "INSERT"),
        ("fetch_page", "SELECT"),
    }
    # AND the diagnosis speaks of the program's operations by their names
    (run,) = analyze([folder]).runs
    ops = [finding.op for finding in run.findings]
    assert "render" in ops, [finding.title for finding in run.findings]
    assert ops[0] == "render", [finding.title for finding in run.findings]


def test_a_program_that_fails_leaves_a_failed_folder_with_its_profile(app: Path) -> None:
    done = queueprof(
        "profile", "--run-id", "f", "--", "python", "app.py", "jobs.db", "20", "1", "3", cwd=app
    )
    assert done.returncode == 1
    manifest = Manifest.from_json((app / "traces" / "f" / "manifest.json").read_bytes())
    assert manifest.status is RunStatus.FAILED
    assert manifest.error is not None
    assert "status 3" in manifest.error.message
    assert "pyinstrument.speedscope.json" in [a["path"] for a in manifest.artifacts]


@pytest.mark.parametrize(
    ("ops", "message"),
    [
        ('Next-Job = ["next_job"]', "use a lower-case name of letters, digits and underscores"),
        ('other = ["next_job"]', "the analysis uses that name for time outside every operation"),
        ('claim = ["app.py:next_jbo"]', "did you mean 'next_job'"),
        ('claim = "next_job"', "must be a list"),
    ],
)
def test_a_bad_ops_file_is_refused_before_the_program_runs(
    app: Path, ops: str, message: str
) -> None:
    (app / "bad.toml").write_text(ops)
    done = queueprof(
        "profile", "--ops", "bad.toml", "--", "python", "app.py", "jobs.db", "5", "1", cwd=app
    )
    assert done.returncode == 2
    assert message in done.stderr
    assert not (app / "traces").exists()
    assert not (app / "jobs.db").exists()


@pytest.fixture
def running_app(app: Path) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen([sys.executable, "app.py", "jobs.db", "300", "1000000"], cwd=app)
    time.sleep(1.0)  # past start-up: the program is in its loop
    yield process
    process.kill()
    process.wait()


@pytest.mark.slow
def test_an_attached_process_gives_a_run_folder_that_analyze_splits_by_its_ops(
    app: Path, running_app: subprocess.Popen[bytes]
) -> None:
    # GIVEN a program already running WHEN queueprof attaches to it for 2 s
    done = queueprof(
        "attach",
        str(running_app.pid),
        "--duration",
        "2",
        "--ops",
        "ops.toml",
        "--run-id",
        "a",
        cwd=app,
    )
    # THEN it leaves a complete folder whose samples split by the --ops map
    assert done.returncode == 0, done.stderr + done.stdout
    assert running_app.poll() is None  # the program keeps running
    folder = app / "traces" / "a"
    manifest = Manifest.from_json((folder / "manifest.json").read_bytes())
    assert manifest.status is RunStatus.COMPLETE
    assert manifest.params["pid"] == running_app.pid
    shares = operation_shares(folder)
    assert {Category.ENQUEUE, Category.CLAIM} <= set(shares), shares
    # AND the folder and its report say plainly that there is no SQL capture, and why
    assert not (folder / "sql-statements.json").exists()
    (run,) = analyze([folder]).runs
    assert any("no SQL capture: attach samples a process" in note for note in run.notes)
    report = queueprof("analyze", str(folder), cwd=app)
    assert report.returncode == 0, report.stderr
    assert "no SQL capture" in (folder / "report.md").read_text()


def _memray_cannot_attach_here() -> str | None:
    """Why ``memray attach`` itself cannot inject into a plain Python process on this machine
    (None: it can). gdb fails to call into processes on some kernels and CPUs ("Couldn't
    write extended state status: Bad address"): the environment's limit, not queueprof's."""
    target = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        time.sleep(0.5)
        with tempfile.TemporaryDirectory() as scratch:
            done = subprocess.run(
                [
                    *(sys.executable, "-m", "memray", "attach", "--verbose", "-f"),
                    *("-o", str(Path(scratch) / "probe.bin"), "--duration", "1"),
                    str(target.pid),
                ],
                capture_output=True,
                text=True,
                timeout=120,
            )
    finally:
        target.kill()
        target.wait()
    if done.returncode == 0:
        return None
    return attach_failure(f"{done.stdout}\n{done.stderr}") or f"exit {done.returncode}"


@pytest.mark.slow
def test_memray_attaches_to_a_running_program_and_its_memory_splits_by_ops(
    app: Path, running_app: subprocess.Popen[bytes]
) -> None:
    # (memray's own attach, outside queueprof, must work on this machine first)
    why = _memray_cannot_attach_here()
    if why is not None:
        pytest.skip(f"memray attach cannot inject into any process on this machine: {why}")
    done = queueprof(
        "attach",
        str(running_app.pid),
        "--profiler",
        "memray",
        "--duration",
        "2",
        "--ops",
        "ops.toml",
        "--run-id",
        "m",
        cwd=app,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    folder = app / "traces" / "m"
    manifest = Manifest.from_json((folder / "manifest.json").read_bytes())
    assert manifest.status is RunStatus.COMPLETE
    assert {"memray.bin", "memray-flamegraph.html"} <= {a["path"] for a in manifest.artifacts}
    (run,) = analyze([folder]).runs
    assert run.allocations is not None


def test_memray_attach_where_it_cannot_work_fails_with_what_it_needs(app: Path) -> None:
    # GIVEN a process that is not Python: memray cannot inject itself there
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        done = queueprof(
            "attach",
            str(sleeper.pid),
            "--profiler",
            "memray",
            "--duration",
            "1",
            "--run-id",
            "x",
            cwd=app,
        )
    finally:
        sleeper.kill()
        sleeper.wait()
    # THEN the run folder says it failed, with memray's reason and what works instead
    assert done.returncode == 1
    manifest = Manifest.from_json((app / "traces" / "x" / "manifest.json").read_bytes())
    assert manifest.status is RunStatus.FAILED
    assert manifest.error is not None
    assert "memray attach failed" in manifest.error.message
    assert "--profiler py-spy" in manifest.error.message


def test_a_debugger_that_cannot_inject_is_named_in_the_attach_error() -> None:
    # GIVEN memray attach's verbose output where gdb could not call into the process
    output = "\n".join(
        [
            '$7 = "MEMRAY: Process is Python 3.7+."',
            "/x/memray/commands/_attach.gdb:18: Error in sourced command file:",
            "Couldn't write extended state status: Bad address.",
            "[Inferior 1 (process 2161) detached]",
            "",
            "An unexpected error occurred. Run with --verbose to debug the failure.",
        ]
    )
    # THEN the failure names the debugger's reason beside memray's last line
    said = attach_failure(output)
    assert said.startswith("An unexpected error occurred.")
    assert "(the debugger: Couldn't write extended state status: Bad address.)" in said
    assert attach_failure("") == ""
