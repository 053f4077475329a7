"""``EXPLAIN QUERY PLAN`` of captured statements against the queue's own schema.

Each statement is planned on an empty in-memory database created with
:data:`taskqueue.sql.SCHEMA`, every parameter bound to NULL (the plan does not depend on the
values). A ``SCAN`` of a table without an index reads every row; a ``USE TEMP B-TREE`` sorts
or groups rows on every call. Both are flagged.

Many statements are planned on one database (:func:`planning_database`, passed as ``db``):
creating the schema for each took 167 s for a capture of 200,000 distinct statements.
``EXPLAIN QUERY PLAN`` never runs the statement, so one cannot change what the next sees.
"""

from __future__ import annotations

import re
import sqlite3
from contextlib import closing, nullcontext
from dataclasses import dataclass

from taskqueue.sql import SCHEMA

_TRANSACTION = re.compile(r"^\s*(BEGIN|COMMIT|END|ROLLBACK|SAVEPOINT|RELEASE)\b", re.IGNORECASE)
_SCAN = re.compile(r"^SCAN (?P<table>\w+)(?P<rest>.*)$")


@dataclass(frozen=True, slots=True)
class QueryPlan:
    """A statement's plan lines and what in them is flagged."""

    lines: tuple[str, ...]
    full_scans: tuple[str, ...] = ()
    """Plan lines that scan a table without an index."""
    temp_btrees: tuple[str, ...] = ()
    """Plan lines that build a temporary B-tree (a sort or grouping per call)."""
    error: str | None = None
    """Why the statement could not be planned (then ``lines`` is empty)."""

    @property
    def flagged(self) -> bool:
        return bool(self.full_scans or self.temp_btrees)


def parameter_names(statement: str) -> tuple[list[str], int]:
    """(named parameters, count of positional ``?``) outside string literals and comments."""
    names: list[str] = []
    positional = 0
    i, n = 0, len(statement)
    while i < n:
        char = statement[i]
        if char in "'\"`[":
            close = "]" if char == "[" else char
            i += 1
            while i < n:
                if statement[i] == close:
                    if close != "]" and i + 1 < n and statement[i + 1] == close:
                        i += 2  # a doubled quote inside a literal
                        continue
                    break
                i += 1
        elif statement.startswith("--", i):
            end = statement.find("\n", i)
            i = n if end < 0 else end
        elif statement.startswith("/*", i):
            end = statement.find("*/", i + 2)
            i = n if end < 0 else end + 1
        elif char == "?":
            j = i + 1
            while j < n and statement[j].isdigit():
                j += 1
            positional = max(positional + 1, int(statement[i + 1 : j] or 0))
            i = j - 1
        elif (
            char in ":@$" and i + 1 < n and (statement[i + 1].isalnum() or statement[i + 1] == "_")
        ):
            j = i + 1
            while j < n and (statement[j].isalnum() or statement[j] == "_"):
                j += 1
            name = statement[i + 1 : j]
            if name not in names:
                names.append(name)
            i = j - 1
        i += 1
    return names, positional


MAX_STATEMENT_CHARS = 100_000
"""Longer statements are not planned: the parameter scan is per character in Python, and no
statement the queue issues comes near this."""


def planning_database(schema: str = SCHEMA) -> sqlite3.Connection:
    """An empty in-memory database created with ``schema``, to plan many statements on."""
    db = sqlite3.connect(":memory:")
    db.executescript(schema)
    return db


def explain(
    statement: str, schema: str = SCHEMA, *, db: sqlite3.Connection | None = None
) -> QueryPlan:
    """The plan of ``statement`` on an empty database created with ``schema`` (or on ``db``,
    one :func:`planning_database` reused for many statements)."""
    if _TRANSACTION.match(statement):
        return QueryPlan(lines=())
    if len(statement) > MAX_STATEMENT_CHARS:
        return QueryPlan((), error=f"not planned: longer than {MAX_STATEMENT_CHARS:,} characters")
    names, positional = parameter_names(statement)
    if names and positional:
        return QueryPlan((), error="mixes named and positional parameters; cannot bind both")
    bindings: dict[str, None] | tuple[None, ...] = (
        dict.fromkeys(names) if names else (None,) * positional
    )
    with closing(planning_database(schema)) if db is None else nullcontext(db) as planner:
        try:
            rows = planner.execute(f"EXPLAIN QUERY PLAN {statement}", bindings).fetchall()
        except sqlite3.Error as error:
            return QueryPlan((), error=f"{type(error).__name__}: {error}")
    lines = tuple(str(row[3]) for row in rows)
    return QueryPlan(
        lines=lines,
        full_scans=tuple(line for line in lines if _is_full_scan(line)),
        temp_btrees=tuple(line for line in lines if "USE TEMP B-TREE" in line),
    )


def _is_full_scan(line: str) -> bool:
    """``SCAN tasks`` (or an alias of it) with no index; not a virtual table or constant row."""
    match = _SCAN.match(line)
    if match is None or match["table"] == "CONSTANT":
        return False
    rest = match["rest"]
    return "USING" not in rest and "VIRTUAL TABLE" not in rest
