"""The database side of a PostgreSQL run: wait events sampled, statements counted by the server.

While a run with ``backend=postgresql://...`` works, :class:`ServerSampler` polls
``pg_stat_activity`` every ``pg_activity_ms`` on a connection and a thread of its own (so the
workload's event loop never waits for it) for the sessions of the run's scratch databases,
the worker processes' included. Each session seen is one sample: its state (running on the
server, waiting on a ``Lock``, an ``LWLock``, ``IO``, the ``Client``, or ``idle`` between
statements), its wait event, and the queue statement its query text is
(:func:`taskqueue.pgsql.identify`), hence the operation; a lock wait also names the
operations of the sessions blocking it (``pg_blocking_pids``). Samples are counted, not
kept one by one, so the file stays small whatever the run's length.

When the server preloads ``pg_stat_statements``, its counters are read at the start of the
run (every database's) and at its end (the scratch databases') and diffed (nothing is reset:
other users of the server keep theirs); when it does not, the file says why. Both files are
written by
:meth:`ServerSampler.write`:

``pg-activity.json``: ``{"schema_version": 1, "interval_ms", "polls", "poll_seconds",
"elapsed_s", "databases": [...], "problems": [...], "samples": [{"op", "statement",
"state", "wait_event", "count", "blocked_by": {op: count}}]}``.

``pg-statements.json``: ``{"schema_version": 1, "available": bool, "reason": str | null,
"statements": [{"op", "statement", "sql", "query", "calls", "total_exec_ms", "mean_exec_ms",
"rows", "shared_blks_hit", "shared_blks_read", "shared_blks_dirtied",
"shared_blks_written"}]}``; ``op``, ``statement`` (its name) and ``sql`` (its text as the queue
sends it, the key of its plan in ``schema-postgres.json``) are null for a statement that is
not the queue's; ``query`` is the server's text, constants as ``$n``.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from runs import Artifact, ArtifactKind, write_atomic
from runs.files import PG_ACTIVITY, PG_STATEMENTS

SCHEMA_VERSION = 1
OTHER = "other"
"""The operation of a session whose query is none of the queue's statements."""
QUERY_CHARS = 200
"""How much of a statement that is not the queue's the files keep (they name it, no more)."""
MAX_KEYS = 2_000
"""The most (operation, statement, state, wait event) rows counted; past it, new statements
are counted as :data:`MORE_STATEMENTS` (a program sending endless distinct texts stays
bounded). The queue's statements make a few dozen rows."""
MORE_STATEMENTS = "(more statements)"
STOP_TIMEOUT_S = 15.0
"""How long the run waits for the sampler's last reads before going on without them."""

ACTIVITY = """
SELECT a.pid, a.state, a.wait_event_type, a.wait_event, a.query,
       CASE WHEN a.wait_event_type = 'Lock' THEN pg_blocking_pids(a.pid) END
FROM pg_stat_activity AS a
WHERE a.datname = ANY($1::text[]) AND a.pid <> pg_backend_pid()
  AND a.backend_type = 'client backend'
"""

COUNTERS = """
SELECT s.dbid, s.userid, s.queryid, s.toplevel, s.query, s.calls, s.total_exec_time, s.rows,
       s.shared_blks_hit, s.shared_blks_read, s.shared_blks_dirtied, s.shared_blks_written
FROM {schema}.pg_stat_statements AS s LEFT JOIN pg_database AS d ON d.oid = s.dbid
WHERE $1::text[] IS NULL OR d.datname = ANY($1::text[])
"""
_COUNTED = (
    "calls",
    "total_exec_ms",
    "rows",
    "shared_blks_hit",
    "shared_blks_read",
    "shared_blks_dirtied",
    "shared_blks_written",
)

_WAITS_BY_TYPE = {"Lock", "LWLock", "IO", "Client", "IPC", "Timeout", "BufferPin", "Activity"}


def session_state(state: str | None, wait_event_type: str | None) -> str:
    """What a sampled session is doing: ``running`` (active, on the server's CPU), the wait
    event type it waits on (``Lock``, ``LWLock``, ``IO``, ``Client``...), ``Client`` for a
    transaction left open by its client (the server holds its locks and waits), ``idle``
    between statements."""
    if state == "active":
        if wait_event_type is None:
            return "running"
        return wait_event_type if wait_event_type in _WAITS_BY_TYPE else "other-wait"
    if state is not None and state.startswith("idle in transaction"):
        return "Client"
    if state == "idle":
        return "idle"
    return state or "unknown"


def operation_of(query: str | None) -> tuple[str, str]:
    """(operation, statement name) of a session's query: the queue's statement, else
    (:data:`OTHER`, the start of the text)."""
    from taskqueue import pgsql

    found = pgsql.identify(query or "")
    if found is not None:
        name, op = found
        return op, name
    return OTHER, " ".join((query or "").split())[:QUERY_CHARS]


@dataclass
class ActivityCounts:
    """Samples counted by (operation, statement, state, wait event)."""

    counts: dict[tuple[str, str, str, str], int] = field(default_factory=dict)
    blocked_by: dict[tuple[str, str, str, str], dict[str, int]] = field(default_factory=dict)

    def add(self, rows: Sequence[Sequence[Any]]) -> None:
        """One poll's rows: (pid, state, wait type, wait event, query, blocking pids)."""
        ops = {int(row[0]): operation_of(row[4]) for row in rows}
        for pid, state, wait_type, wait_event, _query, blockers in rows:
            op, statement = ops[int(pid)]
            key = (op, statement, session_state(state, wait_type), wait_event or "")
            if key not in self.counts and len(self.counts) >= MAX_KEYS:
                key = (op, MORE_STATEMENTS, key[2], key[3])
            self.counts[key] = self.counts.get(key, 0) + 1
            for blocker in blockers or ():
                by = self.blocked_by.setdefault(key, {})
                blocker_op = ops.get(int(blocker), ("unknown", ""))[0]
                by[blocker_op] = by.get(blocker_op, 0) + 1

    def rows(self) -> list[dict[str, Any]]:
        """The counts as the file lists them, most samples first."""
        return [
            {
                "op": op,
                "statement": statement,
                "state": state,
                "wait_event": wait_event,
                "count": count,
                "blocked_by": dict(sorted(self.blocked_by.get(key, {}).items())),
            }
            for key, count in sorted(self.counts.items(), key=lambda item: (-item[1], item[0]))
            for op, statement, state, wait_event in (key,)
        ]


@dataclass
class StatementCounters:
    """``pg_stat_statements`` at the run's start (baseline) and end, for its databases."""

    available: bool = False
    reason: str | None = "not read"
    baseline: dict[tuple[Any, ...], dict[str, float]] = field(default_factory=dict)
    end: dict[tuple[Any, ...], tuple[str, dict[str, float]]] = field(default_factory=dict)

    def rows(self) -> list[dict[str, Any]]:
        """The end less the start, summed per statement text over the run's databases."""
        from taskqueue import pgsql

        statements = pgsql.every_statement()
        merged: dict[str, dict[str, float]] = {}
        for key, (query, values) in self.end.items():
            before = self.baseline.get(key, {})
            diff = {name: values[name] - before.get(name, 0.0) for name in _COUNTED}
            if diff["calls"] <= 0:
                continue
            flat = " ".join(query.split())
            into = merged.setdefault(flat, dict.fromkeys(_COUNTED, 0.0))
            for name in _COUNTED:
                into[name] += diff[name]
        out = []
        for query, values in merged.items():
            found = pgsql.identify(query, constants_replaced=True)
            calls = int(values["calls"])
            out.append(
                {
                    "op": found[1] if found else None,
                    "statement": found[0] if found else None,
                    "query": query if found else query[:QUERY_CHARS],
                    "sql": " ".join(statements[found[0]].split()) if found else None,
                    "calls": calls,
                    "total_exec_ms": round(values["total_exec_ms"], 4),
                    "mean_exec_ms": round(values["total_exec_ms"] / calls, 6),
                    **{name: int(values[name]) for name in _COUNTED[2:]},
                }
            )
        out.sort(key=lambda row: -float(row["total_exec_ms"] or 0.0))
        return out


class ServerSampler:
    """Polls ``pg_stat_activity`` for the run's scratch databases on a thread of its own.

    ``databases`` is the run's list of (server URL, name) pairs, which grows as the workload
    opens queues: every poll reads it afresh.
    """

    def __init__(self, server: str, databases: list[tuple[str, str]], interval_ms: float) -> None:
        self.server = server
        self.databases = databases
        self.interval_s = interval_ms / 1e3
        self.interval_ms = interval_ms
        self.activity = ActivityCounts()
        self.counters = StatementCounters()
        self.polls = 0
        self.poll_seconds = 0.0
        self.elapsed_s = 0.0
        self.problems: list[str] = []
        self.seen: set[str] = set()
        self._schema = "public"
        """The schema ``pg_stat_statements`` is installed in."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="queueprof-pg-activity")

    def start(self) -> None:
        """Begin polling (returns at once)."""
        self._thread.start()

    def stop(self) -> None:
        """Stop polling and read ``pg_stat_statements`` a last time (the databases must still
        exist); waits at most :data:`STOP_TIMEOUT_S`."""
        self._stop.set()
        self._thread.join(STOP_TIMEOUT_S)
        if self._thread.is_alive():
            self.problems.append(
                f"the sampler did not stop within {STOP_TIMEOUT_S:.0f} s; its counts are partial"
            )

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except Exception as error:  # noqa: BLE001 - the run goes on; the file says what failed
            self.problems.append(f"sampling stopped: {type(error).__name__}: {error}")
            if not self.counters.available:
                self.counters.reason = f"the sampler failed: {type(error).__name__}: {error}"

    async def _main(self) -> None:
        import asyncpg

        from taskqueue import redact_dsn

        started = time.perf_counter()
        try:
            conn = await asyncpg.connect(self.server, timeout=10)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as error:
            self.problems.append(
                f"cannot connect to {redact_dsn(self.server)} to sample it ({error})"
            )
            self.counters.reason = "the sampler could not connect to the server"
            return
        stats: Any = None
        own_database: str | None = None
        try:
            stats, own_database = await self._open_counters(conn)
            if stats is not None:
                # Every database's counters, those of dropped ones included: the run's
                # databases do not exist yet, but one may get the number of a dropped one.
                self.counters.baseline = {
                    key: values
                    for key, (_q, values) in (await self._counters(stats, every=True)).items()
                }
            while not self._stop.is_set():
                names = sorted({name for _server, name in list(self.databases)})
                tick = time.perf_counter()
                if names:
                    rows = await conn.fetch(ACTIVITY, names)
                    self.activity.add([tuple(row) for row in rows])
                    self.polls += 1
                    self.seen.update(names)
                self.poll_seconds += time.perf_counter() - tick
                await asyncio.sleep(max(self.interval_s - (time.perf_counter() - tick), 0.0))
            if stats is not None:
                self.counters.end = await self._counters(stats)
        finally:
            self.elapsed_s = time.perf_counter() - started
            if stats is not None and stats is not conn:
                await stats.close()
            await conn.close()
            if own_database is not None:
                from taskqueue import pgadmin

                await pgadmin.drop_database(self.server, own_database)

    async def _open_counters(self, conn: Any) -> tuple[Any, str | None]:
        """A connection on which ``pg_stat_statements`` can be read, and the scratch database
        made for it (dropped at the end), or (None, None) with the reason recorded."""
        import asyncpg

        from taskqueue import pgadmin

        preload = str(await conn.fetchval("SELECT current_setting('shared_preload_libraries')"))
        if "pg_stat_statements" not in [part.strip() for part in preload.split(",")]:
            self.counters.reason = (
                f"the server does not preload pg_stat_statements (shared_preload_libraries = "
                f"{preload!r}); add it there and restart the server, or run on a throwaway "
                "cluster (taskqueue.pgadmin.ThrowawayCluster preloads it)"
            )
            return None, None
        schema = await conn.fetchval(
            "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
            "WHERE e.extname = 'pg_stat_statements'"
        )
        if schema is not None:
            self.counters.available, self.counters.reason = True, None
            self._schema = str(schema)
            return conn, None
        # The extension is not installed where the URL points: install it in a database of
        # our own rather than in the user's.
        name = pgadmin.scratch_name("pgstat")
        try:
            dsn = await pgadmin.create_database(self.server, name)
        except Exception as error:  # noqa: BLE001 - QueueOpenError says why; recorded
            self.counters.reason = f"pg_stat_statements cannot be installed: {error}"
            return None, None
        try:
            stats = await asyncpg.connect(dsn, timeout=10)
            await stats.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as error:
            await pgadmin.drop_database(self.server, name)
            self.counters.reason = f"CREATE EXTENSION pg_stat_statements failed ({error})"
            return None, None
        self.counters.available, self.counters.reason = True, None
        self._schema = "public"
        return stats, name

    async def _counters(
        self, stats: Any, *, every: bool = False
    ) -> dict[tuple[Any, ...], tuple[str, dict[str, float]]]:
        """The counters of the run's databases (``every``: of all databases)."""
        names = None if every else sorted({name for _server, name in list(self.databases)})
        rows = await stats.fetch(COUNTERS.format(schema=f'"{self._schema}"'), names)
        return {
            (row[0], row[1], row[2], row[3]): (
                str(row[4]),
                dict(zip(_COUNTED, (float(v) for v in row[5:12]), strict=True)),
            )
            for row in rows
        }

    def write(self, run_dir: Path) -> list[Artifact]:
        """``pg-activity.json`` and ``pg-statements.json`` into ``run_dir``."""
        samples = self.activity.rows()
        sessions = sum(int(row["count"]) for row in samples)
        listed = self.counters.rows() if self.counters.available else []
        activity = {
            "schema_version": SCHEMA_VERSION,
            "interval_ms": self.interval_ms,
            "polls": self.polls,
            "poll_seconds": round(self.poll_seconds, 6),
            "elapsed_s": round(self.elapsed_s, 6),
            "databases": sorted(self.seen),
            "problems": list(self.problems),
            "samples": samples,
        }
        statements = {
            "schema_version": SCHEMA_VERSION,
            "available": self.counters.available,
            "reason": self.counters.reason,
            "statements": listed,
        }
        option = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS
        write_atomic(run_dir / PG_ACTIVITY, orjson.dumps(activity, option=option))
        write_atomic(run_dir / PG_STATEMENTS, orjson.dumps(statements, option=option))
        return [
            Artifact(
                ArtifactKind.SAMPLES,
                PG_ACTIVITY,
                "json",
                "any JSON viewer; `queueprof analyze` shows it by operation",
                f"pg_stat_activity every {self.interval_ms:g} ms: {self.polls:,} polls, "
                f"{sessions:,} session samples of the run's databases",
            ),
            Artifact(
                ArtifactKind.SQL,
                PG_STATEMENTS,
                "json",
                "any JSON viewer; `queueprof analyze` ranks it by statement time",
                f"pg_stat_statements diffed over the run: {len(listed)} statements"
                if self.counters.available
                else f"pg_stat_statements not read: {self.counters.reason}",
            ),
        ]


@contextmanager
def sampling(
    server: str, databases: list[tuple[str, str]], interval_ms: float
) -> Iterator[ServerSampler | None]:
    """A started :class:`ServerSampler` for the duration (None for ``interval_ms`` 0 or a
    SQLite run, ``server == "sqlite"``); stopped on the way out, also on an error."""
    if server == "sqlite" or interval_ms <= 0:
        yield None
        return
    sampler = ServerSampler(server, databases, interval_ms)
    sampler.start()
    try:
        yield sampler
    finally:
        sampler.stop()
