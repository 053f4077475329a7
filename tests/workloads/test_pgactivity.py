"""The database-side sampler: the queue's statements recognised as the server shows them, and
a lock wait on the real server attributed to the operation that waits and the one that holds.
"""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import orjson
import pytest

from analysis.load.pgserver import load_server_activity, load_server_statements
from runs.files import PG_ACTIVITY, PG_STATEMENTS
from taskqueue import pgadmin, pgsql
from taskqueue.config import PgClaim, QueueConfig
from taskqueue.errors import InvalidArgumentError
from tests.pg import unavailable
from workloads.pgactivity import (
    MAX_KEYS,
    MORE_STATEMENTS,
    ActivityCounts,
    ServerSampler,
    operation_of,
    session_state,
)

SAMPLE_DEADLINE_S = 20.0
"""The longest the test waits for the sampler to see the lock wait (it polls every 10 ms)."""


@pytest.mark.parametrize(("name", "statement"), sorted(pgsql.every_statement().items()))
def test_every_queue_statement_is_recognised_whole_cut_and_normalised(
    name: str, statement: str
) -> None:
    op = pgsql.statement_operation(name)
    # As pg_stat_activity shows it (whole, then cut at a small track_activity_query_size)
    assert pgsql.identify(statement) == (name, op)
    cut = pgsql.identify(statement[:99])
    assert cut is not None
    assert cut[1] == op
    # As pg_stat_statements shows it: every constant a parameter of its own
    numbered = iter(range(100, 200))
    normalised = re.sub(
        r"'[^']*'|(?<![\w.$])\d+(?![\w.])|\bNULL\b|\btrue\b",
        lambda _: f"${next(numbered)}",
        statement,
    )
    assert pgsql.identify(normalised, constants_replaced=True) == (name, op)


def test_other_text_is_no_queue_statement() -> None:
    assert pgsql.identify("SELECT 1") is None
    assert pgsql.identify("") is None
    assert pgsql.identify("INSERT") is None  # too short to be a cut statement
    assert operation_of("LISTEN queueprof_tasks") == ("other", "LISTEN queueprof_tasks")
    assert operation_of(None) == ("other", "")


def test_session_states() -> None:
    assert session_state("active", None) == "running"
    assert session_state("active", "Lock") == "Lock"
    assert session_state("active", "IO") == "IO"
    assert session_state("active", "Something") == "other-wait"
    assert session_state("idle in transaction", "Client") == "Client"
    assert session_state("idle", "Client") == "idle"
    assert session_state(None, None) == "unknown"


def test_a_poll_counts_waits_and_names_the_holders_operation() -> None:
    claim = pgsql.claim_statement(PgClaim.FOR_UPDATE)
    counts = ActivityCounts()
    counts.add(
        [
            (1, "active", "Lock", "transactionid", claim, [2]),
            (2, "idle in transaction", "Client", "ClientRead", claim, None),
            (3, "active", "Lock", "tuple", claim, [1, 9]),
        ]
    )
    rows = {(r["op"], r["state"], r["wait_event"]): r for r in counts.rows()}
    waiting = rows[("claim", "Lock", "transactionid")]
    assert waiting["statement"] == "claim_for-update"
    assert waiting["blocked_by"] == {"claim": 1}
    assert rows[("claim", "Lock", "tuple")]["blocked_by"] == {"claim": 1, "unknown": 1}
    assert rows[("claim", "Client", "ClientRead")]["count"] == 1


def test_endless_distinct_queries_stay_bounded() -> None:
    counts = ActivityCounts()
    for n in range(MAX_KEYS + 500):
        counts.add([(1, "active", None, None, f"SELECT {n} AS a_query_of_its_own", None)])
    assert len(counts.counts) <= MAX_KEYS + 1
    folded = counts.counts[("other", MORE_STATEMENTS, "running", "")]
    assert folded == 500


def test_the_sampling_interval_is_checked() -> None:
    assert QueueConfig.parse("pg_activity_ms=0").pg_activity_ms == 0
    for bad in ("pg_activity_ms=-1", "pg_activity_ms=0.5", "pg_activity_ms=nan"):
        with pytest.raises(InvalidArgumentError, match="pg_activity_ms"):
            QueueConfig.parse(bad)


def test_a_lock_wait_on_the_server_is_sampled_as_the_claims(
    pg_server: str, pg_dsn: str, tmp_path: Path
) -> None:
    # GIVEN a queue database with one task whose row another session holds locked, and the
    # sampler watching that database
    name = pg_dsn.rsplit("/", 1)[1].split("?")[0]
    sampler = ServerSampler(pg_server, [(pg_server, name)], interval_ms=10)
    asyncio.run(_hold_and_claim(pg_dsn, sampler))
    # THEN the claim's lock wait was sampled, held by a session that is not the queue's
    artifacts = sampler.write(tmp_path)
    assert [a.path for a in artifacts] == [PG_ACTIVITY, PG_STATEMENTS]
    activity = load_server_activity(tmp_path / PG_ACTIVITY)
    assert activity.polls > 0
    assert not activity.problems
    assert name in activity.databases
    waits = [s for s in activity.samples if s.op == "claim" and s.state == "Lock"]
    assert waits, activity.samples
    assert waits[0].statement == "claim_for-update"
    holders = {op for s in waits for op, _ in s.blocked_by}
    assert holders == {"other"}, "held by the session that is not the queue's"
    holder = [s for s in activity.samples if s.op == "other" and s.state == "Client"]
    assert holder, "the holding session is idle in its transaction: a client wait"
    # AND the statement counters are there, or the file says why not
    statements = load_server_statements(tmp_path / PG_STATEMENTS)
    assert statements.available or "shared_preload_libraries" in (statements.reason or "")


async def _hold_and_claim(dsn: str, sampler: ServerSampler) -> None:
    import asyncpg

    setup = await asyncpg.connect(dsn)
    holder = await asyncpg.connect(dsn)
    claimer = await asyncpg.connect(dsn)
    try:
        await setup.execute(pgsql.SCHEMA)
        now = time.time()
        await setup.execute(pgsql.insert_statement(False), "noop", "{}", 0, 0.0, 3, now)
        holding = holder.transaction()
        await holding.start()
        await holder.fetch("SELECT id FROM tasks FOR UPDATE")
        sampler.start()
        claim = asyncio.ensure_future(
            claimer.fetch(pgsql.claim_statement(PgClaim.FOR_UPDATE), "w1", now + 30, now + 1, 1, 7)
        )
        deadline = time.monotonic() + SAMPLE_DEADLINE_S
        while not any(k[0] == "claim" and k[2] == "Lock" for k in sampler.activity.counts):
            assert time.monotonic() < deadline, "the sampler never saw the claim waiting"
            await asyncio.sleep(0.02)
        await holding.rollback()
        claimed = await asyncio.wait_for(claim, SAMPLE_DEADLINE_S)
        assert len(claimed) == 1
    finally:
        await asyncio.to_thread(sampler.stop)
        for conn in (setup, holder, claimer):
            await conn.close()


def test_a_throwaway_cluster_gives_statement_counters_of_the_run(tmp_path: Path) -> None:
    # GIVEN a cluster preloading pg_stat_statements and a scratch database on it
    initdb = pgadmin.find_initdb()
    if initdb is None:
        unavailable("no initdb on PATH or in /usr/lib/postgresql/*/bin")
        return
    cluster = pgadmin.ThrowawayCluster(initdb.parent).start()
    try:
        name = pgadmin.scratch_name("pgstat-test")
        dsn = pgadmin.create_database_now(cluster.dsn, name)
        sampler = ServerSampler(cluster.dsn, [(cluster.dsn, name)], interval_ms=10)
        # WHEN the queue's statements run while it samples
        asyncio.run(_statuses(dsn, sampler))
        sampler.write(tmp_path)
    finally:
        cluster.stop()
    # THEN the counters hold exactly the run's calls, recognised as the queue's statements
    statements = load_server_statements(tmp_path / PG_STATEMENTS)
    assert statements.available, statements.reason
    by_name = {s.statement: s for s in statements.statements if s.statement}
    assert by_name["status"].calls == STATUS_CALLS
    assert by_name["status"].op == "status"
    assert by_name["status"].sql == " ".join(pgsql.STATUS.split())
    assert by_name["insert"].calls == 1
    # AND the database made to read them is gone with the cluster's other scratch
    assert not orjson.loads((tmp_path / PG_ACTIVITY).read_bytes())["problems"]


STATUS_CALLS = 25


async def _statuses(dsn: str, sampler: ServerSampler) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(pgsql.SCHEMA)
        sampler.start()
        # The baseline is read before the first poll: wait for a poll so the calls come after.
        deadline = time.monotonic() + SAMPLE_DEADLINE_S
        while sampler.polls == 0:
            assert time.monotonic() < deadline, "the sampler never polled"
            await asyncio.sleep(0.01)
        now = time.time()
        (task_id,) = await conn.fetchrow(
            pgsql.insert_statement(False), "noop", "{}", 0, 0.0, 3, now
        )
        for _ in range(STATUS_CALLS):
            await conn.fetch(pgsql.STATUS, task_id)
    finally:
        await asyncio.to_thread(sampler.stop)
        await conn.close()
