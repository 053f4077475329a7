"""SQL capture of every sqlite3 connection: statements timed with their operation and
database, each database's schema kept, taskqueue's own (aiosqlite) connections left alone."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import aiosqlite
import orjson

from workloads.capture import RunCapture
from workloads.sqlcapture import UNATTRIBUTED, SqliteCapture, operation


def test_statements_of_a_plain_connection_are_timed_with_operation_and_schema(
    tmp_path: Path,
) -> None:
    capture = SqliteCapture()
    path = tmp_path / "jobs.db"
    # GIVEN a library that opens sqlite3 connections while the capture is installed
    with capture.installed():
        db = sqlite3.connect(path, isolation_level=None)
        db.execute("CREATE TABLE jobs (id INTEGER PRIMARY KEY, state TEXT)")
        with operation("mine.enqueue"):
            db.executemany("INSERT INTO jobs (state) VALUES (?)", [("ready",)] * 3)
        with operation("mine.claim"):
            db.cursor().execute("SELECT id FROM jobs WHERE state = 'ready' ORDER BY state")
        db.close()
    # THEN each statement is recorded under the operation running it, on its database
    ops = [(s.op, s.sql.split()[0]) for s in capture.statements]
    assert ops == [(UNATTRIBUTED, "CREATE"), ("mine.enqueue", "INSERT"), ("mine.claim", "SELECT")]
    assert {s.database for s in capture.statements} == {str(path)}
    assert all(s.duration_ns > 0 for s in capture.statements)
    # ... and the database's schema was read when the connection closed
    assert capture.schemas == {
        str(path): "CREATE TABLE jobs (id INTEGER PRIMARY KEY, state TEXT);\n"
    }
    # ... and after the capture, sqlite3.connect is the original again
    assert not hasattr(sqlite3.connect(":memory:"), "_queueprof_attach")


def test_a_connection_the_queue_s_code_opens_itself_runs_that_operation_s_statements(
    tmp_path: Path,
) -> None:
    # GIVEN the queue's Store.insert (as taskqueue/store.py defines it) opening a sqlite3
    # connection of its own on each call, outside every operation() block
    path = tmp_path / "queue.db"
    source = (
        "def insert(sqlite3, path):\n"
        "    db = sqlite3.connect(path, isolation_level=None)\n"
        "    db.execute('PRAGMA busy_timeout = 1000')\n"
        "    db.close()\n"
    )
    scope: dict[str, object] = {}
    exec(compile(source, "/somewhere/taskqueue/store.py", "exec"), scope)
    insert = scope["insert"]
    capture = SqliteCapture()
    with capture.installed():
        insert(sqlite3, path)  # type: ignore[operator]
        plain = sqlite3.connect(path, isolation_level=None)
        plain.execute("PRAGMA busy_timeout = 1000")
        plain.close()
    # THEN its statement is enqueue's (the innermost queue function on the stack decides),
    # and a statement outside the queue's code stays unattributed
    assert [s.op for s in capture.statements] == ["enqueue", UNATTRIBUTED]


def test_aiosqlite_connections_are_left_to_taskqueue_s_own_capture(tmp_path: Path) -> None:
    capture = SqliteCapture()

    async def use_aiosqlite() -> None:
        async with aiosqlite.connect(tmp_path / "q.db") as db:
            await db.execute("CREATE TABLE t (a)")

    with capture.installed():
        asyncio.run(use_aiosqlite())
    assert capture.statements == []


def test_captured_statements_reach_sql_statements_json_with_their_database(
    tmp_path: Path,
) -> None:
    sqlite = SqliteCapture()
    with sqlite.installed():
        db = sqlite3.connect(tmp_path / "a.db")
        db.execute("CREATE TABLE t (a, b)")
        with operation("peer.claim"):
            for _ in range(3):
                db.execute("SELECT a FROM t ORDER BY b LIMIT 1").fetchall()
        db.close()
    capture = RunCapture()
    capture.add_sqlite(sqlite)
    capture.write(tmp_path)

    from analysis.hotspots import sql_hotspots
    from analysis.load.capture import load_sql_statements

    statements = load_sql_statements(tmp_path / "sql-statements.json")
    (select,) = [s for s in statements if s.op == "peer.claim"]
    assert select.count == 3
    assert select.database == str(tmp_path / "a.db")
    # THEN the analysis plans it on its own database's schema, not taskqueue's
    (hotspot,) = [h for h in sql_hotspots(statements, {}, {}) if h.op == "peer.claim"]
    assert hotspot.plan.error is None
    assert hotspot.plan.temp_btrees


def test_each_statement_names_the_program_function_that_ran_it(tmp_path: Path) -> None:
    # GIVEN a store whose methods run their statements through a private helper of its file
    source = (
        "class Store:\n"
        "    def __init__(self, sqlite3, path):\n"
        "        self.db = sqlite3.connect(path, isolation_level=None)\n"
        "        self._run('CREATE TABLE jobs (id INTEGER PRIMARY KEY)')\n"
        "    def _run(self, sql):\n"
        "        return self.db.execute(sql)\n"
        "    def pop(self):\n"
        "        return self._run('SELECT id FROM jobs ORDER BY id LIMIT 1').fetchone()\n"
    )
    scope: dict[str, object] = {}
    exec(compile(source, "/app/jobs/store.py", "exec"), scope)
    capture = SqliteCapture()
    with capture.installed():
        store = scope["Store"](sqlite3, tmp_path / "jobs.db")  # type: ignore[operator]
        store.pop()
        store.db.close()
    # THEN each statement names the method that ran it, not the helper, with its file
    callers = [(s.caller.qualname, s.caller.function, s.caller.file) for s in capture.statements]
    assert callers == [
        ("Store.__init__", "__init__", "/app/jobs/store.py"),
        ("Store.pop", "pop", "/app/jobs/store.py"),
    ]
    # ... and the run folder keeps it with each statement
    run = RunCapture()
    run.add_sqlite(capture)
    run.write(tmp_path)
    written = orjson.loads((tmp_path / "sql-statements.json").read_bytes())["statements"]
    assert {s["caller"]["qualname"] for s in written} == {"Store.__init__", "Store.pop"}
