"""The PostgreSQL side of a run's end: snapshot the scratch databases' schemas, then drop them.

The counterpart of :mod:`workloads.schema` for ``backend=postgresql://...``. Plans are true
only of the schema they were made on, so before the run's scratch databases are dropped the
runner copies each one's tables, columns and indexes (with ``EXPLAIN`` plans of the queue's
statements in every strategy's variant, made there and then) into ``schema-postgres.json``:
``{"schema_version": 1, "chosen": name, "databases": [{"name", "tasks_rows", "tables":
{table: [[column, type, nullable], ...]}, "indexes": [CREATE INDEX ...], "plans": {statement
name: {"sql", "plan": [line, ...], "seq_scans": [node line, ...], "sorts": [...]}}}]}``.
A plan lists its ``Seq Scan`` nodes on ``tasks`` and its ``Sort`` nodes, the two a queue's
hot statements must not have (the analysis reads them as SQLite's full scans and sorts).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from runs import Artifact, ArtifactKind, write_atomic
from runs.files import SCHEMA_POSTGRES

SCHEMA_POSTGRES_JSON = SCHEMA_POSTGRES
SCHEMA_POSTGRES_VERSION = 1


def finish_scratch_databases(databases: Sequence[tuple[str, str]], run_dir: Path) -> list[Artifact]:
    """Snapshot ``databases`` ((server URL, name) pairs) into ``run_dir``, then drop every
    one of them, also when the snapshot fails (its error is raised after the drops)."""
    if not databases:
        return []
    try:
        return _snapshot(databases, run_dir)
    finally:
        drop_scratch_databases(databases)


def drop_scratch_databases(databases: Sequence[tuple[str, str]]) -> None:
    """Drop every one of ``databases`` ((server URL, name) pairs); one already dropped is
    left as it is (``DROP DATABASE IF EXISTS``)."""
    if not databases:
        return
    from taskqueue import pgadmin  # asyncpg only for a PostgreSQL run

    for server, name in databases:
        pgadmin.drop_database_now(server, name)


def _snapshot(databases: Sequence[tuple[str, str]], run_dir: Path) -> list[Artifact]:
    from taskqueue import pgadmin

    found = [
        snapshot
        for server, name in databases
        if (snapshot := pgadmin.run_now(_read(pgadmin.with_database(server, name), name)))
        is not None
    ]
    if not found:
        return []
    chosen = max(found, key=lambda s: int(s["tasks_rows"]))
    flagged = sorted(
        name for name, plan in chosen["plans"].items() if plan["seq_scans"] or plan["sorts"]
    )
    verdict = f"flagged: {', '.join(flagged)}" if flagged else "no Seq Scan or Sort in them"
    return _write(
        run_dir,
        chosen["name"],
        found,
        f"tables, indexes and EXPLAIN plans of the queue's statements in each of the run's "
        f"{len(found)} PostgreSQL database(s); {chosen['name']}: {verdict}",
    )


def _write(
    run_dir: Path, chosen: str, found: list[dict[str, Any]], description: str
) -> list[Artifact]:
    document = {"schema_version": SCHEMA_POSTGRES_VERSION, "chosen": chosen, "databases": found}
    write_atomic(
        run_dir / SCHEMA_POSTGRES_JSON,
        orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS),
    )
    return [
        Artifact(ArtifactKind.SCHEMA, SCHEMA_POSTGRES_JSON, "json", "any JSON viewer", description)
    ]


async def _read(dsn: str, name: str) -> dict[str, Any] | None:
    import asyncpg

    from taskqueue import pgsql

    try:
        # The queue's own planner settings: the plans its sessions make.
        conn = await asyncpg.connect(dsn, timeout=10, server_settings=pgsql.SESSION_SETTINGS)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
        return None  # never created (an interrupt came first): nothing to snapshot
    try:
        tables, indexes = await _tables_and_indexes(conn)
        rows = 0
        plans: dict[str, Any] = {}
        if "tasks" in tables:
            rows = int(await conn.fetchval("SELECT count(*) FROM tasks"))
            for label, statement in pgsql.every_statement().items():
                plans[label] = await _plan(conn, statement)
    finally:
        await conn.close()
    return {"name": name, "tasks_rows": rows, "tables": tables, "indexes": indexes, "plans": plans}


def snapshot_program_databases(
    targets: Mapping[str, Mapping[str, Any]],
    statements: Mapping[str, Sequence[str]],
    run_dir: Path,
) -> list[Artifact]:
    """A profiled program's PostgreSQL databases, as their statements' plans need them:
    ``targets`` (redacted DSN -> asyncpg connect arguments) and ``statements`` (redacted DSN
    -> the statements captured there, the costliest first; the first database is the chosen
    one, whose plans the analysis reads) into ``schema-postgres.json``, in the runner's
    format, each plan marking a ``Seq Scan`` on any table and any ``Sort``. Statements that
    cannot be prepared (several in one, a transaction's BEGIN) have no plan. Nothing is
    written when no database answers."""
    from taskqueue import pgadmin

    found = [
        snapshot
        for name, sqls in statements.items()
        if name in targets
        and (snapshot := pgadmin.run_now(_read_program(targets[name], name, sqls))) is not None
    ]
    if not found:
        return []
    flagged = sum(1 for plan in found[0]["plans"].values() if plan["seq_scans"] or plan["sorts"])
    return _write(
        run_dir,
        found[0]["name"],
        found,
        f"tables, indexes and EXPLAIN plans of the program's statements on {found[0]['name']} "
        f"({len(found[0]['plans'])} planned, {flagged} with a Seq Scan or Sort), read when the "
        "program had run",
    )


async def _read_program(
    connect: Mapping[str, Any], name: str, statements: Sequence[str]
) -> dict[str, Any] | None:
    import asyncpg

    try:
        conn = await asyncpg.connect(**connect, timeout=10)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
        return None  # gone with the program (a scratch database it dropped): no plans
    try:
        tables, indexes = await _tables_and_indexes(conn)
        plans: dict[str, Any] = {}
        for number, statement in enumerate(statements):
            if not PLANNABLE.match(statement):
                continue
            try:
                plans[f"statement-{number}"] = await _plan(conn, statement, ANY_SEQ_SCAN_NODE)
            except (asyncpg.PostgresError, asyncpg.InterfaceError):
                continue  # several statements in one, or a table the program dropped
    finally:
        await conn.close()
    return {"name": name, "tasks_rows": 0, "tables": tables, "indexes": indexes, "plans": plans}


async def _tables_and_indexes(conn: Any) -> tuple[dict[str, list[list[Any]]], list[str]]:
    tables: dict[str, list[list[Any]]] = {}
    for table, column, kind, nullable in await conn.fetch(
        "SELECT table_name, column_name, data_type, is_nullable "
        "FROM information_schema.columns WHERE table_schema = current_schema() "
        "ORDER BY table_name, ordinal_position"
    ):
        tables.setdefault(table, []).append([column, kind, nullable == "YES"])
    indexes = [
        r[0]
        for r in await conn.fetch(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() "
            "ORDER BY tablename, indexname"
        )
    ]
    return tables, indexes


async def _plan(conn: Any, statement: str, scans: re.Pattern[str] | None = None) -> dict[str, Any]:
    """The generic plan of ``statement`` (the one its prepared form gets once cached, with
    ``$n`` left as parameters): PREPARE, then EXPLAIN EXECUTE with NULLs under
    ``plan_cache_mode = force_generic_plan``, in a rolled-back transaction. Nothing runs."""
    params = max((int(n) for n in re.findall(r"\$(\d+)", statement)), default=0)
    transaction = conn.transaction()
    await transaction.start()
    try:
        await conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        await conn.execute(f"PREPARE queueprof_plan AS {statement}")
        nulls = ", ".join(["NULL"] * params)
        execute = f"EXECUTE queueprof_plan({nulls})" if params else "EXECUTE queueprof_plan"
        lines = [r[0] for r in await conn.fetch(f"EXPLAIN {execute}")]
        await conn.execute("DEALLOCATE queueprof_plan")
    finally:
        await transaction.rollback()
    return {
        "sql": statement,
        "plan": lines,
        "seq_scans": [line.strip() for line in lines if (scans or SEQ_SCAN_NODE).match(line)],
        "sorts": [line.strip() for line in lines if SORT_NODE.match(line)],
    }


# Plan nodes, not their detail lines ("Sort Key: ..."): a node line has its cost.
SEQ_SCAN_NODE = re.compile(r"^\s*(->\s+)?(Parallel )?Seq Scan on tasks\b.*\(cost=")
ANY_SEQ_SCAN_NODE = re.compile(r"^\s*(->\s+)?(Parallel )?Seq Scan on \S+.*\(cost=")
"""A full scan of any table (a program's statements are on tables of its own)."""
PLANNABLE = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|WITH)\b", re.IGNORECASE)
"""Statements EXPLAIN can plan (not BEGIN, SET, CREATE...)."""
SORT_NODE = re.compile(r"^\s*(->\s+)?(Incremental )?Sort\s+\(cost=")
