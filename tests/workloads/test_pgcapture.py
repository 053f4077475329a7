"""SQL capture of a program's asyncpg statements: timed with the program's function that
awaited them, their rows and the (redacted) database, on plain and pool connections;
taskqueue's own PostgreSQL statements left to taskqueue."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import orjson

from tests.workloads.test_sqlcapture import defined_in
from workloads.capture import RunCapture
from workloads.pgcapture import asyncpg_timed
from workloads.sqlcapture import UNATTRIBUTED, SqliteCapture

PROGRAM = """
import asyncpg

class Store:
    async def open(self, dsn):
        self.con = await asyncpg.connect(dsn)
        self.pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
        await self.con.execute("CREATE TABLE jobs (id serial PRIMARY KEY, state text)")

    async def push_all(self, states):
        await self.con.executemany("INSERT INTO jobs (state) VALUES ($1)", [(s,) for s in states])

    async def _one(self, job_id):
        return await self.con.fetchval("SELECT state FROM jobs WHERE id = $1", job_id)

    async def states(self):
        ids = await self.con.fetch("SELECT id FROM jobs ORDER BY id")
        return [await self._one(row["id"]) for row in ids]

    async def done(self):
        return await self.con.execute("UPDATE jobs SET state = 'done'")

    async def first(self):
        return await self.pool.fetchrow("SELECT id FROM jobs ORDER BY id LIMIT 1")

    async def leased(self):
        async with self.pool.acquire() as con:
            return await con.fetch("SELECT id FROM jobs WHERE state = $1", "done")

    async def close(self):
        await self.pool.close()
        await self.con.close()
"""

QUEUE_CODE = """
async def peek(con):
    return await con.fetchval("SELECT count(*) FROM jobs")
"""


def test_a_program_s_asyncpg_statements_are_named_by_the_function_that_awaited_them(
    pg_dsn: str, tmp_path: Path
) -> None:
    store_module = defined_in(PROGRAM, "/home/user/app/store.py")
    # taskqueue's own code, as its PostgreSQL store would call asyncpg
    queue_code = defined_in(QUEUE_CODE, "/site-packages/taskqueue/pgstore.py")
    capture = SqliteCapture()

    async def program() -> list[Any]:
        store = store_module["Store"]()
        await store.open(pg_dsn)
        await store.push_all(["ready"] * 3)
        states = await store.states()
        await store.done()
        first = await store.first()
        leased = await store.leased()
        await queue_code["peek"](store.con)
        await store.close()
        return [states, first["id"], len(leased)]

    # GIVEN a program's store on asyncpg (a connection and a pool), run under the capture
    with asyncpg_timed(capture):
        result = asyncio.run(program())
    # THEN the program ran as it would without it
    assert result == [["ready"] * 3, 1, 3]
    # ... and each statement is recorded with the function of the program that awaited it
    # (a private helper's under its public caller; a pool's under the pool's caller)
    by_sql = {s.sql: s for s in capture.statements}
    callers = Counter(
        (s.sql.split()[0], s.caller and s.caller.function, s.rows) for s in capture.statements
    )
    assert callers == {
        ("CREATE", "open", 0): 1,
        ("INSERT", "push_all", 3): 1,
        ("SELECT", "states", 3): 1,
        ("SELECT", "states", 1): 3,  # one row per statement, in a comprehension of states
        ("UPDATE", "done", 3): 1,
        ("SELECT", "first", 1): 1,
        ("SELECT", "leased", 3): 1,
        # the pool's reset of a released connection, in a task of asyncpg's own
        ("SELECT", None, 0): 2,
    }
    # ... with each function's calls that ran SQL (states: one call, four statements)
    calls = {caller.function: n for caller, n in capture.caller_calls.items()}
    assert calls["states"] == 1
    assert calls["push_all"] == 1
    one = by_sql["SELECT state FROM jobs WHERE id = $1"]
    assert one.caller is not None
    assert one.caller.qualname == "Store.states"
    assert one.op == UNATTRIBUTED
    assert [s.sql for s in capture.statements].count(one.sql) == 3
    assert all(s.duration_ns > 0 for s in capture.statements)
    # ... on the program's database, named without its password
    assert {s.database.rsplit("/", 1)[-1] for s in capture.statements} == {
        pg_dsn.rsplit("/", 1)[-1]
    }
    assert all(s.database.startswith("postgresql://") for s in capture.statements)
    # ... taskqueue's own statement is not among them (taskqueue reports it itself)
    assert not any("count(*)" in s.sql for s in capture.statements)
    # ... and they reach sql-statements.json with their rows, database and caller
    RunCapture.add_sqlite(writer := RunCapture(), capture)
    writer.write(tmp_path)
    written = orjson.loads((tmp_path / "sql-statements.json").read_bytes())["statements"]
    pushed = next(s for s in written if s["sql"].startswith("INSERT"))
    assert pushed["rows"] == 3
    assert pushed["caller_calls"] == 1
    assert pushed["caller"]["function"] == "push_all"
    assert pushed["database"].startswith("postgresql://")
    # ... and after the capture, asyncpg's methods are its own again
    from asyncpg.connection import Connection

    assert Connection.fetch.__module__.startswith("asyncpg")


def test_a_password_in_the_connection_is_redacted() -> None:
    from workloads.pgcapture import connection_dsn

    class Params:
        user, password, database = "app", "s3cret", "jobs"

    class Conn:
        _params = Params()
        _addr = ("db.example.org", 5432)

    assert connection_dsn(Conn()) == "postgresql://app:***@db.example.org:5432/jobs"


def test_the_plans_of_a_program_s_statements_are_read_from_its_database(
    pg_dsn: str, tmp_path: Path
) -> None:
    from workloads.pgcapture import snapshot_plans

    capture = SqliteCapture()

    async def program() -> None:
        import asyncpg

        con = await asyncpg.connect(pg_dsn)
        await con.execute("CREATE TABLE jobs (id bigserial PRIMARY KEY, state text, prio int)")
        await con.executemany(
            "INSERT INTO jobs (state, prio) VALUES ($1, $2)", [("ready", i % 5) for i in range(50)]
        )
        await con.fetchrow(
            "SELECT id FROM jobs WHERE state = 'ready' ORDER BY prio DESC, id LIMIT 1 "
            "FOR UPDATE SKIP LOCKED"
        )
        await con.fetchval("SELECT state FROM jobs WHERE id = $1", 1)
        await con.close()

    # GIVEN a program whose claim has no index to use, run under the capture
    with asyncpg_timed(capture) as targets:
        asyncio.run(program())
    # WHEN the plans are read once it has run
    (artifact,) = snapshot_plans(capture, targets, tmp_path)
    # THEN schema-postgres.json holds its statements' plans on its database, as the
    # analysis reads them: the claim scans and sorts, the read by id does not
    from analysis.pgplan import load_pg_plans

    plans = load_pg_plans(tmp_path)
    assert plans.problem is None
    claim = next(plan for sql, plan in plans.plans.items() if "SKIP LOCKED" in sql)
    assert claim.full_scans
    assert claim.full_scans[0].startswith("->  Seq Scan on jobs")
    assert claim.temp_btrees
    by_id = plans.plans["SELECT state FROM jobs WHERE id = $1"]
    assert not by_id.flagged
    assert artifact.path == "schema-postgres.json"
    document = orjson.loads((tmp_path / "schema-postgres.json").read_bytes())
    assert document["chosen"].startswith("postgresql://")
    assert "jobs" in document["databases"][0]["tables"]
