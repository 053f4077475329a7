"""``EXPLAIN QUERY PLAN`` of captured statements against the schema the run used.

Each statement is planned on an in-memory database created from the run's schema snapshot
(``schema.sql`` in the run folder: its tables, indexes and ``sqlite_stat1`` rows, as sqlite3's
``.fullschema`` prints them) or, for runs without one, from :data:`taskqueue.sql.SCHEMA` of the
checkout that analyses it; every parameter is bound to NULL (the plan does not depend on the
values). A ``SCAN`` of a table without an index reads every row; a ``USE TEMP B-TREE`` sorts
or groups rows on every call. Both are flagged, and :func:`suggest_index` looks for the index
that removes them by re-planning the statement with each candidate on the same schema (what
SQLite's ``.expert`` does).
"""

from __future__ import annotations

import dataclasses
import re
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from itertools import permutations
from pathlib import Path

from runs.errors import UnsafePathError
from runs.files import SCHEMA_SQL, read_regular_file
from taskqueue.sql import SCHEMA

from .load.runfolder import optional_run_file

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
    range_aggregates: tuple[str, ...] = ()
    """Plan lines whose every row feeds an aggregate (``count(*)``, ``sum``, ``GROUP BY``
    on an index): a SEARCH that reads its whole range on every call to return one row, so
    its cost grows with the rows in the range (the backlog, for ``state = 'pending'``)."""
    error: str | None = None
    """Why the statement could not be planned (then ``lines`` is empty)."""

    @property
    def flagged(self) -> bool:
        return bool(self.full_scans or self.temp_btrees or self.range_aggregates)


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


SCHEMA_SNAPSHOT = SCHEMA_SQL
PLAN_FILE_FIX = (
    "replace it with the file the run wrote, or delete it to plan against the checkout's schema"
)
MAX_SCHEMA_BYTES = 4 << 20
"""A larger ``schema.sql`` is not the queue's (its schema is a few kB) and is not loaded."""
"""The run folder's schema snapshot: the run's own tables, indexes and ``sqlite_stat1``."""


@dataclass(frozen=True, slots=True)
class Schema:
    """The schema statements are planned against, and where it came from."""

    script: str
    source: str
    """``schema.sql`` (the run's snapshot) or the checkout's ``taskqueue.sql.SCHEMA``."""
    snapshot: bool
    """True when it is the run's own snapshot; False for the fallback (a caveat to state)."""
    problem: str | None = None
    """Why the run's snapshot was not used although the folder has one (damaged, too big)."""


CHECKOUT_SCHEMA = Schema(SCHEMA, "taskqueue.sql.SCHEMA of the analysing checkout", False)


def load_schema(folder: Path) -> Schema:
    """The run folder's ``schema.sql``, or :data:`CHECKOUT_SCHEMA` when the run has none
    (or it does not load: the plan would be of a schema nobody ran).

    A ``schema.sql`` that is not a regular file inside the run folder (a link out of it, a
    folder, a FIFO) is an :class:`ArtifactError`: it is never read.
    """
    path = optional_run_file(folder, SCHEMA_SNAPSHOT, PLAN_FILE_FIX)
    if path is None:
        return CHECKOUT_SCHEMA
    try:
        data = read_regular_file(path, MAX_SCHEMA_BYTES)
        if len(data) > MAX_SCHEMA_BYTES:
            return _unused(f"it is over {MAX_SCHEMA_BYTES >> 20} MiB")
        script = data.decode("utf-8")
        _database(script).close()
    except UnicodeDecodeError:
        return _unused("it is not UTF-8 text")
    except sqlite3.Error as error:
        return _unused(f"SQLite cannot create it ({error})")
    except (OSError, UnsafePathError) as error:
        return _unused(f"it cannot be read ({error})")
    return Schema(script, SCHEMA_SNAPSHOT, True)


def _unused(why: str) -> Schema:
    return dataclasses.replace(
        CHECKOUT_SCHEMA,
        problem=(
            f"{SCHEMA_SNAPSHOT} in the run folder was not used: {why}; query plans are of the "
            f"analysing checkout's schema, which may not be the run's ({PLAN_FILE_FIX})"
        ),
    )


def _database(script: str) -> sqlite3.Connection:
    db = sqlite3.connect(":memory:")
    db.executescript(script)
    return db


MAX_STATEMENT_CHARS = 100_000
"""Longer statements are not planned: the parameter scan is per character in Python, and no
statement the queue issues comes near this."""


def planning_database(schema: str = SCHEMA) -> sqlite3.Connection:
    """An empty in-memory database created with ``schema``, to plan many statements on.

    Creating the schema for each statement took 167 s for a capture of 200,000 distinct
    statements; ``EXPLAIN QUERY PLAN`` never runs a statement, so one cannot change what the
    next one sees.
    """
    return _database(schema)


def explain(
    statement: str, schema: str = SCHEMA, *, db: sqlite3.Connection | None = None
) -> QueryPlan:
    """The plan of ``statement`` on an empty database created with ``schema`` (a script), or
    on ``db``: one :func:`planning_database` reused for many statements."""
    if db is not None:
        return _explain(db, statement)
    with closing(_database(schema)) as fresh:
        return _explain(fresh, statement)


def _explain(db: sqlite3.Connection, statement: str) -> QueryPlan:
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
    try:
        rows = db.execute(f"EXPLAIN QUERY PLAN {statement}", bindings).fetchall()
    except sqlite3.Error as error:
        return QueryPlan((), error=f"{type(error).__name__}: {error}")
    lines = tuple(str(row[3]) for row in rows)
    full_scans = tuple(line for line in lines if _is_full_scan(db, line))
    try:
        program = db.execute(f"EXPLAIN {statement}", bindings).fetchall()
    except sqlite3.Error as error:
        return QueryPlan(lines, error=f"{type(error).__name__}: {error}")
    return QueryPlan(
        lines=lines,
        full_scans=full_scans,
        temp_btrees=tuple(line for line in lines if "USE TEMP B-TREE" in line),
        range_aggregates=tuple(
            line
            for line in lines
            if _ACCESS.match(line) and line not in full_scans and _aggregates_every_row(program)
        ),
    )


_ACCESS = re.compile(r"^(SEARCH|SCAN) (?!CONSTANT ROW)\w+")
"""A plan line that reads a table or an index."""
_AGGREGATE_STEPS = frozenset({"AggStep", "AggStep1"})
_LOOP_ENDS = frozenset({"Next", "Prev"})


def _aggregates_every_row(program: list[tuple[object, ...]]) -> bool:
    """Whether a statement's bytecode (``EXPLAIN`` rows: addr, opcode, p1, p2, ...) feeds
    every row of a loop to an aggregate: an ``AggStep`` inside a ``Next``/``Prev`` loop that
    no ``Goto`` leaves after the first row (what SQLite's min/max optimisation does, reading
    one row), or a ``Count`` of a whole B-tree."""
    code = [(int(str(row[0])), str(row[1]), int(str(row[3]))) for row in program]
    if any(opcode == "Count" for _, opcode, _ in code):
        return True
    for step, opcode, _ in code:
        if opcode not in _AGGREGATE_STEPS:
            continue
        for end, loop, start in code:
            if loop not in _LOOP_ENDS or end <= step or start > step:
                continue
            if not any(op == "Goto" and target > end for at, op, target in code if step < at < end):
                return True
    return False


_THROUGH_INDEX = re.compile(r"^ USING (?:COVERING )?INDEX (?P<index>\w+)")


def _is_full_scan(db: sqlite3.Connection, line: str) -> bool:
    """``SCAN tasks`` (or an alias of it) with no index, or through an index that holds every
    row of the table: walking a whole index reads every row as surely as walking the table
    (an index in the wrong column order, taken for its ORDER BY, skips every row that fails
    the WHERE). A partial index holds only the rows of its own WHERE, so walking it reads no
    others; a virtual table or a constant row is no table."""
    match = _SCAN.match(line)
    if match is None or match["table"] == "CONSTANT":
        return False
    rest = match["rest"]
    if "VIRTUAL TABLE" in rest:
        return False
    if "USING" not in rest:
        return True
    through = _THROUGH_INDEX.match(rest)
    return through is not None and not _is_partial(db, through["index"])


def _is_partial(db: sqlite3.Connection, index: str) -> bool:
    """Whether ``index`` has a WHERE clause (an unknown name counts as partial: not flagged)."""
    found = db.execute(
        "SELECT tbl_name FROM sqlite_master WHERE type = 'index' AND name = ?", (index,)
    ).fetchone()
    if found is None:
        return True
    listed = db.execute("SELECT name, partial FROM pragma_index_list(?)", (found[0],))
    return any(name == index and partial for name, partial in listed)


@dataclass(frozen=True, slots=True)
class IndexSuggestion:
    """An index that removes a statement's scan or sort, proved by re-planning with it."""

    table: str
    columns: tuple[str, ...]
    plan: QueryPlan
    """The statement's plan on the same schema with the index added."""

    @property
    def name(self) -> str:
        return f"{self.table}_" + "_".join(c.split()[0] for c in self.columns)

    @property
    def ddl(self) -> str:
        return f"CREATE INDEX {self.name} ON {self.table} ({', '.join(self.columns)})"


MAX_INDEX_COLUMNS = 4


def suggest_index(statement: str, plan: QueryPlan, schema: str = SCHEMA) -> IndexSuggestion | None:
    """The smallest index on a scanned (or sorted) table after which the statement's plan has
    fewer flagged lines; None when no candidate helps.

    Candidates are built from the table's columns the statement names, equality ones first
    (``col = ...``, ``col IN``, ``col IS``), then those of its ORDER BY/GROUP BY, then ranges;
    each is proved by planning the statement again with the index created.
    """
    flagged = len(plan.full_scans) + len(plan.temp_btrees)
    if not flagged:
        return None  # an aggregate over a range reads it whatever the index
    tables = [m["table"] for m in (_SCAN.match(line) for line in plan.full_scans) if m]
    with closing(_database(schema)) as db:
        if not tables:
            tables = [
                str(row[0])
                for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
                if re.search(rf"\b{re.escape(str(row[0]))}\b", statement)
                and not str(row[0]).startswith("sqlite_")
            ]
        best: IndexSuggestion | None = None
        best_key: tuple[int, int, int] | None = None
        for table in tables:
            for columns in _candidates(db, table, statement):
                ddl = f"CREATE INDEX qp_candidate ON {table} ({', '.join(columns)})"
                try:
                    db.execute(ddl)
                except sqlite3.Error:
                    continue
                try:
                    replanned = _explain(db, statement)
                finally:
                    db.execute("DROP INDEX qp_candidate")
                left = len(replanned.full_scans) + len(replanned.temp_btrees)
                if replanned.error is not None or left >= flagged:
                    continue
                # A SCAN through an index still reads every row: a SEARCH is what removes it.
                scans = sum(1 for line in replanned.lines if line.startswith(f"SCAN {table}"))
                key = (left, scans, len(columns))
                if best_key is None or key < best_key:
                    best_key = key
                    best = IndexSuggestion(table, columns, replanned)
                    named = tuple(
                        line.replace("qp_candidate", best.name) for line in replanned.lines
                    )
                    best = dataclasses.replace(
                        best, plan=dataclasses.replace(replanned, lines=named)
                    )
    return best


_EQUALITY = r"\s*(=|==|\bIN\b|\bIS\b)"
_RANGE = r"\s*(<|>|<=|>=|\bBETWEEN\b)"


_SET_CLAUSE = re.compile(r"\bSET\b.*?\bWHERE\b", re.IGNORECASE | re.DOTALL)
_RETURNING = re.compile(r"\bRETURNING\b.*$", re.IGNORECASE | re.DOTALL)


def _candidates(db: sqlite3.Connection, table: str, statement: str) -> list[tuple[str, ...]]:
    # What an UPDATE sets and returns is no search condition: only its WHERE (and
    # subqueries') columns can be an index's.
    statement = _RETURNING.sub("", _SET_CLAUSE.sub("WHERE", statement))
    info = list(db.execute(f"PRAGMA table_info({table})"))
    # The INTEGER PRIMARY KEY is the rowid: already the table's own order.
    rowid = {str(r[1]) for r in info if r[5] and str(r[2]).upper() == "INTEGER"}
    columns = [str(row[1]) for row in info]
    named = [c for c in columns if re.search(rf"\b{re.escape(c)}\b", statement, re.IGNORECASE)]
    equality = [
        c
        for c in named
        if c not in rowid and re.search(rf"\b{re.escape(c)}{_EQUALITY}", statement, re.IGNORECASE)
    ]
    ranged = [
        c
        for c in named
        if c not in equality
        and c not in rowid
        and re.search(rf"\b{re.escape(c)}{_RANGE}", statement, re.IGNORECASE)
    ]
    order: list[str] = []
    clause = re.search(
        r"\b(ORDER|GROUP)\s+BY\b(?P<rest>.*?)(\bLIMIT\b|\bHAVING\b|\)|$)",
        statement,
        re.IGNORECASE | re.DOTALL,
    )
    if clause is not None:
        for term in clause["rest"].split(","):
            words = term.split()
            if words and words[0] in named and words[0] not in equality:
                order.append(words[0] + (" DESC" if "DESC" in (w.upper() for w in words) else ""))
    found: list[tuple[str, ...]] = []

    def add(candidate: list[str]) -> None:
        unique = tuple(dict.fromkeys(candidate))[:MAX_INDEX_COLUMNS]
        if unique and unique not in found:
            found.append(unique)

    add(equality + order)
    add(equality + [c for c in ranged if c not in order])
    for eq in permutations(equality, len(equality)) if len(equality) <= 3 else [tuple(equality)]:
        add(list(eq) + order)
        add(list(eq))
    add(order)
    for column in named:
        if column not in rowid:
            add([column])
    return found
