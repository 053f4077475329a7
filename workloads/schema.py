"""The schema a run's queue databases ended with, snapshotted into its run folder.

Query plans are only true of the schema they were made on: a run whose claim index was
dropped, analysed by a checkout that has it, would show the index it never had. So at the
end of every run, with every queue closed and before the scratch folder goes, the runner
copies each database's schema (``sqlite_master``) and planner statistics (``sqlite_stat1``)
into the run folder:

- ``schema.sql``: the schema of the run's main database (the one whose ``tasks`` table has
  the most rows) as a script that ``executescript`` runs on an empty database, in the form
  of sqlite3's ``.fullschema``: the CREATE statements, then, only if the run had
  statistics, ``ANALYZE sqlite_schema;`` and one ``INSERT INTO sqlite_stat1`` per row. No
  ANALYZE is run here: the plans must be the ones the run's own statements got.
- ``schema.json``: every database of the run, ``{"schema_version": 1, "chosen": name,
  "databases": [{"name", "tasks_rows", "sql": [...], "stat1": [[tbl, idx, stat], ...]}]}``.
"""

from __future__ import annotations

import contextlib
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import orjson

from runs import Artifact, ArtifactKind, write_atomic
from runs.files import SCHEMA_JSON, SCHEMA_SQL

SCHEMA_SNAPSHOT_VERSION = 1


@dataclass(frozen=True, slots=True)
class DatabaseSchema:
    """One database's schema as the run left it."""

    name: str
    """The file's name in the run's scratch folder (e.g. ``dbops-single-0.db``)."""
    statements: tuple[str, ...]
    """``sqlite_master.sql`` of every table, index, view and trigger, in creation order."""
    stat1: tuple[tuple[str, str | None, str], ...]
    """``sqlite_stat1`` rows (table, index, stat); empty when the run never ran ANALYZE."""
    tasks_rows: int
    """Rows in its ``tasks`` table (0 when it has none): which database was the main one."""

    def script(self) -> str:
        """The schema as one script, in the form of sqlite3's ``.fullschema``."""
        lines = [f"{statement};" for statement in self.statements]
        if self.stat1:
            lines.append("ANALYZE sqlite_schema;")
            lines.extend(
                "INSERT INTO sqlite_stat1 VALUES("
                f"{_literal(table)},{_literal(index)},{_literal(stat)});"
                for table, index, stat in self.stat1
            )
        return "\n".join(lines) + "\n"


def read_schema(path: Path) -> DatabaseSchema | None:
    """``path``'s schema, or None when it is not a readable SQLite database (another
    program's file in the scratch folder is no reason to fail the run)."""
    try:
        with contextlib.closing(sqlite3.connect(path)) as db:
            statements = tuple(
                row[0]
                for row in db.execute(
                    "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL "
                    "AND name NOT LIKE 'sqlite_%' ORDER BY rowid"
                )
            )
            names = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
            stat1: tuple[tuple[str, str | None, str], ...] = ()
            if "sqlite_stat1" in names:
                stat1 = tuple(
                    (str(t), None if i is None else str(i), str(s))
                    for t, i, s in db.execute("SELECT tbl, idx, stat FROM sqlite_stat1")
                )
            rows = 0
            if "tasks" in names:
                rows = int(db.execute("SELECT count(*) FROM tasks").fetchone()[0])
    except sqlite3.DatabaseError:
        return None
    return DatabaseSchema(path.name, statements, stat1, rows)


def snapshot_schemas(scratch: Path, run_dir: Path) -> list[Artifact]:
    """Write ``schema.sql`` and ``schema.json`` for every ``*.db`` under ``scratch``;
    returns their artifacts (none when the run made no database)."""
    schemas = [
        schema
        for path in sorted(scratch.rglob("*.db"))
        if path.is_file() and (schema := read_schema(path)) is not None
    ]
    if not schemas:
        return []
    chosen = max(schemas, key=lambda s: (s.tasks_rows, len(s.statements)))
    write_atomic(run_dir / SCHEMA_SQL, chosen.script().encode())
    document = {
        "schema_version": SCHEMA_SNAPSHOT_VERSION,
        "chosen": chosen.name,
        "databases": [
            {
                "name": s.name,
                "tasks_rows": s.tasks_rows,
                "sql": list(s.statements),
                "stat1": [list(row) for row in s.stat1],
            }
            for s in schemas
        ],
    }
    write_atomic(
        run_dir / SCHEMA_JSON,
        orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS),
    )
    stats = "with" if chosen.stat1 else "no"
    return [
        Artifact(
            ArtifactKind.SCHEMA,
            SCHEMA_SQL,
            "sql",
            f"sqlite3 :memory: < {SCHEMA_SQL}  (then EXPLAIN QUERY PLAN against it)",
            f"the schema {chosen.name} ended the run with ({stats} sqlite_stat1): the one "
            "query plans are made against",
        ),
        Artifact(
            ArtifactKind.SCHEMA,
            SCHEMA_JSON,
            "json",
            "any JSON viewer",
            f"schema and sqlite_stat1 of each of the run's {len(schemas)} database(s)",
        ),
    ]


def _literal(value: str | None) -> str:
    if value is None:
        return "NULL"
    return "'" + value.replace("'", "''") + "'"
