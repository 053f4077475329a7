"""SQL capture of every sqlite3 connection: statements timed with their operation and
database, each database's schema kept, taskqueue's own (aiosqlite) connections left alone."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import aiosqlite
import orjson

from runs.adapters import CodePath
from workloads.capture import RunCapture
from workloads.sqlcapture import UNATTRIBUTED, SqliteCapture, operation


def defined_in(source: str, file: str) -> dict[str, Any]:
    """The names ``source`` defines, as if it were the file ``file`` (which the capture reads
    to tell taskqueue's code from a program's)."""
    scope: dict[str, Any] = {}
    exec(compile(source, file, "exec"), scope)
    return scope


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
    scope = defined_in(source, "/somewhere/taskqueue/store.py")
    insert = scope["insert"]
    capture = SqliteCapture()
    with capture.installed():
        insert(sqlite3, path)
        plain = sqlite3.connect(path, isolation_level=None)
        plain.execute("PRAGMA busy_timeout = 1000")
        plain.close()
    # THEN its statement is enqueue's (the innermost queue function on the stack decides),
    # and a statement outside the queue's code stays unattributed
    assert [s.op for s in capture.statements] == ["enqueue", UNATTRIBUTED]


def test_aiosqlite_connections_are_left_to_taskqueue_s_own_capture(tmp_path: Path) -> None:
    # GIVEN taskqueue's code (as taskqueue/_bridge.py defines it) opening an aiosqlite
    # connection, whose statements its own observers report
    source = (
        "async def use(aiosqlite, path):\n"
        "    async with aiosqlite.connect(path) as db:\n"
        "        await db.execute('CREATE TABLE t (a)')\n"
    )
    scope = defined_in(source, "/somewhere/taskqueue/_bridge.py")
    capture = SqliteCapture()
    with capture.installed():
        asyncio.run(scope["use"](aiosqlite, tmp_path / "q.db"))
    # THEN the capture leaves it alone
    assert capture.statements == []


def test_another_queue_s_aiosqlite_statements_name_their_coroutine_and_operation(
    tmp_path: Path,
) -> None:
    # GIVEN an aiosqlite store of someone else's, with its take mapped to claim (--ops)
    source = (
        "class Store:\n"
        "    async def open(self, aiosqlite, path):\n"
        "        self.db = await aiosqlite.connect(path)\n"
        "        await self.db.execute('CREATE TABLE jobs (id INTEGER PRIMARY KEY, n INT)')\n"
        "    async def take(self):\n"
        "        async with self.db.execute('SELECT id FROM jobs ORDER BY n LIMIT 1') as c:\n"
        "            return await c.fetchone()\n"
        "    async def peek(self):\n"
        "        return await self.db.execute_fetchall('SELECT count(*) FROM jobs')\n"
    )
    scope = defined_in(source, "/app/store.py")
    capture = SqliteCapture([CodePath("claim", "store.py", ("take",))])

    async def use() -> None:
        store = scope["Store"]()
        await store.open(aiosqlite, tmp_path / "jobs.db")
        await store.take()
        await store.peek()
        await store.db.close()

    with capture.installed():
        asyncio.run(use())
    # THEN each statement, run on aiosqlite's thread, has the operation and the coroutine
    # that awaited it on the event loop, and the database's schema is kept
    seen = [(s.op, s.caller.qualname if s.caller else None) for s in capture.statements]
    assert seen == [
        (UNATTRIBUTED, "Store.open"),
        ("claim", "Store.take"),
        (UNATTRIBUTED, "Store.peek"),
    ]
    assert capture.schemas == {
        str(tmp_path / "jobs.db"): "CREATE TABLE jobs (id INTEGER PRIMARY KEY, n INT);\n"
    }
    # ... and after the capture, aiosqlite is as it was
    assert aiosqlite.connect.__module__ == "aiosqlite.core"


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
    scope = defined_in(source, "/app/jobs/store.py")
    capture = SqliteCapture()
    with capture.installed():
        store = scope["Store"](sqlite3, tmp_path / "jobs.db")
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


def test_a_transaction_context_manager_s_statements_are_the_with_s_function_s(
    tmp_path: Path,
) -> None:
    # GIVEN a store whose pop opens its transaction through a generator context manager of
    # its file (litequeue's ``with self.transaction(mode="IMMEDIATE")``: BEGIN runs in
    # ``transaction``, entered from contextlib's __enter__), and a program of another file
    # that uses the same context manager around its own statement
    source = (
        "import contextlib\n"
        "class Store:\n"
        "    def __init__(self, sqlite3, path):\n"
        "        self.db = sqlite3.connect(path, isolation_level=None)\n"
        "        self.db.execute('CREATE TABLE jobs (id INTEGER PRIMARY KEY)')\n"
        "    @contextlib.contextmanager\n"
        "    def transaction(self):\n"
        "        self.db.execute('BEGIN IMMEDIATE')\n"
        "        yield\n"
        "        self.db.execute('COMMIT')\n"
        "    def _pop_returning(self):\n"
        "        with self.transaction():\n"
        "            return self.db.execute('SELECT id FROM jobs LIMIT 1').fetchone()\n"
    )
    store_type = defined_in(source, "/site/litestore.py")["Store"]
    app = defined_in(
        "def restock(store):\n"
        "    with store.transaction():\n"
        "        store.db.execute('INSERT INTO jobs DEFAULT VALUES')\n",
        "/app/app.py",
    )
    capture = SqliteCapture()
    with capture.installed():
        store = store_type(sqlite3, tmp_path / "jobs.db")
        store._pop_returning()
        app["restock"](store)
        store.db.close()
    # THEN the transaction's BEGIN and COMMIT are pop's, where pop entered it
    callers = {(s.sql.split()[0], s.caller.qualname) for s in capture.statements if s.caller}
    assert ("BEGIN", "Store._pop_returning") in callers
    assert ("COMMIT", "Store._pop_returning") in callers
    # ... and the context manager's own where a function of another file entered it
    assert ("BEGIN", "Store.transaction") in callers
    assert ("INSERT", "restock") in callers


def test_a_function_s_calls_that_ran_statements_are_counted(tmp_path: Path) -> None:
    # GIVEN a program's function that runs one INSERT per item, called 3 times with 4 items
    program = defined_in(
        "def push_all(db, items):\n"
        "    for item in items:\n"
        "        db.execute('INSERT INTO jobs (state) VALUES (?)', (item,))\n",
        "/home/user/app/store.py",
    )
    capture = SqliteCapture()
    with capture.installed():
        db = sqlite3.connect(tmp_path / "jobs.db", isolation_level=None)
        db.execute("CREATE TABLE jobs (id INTEGER PRIMARY KEY, state TEXT)")
        for _ in range(3):
            program["push_all"](db, ["a", "b", "c", "d"])
        db.close()
    # THEN its 12 statements came from 3 calls
    calls = {caller.function: n for caller, n in capture.caller_calls.items()}
    assert calls["push_all"] == 3
    assert sum(1 for s in capture.statements if s.sql.startswith("INSERT")) == 12
