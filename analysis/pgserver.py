"""The database side of a PostgreSQL run, by operation: what the server's sessions did.

From the sampled sessions (``pg-activity.json``) each operation gets how its statements
spent their time on the server: running, waiting on a ``Lock`` (another transaction's row
or tuple), an ``LWLock`` (the server's internal locks: WAL, buffers), ``IO`` (reads, WAL
flushes), the ``Client`` (a transaction its client left open), and ``idle`` samples of
sessions whose last statement was the operation's. Each sample stands for one sampling
interval of one session, so samples times the interval is session time. The statements'
own counters (``pg-statements.json``) come along as loaded, ranked by execution time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from .load.pgserver import ServerActivity, ServerStatement, ServerStatements
from .sqlplan import QueryPlan

STATE_COLUMNS = ("running", "Lock", "LWLock", "IO", "Client")
"""The states shown as columns, in this order; others are summed as ``other``."""
IDLE = "idle"
NOT_THE_QUEUES = "other"
"""The sampler's operation for a session whose query is none of the queue's statements."""


@dataclass(frozen=True, slots=True)
class ServerOpProfile:
    """One operation's session samples on the server."""

    op: str
    in_statement: int
    """Samples of a session inside one of the operation's statements (not idle)."""
    idle: int
    """Samples of a session idle after one of the operation's statements."""
    states: tuple[tuple[str, int], ...]
    """Samples in a statement by state (``running``, ``Lock``...), most first."""
    wait_events: tuple[tuple[str, str, int], ...]
    """(state, wait event, samples) of the waits, most first."""
    blocked_by: tuple[tuple[str, int], ...]
    """For lock waits: the operations holding the locks, with how often, most first."""
    statements: tuple[tuple[str, int], ...]
    """The operation's statements by samples in them, most first."""

    def samples(self, state: str) -> int:
        """Samples in ``state`` (0 when none)."""
        return dict(self.states).get(state, 0)

    def share(self, state: str) -> float:
        """``state``'s share of the samples in a statement."""
        return self.samples(state) / self.in_statement if self.in_statement else 0.0


@dataclass(frozen=True, slots=True)
class DatabaseSide:
    """What the server's view of the run holds: sessions by operation, statement counters."""

    source: str
    interval_ms: float
    polls: int
    sampler_share: float
    """The sampler's query time over its running time: its cost on the run's machine."""
    ops: tuple[ServerOpProfile, ...]
    """By samples in a statement, most first; the queue's operations, then ``other``."""
    problems: tuple[str, ...] = ()
    statements: tuple[ServerStatement, ...] = ()
    """pg_stat_statements rows, by total execution time, most first."""
    statements_source: str | None = None
    statements_missing: str | None = None
    """Why there are no statement counters (the server does not preload the extension...)."""
    plans: tuple[tuple[str, QueryPlan], ...] = ()
    """(statement as the queue sends it, its plan on the run's database) of the counted
    statements (``schema-postgres.json``)."""

    def plan(self, statement: ServerStatement) -> QueryPlan | None:
        """``statement``'s plan on the run's own database, if the run planned it."""
        return dict(self.plans).get(statement.sql) if statement.sql is not None else None

    def op(self, name: str) -> ServerOpProfile | None:
        """The profile of operation ``name``, if it was sampled."""
        return next((p for p in self.ops if p.op == name), None)

    def seconds(self, samples: int) -> float:
        """Session time ``samples`` stand for."""
        return samples * self.interval_ms / 1e3


def database_side(
    activity: ServerActivity | None,
    activity_source: str,
    statements: ServerStatements | None = None,
    statements_source: str | None = None,
    plans: Mapping[str, QueryPlan] | None = None,
) -> DatabaseSide | None:
    """The run's database side from what it has of the two files; None with neither."""
    if activity is None and statements is None:
        return None
    ops: tuple[ServerOpProfile, ...] = ()
    if activity is not None:
        ops = profile_by_op(activity)
    rows: tuple[ServerStatement, ...] = ()
    missing: str | None = None
    if statements is not None:
        rows = tuple(sorted(statements.statements, key=lambda s: -s.total_exec_ms))
        missing = None if statements.available else statements.reason
    return DatabaseSide(
        source=activity_source,
        interval_ms=activity.interval_ms if activity is not None else 0.0,
        polls=activity.polls if activity is not None else 0,
        sampler_share=(
            activity.poll_seconds / activity.elapsed_s
            if activity is not None and activity.elapsed_s > 0
            else 0.0
        ),
        ops=ops,
        problems=activity.problems if activity is not None else (),
        statements=rows,
        statements_source=statements_source,
        statements_missing=missing,
        plans=tuple(
            (row.sql, plans[row.sql])
            for row in rows
            if plans is not None and row.sql is not None and row.sql in plans
        ),
    )


def profile_by_op(activity: ServerActivity) -> tuple[ServerOpProfile, ...]:
    """The samples of ``activity`` summed per operation."""
    by_op: dict[str, list[int]] = {}
    states: dict[str, dict[str, int]] = {}
    waits: dict[str, dict[tuple[str, str], int]] = {}
    blockers: dict[str, dict[str, int]] = {}
    statements: dict[str, dict[str, int]] = {}
    for sample in activity.samples:
        totals = by_op.setdefault(sample.op, [0, 0])
        if sample.state == IDLE:
            totals[1] += sample.count
            continue
        totals[0] += sample.count
        _add(states.setdefault(sample.op, {}), sample.state, sample.count)
        if sample.state != "running":
            _add(waits.setdefault(sample.op, {}), (sample.state, sample.wait_event), sample.count)
        for holder, n in sample.blocked_by:
            _add(blockers.setdefault(sample.op, {}), holder, n)
        _add(statements.setdefault(sample.op, {}), sample.statement, sample.count)
    profiles = [
        ServerOpProfile(
            op=op,
            in_statement=totals[0],
            idle=totals[1],
            states=_most_first(states.get(op, {})),
            wait_events=tuple(
                (state, event, n) for (state, event), n in _most_first(waits.get(op, {}))
            ),
            blocked_by=_most_first(blockers.get(op, {})),
            statements=_most_first(statements.get(op, {})),
        )
        for op, totals in by_op.items()
    ]
    profiles.sort(key=lambda p: (p.op == NOT_THE_QUEUES, -p.in_statement, p.op))
    return tuple(profiles)


def state_columns(profile: ServerOpProfile) -> list[tuple[str, int]]:
    """(state, samples) for :data:`STATE_COLUMNS`, then ``other`` for the rest."""
    shown = [(state, profile.samples(state)) for state in STATE_COLUMNS]
    return [*shown, ("other", profile.in_statement - sum(n for _, n in shown))]


K = TypeVar("K", str, tuple[str, str])


def _add(into: dict[K, int], key: K, n: int) -> None:
    into[key] = into.get(key, 0) + n


def _most_first(counts: dict[K, int]) -> tuple[tuple[K, int], ...]:
    return tuple(sorted(counts.items(), key=lambda item: (-item[1], str(item[0]))))


__all__: Sequence[str] = (
    "DatabaseSide",
    "ServerOpProfile",
    "database_side",
    "profile_by_op",
    "state_columns",
)
