"""SQL hotspots: every distinct captured statement, its cost, its share and its plan."""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Mapping, Sequence
from contextlib import ExitStack, closing
from dataclasses import dataclass
from pathlib import Path

from formats.timeline import statement_label
from taskqueue.config import is_dsn

from .load.capture import SqlStatement
from .pgplan import SOURCE as PG_SOURCE
from .sqlplan import (
    CHECKOUT_SCHEMA,
    IndexSuggestion,
    QueryPlan,
    Schema,
    explain,
    planning_database,
    suggest_index,
)

MAX_PLANNED = 2_000
"""Distinct statements planned, the costliest first; the queue issues a few dozen. A capture of
200,000 distinct statements (a hostile or runaway one) took minutes to plan; the rest are
listed unplanned, which the report says."""

LABEL_CHARS = 72
"""A statement's label is its text up to here: long enough that two statements of one
operation (one per column, say) read differently, short enough for a table cell."""


def statement_text(sql: str, limit: int = LABEL_CHARS) -> str:
    """``sql`` on one line, clipped to ``limit`` characters (``...`` when clipped)."""
    text = " ".join(sql.split())
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


@dataclass(frozen=True, slots=True)
class SqlHotspot:
    """One captured statement with its share of its operation's time and its query plan."""

    index: int
    op: str
    sql: str
    label: str
    """The statement's text on one line, clipped (distinct statements read differently)."""
    kind: str
    """The statement's kind as the trace names it (``UPDATE tasks``)."""
    count: int
    total_ms: float
    mean_us: float
    p50_us: float
    p95_us: float
    p99_us: float
    max_us: float
    rows: int
    share_of_op_sql: float
    """Of the SQL time of every statement of the same operation."""
    share_of_op_latency: float | None
    """Of the operation's total latency as callers saw it (op-samples.npz)."""
    share_of_op_thread: float | None
    """Of the profiled time in the store's code on behalf of the operation (on the connection
    threads, and on the event loop for calls that ran inline)."""
    plan: QueryPlan
    suggestion: IndexSuggestion | None = None
    """For a flagged plan: the index that removes the scan or sort, proved by re-planning."""
    schema_source: str = CHECKOUT_SCHEMA.source
    """What the plan was computed against (the run's ``schema.sql`` or the fallback)."""
    caller: str | None = None
    """The program's function that ran it (``JobStore.pop (jobstore.py)``), when captured."""
    caller_calls: int = 0
    """That function's calls that ran SQL, as the capture counted them (0: not counted)."""

    @property
    def planned_on_checkout(self) -> bool:
        """True when the plan is of the analysing checkout's schema, not one the run used."""
        return self.schema_source == CHECKOUT_SCHEMA.source


PG_UNPLANNED = (
    "a PostgreSQL statement of the program's own database: the run holds no plan of it "
    "(a program run snapshots no PostgreSQL schema), and SQLite cannot plan it"
)


def sql_hotspots(
    statements: Sequence[SqlStatement],
    op_latency_ms: Mapping[str, float],
    op_thread_s: Mapping[str, float],
    schema: Schema = CHECKOUT_SCHEMA,
    run_plans: Mapping[str, QueryPlan] | None = None,
) -> tuple[SqlHotspot, ...]:
    """Every statement, the most total time first, planned against ``schema``.

    ``op_latency_ms`` is each operation's summed call latency; ``op_thread_s`` each
    operation's time in the store's code from a profile (either may lack an op).
    ``run_plans`` (statement text on one line -> plan) are plans the run made itself (a
    PostgreSQL run's: :mod:`analysis.pgplan`); a statement found there is not re-planned.
    """
    run_plans = run_plans or {}
    sql_by_op: dict[str, float] = defaultdict(float)
    for statement in statements:
        sql_by_op[statement.op] += statement.total_ms
    plans: dict[tuple[str, str], tuple[QueryPlan, IndexSuggestion | None]] = {}
    unplanned = QueryPlan(
        (), error=f"not planned: only the {MAX_PLANNED:,} costliest distinct statements are"
    )
    hotspots = []
    with ExitStack() as open_planners:
        planners: dict[str, sqlite3.Connection] = {}
        for s in sorted(statements, key=lambda s: -s.total_ms):
            made = run_plans.get(" ".join(s.sql.split())) if run_plans else None
            if made is not None:
                hotspots.append(
                    _hotspot(s, (made, None), PG_SOURCE, sql_by_op, op_latency_ms, op_thread_s)
                )
                continue
            if s.schema is None and is_dsn(s.database):
                # A program's PostgreSQL statement: SQLite cannot plan it, and the queue's
                # schema is not its database's.
                hotspots.append(
                    _hotspot(
                        s,
                        (QueryPlan((), error=PG_UNPLANNED), None),
                        f"the schema of {s.database}",
                        sql_by_op,
                        op_latency_ms,
                        op_thread_s,
                    )
                )
                continue
            # Other connections' statements are planned on their own database's schema.
            script = schema.script if s.schema is None else s.schema
            planned = plans.get((s.sql, script))
            if planned is None:
                if len(plans) < MAX_PLANNED:
                    if script not in planners:
                        planners[script] = open_planners.enter_context(
                            closing(planning_database(script))
                        )
                    plan = explain(s.sql, db=planners[script])
                    planned = (plan, suggest_index(s.sql, plan, script))
                else:
                    planned = (unplanned, None)
                plans[(s.sql, script)] = planned
            source = schema.source if s.schema is None else f"the schema of {s.database}"
            hotspots.append(_hotspot(s, planned, source, sql_by_op, op_latency_ms, op_thread_s))
    return tuple(hotspots)


def _hotspot(
    s: SqlStatement,
    planned: tuple[QueryPlan, IndexSuggestion | None],
    schema_source: str,
    sql_by_op: Mapping[str, float],
    op_latency_ms: Mapping[str, float],
    op_thread_s: Mapping[str, float],
) -> SqlHotspot:
    plan, suggestion = planned
    latency = op_latency_ms.get(s.op)
    thread = op_thread_s.get(s.op)
    return SqlHotspot(
        index=s.index,
        op=s.op,
        sql=s.sql,
        label=statement_text(s.sql),
        kind=statement_label(s.sql),
        count=s.count,
        total_ms=s.total_ms,
        mean_us=s.total_ms * 1e3 / s.count if s.count else 0.0,
        p50_us=s.p50_us,
        p95_us=s.p95_us,
        p99_us=s.p99_us,
        max_us=s.max_us,
        rows=s.rows,
        share_of_op_sql=s.total_ms / sql_by_op[s.op] if sql_by_op[s.op] else 0.0,
        share_of_op_latency=s.total_ms / latency if latency else None,
        share_of_op_thread=(s.total_ms / 1e3) / thread if thread else None,
        plan=plan,
        suggestion=suggestion,
        schema_source=schema_source,
        caller=(
            f"{s.caller.qualname} ({Path(s.caller.file).name})" if s.caller is not None else None
        ),
        caller_calls=s.caller_calls,
    )
