"""SQL hotspots: every distinct captured statement, its cost, its share and its plan."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from formats.timeline import statement_label

from .load.capture import SqlStatement
from .sqlplan import QueryPlan, explain


@dataclass(frozen=True, slots=True)
class SqlHotspot:
    """One captured statement with its share of its operation's time and its query plan."""

    index: int
    op: str
    sql: str
    label: str
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


def sql_hotspots(
    statements: Sequence[SqlStatement],
    op_latency_ms: Mapping[str, float],
    op_thread_s: Mapping[str, float],
) -> tuple[SqlHotspot, ...]:
    """Every statement, the most total time first.

    ``op_latency_ms`` is each operation's summed call latency; ``op_thread_s`` each
    operation's time in the store's code from a profile (either may lack an op).
    """
    sql_by_op: dict[str, float] = defaultdict(float)
    for statement in statements:
        sql_by_op[statement.op] += statement.total_ms
    plans: dict[tuple[str, str | None], QueryPlan] = {}
    hotspots = []
    for s in sorted(statements, key=lambda s: -s.total_ms):
        # Other connections' statements are planned on their own database's schema.
        plan = plans.get((s.sql, s.schema))
        if plan is None:
            plan = plans[(s.sql, s.schema)] = (
                explain(s.sql) if s.schema is None else explain(s.sql, s.schema)
            )
        latency = op_latency_ms.get(s.op)
        thread = op_thread_s.get(s.op)
        hotspots.append(
            SqlHotspot(
                index=s.index,
                op=s.op,
                sql=s.sql,
                label=statement_label(s.sql),
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
            )
        )
    return tuple(hotspots)
