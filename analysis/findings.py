"""Findings: each a rule over a run's evidence, each with its cost and the data behind it.

Every rule reads the typed results of the other analyses (never the files) and returns a
finding only when its evidence is present. A finding states its cost in the run's own units
(seconds of the run, bytes per 1,000 tasks) and as a share of the run's measure (its wall
time, or its heap growth), and how many samples or calls support it; :func:`model.ranked`
orders by that share, and a finding below its evidence floor is listed as insufficient
evidence, never first. No rule assigns a severity: what leads is what cost the most.

The cause rules: query plans (scans, sorts) ranked by the statement's total time, planned on
the run's own schema snapshot; statements per call (N+1); hot non-SQL subtrees inside an
operation by inclusive time, with blocking calls on the event loop as loop holds; round trips
(per-call overhead) only where no subtree explains an operation's time; contention (busy
retries, lock waits, conflicts) with the strategy behind it; in a PostgreSQL run, the server's
own view (lock waits by operation from sampled ``pg_stat_activity``, plans ranked by
``pg_stat_statements`` execution time, statements per call); worker imbalance; retained memory
growth by allocation site in steady state. Targets, tails, profiler overhead and where the
time goes are information.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from runs import MANIFEST, RESULTS
from runs.adapters import UNATTRIBUTED_SQL
from runs.files import OP_SAMPLES, SQL_STATEMENTS
from runs.manifest import PROGRAM_WORKLOAD
from runs.results import StepResult
from taskqueue.config import is_dsn

from .attribution import (
    BLOCKING_CALLS,
    Attribution,
    CategoryTime,
    FunctionTime,
    RoleAttribution,
)
from .callers import operation_name
from .hotspots import SqlHotspot
from .latency import CDF_PROBABILITIES, LatencyDistribution
from .load.pgserver import ServerStatement as ServerStatementRow
from .memory import CategoryBytes, SnapshotByOperation
from .model import (
    Cause,
    Cost,
    Evidence,
    Finding,
    Measure,
    RunAgreement,
    RunAnalysis,
    Standing,
    Support,
)
from .operations import (
    Category,
    Op,
    frame_category,
    in_order,
    is_operation,
    is_store_frame,
)
from .pgplan import SOURCE as PG_PLAN_SOURCE
from .pgserver import NOT_THE_QUEUES
from .profile import Frame, ThreadRole
from .sqlplan import SCHEMA_SNAPSHOT

OVERHEAD_GOALS: Mapping[str, float] = {
    "pyinstrument": 1.3,
    "memray": 1.3,
    "viztracer": 1.5,
    "py-spy": 1.05,
}
"""The project's overhead goal per profiler (profiled / bare run time)."""

BATCH_SIZES = (10, 100)
OVERHEAD_DOMINATES = 0.5
"""Per-call overhead above this share of a call's latency dominates it: round trips."""
ONE_TASK_PER_CALL = 2.0
"""Tasks per call below which an operation runs one task per call (a round trip per task)."""
BATCH_LEVERS: Mapping[str, str] = {
    "claim": "claim_batch",
    "complete": "ack_batch",
    "enqueue": "enqueue_many",
}
"""Operations whose calls can carry many tasks, and the setting that makes them."""

COVERED_TARGETS = frozenset({"heap_growth_kib_per_1k_tasks"})
"""Targets another rule reports with more detail (:func:`memory_growth`)."""

# -- evidence floors ------------------------------------------------------------------------
# Each is the least data a rule's conclusion needs; below it the finding is listed as
# insufficient evidence. They are counts of independent observations, not tuned to a run.

SQL_FLOOR = 20
"""Executions of a statement: fewer and its total time is one or two slow calls."""
CALLS_FLOOR = 20
"""Calls of an operation, for per-call rules (statements per call, round trips)."""
N_PLUS_ONE_FLOOR = 60
"""Statement executions behind a statements-per-call rate: 20 calls' worth at the rate that
makes one call many queries."""
RIDES_ON: Mapping[str, str] = {"complete": "claim"}
"""Operations whose calls travel inside another's (acks ride on claims: complete_and_claim)."""
MIN_CALLS_PER_PATTERN = 3
"""Calls behind a per-call pattern: one or two calls can be a warm-up's."""
SAMPLES_FLOOR = 20
"""Profile samples inside a subtree: at 20 the share's standard error is under 11%."""
CONTENTION_FLOOR = 10
"""Busy retries plus claim conflicts: fewer is a collision, not a pattern."""
WORKER_TASKS_FLOOR = 50
"""Tasks in a step, for worker imbalance."""
GROWTH_TASKS_FLOOR = 500
"""Tasks in the steady-state memory window."""
TAIL_SAMPLES_PER_QUANTILE = 1.0
"""A pXX needs 1 / (1 - q) samples to have one beyond it: 100 for p99, 20 for p95."""

N_PLUS_ONE_PER_CALL = 3.0
"""Statements (not counting BEGIN/COMMIT) per operation call from which one call is many
queries: the queue's own operations run one, the deferred claim two."""
SUBTREE_SHARE_OF_OP = 0.25
"""A function inside an operation holding this share of the operation's running time is the
operation's hot subtree."""
BLOCKING_SHARE = 0.5
"""A subtree on the event loop whose time is this much in blocking calls holds the loop."""
GROWTH_FLOOR_BYTES_PER_1K = 64 * 1024
"""Steady-state growth below the project's leak target (64 KiB per 1,000 tasks, targets.toml;
the run's own target when it has one) is not retention worth a cause."""

IMBALANCE_RATIO = 3.0
"""The heaviest worker's tasks over the next heaviest's: from this one worker
carried the step (as do the others when some worker ran no task at all). Against the
runner-up, not the mean: ten engines that claim a few large batches each split the tasks
unevenly by chance (one engine with two claims' worth, 2x the mean, on a clean queue), and a
worker preempted on a loaded machine is busy longer (1.5-1.7x the next in clean runs); a
worker that takes every ready task leaves the next far behind."""
TAIL_RATIO = 10.0
MIN_TAIL_SAMPLES = 100
DRAIN_CLAIM_RATIO = 3.0
"""A comparison queue's claim per task in the drain over the cycle: at 3x its cost grows
with the waiting tasks (litequeue's pop, which sorts every ready row: 8.5x at 3,000; the
reference's and taskqueue's claims: 1x and 0.1x)."""
DRAIN_TASKS_FLOOR = 500
"""Tasks drained (over every round) before a drain's claims say anything of a backlog."""


QUEUE_PLUMBING = frozenset(
    {"_call", "_dispatch", "_retry_busy", "_store", "_connect", "_claim_group", "outside_claims"}
)
"""The queue's own functions that carry a call to its store and back: the trip, not a
subtree that explains an operation's time. (Its bookkeeping, _finish or _notify, is work: when
one of them is hot, it is named.)"""

_TRANSACTION = re.compile(r"^\s*(BEGIN|COMMIT|END|ROLLBACK|SAVEPOINT|RELEASE)\b", re.IGNORECASE)
_BEGIN = re.compile(r"^\s*BEGIN\b", re.IGNORECASE)
_SETTING = re.compile(r"^\s*PRAGMA\s+(?:\w+\.)?(\w+)\s*(?:=|\()", re.IGNORECASE)
"""A PRAGMA that sets something (``PRAGMA journal_mode=WAL``, ``PRAGMA busy_timeout(5000)``):
a connection's setting, made once when it opens; a query such as ``PRAGMA table_info(t)``
reads instead, and the list :data:`READING_PRAGMAS` tells those apart."""
READING_PRAGMAS = frozenset(
    {
        "table_info",
        "table_xinfo",
        "index_list",
        "index_info",
        "index_xinfo",
        "foreign_key_list",
        "pragma_list",
        "function_list",
        "module_list",
        "integrity_check",
        "quick_check",
        "wal_checkpoint",
        "optimize",
    }
)
SETUP_PER_CALL = 0.5
"""Connection settings per operation call from which the operation sets up a connection on
every call (opens one, or re-applies its settings), rather than once."""


def is_connection_setting(statement: str) -> bool:
    """True for a PRAGMA that sets one of the connection's settings (not one that reads)."""
    match = _SETTING.match(statement)
    return match is not None and match.group(1).lower() not in READING_PRAGMAS


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _ms(x: float) -> str:
    return f"{x / 1e3:.3g} s" if x >= 1e3 else f"{x:.3g} ms"


def _us(x: float) -> str:
    return _ms(x / 1e3) if x >= 1e3 else f"{x:.3g} us"


def _s(x: float) -> str:
    return f"{x:.3g} s"


def wall_s(run: RunAnalysis) -> float:
    """The run's wall time: what time costs are shares of."""
    if run.duration_s > 0:
        return run.duration_s
    totals = [
        role.total / max(role.threads, 1)
        for a in run.attributions
        for role in a.roles
        if role.role is ThreadRole.EVENT_LOOP and role.unit == "seconds"
    ]
    return max(totals, default=0.0)


def time_cost(run: RunAnalysis, seconds: float) -> Cost:
    """``seconds`` of the run, as a share of its wall time."""
    wall = wall_s(run)
    return Cost(seconds, "s", min(seconds / wall, 1.0) if wall > 0 else 0.0, Measure.WALL)


def _unit(unit: str) -> str:
    """A profile's unit as costs write it (``seconds`` -> ``s``)."""
    return "s" if unit == "seconds" else unit


def _per_thread(role: RoleAttribution) -> float:
    return role.total / max(role.threads, 1)


def _op_calls(run: RunAnalysis) -> dict[str, int]:
    return {d.op: d.count for d in run.latencies}


def _is_transaction(sql: str) -> bool:
    return bool(_TRANSACTION.match(sql))


# -- cause: query plans ---------------------------------------------------------------------


def sql_plans(run: RunAnalysis) -> Iterable[Finding]:
    """Statements whose plan scans a table, sorts in a temporary B-tree, or feeds every row
    of an index range to an aggregate (a scan in effect: ``count(*)`` of the pending rows on
    each call), ranked by the statement's total time in the run; with the index that removes
    a scan or sort, proved by re-planning."""
    for hotspot in run.sql:
        plan = hotspot.plan
        if not plan.flagged:
            continue
        scans = bool(plan.full_scans)
        through_index = all(" INDEX " in line for line in plan.full_scans)
        what = (
            ("full index scan" if through_index else "full table scan")
            + (" and temp B-tree sort" if plan.temp_btrees else "")
            if scans
            else "temp B-tree sort"
            if plan.temp_btrees
            else "aggregate over every row of an index range"
        )
        fallback = hotspot.planned_on_checkout
        caveat = (
            " CAVEAT: this run has no schema.sql snapshot, so the plan is of the analysing "
            "checkout's schema (taskqueue.sql.SCHEMA), which may not be the one the run used."
            if fallback
            else ""
        )
        schema = (
            "the checkout's schema"
            if fallback
            else "the run's schema.sql"
            if hotspot.schema_source == SCHEMA_SNAPSHOT
            else hotspot.schema_source
        )
        suggestion = hotspot.suggestion
        recommendation = (
            f"{suggestion.ddl}: re-planned on {schema} with it, the statement becomes "
            f"{' | '.join(suggestion.plan.lines)}."
            if suggestion is not None
            else "No index removes it: an aggregate reads every row of its range on each "
            "call. Ask whether the call needs the whole figure (EXISTS, or LIMIT, stops at "
            "the first row), keep it as a counter the writes maintain, or compute it less "
            "often than once per call."
            if not scans and not plan.temp_btrees
            else "Add an index whose columns match its WHERE and then its ORDER BY (for a "
            "claim of the ready rows: a partial index on them, in the ORDER BY's order), or "
            "rewrite the statement to match one; PostgreSQL's plan is not re-planned here "
            "with a candidate index, so re-run to see the plan change."
            if hotspot.schema_source == PG_PLAN_SOURCE
            else "No single index removed it when re-planned; rewrite the statement so its "
            "WHERE and ORDER BY match an index."
        )
        where = f" in {hotspot.caller}" if hotspot.caller else ""
        cost = time_cost(run, hotspot.total_ms / 1e3)
        yield Finding(
            key=f"sql-plan-{hotspot.op}-{hotspot.index}",
            cause=Cause.SQL_SORT if plan.temp_btrees and not scans else Cause.SQL_SCAN,
            op=hotspot.op,
            title=f"{hotspot.op}: {what} in `{hotspot.label}`{where}: {_ms(hotspot.total_ms)} over "
            f"{hotspot.count:,} calls ({_pct(cost.share)} of the run)",
            detail=f"{hotspot.sql}\nPlan on {hotspot.schema_source}: "
            + " | ".join(plan.lines)
            + f". It ran {hotspot.count:,} times for {_ms(hotspot.total_ms)} in the run "
            f"(mean {_us(hotspot.mean_us)}, p99 {_us(hotspot.p99_us)}, "
            f"{_pct(hotspot.share_of_op_sql)} of {hotspot.op}'s SQL time, "
            f"{hotspot.rows / max(hotspot.count, 1):.2g} rows returned per call); "
            + (
                "a scan's cost grows with the table."
                if scans or plan.temp_btrees
                else "each call reads every row of the range ("
                + " | ".join(plan.range_aggregates)
                + ") to compute one aggregate, so its cost grows with the rows in the range "
                "(for a queue's pending state: the backlog)."
            )
            + caveat,
            evidence=(
                Evidence(
                    f"statement {hotspot.index} calls", hotspot.count, "calls", SQL_STATEMENTS
                ),
                Evidence(
                    f"statement {hotspot.index} total", hotspot.total_ms, "ms", SQL_STATEMENTS
                ),
            ),
            recommendation=recommendation,
            cost=cost,
            support=Support(hotspot.count, "calls", SQL_FLOOR),
        )


WIDE_READ_ROWS = 100
"""Rows per execution from which a statement reads a set, not a few rows."""
WIDE_READ_RATIO = 10.0
"""Rows read per execution over the tasks its operation handles per call, from which the
statement reads far more than the call needs: the rest is read (and sent to Python) to be
thrown away, a scan whatever its plan says (an index range as wide as the table)."""


def wide_reads(run: RunAnalysis) -> Iterable[Finding]:
    """Statements whose plan uses an index, yet read many times the rows their operation
    handles per call (every ready row to claim one): a scan in effect, ranked by the
    statement's total time in the run."""
    trips = run.round_trips
    if trips is None or trips.tasks <= 0:
        return
    for hotspot in run.sql:
        calls = trips.calls.get(hotspot.op, 0)
        if hotspot.plan.flagged or calls <= 0 or hotspot.count <= 0:
            continue
        per_execution = hotspot.rows / hotspot.count
        needed = max(trips.tasks / calls, 1.0)
        if per_execution < WIDE_READ_ROWS or per_execution < WIDE_READ_RATIO * needed:
            continue
        cost = time_cost(run, hotspot.total_ms / 1e3)
        op = hotspot.op
        yield Finding(
            key=f"wide-read-{op}-{hotspot.index}",
            cause=Cause.SQL_SCAN,
            op=op,
            subject=hotspot.kind,
            title=f"{op}: reads {per_execution:,.0f} rows per execution to handle "
            f"{needed:.2g} task(s) per call, in `{hotspot.label}`: {_ms(hotspot.total_ms)} over "
            f"{hotspot.count:,} calls ({_pct(cost.share)} of the run)",
            detail=f"{hotspot.sql}\nIt returned {hotspot.rows:,} rows over {hotspot.count:,} "
            f"executions; {op} handled {trips.tasks:,} tasks in {calls:,} calls. Plan on "
            f"{hotspot.schema_source}: " + " | ".join(hotspot.plan.lines) + ". The plan uses "
            "an index, but the range it reads grows with the queue: every row beyond what the "
            "call needs is read, sent to Python and thrown away.",
            evidence=(
                Evidence(
                    f"statement {hotspot.index} rows per execution",
                    per_execution,
                    "rows",
                    SQL_STATEMENTS,
                ),
                Evidence(
                    f"statement {hotspot.index} total", hotspot.total_ms, "ms", SQL_STATEMENTS
                ),
            ),
            recommendation="Let SQL pick the rows the call needs (ORDER BY ... LIMIT n on an "
            "index that matches both), instead of reading the whole set and choosing in Python.",
            cost=cost,
            support=Support(hotspot.count, "calls", SQL_FLOOR),
        )


WAITING_STATEMENT_US = 1_000.0
"""Mean time from which a statement that touches few rows (:data:`FEW_ROWS`) is waiting, not
computing: the queue's own statements take 5-60 us each in a clean run (a single-row insert,
claim or commit); a millisecond is the disk (an fsync per commit), a checkpoint, or a lock."""
WAITING_MEDIAN_US = 200.0
"""Median from which such a statement is waiting even when its mean is under a millisecond: an
fsync on an idle disk took 290-550 us per commit here (``synchronous=FULL``, a checkpoint per
commit), while the slowest clean few-row statement's median was 106 us (a claim's COMMIT, in
the default job on a quiet machine); a median, unlike a mean, is not moved by a
few descheduled calls on a loaded machine."""
FEW_ROWS = 10
"""Rows per execution up to which a statement's own work is a few B-tree steps."""


def waiting_statements(run: RunAnalysis) -> Iterable[Finding]:
    """Statements that touch a few rows yet take milliseconds each, run on the event loop
    (inline dispatch): SQLite waits there (for the disk, a checkpoint, a lock) with the loop
    held, and every other coroutine waits with it. Per operation, ranked by that time.
    SQLite only: asyncpg's statements await the server without holding the loop."""
    if _on_postgres(run):
        return
    on_loop = _store_share_on_loop(run)
    # A COMMIT's work is its transaction's writes: the rows of its operation's statements.
    op_rows: dict[str, int] = {}
    for hotspot in run.sql:
        if not _is_transaction(hotspot.sql):
            op_rows[hotspot.op] = op_rows.get(hotspot.op, 0) + hotspot.rows
    by_op: dict[str, list[SqlHotspot]] = {}
    for hotspot in run.sql:
        if hotspot.plan.flagged or hotspot.count < SQL_FLOOR:
            continue  # a scan or a sort is its own rule's
        if _BEGIN.match(hotspot.sql):
            continue  # waiting to begin is waiting for the lock: the contention rule's
        rows = op_rows.get(hotspot.op, 0) if _is_transaction(hotspot.sql) else hotspot.rows
        slow = hotspot.mean_us >= WAITING_STATEMENT_US or hotspot.p50_us >= WAITING_MEDIAN_US
        if not slow or rows > FEW_ROWS * hotspot.count:
            continue
        if on_loop.get(hotspot.op, 0.0) < 0.5:
            continue  # on a connection thread it holds no loop (its waits are the call's)
        by_op.setdefault(hotspot.op, []).append(hotspot)
    for op, hotspots in by_op.items():
        hotspots.sort(key=lambda h: -h.total_ms)
        total_ms = sum(h.total_ms for h in hotspots)
        executions = sum(h.count for h in hotspots)
        cost = time_cost(run, total_ms / 1e3)
        listed = "; ".join(
            f"`{h.label}` {h.count:,} times, mean {_us(h.mean_us)}, {h.rows / h.count:.2g} "
            "rows each"
            for h in hotspots[:4]
        )
        top = hotspots[0]
        yield Finding(
            key=f"waiting-statements-{op}",
            cause=Cause.LOOP_HOLD,
            op=op,
            subject=top.kind,
            title=f"{op}: statements that touch a few rows wait in SQLite with the event loop "
            f"held: `{top.label}` {_us(top.mean_us)} each, {_ms(total_ms)} over "
            f"{executions:,} executions ({_pct(cost.share)} of the run)",
            detail=f"{listed}. Each touches at most {FEW_ROWS} rows, so its own work is a few "
            f"B-tree steps (microseconds); at a median of {_us(WAITING_MEDIAN_US)} or a mean of "
            f"{_us(WAITING_STATEMENT_US)} or more it waits: for the disk (a sync per commit), "
            f"a checkpoint, or a lock. {op} ran "
            f"{_pct(on_loop[op])} of its store time on the event loop (inline dispatch), so "
            "the loop waited too.",
            evidence=(
                Evidence(f"statement {top.index} mean", top.mean_us, "us", SQL_STATEMENTS),
                Evidence(f"{op} waiting statements total", total_ms, "ms", SQL_STATEMENTS),
            ),
            recommendation="Find what the statement waits for: PRAGMA synchronous (NORMAL is "
            "enough in WAL mode), checkpoints or journal settings on the queue's connections, "
            "or another writer; or keep such calls off the event loop (dispatch=thread).",
            cost=cost,
            support=Support(executions, "statement executions", SQL_FLOOR),
        )


def _store_share_on_loop(run: RunAnalysis) -> dict[str, float]:
    """Per operation, the share of its store time (from the first profile in seconds) that
    ran on the event loop; without a profile, the run's share of inline calls for all."""
    for attribution in run.attributions:
        if any(role.unit != "seconds" for role in attribution.roles):
            continue
        found = {
            str(category): roles.get(ThreadRole.EVENT_LOOP, 0.0) / total
            for category, roles in attribution.store_time().items()
            if (total := sum(roles.values())) > 0
        }
        if found:
            return found
    if run.round_trips is None:
        return {}
    share = run.round_trips.inline_share
    return {op: share for op in {h.op for h in run.sql}}


# -- cause: statements per call -------------------------------------------------------------


def statements_per_call(run: RunAnalysis) -> Iterable[Finding]:
    """Operations that run many statements per call (N+1): from the SQL capture's executions
    and the operation's calls, each statement labelled by its text."""
    calls = _op_calls(run)
    by_op: dict[str, list[SqlHotspot]] = {}
    for hotspot in run.sql:
        by_op.setdefault(hotspot.op, []).append(hotspot)
    for op, hotspots in by_op.items():
        if op == UNATTRIBUTED_SQL:
            # Statements of no known operation (a program's module-level code) have no
            # calls to count them per: their sum over a made-up count would be no rate.
            continue
        queries = [h for h in hotspots if not _is_transaction(h.sql)]
        executions, n_calls, caveat = _queries_per_call(run, op, queries, calls)
        if not _many_per_call(executions, n_calls):
            continue
        per_call = executions / n_calls
        setup = connection_setup(op, hotspots, n_calls, run)
        if setup is not None:
            yield setup
            continue
        queries.sort(key=lambda h: -h.count)
        repeated = queries[0].count / n_calls
        sql_ms = sum(h.total_ms for h in hotspots)
        cost = time_cost(run, sql_ms / 1e3)
        shape = (
            f"{len(queries)} distinct statements"
            if len(queries) > 1
            else "the same statement again and again"
        )
        listed = "; ".join(f"`{h.label}` {h.count / n_calls:.2g}/call" for h in queries[:6]) + (
            f"; and {len(queries) - 6} more" if len(queries) > 6 else ""
        )
        yield Finding(
            key=f"n-plus-one-{op}",
            cause=Cause.N_PLUS_ONE,
            op=op,
            title=f"{op}: {per_call:.3g} statements per call (N+1): {shape}, "
            f"{_ms(sql_ms)} of SQL over {n_calls:,} calls ({_pct(cost.share)} of the run)",
            detail=f"{executions:,} statement executions (BEGIN/COMMIT not counted) for "
            f"{n_calls:,} {op} calls: {listed}. Each execution is a statement for SQLite to "
            "step and, outside inline dispatch, a trip to the connection thread."
            + (
                f" The most frequent runs {repeated:.2g} times per call: once per item."
                if repeated >= N_PLUS_ONE_PER_CALL
                else ""
            )
            + caveat,
            evidence=(
                Evidence(f"{op} statements per call", per_call, "statements/call", SQL_STATEMENTS),
                Evidence(f"{op} calls", n_calls, "calls", OP_SAMPLES),
                Evidence(f"{op} SQL time", sql_ms, "ms", SQL_STATEMENTS),
            ),
            recommendation="Fetch what one call needs in one statement (select every column "
            "at once, `WHERE id IN (...)`, a join, or one batch statement for all items).",
            cost=cost,
            # The rate per call is what is measured: its evidence is every execution.
            support=Support(executions, "statement executions", N_PLUS_ONE_FLOOR),
        )


def _queries_per_call(
    run: RunAnalysis, op: str, queries: Sequence[SqlHotspot], calls: Mapping[str, int]
) -> tuple[int, int, str]:
    """(executions of ``op``'s ``queries``, ``op``'s calls, a caveat on how the calls were
    counted when ``op`` has no timings of its own)."""
    # A statement retried after SQLITE_BUSY is the same query again, not another one.
    executions = max(sum(h.count for h in queries) - _op_total(run, "sqlite_busy_retries", op), 0)
    n_calls = calls.get(op, 0)
    carrier = RIDES_ON.get(op)
    carried = calls.get(carrier, 0) if carrier else 0
    if n_calls == 0 and not carrier:
        # A program's function (named by the SQL capture) has no timings either: the capture
        # counted its calls that ran SQL, one per frame of it.
        counted = {h.caller: h.caller_calls for h in run.sql if h.op == op and h.caller}
        captured = sum(counted.values())
        if captured > 0:
            return (
                executions,
                captured,
                f" {op} has no call timings of its own: its calls are counted by the SQL "
                f"capture ({captured:,} calls of {', '.join(sorted(counted))} that ran SQL).",
            )
        # Without the capture's count (an older capture), the transactions it opened are
        # calls it made, at least one each (a batch inserted one INSERT each in a
        # transaction per batch): the cautious count is the larger.
        begins = sum(h.count for h in run.sql if h.op == op and _BEGIN.match(h.sql))
        second = sorted((h.count for h in queries), reverse=True)[1] if len(queries) > 1 else 0
        if begins > second:
            return (
                executions,
                begins,
                f" {op} has no call timings of its own, so its calls are counted as the "
                f"transactions it opened ({begins:,} BEGIN): at least one per call.",
            )
    if n_calls > 0 or (len(queries) < 2 and not carried):
        return executions, n_calls, ""
    # No timings of its own (acks ride on claims): it made at least as many calls as its
    # second most frequent statement ran and, riding on another operation's calls, at most
    # that many. The larger is the cautious count (fewer per call). One statement alone
    # (one UPDATE per ack) says nothing of the calls: the carrier's count it is.
    second = sorted((h.count for h in queries), reverse=True)[1] if len(queries) > 1 else 0
    caveat = (
        f" {op} has no call timings of its own (its calls ride on {carrier}'s), so its "
        f"calls are counted as {carrier}'s ({carried:,}), at most one per {carrier} call."
        if carrier and len(queries) < 2
        else f" {op} has no call timings of its own (its calls ride on {carrier}'s), so its "
        f"calls are counted as the larger of its second most frequent statement's "
        f"executions ({second:,}) and {carrier}'s calls ({carried:,})."
        if carrier
        else f" {op} has no call timings of its own, so its calls are counted as its "
        f"second most frequent statement's executions ({second:,}): at least one per call."
    )
    return executions, max(second, carried), caveat


def _many_per_call(executions: int, calls: int) -> bool:
    """Enough statements per call for the N+1 rule."""
    return calls >= MIN_CALLS_PER_PATTERN and executions / calls >= N_PLUS_ONE_PER_CALL


_WRITE = re.compile(r"^\s*(INSERT|UPDATE|DELETE|REPLACE)\b", re.IGNORECASE)
_READ = re.compile(r"^\s*SELECT\b", re.IGNORECASE)
_ROWID_SEARCH = re.compile(r"^SEARCH (?P<table>\w+) USING INTEGER PRIMARY KEY \(rowid=\?\)$")
READ_BACK_SHARE = 0.8
"""Executions of a one-row read by rowid, over the rows its operation wrote to that table,
from which the operation reads back (nearly) every row it writes."""


def read_backs(run: RunAnalysis) -> Iterable[Finding]:
    """Operations that read back, one row per statement by its rowid, the rows they have just
    written: a second statement per written row for what the write already had (its values,
    ``lastrowid``, or ``RETURNING``). Operations with many statements per call are the N+1
    rule's."""
    calls = _op_calls(run)
    by_op: dict[str, list[SqlHotspot]] = {}
    for hotspot in run.sql:
        if not _is_transaction(hotspot.sql):
            by_op.setdefault(hotspot.op, []).append(hotspot)
    for op, queries in by_op.items():
        executions, n_calls, _ = _queries_per_call(run, op, queries, calls)
        if _many_per_call(executions, n_calls):
            continue
        writes = [h for h in queries if _WRITE.match(h.sql)]
        for read in queries:
            searched = [_ROWID_SEARCH.match(line) for line in read.plan.lines]
            if not _READ.match(read.sql) or len(searched) != 1 or searched[0] is None:
                continue
            table = searched[0]["table"]
            mention = re.compile(rf"\b{re.escape(table)}\b", re.IGNORECASE)
            written = sum(h.rows for h in writes if mention.search(h.sql))
            if written <= 0 or read.count < READ_BACK_SHARE * written or read.rows > read.count:
                continue
            cost = time_cost(run, read.total_ms / 1e3)
            yield Finding(
                key=f"read-back-{op}-{read.index}",
                cause=Cause.N_PLUS_ONE,
                op=op,
                subject=read.kind,
                title=f"{op}: reads back each row it writes, one statement per row: "
                f"`{read.label}` {read.count:,} times for {written:,} rows written, "
                f"{_ms(read.total_ms)} ({_pct(cost.share)} of the run)",
                detail=f"{read.sql}\nPlan on {read.schema_source}: "
                + " | ".join(read.plan.lines)
                + f". {op}'s writes to {table} changed {written:,} rows; this read of one row "
                f"by its rowid ran {read.count:,} times (mean {_us(read.mean_us)}), after "
                "them: a statement per row for what the write already had.",
                evidence=(
                    Evidence(f"statement {read.index} calls", read.count, "calls", SQL_STATEMENTS),
                    Evidence(f"{op} rows written to {table}", written, "rows", SQL_STATEMENTS),
                    Evidence(f"statement {read.index} total", read.total_ms, "ms", SQL_STATEMENTS),
                ),
                recommendation="Take what the write produced from the write itself (`RETURNING "
                "...`, `cursor.lastrowid`) or from the values the call already holds, instead "
                "of reading each row back.",
                cost=cost,
                support=Support(read.count, "statement executions", N_PLUS_ONE_FLOOR),
            )


def connection_setup(
    op: str, hotspots: Sequence[SqlHotspot], calls: int, run: RunAnalysis
) -> Finding | None:
    """An operation whose many statements per call are a connection's settings, made on
    every call: it opens a connection per call (or re-applies the settings), a per-call cost
    that keeping one connection open removes; None when its statements are not that."""
    settings = [h for h in hotspots if is_connection_setting(h.sql)]
    made = sum(h.count for h in settings)
    if not settings or made < SETUP_PER_CALL * calls * len(settings):
        return None
    settings.sort(key=lambda h: -h.total_ms)
    setup_ms = sum(h.total_ms for h in settings)
    cost = time_cost(run, setup_ms / 1e3)
    listed = "; ".join(
        f"`{h.label}` {h.count / calls:.2g}/call, {_ms(h.total_ms)}" for h in settings[:6]
    )
    return Finding(
        key=f"connection-setup-{op}",
        cause=Cause.ROUND_TRIPS,
        op=op,
        subject=settings[0].kind,
        title=f"{op}: sets up a connection on every call: {len(settings)} connection "
        f"settings per call (`{settings[0].label}`...), {_ms(setup_ms)} over {calls:,} calls "
        f"({_pct(cost.share)} of the run)",
        detail=f"{listed}. A PRAGMA that sets a connection's setting is made once, when the "
        f"connection opens: made on every {op} call, the operation opens a connection per call "
        "(connect, read the schema, set it up, close) or re-applies the settings; the SQL "
        "time counted here leaves out the connect itself.",
        evidence=(
            Evidence(f"{op} connection settings", made, "executions", SQL_STATEMENTS),
            Evidence(f"{op} calls", calls, "calls", OP_SAMPLES),
            Evidence(f"{op} connection setting time", setup_ms, "ms", SQL_STATEMENTS),
        ),
        recommendation=f"Open the connection once and keep it for every {op} call (the "
        "queue's own connection, or one per thread), with its settings made when it opens.",
        cost=cost,
        support=Support(made, "statement executions", N_PLUS_ONE_FLOOR),
    )


# -- cause: hot subtrees and loop holds -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Subtree:
    """The function inside an operation that holds most of its running time."""

    category: Op
    role: ThreadRole
    function: FunctionTime
    samples: int
    op_running: float
    """The operation's running (not waiting) time on the role."""
    blocking: float
    """Of the subtree's time, the self time of blocking calls (sleep, lock, I/O)."""
    chain: tuple[FunctionTime, ...]
    """Functions inside it that hold most of its time, outermost first."""
    attribution: Attribution
    per_thread: float
    locked: float = 0.0
    """Of the subtree's time, what ran inside the store's code (within the transaction)."""
    transaction: float = 0.0
    """Of the operation's running time, what a database client's transaction control took
    (asyncpg's ``Transaction`` entered and left: the BEGIN and COMMIT trips)."""


def hot_subtrees(run: RunAnalysis) -> list[Subtree]:
    """Per attribution, role and operation: the function below the operation frame with the
    most inclusive time outside SQL and waits, when it holds a large share of the operation."""
    found = []
    for attribution in run.attributions:
        for role in attribution.roles:
            if role.role not in (ThreadRole.EVENT_LOOP, ThreadRole.SQLITE_THREAD):
                continue
            for entry in role.categories:
                if not is_operation(entry.category):
                    continue
                subtree = _subtree(entry, role, attribution)
                if subtree is not None:
                    found.append(subtree)
    return found


def _subtree(
    entry: CategoryTime, role: RoleAttribution, attribution: Attribution
) -> Subtree | None:
    running = entry.cpu
    if running <= 0:
        return None
    samples = {(name, file): n for name, file, n in entry.inner_samples}
    candidates = [
        f
        for f in entry.top_inner
        if frame_category(Frame(f.function, f.file)) is None
        and f.function.rsplit(".", 1)[-1] not in QUEUE_PLUMBING
    ]
    if entry.category is Category.HANDLER and not candidates:
        # The handler's own code is the operation frame: its running time is the subtree.
        handler = [f for f in entry.top_total if (f.file or "").endswith("taskqueue/handlers.py")]
        if handler:
            top = handler[0]
            candidates = [FunctionTime(top.function, top.file, top.self_time, running)]
            samples[(top.function, top.file)] = entry.samples
    if not candidates:
        return None
    top = candidates[0]
    if top.total_time < SUBTREE_SHARE_OF_OP * running:
        return None
    chain = tuple(f for f in candidates[1:] if f.total_time >= 0.6 * top.total_time)[:2]
    # Only calls that block where they were made: asyncio's own socket sends never wait.
    blocked = {b.call for b in entry.blocking}
    blocking = sum(
        f.self_time
        for f in entry.top_inner
        if f.function.rsplit(".", 1)[-1] in BLOCKING_CALLS and f.function in blocked
    )
    return Subtree(
        category=entry.category,
        role=role.role,
        function=top,
        samples=samples.get((top.function, top.file), 0),
        op_running=running,
        blocking=min(blocking, top.total_time),
        chain=chain,
        attribution=attribution,
        per_thread=_per_thread(role),
        locked=next(
            (t for name, file, t in entry.inner_locked if (name, file) == (top.function, top.file)),
            0.0,
        ),
        transaction=_transaction_control(entry.top_inner),
    )


TRANSACTION_CONTROL = (
    frozenset({"__aenter__", "__aexit__", "__enter__", "__exit__"}),
    frozenset({"start", "commit", "rollback"}),
    frozenset({"start", "__commit", "__rollback"}),
)
"""Ways into a database client's transaction module (its ``transaction.py``): a ``with``
block, or explicit start and commit; each set's functions do not call each other, so their
inclusive times add up (the largest sum is the transaction control's time)."""


def _transaction_control(inner: Sequence[FunctionTime]) -> float:
    """The time inside a database client's transaction control, of an operation's functions."""
    times: dict[str, float] = {}
    for f in inner:
        if _short(f.file or "").endswith("/transaction.py") and _database_client((f,)):
            name = _bare_name(f.function)
            times[name] = max(times.get(name, 0.0), f.total_time)
    return max(sum(times.get(name, 0.0) for name in way) for way in TRANSACTION_CONTROL)


def _bare_name(function: str) -> str:
    """``TaskQueue._notify`` and ``plant.<locals>._notify`` alike: ``_notify``."""
    return function.rsplit(".", 1)[-1]


def consolidate(findings: Sequence[Finding], runs: Mapping[str, RunAnalysis]) -> list[Finding]:
    """Across runs of one workload under different profilers: a subtree that one profiler saw
    blocking (pyinstrument sees ``time.sleep``) is a loop hold in the others' runs too, where
    the profiler shows only the Python caller (py-spy without ``--native``)."""

    def where(f: Finding) -> tuple[str, str | None, str | None]:
        run = runs.get(f.run_id or "")
        return (run.workload if run is not None else "", f.op, f.subject)

    holds = {where(f) for f in findings if f.cause is Cause.LOOP_HOLD}
    # A hold and a subtree that each take most of one operation's running time overlap (two
    # parts of over half of one whole do): the subtree holds the blocking call, whatever its
    # name in a profile that shows no C frames (the caller a plant or a wrapper defines).
    most = {
        where(f)[:2]
        for f in findings
        if f.cause is Cause.LOOP_HOLD and _share_of_op(f) > BLOCKING_SHARE
    }
    findings = _collisions_own_their_waits(findings, runs)
    contended = next(
        (
            f
            for f in sorted(findings, key=lambda f: -(f.cost.share if f.cost else 0.0))
            if _writers_collide(f) and f.standing is Standing.CAUSE
        ),
        None,
    )
    merged = []
    for f in findings:
        run = runs.get(f.run_id or "")
        if contended is not None and run is not None and _trips_for_lost_inline(f, run):
            f = _owned_by_contention(f, contended)
        if f.cause is Cause.HOT_SUBTREE and (
            where(f) in holds
            or (where(f)[:2] in most and _share_of_op(f) > BLOCKING_SHARE and _on_loop(f))
        ):
            f = dataclasses.replace(
                f,
                cause=Cause.LOOP_HOLD,
                title=f"{f.op}: blocking call holds the event loop (in a profile of the same "
                f"workload that shows C calls): {f.title.split(': ', 1)[1]}",
                detail=f.detail + " Another profiler's run of the same workload saw this "
                "subtree's time in a blocking call (sleep, lock, I/O); this profiler shows only "
                "its Python caller.",
                recommendation=f"Take the blocking call out of {f.op} (an await, "
                "asyncio.to_thread, or off the request path): while it runs, no other "
                "worker's call proceeds.",
            )
        merged.append(f)
    return merged


def _writers_collide(f: Finding) -> bool:
    """True for SQLite's lock contention (:func:`contention`): writers on connections of their
    own, which costs them inline dispatch. Tasks queued on an asyncio lock are contention too
    (:func:`asyncio_waits`), but on one event loop, and cost no call its dispatch."""
    return f.cause is Cause.CONTENTION and f.key == CONTENTION_KEY


def _share_of_op(f: Finding) -> float:
    """A subtree finding's inclusive time over its operation's running time (its first two
    figures, :func:`subtree_findings`); 0 for any other finding."""
    if len(f.evidence) < 2 or f.evidence[1].value <= 0:
        return 0.0
    inclusive, running = f.evidence[0], f.evidence[1]
    if not (
        inclusive.figure.endswith("inclusive time") and running.figure.endswith("running time")
    ):
        return 0.0
    return inclusive.value / running.value


def _on_loop(f: Finding) -> bool:
    return ThreadRole.EVENT_LOOP.value.replace(" ", "-") in f.key


def _on_postgres(run: RunAnalysis) -> bool:
    return is_dsn(run.queue.get("backend"))


def _lost_inline(run: RunAnalysis) -> bool:
    """True for a SQLite run where no call ran inline although its dispatch (``auto``, the
    default) runs short calls on the event loop: something turned inline dispatch off, and
    each call paid a trip to a connection thread it would not have."""
    trips = run.round_trips
    return (
        trips is not None
        and trips.inline == 0
        and sum(trips.calls.values()) > 0
        and str(run.queue.get("dispatch", "auto")) == "auto"
        and not _on_postgres(run)
    )


def _trips_for_lost_inline(f: Finding, run: RunAnalysis) -> bool:
    """True for a round-trips finding of a run that lost inline dispatch."""
    return f.key == "round-trips" and _lost_inline(run)


def _collisions_own_their_waits(
    findings: Sequence[Finding], runs: Mapping[str, RunAnalysis]
) -> list[Finding]:
    """Writers that collide (SQLITE_BUSY retries) in a workload whose calls lost inline
    dispatch: the event loop's wait for the connection threads is what the collision costs
    beyond the lock waits the queue counted, because the queue gives up inline dispatch for
    writers that contend. The contention finding takes the larger cost and names the wait;
    the wait finding stays as information that points to it."""

    def workload(f: Finding) -> str | None:
        run = runs.get(f.run_id or "")
        return run.workload if run is not None and _lost_inline(run) else None

    out = list(findings)
    for i, contention in enumerate(out):
        where = workload(contention)
        if not _writers_collide(contention) or where is None or not contention.sufficient:
            continue
        waits = [
            (j, f)
            for j, f in enumerate(out)
            if f.cause is Cause.WAITING and f.cost is not None and workload(f) == where
        ]
        if not waits:
            continue
        j, wait = max(waits, key=lambda jf: jf[1].cost.share if jf[1].cost else 0.0)
        assert wait.cost is not None
        if contention.cost is not None and contention.cost.share >= wait.cost.share:
            continue
        share = _pct(wait.cost.share)
        out[i] = dataclasses.replace(
            contention,
            cost=wait.cost,
            title=f"{contention.title}; no call ran inline, so operations waited for their "
            f"connection threads {share} of the loop's time",
            detail=contention.detail + " No call ran inline although dispatch=auto runs short "
            "calls on the event loop: the queue sends every call to a connection thread for "
            "writers that contend, and the event loop waited for those threads "
            f'{share} of its time ("{wait.title}"). The profile shows the collision there '
            "more than in the lock waits counted above, so that wait is this finding's cost: "
            "with one shared connection these calls run inline, and what is left of the wait "
            "is their statements' own time.",
        )
        out[j] = dataclasses.replace(
            wait,
            cost=None,
            title=f"{wait.title}: the cost of the writers' collision, reported with it",
            detail=wait.detail + f' Counted in "{out[i].title}".',
        )
    return out


def _owned_by_contention(f: Finding, contention: Finding) -> Finding:
    """The trips of a run whose calls lost inline dispatch, in an invocation whose writers
    collide: the queue turns inline dispatch off for the strategies that contend (deferred
    claims, SQLite's busy handler) and for writers on connections of their own, so fixing
    the contention is what restores it. Reported as information beside the contention."""
    return dataclasses.replace(
        f,
        cost=None,
        title=f"{f.title}: no call ran inline, a consequence of what makes the writers collide",
        detail=f.detail + " No call ran inline although dispatch=auto runs short calls on the "
        "event loop: the queue sends every call to a connection thread under the strategies "
        "that contend (claim_style=deferred, busy_timeout_ms > 0) and for writers with "
        f'connections of their own, and this invocation measured that contention: "'
        f'{contention.title}". Fixing it restores inline dispatch and removes these trips; '
        "batching only hides them.",
    )


def _function(f: FunctionTime) -> str:
    return f"{f.function} ({_short(f.file)})" if f.file else f.function


def _short(file: str) -> str:
    """A file as reports name it: the package folder and the file (``json/__init__.py``)."""
    parts = file.replace("\\", "/").split("/")
    return "/".join(parts[-2:]) if len(parts) > 2 else file


def subtree_findings(run: RunAnalysis) -> Iterable[Finding]:
    """Hot non-SQL subtrees by inclusive time; on the event loop, mostly blocking ones are
    loop holds."""
    for tree in hot_subtrees(run):
        seconds = tree.function.total_time
        share = min(seconds / tree.per_thread, 1.0) if tree.per_thread > 0 else 0.0
        unit = next((r.unit for r in tree.attribution.roles if r.role is tree.role), "seconds")
        cost = (
            time_cost(run, seconds)
            if unit == "seconds"
            else Cost(seconds, _unit(unit), share, Measure.WALL)
        )
        # A profile's time is the profiled process's: its share of the profiled thread's time
        # is the comparable number (the run's wall includes start-up the profile may not).
        cost = dataclasses.replace(cost, share=share)
        holds = tree.role is ThreadRole.EVENT_LOOP and tree.blocking >= BLOCKING_SHARE * seconds
        op = str(tree.category)
        where = (
            "on the event loop"
            if tree.role is ThreadRole.EVENT_LOOP
            else ("on the connection threads")
        )
        chain = "".join(f" -> {_function(f)}" for f in tree.chain)
        path = " -> ".join(f.function for f in (tree.function, *tree.chain))
        deepest = (tree.function, *tree.chain)[-1]
        name = f"{path} ({_short(deepest.file)})" if deepest.file else path
        if holds:
            title = (
                f"{op}: blocking call holds the event loop: {name} {_s(seconds)} "
                f"({_pct(seconds / tree.op_running)} of {op}'s running time, "
                f"{_pct(share)} of the loop)"
            )
            recommendation = (
                f"Take the blocking call out of {op} (an await, asyncio.to_thread, or move it "
                "off the request path): while it runs, no other worker's call proceeds."
            )
            client = _database_client((tree.function, *tree.chain))
            if client:
                recommendation += (
                    f" It is {client} waiting for the database server's reply: use the "
                    "library's async API, or run its calls on a thread."
                )
            cause = Cause.LOOP_HOLD
        else:
            title = (
                f"{op}: {name} takes {_pct(seconds / tree.op_running)} of {op}'s running time "
                f"{where} ({_s(seconds)} inclusive, {_pct(share)} of the thread)"
            )
            client = _database_client((tree.function, *tree.chain))
            recommendation = (
                f"Most of it is {client} waiting for the database server's reply: the round "
                f"trip, not work in Python. Make fewer trips per {op} call (batch its "
                "statements into one) or bring the server closer."
                if client
                else f"Make {tree.function.function} cheaper or call it less: it is not SQL and "
                f"not the trip to SQLite, it is work {op} does on every call."
            )
            cause = Cause.HOT_SUBTREE
            per_call = _statements_per_call(run, op) if client else None
            single = None
            if per_call is not None and per_call <= ONE_STATEMENT_PER_CALL:
                single = per_call
            if client and _opens_a_connection((tree.function, *tree.chain)):
                # Setting a connection up inside the call: TCP, start-up, authentication and
                # a server process, per call, where a pool would hand out an open one.
                cause = Cause.ROUND_TRIPS
                title = (
                    f"{op}: opens a database connection on every call: {name} takes "
                    f"{_pct(seconds / tree.op_running)} of {op}'s running time {where} "
                    f"({_s(seconds)} inclusive, {_pct(share)} of the thread)"
                )
                recommendation = (
                    f"Take {op}'s connection from a pool opened once (the queue's own, or "
                    f"{client}'s pool) instead of connecting per call: each connection costs "
                    "a TCP handshake, the server's start-up and authentication, and a server "
                    "process, before the statement's own trip."
                )
            elif per_call is not None and tree.transaction >= TRANSACTION_SHARE * tree.op_running:
                # A transaction opened around the call's statements: BEGIN and COMMIT are two
                # more trips, each statement one; one statement is atomic on its own.
                cause = Cause.ROUND_TRIPS
                part = tree.transaction / tree.op_running
                # Its share of the client's work, applied to the calls' time: the trips'
                # waits are not running time, but each trip waits about as long.
                trips = _share_of_calls(run, op, part)
                cost = trips or cost
                around = (
                    "its one statement per call"
                    if single is not None
                    else f"its {per_call:.3g} statements per call ({_statement_names(run, op)})"
                )
                title = (
                    f"{op}: a transaction around {around}: {client}'s transaction control "
                    f"(BEGIN and COMMIT, two more trips) takes {_pct(part)} of {op}'s running "
                    f"time {where}"
                    + (f", about {_s(trips.value)} of its calls' time" if trips else "")
                )
                recommendation = (
                    f"Drop the transaction around {op}'s statement: a single statement is "
                    "atomic and sees one snapshot on its own, so BEGIN and COMMIT only add two "
                    "round trips per call. Where several statements must be atomic, write "
                    "them as one statement (a CTE) instead."
                    if single is not None
                    else f"Write {op}'s statements as one (a CTE), so that a call is one trip and "
                    "atomic without BEGIN and COMMIT, or drop the transaction and any statement "
                    "that need not run on every call: each statement is a trip, and the "
                    "transaction two more."
                )
                if _locks_tables(run, op):
                    recommendation += (
                        " Its LOCK TABLE holds the table against the other writers until the "
                        "COMMIT, trips included: the writes take the row locks they need."
                    )
            elif per_call is not None and single is None and per_call < N_PLUS_ONE_PER_CALL:
                # A statement or so more per call than the one it needs, each a trip (from
                # N_PLUS_ONE_PER_CALL on, the N+1 rule names them from the SQL capture).
                cause = Cause.ROUND_TRIPS
                trips = _share_of_calls(run, op, seconds / tree.op_running * (1 - 1 / per_call))
                cost = trips or cost
                title = (
                    f"{op}: {per_call:.3g} statements per call, a round trip each "
                    f"({_statement_names(run, op)}): {client} waiting for their replies takes "
                    f"{_pct(seconds / tree.op_running)} of {op}'s running time {where}"
                    + (
                        f"; the trips beyond one per call, about {_s(trips.value)} of its "
                        "calls' time"
                        if trips
                        else ""
                    )
                )
                recommendation = (
                    f"Make {op} one statement per call: fold the others into it (a CTE, "
                    "RETURNING, a column default), or run them once instead of on every call. "
                    "Each statement is a trip to the server and back."
                )
            elif single is not None:
                # The trip of the one statement each call must make: no trip to save inside
                # the call, so a description of the profile, not a cause.
                cause = Cause.PROFILE
                title += f": the trip of its one statement per call ({single:.3g} per call)"
                recommendation = (
                    f"Most of it is {client} sending {op}'s one statement per call and reading "
                    f"its reply: the round trip each call makes. Fewer {op} calls (more items "
                    "per statement) would make fewer trips; nothing inside a call is wasted."
                )
            # Inside the store it runs within the operation's transaction, holding SQLite's
            # write lock: the other writers' waits on that operation are partly its doing, in
            # proportion to its share of the operation's running time.
            waited = _op_total(run, "lock_wait_us", op) / 1e6
            if waited > 0 and tree.locked >= 0.5 * seconds:
                caused = waited * min(tree.locked / tree.op_running, 1.0)
                held = _worker_time_share(run, caused)
                cost = dataclasses.replace(cost, share=min(cost.share + held, 1.0))
                title += (
                    f", inside {op}'s transaction: it holds the write lock the other writers "
                    f"waited {_s(caused)} for"
                )
                recommendation += (
                    f" Or move it out of the transaction: {_pct(tree.locked / tree.op_running)} "
                    f"of {op}'s running time holds the lock that others waited {_s(waited)} for."
                )
        yield Finding(
            key=f"{cause}-{op}-{tree.role.value.replace(' ', '-')}-{tree.attribution.profiler}",
            cause=cause,
            op=op,
            subject=_bare_name(tree.function.function),
            title=title,
            detail=f"{tree.attribution.profiler} ({tree.attribution.source}), {where}: inside "
            f"{op}, {_function(tree.function)}{chain} holds {_s(seconds)} by inclusive time "
            "outside SQL and waits, "
            f"of {op}'s {_s(tree.op_running)} running time"
            + (
                f"; {_s(tree.blocking)} of it in blocking calls (sleep, lock, I/O)"
                if tree.blocking > 0
                else ""
            )
            + ".",
            evidence=(
                Evidence(f"{name} inclusive time", seconds, unit, tree.attribution.source),
                Evidence(f"{op} running time", tree.op_running, unit, tree.attribution.source),
            ),
            recommendation=recommendation,
            cost=cost,
            support=Support(tree.samples, "samples", SAMPLES_FLOOR),
        )


TRANSACTION_SHARE = 0.15
"""A database client's transaction control (BEGIN and COMMIT) holding this share of an
operation's running time is trips worth saving. A transaction on every call adds two trips
to the call's one statement and holds about two thirds of the client's work (0.28 of the
running time in a planted run, where the loop's own scheduling took the rest); on one call
in ten, about a sixth."""


ONE_STATEMENT_PER_CALL = 1.5
"""Statements per call (BEGIN/COMMIT not counted) up to which an operation's database trips
are the one its calls must make."""


CONNECT_FUNCTIONS = frozenset({"connect", "_connect", "_connect_addr", "connect_async"})
"""A database client's functions that set a connection up (asyncpg's ``connect`` and its
``connect_utils``, psycopg's ``Connection.connect``)."""


def _opens_a_connection(chain: Sequence[FunctionTime]) -> bool:
    """Whether a database client's subtree is a connection being set up."""
    return any(
        _bare_name(f.function) in CONNECT_FUNCTIONS
        or (f.file or "").replace("\\", "/").endswith("/connect_utils.py")
        for f in chain
    )


def _share_of_calls(run: RunAnalysis, op: str, part: float) -> Cost | None:
    """``part`` of the time ``op``'s calls took (None: the run has no timings of them)."""
    calls = next((d for d in run.latencies if d.op == op and d.count > 0), None)
    return None if calls is None else time_cost(run, calls.count * calls.mean_ms / 1e3 * part)


def _statements_per_call(run: RunAnalysis, op: str) -> float | None:
    """``op``'s statements per call (BEGIN and COMMIT not counted) by the SQL capture (None:
    no statements or calls to tell)."""
    queries = [h for h in run.sql if h.op == op and not _is_transaction(h.sql)]
    executions, n_calls, _ = _queries_per_call(run, op, queries, _op_calls(run))
    if executions <= 0 or n_calls <= 0:
        return None
    return executions / n_calls


def _statement_names(run: RunAnalysis, op: str, most: int = 3) -> str:
    """``op``'s statements, most executed first, each by its first words."""
    queries = sorted(
        (h for h in run.sql if h.op == op and not _is_transaction(h.sql)), key=lambda h: -h.count
    )
    names = [" ".join(h.sql.split()[:4]) + " ..." for h in queries[:most]]
    return "; ".join(names) + (f"; {len(queries) - most} more" if len(queries) > most else "")


def _locks_tables(run: RunAnalysis, op: str) -> bool:
    """Whether ``op`` runs an explicit ``LOCK TABLE``."""
    return any(h.op == op and _LOCK_TABLE.match(h.sql) for h in run.sql)


_LOCK_TABLE = re.compile(r"\s*LOCK\b", re.IGNORECASE)


OWN_CODE_SHARE = 0.5
"""An operation function of the queue whose own body (self time: no function it calls) holds
this share of its operation's running time is where the operation's time goes. The queue's
own functions hand work on to helpers and SQL; in clean runs their bodies hold at most about
a third of their operation (complete_acks_and_claim's 34% of claim's)."""


def own_code(run: RunAnalysis) -> Iterable[Finding]:
    """Operations whose time is in the body of one of the queue's own functions (a loop
    written inline: a list searched per item, work per task), which no function below the
    operation explains: the subtree rule's blind spot, named by the function's self time."""
    explained = {(t.attribution.source, t.role, t.category) for t in hot_subtrees(run)}
    for attribution in run.attributions:
        unit = next((r.unit for r in attribution.roles), "seconds")
        for role in attribution.roles:
            if role.role not in (ThreadRole.EVENT_LOOP, ThreadRole.SQLITE_THREAD):
                continue
            for entry in role.categories:
                running = entry.cpu
                if (
                    not is_operation(entry.category)
                    or entry.category is Category.HANDLER
                    or running <= 0
                    or (attribution.source, role.role, entry.category) in explained
                ):
                    continue
                own = [
                    f
                    for f in entry.top_self
                    if frame_category(Frame(f.function, f.file)) == entry.category
                    and not is_store_frame(Frame(f.function, f.file))
                ]
                if not own or own[0].self_time < OWN_CODE_SHARE * running:
                    continue
                yield _own_code_finding(run, attribution, role, entry, own[0], unit)


def _own_code_finding(
    run: RunAnalysis,
    attribution: Attribution,
    role: RoleAttribution,
    entry: CategoryTime,
    function: FunctionTime,
    unit: str,
) -> Finding:
    op = str(entry.category)
    seconds = function.self_time
    per_thread = _per_thread(role)
    share = min(seconds / per_thread, 1.0) if per_thread > 0 else 0.0
    cost = time_cost(run, seconds) if unit == "seconds" else Cost(seconds, _unit(unit), share)
    cost = dataclasses.replace(cost, share=share)
    samples = round(entry.samples * seconds / entry.wall) if entry.wall > 0 else 0
    return Finding(
        key=f"own-code-{op}-{role.role.value.replace(' ', '-')}-{attribution.profiler}",
        cause=Cause.HOT_SUBTREE,
        op=op,
        subject=_bare_name(function.function),
        title=f"{op}: the body of {_function(function)} takes "
        f"{_pct(seconds / entry.cpu)} of {op}'s running time ({_s(seconds)} of its own, "
        f"{_pct(share)} of the thread), not in a function it calls",
        detail=f"{attribution.profiler} ({attribution.source}), {role.role.value}: "
        f"{_function(function)} runs {_s(seconds)} in its own code (self time, no function "
        f"it calls) of {op}'s {_s(entry.cpu)} running time. Work written inline (a loop "
        "over items, a search of a list per item, a per-task computation) shows as the "
        "function's own time; builtins a profiler does not show (``x in list``) too.",
        evidence=(
            Evidence(f"{function.function} self time", seconds, unit, attribution.source),
            Evidence(f"{op} running time", entry.cpu, unit, attribution.source),
        ),
        recommendation=f"Look at the loops in {function.function}'s body: make what it does "
        "per item constant-time (a set or dict instead of a list search), or move it off "
        f"{op}'s path.",
        cost=cost,
        support=Support(samples, "samples", SAMPLES_FLOOR),
    )


# -- cause: round trips (per-call overhead) --------------------------------------------------


def round_trips(run: RunAnalysis) -> Iterable[Finding]:
    """Per-call overhead of operations that carry one task per call, where no subtree explains
    it: the time batching would save, and the trips each call makes."""
    trips = run.round_trips
    if trips is None or trips.tasks == 0:
        return
    latency = {d.op: d for d in run.latencies}
    sql_ms: dict[str, float] = {}
    transactions_ms: dict[str, float] = {}
    executions: dict[str, int] = {}
    for hotspot in run.sql:
        sql_ms[hotspot.op] = sql_ms.get(hotspot.op, 0.0) + hotspot.total_ms
        executions[hotspot.op] = executions.get(hotspot.op, 0) + hotspot.count
        if _is_transaction(hotspot.sql):
            transactions_ms[hotspot.op] = transactions_ms.get(hotspot.op, 0.0) + hotspot.total_ms
    explained = {str(t.category) for t in hot_subtrees(run)}
    calls_text = ", ".join(
        f"{op} {n:,}" for op, n in sorted(trips.calls.items(), key=lambda i: -i[1])
    )
    statements = ", ".join(
        f"{op} {executions[op] / latency[op].count:.2g}"
        for op in sorted(executions)
        if op in latency and latency[op].count
    )
    inline = (
        "none of them inline"
        if not trips.inline
        else "all of them inline on the event loop (dispatch), with no trip"
        if trips.inline_share >= 0.995
        else f"{_pct(trips.inline_share)} of them inline on the event loop (dispatch)"
    )
    detail = (
        f"Each completed task cost {trips.per_task:.2f} operation calls ({calls_text} calls for "
        f"{trips.tasks:,} tasks), {inline}."
        + (
            f" Statements per call (BEGIN and COMMIT included; outside inline dispatch each is "
            f"one trip to the connection thread): {statements}."
            if statements
            else ""
        )
    )
    levers = []
    # Per lever, the ms its calls spent in BEGIN and COMMIT (SQLite's time, not Python's): per
    # call, not per task, so one-task calls pay them per task and a batch once.
    transactions: list[float] = []
    for op, setting in BATCH_LEVERS.items():
        if op not in latency or op not in sql_ms or op not in trips.calls or op in explained:
            continue
        if not _has_lever(run, setting):
            # The workload calls this operation one task at a time by design (dbops times
            # single enqueues): no setting of this run batches it, so it is no cause here.
            continue
        if op == "claim" and _waited_for_work(run):
            # Claims of one task because one task at a time came (an offered rate): the
            # engines found the queue empty between them, and a batch had nothing to carry.
            continue
        calls = trips.calls[op]
        mean_ms = latency[op].mean_ms
        sql_per_call = sql_ms[op] / calls
        bare = _bare_call(run, op)
        if bare is not None:
            # The profiler's hook costs on every Python call: the bare run's calls say what
            # the queue's own per-call path costs. There, BEGIN and COMMIT (their share of the
            # profiled run's SQL) count as that path's too: one-task calls pay them per task,
            # a batch once. (Under the profiler they stay SQL: the hook already inflates the
            # Python the overhead is weighed against.)
            mean_ms, sql_per_call = bare
            sql_per_call *= 1.0 - transactions_ms.get(op, 0.0) / sql_ms[op] if sql_ms[op] else 1.0
        # Lock waits are contention's (its own rule), not the per-call path's.
        waited_ms = _op_total(run, "lock_wait_us", op) / 1e3 / calls
        overhead = mean_ms - sql_per_call - waited_ms
        current = _current_batch(run, op, calls, trips.tasks)
        if overhead < OVERHEAD_DOMINATES * mean_ms:
            # Most of each call is its SQL: batching would save less than the statements cost.
            continue
        if overhead <= 0 or current >= ONE_TASK_PER_CALL or calls < CALLS_FLOOR:
            # Calls that already carry several tasks each are batched: what is left of their
            # overhead is per batch, not per task.
            continue
        levers.append((op, setting, calls, mean_ms, sql_per_call, overhead, current))
        transactions.append(transactions_ms.get(op, 0.0))
    if not levers:
        return
    overhead_ms = sum(calls * over for _, _, calls, _, _, over, _ in levers)
    measured_bare = all(_bare_call(run, op) is not None for op, *_ in levers)
    top = max(levers, key=lambda lever: lever[2] * lever[5])
    predictions = []
    for size in BATCH_SIZES:
        saved = sum(
            calls * over * (1 - min(current / size, 1.0))
            for _, _, calls, _, _, over, current in levers
        )
        if saved <= 0:
            continue
        settings = ", ".join(
            _lever(run, setting, size) for _, setting, _, _, _, _, c in levers if c < size
        )
        predictions.append(f"{settings}: about {_ms(saved)} less call time in this run")
    parts = [
        f"{op}: {mean:.3g} ms per call of which {sql:.3g} ms SQL, so {over:.3g} ms "
        f"({_pct(over / mean)}) per-call overhead over {calls:,} calls"
        for op, _, calls, mean, sql, over, _ in levers
    ]
    # Calls of concurrent workers overlap: their summed overhead is worker time. Measured on
    # the bare run, it is a share of the bare run's time (the profiled run's shape, scaled).
    scale = (
        wall_s(run) / run.bare.duration_s
        if run.bare is not None and run.bare.duration_s > 0 and measured_bare
        else 1.0
    )
    # Calls that all ran inline made no trip: their overhead is the queue's Python per call,
    # and measured under a profiler that hooks every call (no bare run kept) it is mostly the
    # hook's. Their BEGIN and COMMIT are SQLite's time, which the hook does not inflate: the
    # cost is those alone, a floor of what batching saves (none: no cost, information).
    hooked = trips.inline_share >= 0.995 and not measured_bare
    costed_ms = [
        spent if hooked else calls * over
        for (_, _, calls, _, _, over, _), spent in zip(levers, transactions, strict=True)
    ]
    cost = dataclasses.replace(
        time_cost(run, sum(costed_ms) / 1e3),
        share=min(
            sum(
                # The producer's enqueues are not the workers' time: a share of the wall.
                (time_cost(run, spent / 1e3 * scale).share)
                if op == "enqueue"
                else _worker_time_share(run, spent / 1e3 * scale)
                for (op, *_), spent in zip(levers, costed_ms, strict=True)
            ),
            1.0,
        ),
        measure=Measure.WALL if all(op == "enqueue" for op, *_ in levers) else Measure.WORKERS,
    )
    yield Finding(
        key="round-trips",
        cause=Cause.ROUND_TRIPS,
        op=top[0],
        title=f"{top[0]}: round trips, one task per call: {_ms(overhead_ms)} of per-call "
        + (f"overhead, {_ms(sum(costed_ms))} of it BEGIN and COMMIT " if hooked else "overhead ")
        + f"({', '.join(op for op, *_ in levers)}; {_pct(cost.share)} of the "
        + ("run)" if cost.measure is Measure.WALL else "workers' busy time)"),
        detail=detail
        + (
            " Measured on the bare run of the same invocation (baseline/), without the "
            "profiler's cost on every Python call."
            if measured_bare
            else " Measured under the profiler (no bare run kept): its hook inflates the "
            "queue's own Python"
            + (
                f"; every call ran inline, so the cost counts only their BEGIN and COMMIT "
                f"({_ms(sum(costed_ms))}), SQLite's time, which the hook does not inflate."
                if hooked and sum(costed_ms) > 0
                else "."
            )
        )
        + " Per-call overhead = mean call latency - SQL time per call: the queue's own Python, "
        "the trips to the connection thread and back, and any queueing behind other workers' "
        "calls; no function inside these operations explains it (no hot subtree). "
        + "; ".join(parts)
        + ".",
        evidence=(
            Evidence(
                "operation calls per completed task", trips.per_task, "calls/task", OP_SAMPLES
            ),
            Evidence("per-call overhead in the run", overhead_ms, "ms", OP_SAMPLES),
        ),
        recommendation=(
            "Batch the calls that carry one task each: " + "; ".join(predictions) + "."
            if predictions
            else None
        ),
        # Reported, but not as a cause that outranks measured ones (see ``hooked``).
        cost=None if hooked and sum(costed_ms) <= 0 else cost,
        support=Support(min(calls for _, _, calls, *_ in levers), "calls", CALLS_FLOOR),
    )


def _bare_call(run: RunAnalysis, op: str) -> tuple[float, float] | None:
    """(mean call latency, SQL per call) of ``op`` in the bare run, in ms, when it has both."""
    if run.bare is None or op not in run.bare.sql_ms:
        return None
    found = next((d for d in run.bare.latencies if d.op == op), None)
    if found is None or found.count == 0:
        return None
    return found.mean_ms, run.bare.sql_ms[op] / found.count


WAITED_FOR_WORK = 0.25
"""Empty claims per claim that found tasks from which the engines waited for work: a drain of
a backlog finds the queue empty about once per engine, at its end."""


def _waited_for_work(run: RunAnalysis) -> bool:
    """True when the engines often found the queue empty: tasks came one at a time (an offered
    rate, a trickle), so claims that carried one task each had no more to carry."""
    claims = next((d.count for d in run.latencies if d.op == "claim"), 0)
    empty = _empty_claims(run)
    return claims > 0 and empty >= WAITED_FOR_WORK * max(claims - empty, 1)


def _has_lever(run: RunAnalysis, setting: str) -> bool:
    """True when the run's own configuration has the setting that batches the operation."""
    if setting == "enqueue_many":
        return "enqueue_batch" in run.params
    return setting in run.queue


def _empty_claims(run: RunAnalysis) -> int:
    """Claims that returned no task, from the per-worker counters (run, else its steps)."""
    found = sum(_workers(run.counters, "worker_empty_claims").values())
    if found:
        return found
    return sum(sum(_workers(s.counters, "worker_empty_claims").values()) for s in run.steps)


POLLING_PER_TASK = 2.0
"""Empty claims per completed task from which idle engines are polling: a wake-up costs
about one (the woken engine that finds its task taken, the last claim of a drain)."""


def busy_polling(run: RunAnalysis) -> Iterable[Finding]:
    """Idle engines claiming again and again and finding nothing: empty claims per completed
    task, costed at a claim's own time (:func:`_own_ms`: an empty claim is the cheap kind), as a
    share of the time of the threads that ran them (the event loop, one per process)."""
    empty = _empty_claims(run)
    tasks = _completed(run)
    claims = next((d for d in run.latencies if d.op == "claim" and d.count > 0), None)
    if claims is None or tasks <= 0 or empty < POLLING_PER_TASK * tasks:
        return
    own_ms = _own_ms(claims)
    seconds = min(empty * own_ms / 1e3, wall_s(run))
    processes = _worker_processes(run)
    wakeup = str(run.queue.get("wakeup", ""))
    if _notifications_reach_every_process(run) and empty <= processes * tasks:
        yield _broadcast_wakeups(empty, tasks, processes, own_ms, seconds, claims.source)
        return
    wall = wall_s(run) * processes
    cost = Cost(seconds, "s", min(seconds / wall, 1.0) if wall > 0 else 0.0, Measure.WALL)
    if wakeup.startswith("poll"):
        cause = f"wakeup={wakeup} claims on a timer whether or not a task came"
        fix = (
            "wakeup=notify (enqueue wakes an idle engine; the interval is only the fallback), "
            "or a longer poll interval"
        )
    else:
        cause = (
            "with wakeup=notify an idle engine should wait for enqueue's wake-up, so its wait "
            "returns early: look at what the engines await between claims (wait_for_work)"
        )
        fix = "wait for the wake-up between empty claims (the queue's wait_for_work)"
    yield Finding(
        key="busy-polling",
        cause=Cause.POLLING,
        op="claim",
        title=f"claim: idle engines poll: {empty:,} empty claims for {tasks:,} tasks "
        f"({empty / tasks:.3g} per task), about {_s(seconds)} ({_pct(cost.share)} of the "
        + ("loop's time)" if processes == 1 else "worker processes' time)"),
        detail=f"Of {claims.count:,} claims, {empty:,} found no task "
        f"(worker_empty_claims); at {_ms(own_ms)} each (the claims' lower quartile or median, "
        "whichever is less: an empty claim is the cheap kind) they took "
        f"about {_s(seconds)}. {cause}. A queue that wakes its engines costs about one empty "
        "claim per task, or fewer.",
        evidence=(
            Evidence("empty claims", empty, "claims", RESULTS),
            Evidence("completed tasks", tasks, "tasks", RESULTS),
            Evidence("empty claim's own time", own_ms, "ms", claims.source),
        ),
        recommendation=f"Use {fix}.",
        cost=cost,
        support=Support(empty, "claims", CALLS_FLOOR),
    )


def _worker_processes(run: RunAnalysis) -> int:
    """The run's worker processes: its ``workers`` in ``mode=process``, else 1 (one loop)."""
    processes = run.params.get("workers", 1) if run.params.get("mode") == "process" else 1
    return max(int(processes), 1) if isinstance(processes, int | float) else 1


def _notifications_reach_every_process(run: RunAnalysis) -> bool:
    """True for worker processes on PostgreSQL with ``wakeup=notify`` (the default): each
    process LISTENs, and every NOTIFY reaches all of them."""
    wakeup = str(run.queue.get("wakeup", ""))
    return _on_postgres(run) and not wakeup.startswith("poll") and _worker_processes(run) > 1


def _broadcast_wakeups(
    empty: int, tasks: int, processes: int, own_ms: float, seconds: float, source: str
) -> Finding:
    """Empty claims that a notification to every process explains: information. Each process
    wakes one idle engine per announced task (``PgTaskQueue._heard``), so with the workers
    idle one of ``processes`` claims finds the task; engines that polled would claim more
    often than that. Up to ``processes`` per task are taken as the broadcast's: its
    ``processes - 1`` and the wake-ups' usual one (a drain's last claims, each engine's first
    wait). What they cost is the otherwise idle processes' time and as many of the server's
    statements, no operation's time, so there is nothing to rank it by."""
    return Finding(
        key="wakeup-broadcast",
        cause=Cause.POLLING,
        op="claim",
        title=f"claim: every enqueue's notification wakes an idle engine in each of the "
        f"{processes} worker processes: {empty:,} empty claims for {tasks:,} tasks "
        f"({empty / tasks:.3g} per task; the broadcast makes up to {processes - 1})",
        detail=f"With wakeup=notify on PostgreSQL every worker process listens, and a NOTIFY "
        "reaches them all: each process wakes one idle engine per task announced, so while "
        f"the workers wait, one of the {processes} claims that follow an enqueue finds the "
        f"task and the others find nothing. The {empty:,} empty claims, at {_ms(own_ms)} each "
        f"(the claims' lower quartile or median, whichever is less), took about {_s(seconds)} "
        "of processes that had nothing else to do, and as many statements of the server's. "
        "That is the broadcast's price, not engines polling: polling engines claim more often "
        "than one per process per task.",
        evidence=(
            Evidence("empty claims", empty, "claims", RESULTS),
            Evidence("completed tasks", tasks, "tasks", RESULTS),
            Evidence("worker processes", processes, "processes", RESULTS),
            Evidence("empty claim's own time", own_ms, "ms", source),
        ),
        recommendation="When the server's load matters: fewer worker processes with more "
        "engines each (a process wakes one engine per task and the rest sleep on), or "
        "enqueue_many (one notification per batch, and claims of several tasks).",
        support=Support(empty, "claims", CALLS_FLOOR),
    )


def _completed(run: RunAnalysis) -> int:
    """Tasks completed in the run (its counter, else its steps')."""
    return int(run.counters.get("completed", 0)) or sum(
        int(s.counters.get("completed", 0)) for s in run.steps
    )


STATUS_READS_PER_TASK = 4.0
"""Status reads per completed task from which clients poll: a poll that waits for the
completion's wake-up reads about twice (once before the task is done, once after)."""
WOKEN_POLL_READS = 2.0
"""The reads per task a poll that waits for the wake-up makes: the rest are the polling's."""
OWN_TIME_QUANTILE = 0.25
"""The quantile of a call's latency taken as its own time when calls may have waited for one
another on the event loop (the lower quartile: the calls that did not)."""


def _quantile(distribution: LatencyDistribution, q: float) -> float:
    """``distribution``'s latency at quantile ``q`` (ms), from its CDF (the nearest point
    at or above ``q``); its median when the CDF has none."""
    at = next((i for i, p in enumerate(CDF_PROBABILITIES) if p >= q), None)
    if at is None or at >= len(distribution.cdf_ms):
        return distribution.p50_ms
    return distribution.cdf_ms[at]


def _own_ms(distribution: LatencyDistribution) -> float:
    """A call's own time (ms) when calls may have waited for one another on the event loop:
    the least of the lower quartile, the median and the mean."""
    return min(
        distribution.p50_ms, distribution.mean_ms, _quantile(distribution, OWN_TIME_QUANTILE)
    )


def status_polling(run: RunAnalysis) -> Iterable[Finding]:
    """Clients reading a task's status again and again while it runs: status reads per
    completed task, the reads beyond a woken poll's two costed at the reads' median latency,
    as a share of the run's wall time (status runs on the caller's event loop)."""
    tasks = _completed(run)
    reads = next((d for d in run.latencies if d.op == "status" and d.count > 0), None)
    if reads is None or tasks <= 0 or reads.count < STATUS_READS_PER_TASK * tasks:
        return
    extra = reads.count - WOKEN_POLL_READS * tasks
    # A read's own time is the fast calls': a read that first gave the event loop away (its
    # turn was over) waited for every other poll ready there, so on a crowded loop the median
    # holds the others' reads too (8 ms against 18 us, and 524 s "of" a 10 s run).
    own_ms = _own_ms(reads)
    seconds = min(extra * own_ms / 1e3, wall_s(run))
    cost = time_cost(run, seconds)
    interval = run.params.get("poll_interval_ms")
    between = (
        f"the poll interval (poll_interval_ms={interval:g}) is shorter than the tasks take, or "
        "the wait between reads returns early"
        if isinstance(interval, int | float)
        else "the wait between reads returns early or is short"
    )
    yield Finding(
        key="status-polling",
        cause=Cause.POLLING,
        op="status",
        title=f"status: clients poll: {reads.count:,} status reads for {tasks:,} tasks "
        f"({reads.count / tasks:.3g} per task), about {_s(seconds)} ({_pct(cost.share)} of the "
        "run)",
        detail=f"{reads.count:,} status calls for {tasks:,} completed tasks; a poll that waits "
        f"for the task's completion reads about {WOKEN_POLL_READS:g} times per task, so "
        f"{extra:,.0f} reads were polling, at {_ms(own_ms)} each (the reads' lower quartile "
        f"or median, whichever is less) about {_s(seconds)}: {between}.",
        evidence=(
            Evidence("status reads", reads.count, "calls", reads.source),
            Evidence("completed tasks", tasks, "tasks", RESULTS),
            Evidence("status read's own time", own_ms, "ms", reads.source),
        ),
        recommendation="Wait for the task's completion between reads (the queue's poll wakes "
        "on its own engines' completions), or read less often.",
        cost=cost,
        support=Support(reads.count, "calls", CALLS_FLOOR),
    )


def _lever(run: RunAnalysis, setting: str, size: int) -> str:
    """How a person sets the batch: a queue option, or the workload's enqueue batch."""
    if setting != "enqueue_many":
        return f"{setting}={size}"
    if "enqueue_batch" in run.params:
        return f"--param enqueue_batch={size}"
    return f"enqueue_many with {size} tasks per call"


def _current_batch(run: RunAnalysis, op: str, calls: int, tasks: int) -> float:
    """Tasks per call as measured (a setting says what was asked; the calls what was done),
    at most the setting."""
    if op == "claim":
        # A claim that found nothing carried no task: it is waiting, not a one-task trip.
        calls -= _empty_claims(run)
    measured = max(tasks / calls, 1.0) if calls > 0 else float(ONE_TASK_PER_CALL)
    setting = {"claim": "claim_batch", "complete": "ack_batch"}.get(op)
    if setting is not None and isinstance(run.queue.get(setting), int | float):
        return min(float(run.queue[setting]), measured)
    return measured


def handoff(run: RunAnalysis) -> Iterable[Finding]:
    """Connection-thread time spent handing results back to the event loop: a round trip's
    cost on the thread, named after the operation making the most trips. Information (no
    cost to rank by): the thread's time runs beside the event loop's, so it is no share of
    the run, and the trips' cost to the run is the per-call overhead the round-trips rule
    measures. On a clean run with inline dispatch the thread is nearly idle, and a few ms of
    hand-backs were a large share of its busy time."""
    trips = next(iter(round_trips(run)), None)
    calls = run.round_trips.calls if run.round_trips is not None else {}
    op = trips.op if trips is not None else max(calls, key=lambda o: calls[o], default=None)
    for attribution in run.attributions:
        thread = attribution.role(ThreadRole.SQLITE_THREAD)
        if thread is None:
            continue
        other = thread.get(Category.OTHER)
        if other is None:
            continue
        found = [f for f in other.top_total if f.function.endswith("call_soon_threadsafe")]
        handing = max((f.total_time for f in found), default=0.0)
        ops = sum(c.wall for c in thread.categories if is_operation(c.category))
        if handing <= 0 or ops <= 0 or handing < 0.25 * ops:
            continue
        counted = f' This is part of the per-call overhead of "{trips.title}".' if trips else ""
        yield Finding(
            key=f"handoff-{attribution.profiler}",
            cause=Cause.ROUND_TRIPS,
            op=op,
            title=f"{op or 'queue'}: round trips: the connection thread spends "
            f"{_pct(handing / (handing + ops))} of its busy time handing results back to the "
            f"event loop ({_s(handing)})",
            detail=f"{attribution.profiler} ({attribution.source}): call_soon_threadsafe took "
            f"{_s(handing)} on the aiosqlite threads against {_s(ops)} running the operations "
            "themselves. Every trip pays this once"
            + (
                f"; {op} makes the most calls ({calls[op]:,})"
                if op is not None and op in calls and trips is None
                else ""
            )
            + "."
            + counted,
            evidence=(
                Evidence("call_soon_threadsafe", handing, thread.unit, attribution.source),
                Evidence("operations on the threads", ops, thread.unit, attribution.source),
            ),
            recommendation="Fewer trips: batching (claim_batch, ack_batch) or inline dispatch.",
            support=Support(other.samples, "samples", SAMPLES_FLOOR),
        )


# -- cause: contention ----------------------------------------------------------------------


def _op_counters(counters: Mapping[str, int], name: str) -> dict[str, int]:
    prefix = f"{name}."
    return {
        key[len(prefix) :]: int(value)
        for key, value in counters.items()
        if key.startswith(prefix) and int(value) > 0
    }


CONTENTION_KEY = "contention"
"""The key of SQLite's lock contention finding."""


def contention(run: RunAnalysis) -> Iterable[Finding]:
    """SQLITE_BUSY retries, lock waits and claim conflicts, per run and per step, with the
    strategy that causes them and the fix."""
    retries = int(run.counters.get("sqlite_busy_retries", 0))
    conflicts = int(run.counters.get("claim_conflicts", 0))
    wait_us = int(run.counters.get("lock_wait_us", 0))
    steps = [
        (
            step.label,
            int(step.counters.get("sqlite_busy_retries", 0)),
            int(step.counters.get("claim_conflicts", 0)),
            int(step.counters.get("lock_wait_us", 0)),
        )
        for step in run.steps
    ]
    if not run.counters.get("sqlite_busy_retries") and steps:
        retries = sum(s[1] for s in steps)
        conflicts = conflicts or sum(s[2] for s in steps)
        wait_us = wait_us or sum(s[3] for s in steps)
    if retries + conflicts <= 0:
        return
    by_op_wait = _op_counters(run.counters, "lock_wait_us")
    by_op_retries = _op_counters(run.counters, "sqlite_busy_retries")
    for step in run.steps:
        for name, n in _op_counters(step.counters, "lock_wait_us").items():
            by_op_wait.setdefault(name, 0)
            by_op_wait[name] += n if "lock_wait_us" not in run.counters else 0
        for name, n in _op_counters(step.counters, "sqlite_busy_retries").items():
            by_op_retries.setdefault(name, 0)
            by_op_retries[name] += n if "sqlite_busy_retries" not in run.counters else 0
    ranking = by_op_wait or by_op_retries
    op: str | None = (
        max(ranking, key=lambda k: ranking[k]) if ranking else ("claim" if conflicts else None)
    )
    estimated = False
    if wait_us > 0:
        seconds = wait_us / 1e6
    else:
        # No measured wait: each retry sleeps about half the backoff cap on average.
        backoff_ms = float(run.queue.get("busy_backoff_max_ms", 2.0) or 2.0)
        seconds = retries * backoff_ms / 2 / 1e3
        estimated = True
    cost = dataclasses.replace(
        time_cost(run, seconds), share=_worker_time_share(run, seconds), measure=Measure.WORKERS
    )
    style = run.queue.get("claim_style")
    connection = run.queue.get("connection")
    causes, fixes = [], []
    if style == "deferred":
        causes.append("claim_style=deferred (read in a deferred transaction, then write)")
        fixes.append("claim_style=returning (the claim as one statement, no read-then-write race)")
    if connection == "per-worker":
        causes.append("connection=per-worker (every worker a writer contending for the lock)")
        fixes.append("connection=shared (one writer per process: no lock waits between workers)")
    # The same counter holds PostgreSQL's retried serialization failures, deadlocks, lock
    # timeouts and lost connections: not SQLITE_BUSY there.
    on_postgres = _on_postgres(run)
    retried = "busy" if on_postgres else "SQLITE_BUSY"
    tasks = _completed(run)
    per_step = ", ".join(
        f"{label}: {r:,} retries, {c:,} conflicts" + (f", {w / 1e3:.3g} ms waiting" if w else "")
        for label, r, c, w in steps
        if r or c or w
    )
    yield Finding(
        key=CONTENTION_KEY,
        cause=Cause.CONTENTION,
        op=op,
        title=f"{op or 'queue'}: lock contention: {retries:,} {retried} retries, "
        f"{conflicts:,} claim conflicts, {_s(seconds)} "
        + ("waiting (estimated)" if estimated else "waiting on locks")
        + (f" ({_pct(cost.share)} of the workers' busy time)" if cost.share else "")
        + (f", caused by {causes[0].split(' (')[0]}" if causes else ""),
        detail="Per step: "
        + (per_step or "not split by step")
        + ". By operation: "
        + (", ".join(f"{k} {v / 1e3:.3g} ms" for k, v in by_op_wait.items()) or "-")
        + (
            "; retries " + ", ".join(f"{k} {v:,}" for k, v in by_op_retries.items())
            if by_op_retries
            else ""
        )
        + f". Strategy: connection={connection}, claim_style={style}, "
        f"busy_timeout_ms={run.queue.get('busy_timeout_ms')}"
        + (f"; {'; '.join(causes)}" if causes else "")
        + (f". {1000 * retries / tasks:.1f} retries per 1k completed tasks." if tasks else ".")
        + (
            " The wait is estimated from the retries and the backoff cap: this run recorded no "
            "lock_wait_us."
            if estimated
            else ""
        ),
        evidence=(
            Evidence("sqlite_busy_retries", retries, "retries", RESULTS),
            Evidence("claim_conflicts", conflicts, "tasks", RESULTS),
            Evidence("lock wait", seconds, "s", RESULTS),
        ),
        recommendation=_contention_fix(run, fixes),
        cost=cost,
        support=Support(retries + conflicts, "retries and conflicts", CONTENTION_FLOOR),
    )


def _contention_fix(run: RunAnalysis, fixes: Sequence[str]) -> str:
    """What to change for the lock contention: the strategy's fixes, else fewer writers, which
    for worker processes on SQLite means fewer processes (each one a connection and a writer)."""
    if fixes:
        return "Use " + "; ".join(fixes) + "."
    processes = _worker_processes(run)
    if processes > 1 and not _on_postgres(run):
        return (
            f"Fewer writers: SQLite lets one connection write at a time, and each of the "
            f"{processes} worker processes writes on its own. Run fewer processes with more "
            "engines each (the engines of a process share its connection: connection=shared), "
            "or move the queue to PostgreSQL when the workers must be processes or hosts."
        )
    return "Fewer writers: connection=shared, and claims as one statement (claim_style=returning)."


ENGINE_OPERATIONS = frozenset({"claim", "complete", "handler", "fail", "reclaim"})
"""Operations a worker engine times itself (op-samples): its busy time beyond them and its
own Python is time it spent suspended outside the queue's operations."""


@dataclass(frozen=True, slots=True)
class EngineWaits:
    """The async engines' busy time that neither the queue's operations nor their own Python
    explain: time suspended on something outside the queue (a lock the engines share)."""

    busy: float
    """Seconds the engines were busy (``worker_busy_us``), summed over engines."""
    operations: float
    """Of it, the engines' timed operations (claims, acks, handlers...), summed."""
    own_python: float
    """The event loop's running (not waiting) time outside every operation, in the profile:
    an upper bound on the engines' own code between operations."""
    tasks: int

    @property
    def waited(self) -> float:
        return max(self.busy - self.operations - self.own_python, 0.0)


def engine_waits(run: RunAnalysis) -> EngineWaits | None:
    """The async engines' unexplained busy time, when the run has the counters and a profile
    of its event loop that tells waiting from running; None otherwise (process workers: each
    has a loop of its own, and the profile sees the parent's only)."""
    if str(run.params.get("mode", "async")) != "async":
        return None
    busy_us = sum(sum(_workers(step.counters, "worker_busy_us").values()) for step in run.steps)
    tasks = sum(sum(_workers(step.counters, "worker_tasks").values()) for step in run.steps)
    if busy_us <= 0:
        busy_us = sum(_workers(run.counters, "worker_busy_us").values())
        tasks = sum(_workers(run.counters, "worker_tasks").values())
    timed = [d for d in run.latencies if d.op in ENGINE_OPERATIONS]
    loop = next(
        (
            role
            for a in run.attributions
            if (role := a.role(ThreadRole.EVENT_LOOP)) is not None
            and role.unit == "seconds"
            and role.waits_known
        ),
        None,
    )
    if busy_us <= 0 or not timed or loop is None:
        return None
    own = sum(c.cpu for c in loop.categories if not is_operation(c.category))
    return EngineWaits(
        busy=busy_us / 1e6,
        operations=sum(d.count * d.mean_ms for d in timed) / 1e3,
        own_python=own,
        tasks=tasks,
    )


MOSTLY_AWAITING = 0.5
"""An operation whose profiled time is at least this share waiting (awaits) could overlap
its calls across the engines of one loop."""


def _serialised(run: RunAnalysis) -> tuple[str, float, float] | None:
    """(op, its calls' summed time, the steps' wall) of an engine operation whose calls
    mostly await yet never overlapped (their summed time fits in the wall of steps with
    several engines), the largest such; None if none. Calls that run Python never overlap on
    one loop, so only a mostly waiting operation says something held them apart."""
    steps = [s for s in run.steps if _workers(s.counters, "worker_busy_us")]
    if not any(len(_workers(s.counters, "worker_busy_us")) >= 2 for s in steps):
        return None
    wall = sum(float(s.counters.get("pool_wall_us", 0)) for s in steps) / 1e6
    loop = next(
        (
            role
            for a in run.attributions
            if (role := a.role(ThreadRole.EVENT_LOOP)) is not None and role.waits_known
        ),
        None,
    )
    if wall <= 0 or loop is None:
        return None
    found = []
    for d in run.latencies:
        entry = next((c for c in loop.categories if str(c.category) == d.op), None)
        if d.op not in ENGINE_OPERATIONS or entry is None or entry.wall <= 0:
            continue
        seconds = d.count * d.mean_ms / 1e3
        if (entry.wait or 0.0) >= MOSTLY_AWAITING * entry.wall and seconds <= wall:
            found.append((d.op, seconds, wall))
    return max(found, key=lambda f: f[1], default=None)


@dataclass(frozen=True, slots=True)
class _Awaited:
    """Sampled waits on one primitive, taken by one waiter, in one operation."""

    op: str
    primitive: str
    waiter: str
    waiter_file: str | None
    source: str
    """The profile artifact the samples are from."""
    seconds: float
    samples: int
    touches: int
    """Samples inside the primitive, waiting or taking and handing it on."""


def _awaited_primitives(run: RunAnalysis) -> list[_Awaited]:
    """Event-loop samples inside an asyncio synchronisation primitive within an operation (a
    wrapper set on the queue's classes counts as the operation it wraps), the longest waits
    first. Outside operations such waits are by design: the engines take turns on
    the loop with an asyncio.Lock, a workload waits on an Event for its stop signal."""
    found: dict[tuple[str, str, str, str | None, str], list[float]] = {}
    for attribution in run.attributions:
        loop = attribution.role(ThreadRole.EVENT_LOOP)
        if loop is None or loop.unit != "seconds":
            continue
        for entry in loop.categories:
            if not is_operation(entry.category):
                continue
            for wait in entry.sync_waits:
                op = str(entry.category)
                key = (op, wait.primitive, wait.waiter, wait.waiter_file, attribution.source)
                totals = found.setdefault(key, [0.0, 0, 0])
                totals[0] += wait.time
                totals[1] += wait.samples
                totals[2] += wait.touches
    return sorted(
        (
            _Awaited(*key, seconds, int(samples), int(touches))
            for key, (seconds, samples, touches) in found.items()
        ),
        key=lambda a: (-a.seconds, -a.touches),
    )


def asyncio_waits(run: RunAnalysis) -> Iterable[Finding]:
    """Coroutines suspended on asyncio locks (Lock, Semaphore, Condition, Event) inside the
    queue's operations or around them: contention between the tasks of one event loop.

    A profile under-counts these waits: pyinstrument charges the loop's idle time to the last
    coroutine to suspend, and while one task holds a lock and awaits I/O, that is the holder,
    not the queue of waiters behind it. So the cost comes from the engines' own clocks: their
    busy time beyond their timed operations and their own Python (:func:`engine_waits`);
    the profile's samples on the primitive name it and the operation it is taken in."""
    awaited = _awaited_primitives(run)
    engines = engine_waits(run)
    waited = engines.waited if engines is not None else 0.0
    if not awaited and waited <= 0:
        return
    sampled = sum(a.seconds for a in awaited)
    # The engines' clocks measure the engines' waits: they cost a lock taken in an operation
    # the engines run (a producer's enqueue waits on its own time, which they do not see).
    clocked = engines is not None and waited > 0
    if clocked and awaited and awaited[0].op not in ENGINE_OPERATIONS:
        clocked = False
    if clocked:
        assert engines is not None
        cost = dataclasses.replace(
            time_cost(run, waited), share=_worker_time_share(run, waited), measure=Measure.WORKERS
        )
        support = Support(engines.tasks, "tasks", WORKER_TASKS_FLOOR)
        clocks = (
            f"The engines were busy {_s(engines.busy)} (summed over engines), of which their "
            f"timed operations took {_s(engines.operations)} and the event loop ran code "
            f"outside every operation for at most {_s(engines.own_python)} (profile): "
            f"{_s(waited)} they spent suspended outside the queue's operations."
        )
    else:
        cost = time_cost(run, sampled)
        support = Support(sum(a.samples for a in awaited), "samples", SAMPLES_FLOOR)
        clocks = "The engines' clocks show no busy time outside the queue's operations."
    places = "; ".join(
        f"{a.op}: {a.waiter} -> asyncio.{a.primitive}, suspended {_s(a.seconds)} "
        f"({a.samples} samples; {a.touches} inside it in all)"
        for a in awaited[:3]
    )
    sampled_text = (
        f" The profile caught coroutines inside asyncio primitives: {places}. It under-counts "
        "their waits: the loop's idle time is charged to the last "
        "coroutine to suspend, the lock's holder awaiting its own I/O, not the waiters "
        "queued behind it."
        if awaited
        else ""
    )
    if awaited:
        top = awaited[0]
        where = f"{top.waiter} -> asyncio.{top.primitive}"
        yield Finding(
            key=f"asyncio-lock-{top.op}",
            cause=Cause.CONTENTION,
            op=top.op,
            subject=_bare_name(top.waiter),
            title=f"{top.op}: asyncio lock contention: coroutines wait on {where}"
            + (
                f"; the engines spent {_s(waited)} suspended outside the "
                f"queue's operations ({_pct(cost.share)} of the workers' busy time)"
                if clocked
                else f" {_s(sampled)} ({_pct(cost.share)} of the run)"
            ),
            detail=clocks + sampled_text + " Tasks of one event loop that take one asyncio "
            "lock run the code under it one at a time, whatever they await inside it.",
            evidence=(
                Evidence("engine time outside operations", waited, "s", RESULTS),
                Evidence("sampled waits on asyncio primitives", sampled, "s", top.source),
            ),
            recommendation=f"Hold the {top.primitive} around less than "
            f"{_bare_name(top.waiter)} does (never across an await of I/O or a sleep), give "
            "each engine its own, or bound concurrency with a Semaphore of the engines' count: "
            "while one task holds it, the others wait even though the loop is idle.",
            cost=cost,
            support=support,
        )
        return
    assert engines is not None
    serial = _serialised(run)
    if serial is not None:
        op, seconds, wall = serial
        yield Finding(
            key=f"asyncio-serialised-{op}",
            cause=Cause.CONTENTION,
            op=op,
            title=f"{op}: contention: its calls ran one at a time though they mostly await "
            f"({_s(seconds)} of calls within {_s(wall)} of the workers' steps); the engines "
            f"spent {_s(waited)} suspended outside the queue's operations "
            f"({_pct(cost.share)} of the workers' busy time)",
            detail=clocks + f" {op}'s calls took {_s(seconds)} in all, within the "
            f"{_s(wall)} its steps lasted although several engines were busy and the calls "
            "spent most of their time awaiting (the profile's waits): awaits of engines on one "
            "event loop overlap unless something lets one at a time through, an asyncio lock "
            "or a semaphore of one around them. No profile sample caught the primitive "
            "(pyinstrument charges the loop's idle time to the holder's await).",
            evidence=(
                Evidence("engine time outside operations", waited, "s", RESULTS),
                Evidence(f"{op} calls in all", seconds, "s", OP_SAMPLES),
                Evidence("workers' steps wall", wall, "s", RESULTS),
            ),
            recommendation=f"Find what lets one {op} call through at a time (a lock taken "
            f"around it by a wrapper or the code it calls) and hold it for less, or not across "
            "an await: while one task holds it, the others wait even though the loop is idle.",
            cost=cost,
            support=support,
        )
        return
    # No sample names what they awaited: information, not a claimed cause.
    yield Finding(
        key="engine-waits",
        cause=Cause.WAITING,
        op="worker",
        title=f"worker: the engines spent {_s(waited)} suspended outside the queue's "
        f"operations ({_pct(cost.share)} of the workers' busy time); no profile sample names "
        "what they awaited",
        detail=clocks + " A wrapper around the engines' calls that awaits a lock, a timer or "
        "I/O would do this; a profile that sees coroutines' awaits (pyinstrument) names it "
        "when it catches the wait.",
        evidence=(Evidence("engine time outside operations", waited, "s", RESULTS),),
        cost=cost,
        support=support,
    )


def _op_total(run: RunAnalysis, counter: str, op: str) -> int:
    """``<counter>.<op>`` for the run, or summed over its steps when the run has none."""
    key = f"{counter}.{op}"
    if key in run.counters:
        return int(run.counters[key])
    return sum(int(step.counters.get(key, 0)) for step in run.steps)


def _worker_time_share(run: RunAnalysis, seconds: float) -> float:
    """``seconds`` summed over concurrent workers, as a share of their working time: the
    workers' busy time (``worker_busy_us``: holding claimed tasks or claiming, not idle),
    else each step's wall (``pool_wall_us``) times its workers, else the run's wall times its
    most workers. Busy time is what a worker waiting on a lock or a trip could have worked:
    idle workers of a step with little to do do not dilute it."""
    busy_us = sum(sum(_workers(step.counters, "worker_busy_us").values()) for step in run.steps)
    if busy_us <= 0:
        busy_us = sum(_workers(run.counters, "worker_busy_us").values())
    if busy_us > 0:
        return min(seconds / (busy_us / 1e6), 1.0)
    capacity = 0.0
    for step in run.steps:
        wall_us = step.counters.get("pool_wall_us")
        workers = step.settings.get("workers")
        if isinstance(wall_us, int | float) and isinstance(workers, int | float):
            capacity += wall_us / 1e6 * max(float(workers), 1.0)
    if capacity <= 0:
        most = max(
            (
                float(w)
                for s in run.steps
                if isinstance(w := s.settings.get("workers"), int | float)
            ),
            default=float(run.params.get("workers", 1) or 1),
        )
        capacity = wall_s(run) * max(most, 1.0)
    return min(seconds / capacity, 1.0) if capacity > 0 else 0.0


# -- cause: the database side (PostgreSQL's own view of the run) -----------------------------


def _server_cost(run: RunAnalysis, seconds: float) -> Cost:
    """Session time waiting in the server, as a share of the workers' busy time (each session
    is one worker's connection, so its wait is that worker's)."""
    return dataclasses.replace(
        time_cost(run, seconds), share=_worker_time_share(run, seconds), measure=Measure.WORKERS
    )


def _listed(pairs: Sequence[tuple[str, int]], total: int) -> str:
    return ", ".join(f"{name} {_pct(n / total)}" for name, n in pairs[:4]) if total else "-"


def server_lock_waits(run: RunAnalysis) -> Iterable[Finding]:
    """Operations whose statements wait on another transaction's locks in the server
    (``pg_stat_activity``: ``wait_event_type = Lock``): contention, with the operations
    holding the locks and the strategy behind it."""
    side = run.database
    if side is None:
        return
    for profile in side.ops:
        locks = profile.samples("Lock")
        if profile.op == NOT_THE_QUEUES or locks <= 0:
            continue
        seconds = side.seconds(locks)
        cost = _server_cost(run, seconds)
        events = [(event, n) for state, event, n in profile.wait_events if state == "Lock"]
        holders = profile.blocked_by
        naive = profile.op == "claim" and run.queue.get("pg_claim") == "for-update"
        cause = (
            ", caused by pg_claim=for-update (each claim waits for the one ahead of it to "
            "commit, then reads on past the rows it took)"
            if naive
            else ""
        )
        yield Finding(
            key=f"server-lock-{profile.op}",
            cause=Cause.CONTENTION,
            op=profile.op,
            title=f"{profile.op}: waits on locks in the server {_pct(profile.share('Lock'))} of "
            f"its statement time ({_s(seconds)} of sessions"
            + (f" held up by {holders[0][0]}" if holders else "")
            + f"){cause}",
            detail=f"{locks:,} of {profile.in_statement:,} session samples inside {profile.op}'s "
            f"statements ({', '.join(n for n, _ in profile.statements[:3])}) waited on a lock "
            f"(pg_stat_activity every {side.interval_ms:g} ms, {side.polls:,} polls; each "
            f"sample is {side.interval_ms:g} ms of one session). Lock waits by event: "
            f"{_listed(events, locks)}; the sessions holding them were running "
            f"{_listed(holders, sum(n for _, n in holders))}. In {profile.op}'s statements: "
            + ", ".join(f"{state} {_pct(profile.share(state))}" for state, _ in profile.states)
            + ".",
            evidence=(
                Evidence(f"{profile.op} lock-wait samples", locks, "samples", side.source),
                Evidence(
                    f"{profile.op} statement samples", profile.in_statement, "samples", side.source
                ),
                Evidence(f"{profile.op} lock wait", seconds, "s", side.source),
            ),
            recommendation=_lock_wait_fix(profile.op, naive, events, holders),
            cost=cost,
            support=Support(locks, "session samples waiting on a lock", CONTENTION_FLOOR),
        )


def _lock_wait_fix(
    op: str, naive: bool, events: Sequence[tuple[str, int]], holders: Sequence[tuple[str, int]]
) -> str:
    """What to change for ``op``'s lock waits: by the strategy, else by what was locked."""
    if naive:
        return (
            "Use pg_claim=skip-locked: claims pass over the rows another claim holds instead "
            "of queueing behind it."
        )
    top = max(events, key=lambda e: e[1])[0] if events else ""
    if top == "relation":
        holder = f" ({holders[0][0]} held it)" if holders else ""
        return (
            f"Most of the waits are for a lock on a whole table (Lock:relation){holder}: an "
            "explicit LOCK TABLE, or DDL (ALTER TABLE, CREATE INDEX without CONCURRENTLY, "
            "VACUUM FULL) run beside the queue. Take no table lock on the queue's path: its "
            "writes take the row locks they need."
        )
    return (
        f"Shorten the transactions that hold the rows {op} needs, or take rows with FOR UPDATE "
        "SKIP LOCKED so that a locked row is passed over, not waited for."
    )


WAL_WAITS = frozenset({"WALSync", "WALWrite", "WALInsert", "DataFileSync"})
"""Wait events of a commit waiting for its WAL to reach the disk."""


def server_io_waits(run: RunAnalysis) -> Iterable[Finding]:
    """Operations whose statements wait on I/O or the server's internal locks (information:
    the disk or the WAL, not the queue's logic), with the commit setting when WAL waits lead."""
    side = run.database
    if side is None:
        return
    for profile in side.ops:
        waits = [
            (f"{state}:{event}", n)
            for state, event, n in profile.wait_events
            if state in ("IO", "LWLock")
        ]
        total = sum(n for _, n in waits)
        if profile.op == NOT_THE_QUEUES or total <= 0:
            continue
        wal = sum(n for name, n in waits if name.split(":")[1] in WAL_WAITS)
        synchronous = run.queue.get("pg_synchronous_commit", "on")
        seconds = side.seconds(total)
        yield Finding(
            key=f"server-io-{profile.op}",
            cause=Cause.WAITING,
            op=profile.op,
            title=f"{profile.op}: waits on I/O and the server's internal locks "
            f"{_pct(total / profile.in_statement)} of its statement time ({_s(seconds)} of "
            "sessions)",
            detail=f"{total:,} of {profile.in_statement:,} session samples inside "
            f"{profile.op}'s statements: {_listed(waits, total)}; {wal:,} of them wait for "
            f"the WAL (commits reaching the disk; pg_synchronous_commit={synchronous}).",
            evidence=(
                Evidence(f"{profile.op} I/O-wait samples", total, "samples", side.source),
                Evidence(f"{profile.op} WAL-wait samples", wal, "samples", side.source),
            ),
            recommendation="pg_synchronous_commit=off stops commits waiting for the WAL flush "
            "(the last moments of commits may be lost on a server crash), or batch more work "
            "per commit (claim_batch, ack_batch)."
            if wal * 2 >= total and synchronous != "off"
            else None,
            cost=_server_cost(run, seconds),
            support=Support(total, "session samples waiting", CONTENTION_FLOOR),
        )


def server_plans(run: RunAnalysis) -> Iterable[Finding]:
    """Statements whose plan on the run's own database scans ``tasks`` or sorts, ranked by
    their execution time in the server (``pg_stat_statements``); a statement the client-side
    capture already flagged (:func:`sql_plans`) is left to it."""
    side = run.database
    if side is None:
        return
    flagged_by_client = {" ".join(h.sql.split()) for h in run.sql if h.plan.flagged}
    for statement in side.statements:
        plan = side.plan(statement)
        if plan is None or not plan.flagged or statement.op is None:
            continue
        if statement.sql in flagged_by_client:
            continue
        scans = bool(plan.full_scans)
        what = "sequential scan" + (" and sort" if plan.temp_btrees else "") if scans else "sort"
        cost = time_cost(run, statement.total_exec_ms / 1e3)
        source = side.statements_source or "pg_stat_statements"
        yield Finding(
            key=f"server-plan-{statement.op}-{statement.statement}",
            cause=Cause.SQL_SCAN if scans else Cause.SQL_SORT,
            op=statement.op,
            title=f"{statement.op}: {what} in `{statement.statement}`: "
            f"{_ms(statement.total_exec_ms)} of server execution over {statement.calls:,} calls "
            f"({_pct(cost.share)} of the run)",
            detail=f"{statement.sql}\nPlan on the run's own database: "
            + " | ".join(plan.lines)
            + f". pg_stat_statements: {statement.calls:,} calls, mean "
            f"{_ms(statement.mean_exec_ms)}, {statement.rows:,} rows, "
            f"{statement.shared_blks_hit + statement.shared_blks_read:,} shared blocks read "
            f"({statement.shared_blks_read:,} from outside the cache); a scan's cost grows with "
            "the table.",
            evidence=(
                Evidence(f"{statement.statement} calls", statement.calls, "calls", source),
                Evidence(f"{statement.statement} execution", statement.total_exec_ms, "ms", source),
            ),
            recommendation="Give the statement an index matching its WHERE and ORDER BY (the "
            "queue's schema has partial indexes on state = 'pending' and 'running'): re-plan "
            "it on the run's database with EXPLAIN to check the Seq Scan is gone.",
            cost=cost,
            support=Support(statement.calls, "calls", SQL_FLOOR),
        )


def server_statements_per_call(run: RunAnalysis) -> Iterable[Finding]:
    """Operations whose statements the server ran several times per call (N+1), from
    ``pg_stat_statements`` calls over the operation's calls; only when the run has no
    client-side capture (:func:`statements_per_call` reads that one)."""
    side = run.database
    if side is None or run.sql:
        return
    calls = _op_calls(run)
    by_op: dict[str, list[ServerStatementRow]] = {}
    for statement in side.statements:
        if statement.op is not None:
            by_op.setdefault(statement.op, []).append(statement)
    for op, statements in by_op.items():
        n_calls = calls.get(op, 0)
        executions = sum(s.calls for s in statements)
        if n_calls < MIN_CALLS_PER_PATTERN or executions / n_calls < N_PLUS_ONE_PER_CALL:
            continue
        per_call = executions / n_calls
        exec_ms = sum(s.total_exec_ms for s in statements)
        cost = time_cost(run, exec_ms / 1e3)
        source = side.statements_source or "pg_stat_statements"
        statements.sort(key=lambda s: -s.calls)
        yield Finding(
            key=f"server-n-plus-one-{op}",
            cause=Cause.N_PLUS_ONE,
            op=op,
            title=f"{op}: {per_call:.3g} statements per call (N+1) in the server: "
            f"{executions:,} executions over {n_calls:,} calls, {_ms(exec_ms)} of execution",
            detail=f"pg_stat_statements counted {executions:,} executions of {op}'s statements "
            f"for {n_calls:,} {op} calls: "
            + "; ".join(f"`{s.statement}` {s.calls / n_calls:.2g}/call" for s in statements[:6])
            + ". Each execution is a round trip and a statement for the server to run.",
            evidence=(
                Evidence(f"{op} statements per call", per_call, "statements/call", source),
                Evidence(f"{op} calls", n_calls, "calls", OP_SAMPLES),
            ),
            recommendation="Do what one call needs in one statement (one batch statement for "
            "all items, `WHERE id = ANY($1)`).",
            cost=cost,
            support=Support(executions, "statement executions", N_PLUS_ONE_FLOOR),
        )


# -- cause: worker imbalance ----------------------------------------------------------------


def _workers(counters: Mapping[str, int], name: str) -> dict[str, int]:
    prefix = f"{name}."
    return {k[len(prefix) :]: int(v) for k, v in counters.items() if k.startswith(prefix)}


def _overlap_share(run: RunAnalysis, places: Sequence[tuple[str, Mapping[str, int]]]) -> float:
    """Of the workers' busy time, the share an even split could have overlapped: all of it
    for process workers. Async engines share one event loop and (by default) one writer, so
    what they run there, the queue's own work and handler code, cannot overlap; only what
    their handlers await can (a sleep, a request). With per-call handler timings that is the
    handlers' time less the handler code the loop ran; without them, all but that code."""
    if run.params.get("mode") == "process":
        return 1.0
    busy_s = sum(sum(_workers(c, "worker_busy_us").values()) for _, c in places) / 1e6
    if busy_s <= 0:
        return 1.0
    running = max(
        (
            entry.cpu
            for a in run.attributions
            if (loop := a.role(ThreadRole.EVENT_LOOP)) is not None and loop.unit == "seconds"
            for entry in loop.categories
            if entry.category is Category.HANDLER
        ),
        default=0.0,
    )
    handlers = next((d for d in run.latencies if d.op == Category.HANDLER.value), None)
    if handlers is None:
        return 1.0 - min(running / busy_s, 1.0)
    return min(max(handlers.total_ms / 1e3 - running, 0.0) / busy_s, 1.0)


STARVED_SHARE = 0.25
"""Share of a step's workers that must have run no task for the others to have carried it."""


def _carrier(amounts: Mapping[str, int]) -> str | None:
    """The worker that did :data:`IMBALANCE_RATIO` times the next one's amount, if any."""
    if len(amounts) < 2:
        return None
    first, second = sorted(amounts, key=lambda w: -amounts[w])[:2]
    if amounts[first] <= 0 or amounts[first] < IMBALANCE_RATIO * amounts[second]:
        return None
    return first


def worker_imbalance(run: RunAnalysis) -> Iterable[Finding]:
    """Steps whose workers did unequal shares: per-worker claims, tasks and busy time."""
    places: list[tuple[str, Mapping[str, int]]] = [
        (step.label, step.counters) for step in run.steps
    ]
    if not any(_workers(c, "worker_tasks") for _, c in places):
        places = [("run", run.counters)]
    overlap = _overlap_share(run, places)
    for label, counters in places:
        tasks = _workers(counters, "worker_tasks")
        busy = _workers(counters, "worker_busy_us")
        claims = _workers(counters, "worker_claims")
        if len(tasks) < 2:
            continue
        total_tasks = sum(tasks.values())
        measure = busy if busy and sum(busy.values()) > 0 else tasks
        mean = sum(measure.values()) / len(measure)
        # The split of the tasks says who carried the step; busy time alone does not (one
        # engine stalled 47 ms on a loaded machine with its share of the tasks, clean run).
        carrier = _carrier(tasks)
        # Workers that ran nothing while the step had work: the others carried it. One of
        # ten finding the queue empty is the drain's end (claims of 300 noop tasks leave the
        # last engine none on a clean queue); a quarter of them never working is the split.
        starved = sorted(w for w in tasks if tasks[w] == 0) if total_tasks else []
        if len(starved) < STARVED_SHARE * len(tasks):
            starved = []
        if mean <= 0 or (carrier is None and not starved):
            continue
        heaviest = (
            carrier
            if carrier is not None and measure[carrier] > mean
            else max(measure, key=lambda w: measure[w])
        )
        # Time the step waited on its busiest worker beyond an even split of the same work.
        if measure is busy:
            # Engines on one event loop share its thread: only the part of the busy time
            # their handlers spent awaiting could have overlapped. A clean smoke run's two
            # engines that took 300 noop tasks were each busy 0.12 s while the loop stalled
            # under py-spy: busy time, not work another engine could have taken.
            seconds = (busy[heaviest] - mean) / 1e6 * overlap
            cost = time_cost(run, seconds)
            cost_text = f"{_s(seconds)} beyond an even split ({_pct(cost.share)} of the run)"
            if overlap < 1:
                cost_text += (
                    f"; {_pct(overlap)} of the busy time was handlers awaiting, which a split "
                    "overlaps: the rest ran on the one event loop"
                )
        else:
            cost = None
            cost_text = "busy time not recorded"
        rows = ", ".join(
            f"{w} {claims.get(w, 0):,} claims/{tasks.get(w, 0):,} tasks"
            + (f"/{busy[w] / 1e3:.3g} ms busy" if w in busy else "")
            for w in sorted(tasks)
        )
        yield Finding(
            key=f"worker-imbalance-{label}",
            cause=Cause.WORKER_IMBALANCE,
            op="worker",
            title=f"worker imbalance in {label}: {heaviest} did "
            f"{_pct(measure[heaviest] / sum(measure.values()))} of the "
            + ("busy time" if measure is busy else "tasks")
            + f" of {len(tasks)} workers; {cost_text}",
            detail=f"Per worker ({label}): {rows}. "
            + (
                f"{', '.join(starved)} ran no task: the others carried the step while they "
                "found nothing to claim or waited."
                if starved
                else "One engine carried the step while the others found little to claim."
            ),
            evidence=tuple(
                Evidence(f"{w} tasks", n, "tasks", RESULTS) for w, n in sorted(tasks.items())
            ),
            recommendation="Smaller claims (claim_batch, claim_budget_ms) so the work spreads, "
            "or fewer workers; check that every engine is woken (wakeup) and claims.",
            cost=cost,
            support=Support(total_tasks, "tasks", WORKER_TASKS_FLOOR),
        )


def backlog_growth(run: RunAnalysis) -> Iterable[Finding]:
    """Queues of a comparison whose cost per task grew with the backlog (the sweep's verdict,
    ``backlog_grows``, made by the workload against its noise band). Its cost is the share of
    each task's time at the largest backlog that the backlog adds."""
    for step in run.steps:
        if not step.counters.get("backlog_grows"):
            continue
        growth = step.metrics.get("backlog_cost_growth", 0.0)
        sweep = sorted(
            (int(name.split("_")[1]), value)
            for name, value in step.metrics.items()
            if name.startswith("backlog_") and name.endswith("_tasks_per_s")
        )
        if growth <= 1 or len(sweep) < 2:
            continue
        (small, small_rate), (large, large_rate) = sweep[0], sweep[-1]
        queue = str(step.settings.get("contender", step.label))
        probe = int(step.settings.get("backlog_probe", 0) or 0)
        low = step.metrics.get("backlog_cost_growth_low")
        high = step.metrics.get("backlog_cost_growth_high")
        band = (
            ""
            if low is None
            else f" The fit over every probe puts it at {low:.2f}x to "
            + (f"{high:.2f}x." if high is not None else "beyond any bound.")
        )
        why, recommendation = _claim_plan(run, queue)
        yield Finding(
            key=f"backlog-{queue}",
            cause=Cause.BACKLOG_GROWTH,
            op=f"{queue}.claim",
            title=f"{queue}: cost per task grows {growth:.1f}x with the backlog "
            f"({small:,} to {large:,} waiting tasks){why}",
            detail=f"Claiming and completing at {small:,} waiting tasks ran at "
            f"{small_rate:,.0f}/s, at {large:,} at {large_rate:,.0f}/s: at that backlog "
            f"{_pct(1 - 1 / growth)} of each task's time is the backlog's. "
            + ", ".join(f"{size:,}: {rate:,.0f}/s" for size, rate in sweep)
            + band,
            evidence=tuple(
                Evidence(f"{queue} backlog_{size}_tasks_per_s", rate, "tasks/s", RESULTS)
                for size, rate in sweep
            ),
            recommendation=recommendation,
            cost=Cost(growth, "x per task", 1 - 1 / growth, Measure.WORKERS),
            support=Support(probe * len(sweep), "probe tasks", 100) if probe else None,
            subject=queue,
        )


def _claim_plan(run: RunAnalysis, queue: str) -> tuple[str, str]:
    """Why ``queue``'s claim grows with the backlog, and what removes it: its captured claim
    statement whose plan reads or sorts the waiting rows, with the index that fixes it (or,
    without a capture, how to get one)."""
    planned = sorted(
        (
            h
            for h in run.sql
            if h.op in (f"{queue}.claim", f"{queue}.backlog.claim") and h.plan.flagged
        ),
        key=lambda h: -h.total_ms,
    )
    recommendation = (
        "Its claim reads or sorts the waiting rows: see its claim "
        "statement's plan among the SQL hotspots (run with --queue capture_sql=true); an "
        "index whose leading columns match the claim's WHERE and ORDER BY keeps it an "
        "index search whatever the backlog."
    )
    if not planned:
        return "", recommendation
    claim = planned[0]
    what = "scans the table" if claim.plan.full_scans else "sorts the waiting rows"
    where = f" in {claim.caller}" if claim.caller else ""
    if claim.suggestion is not None:
        recommendation = (
            f"{claim.suggestion.ddl}: re-planned with it, the claim becomes "
            f"{' | '.join(claim.suggestion.plan.lines)}, an index search whatever "
            "the backlog."
        )
    return f": its claim {what} (`{claim.label}`{where})", recommendation


def _per_task_p50(step: StepResult, scenario: str) -> tuple[float, int] | None:
    """The median cost per task of ``step``'s claims in ``scenario`` (``drain``, ``cycle``)
    and the tasks claimed: a claim's median over the tasks per claim (its enqueues over its
    claims), or None without both."""
    claims = step.latencies.get(f"{scenario}.claim")
    enqueues = step.latencies.get(f"{scenario}.enqueue")
    if claims is None or enqueues is None or not claims.count or not enqueues.count:
        return None
    if claims.p50_ms is None or claims.p50_ms <= 0:
        return None
    return claims.p50_ms * claims.count / enqueues.count, enqueues.count


def drain_claims_grow(run: RunAnalysis) -> Iterable[Finding]:
    """Queues of a comparison whose claim costs more per task in the drain (up to its whole
    size waiting) than in the cycle (one task waiting): the claim's cost grows with the
    backlog, seen without the sweep. One claim latency over both scenarios is bimodal, and
    reads only as a tail. Its cost is the drain's claim time beyond the cycle's rate."""
    for step in run.steps:
        if step.counters.get("backlog_grows"):
            continue  # the sweep measured the growth itself (backlog_growth)
        drain, cycle = _per_task_p50(step, "drain"), _per_task_p50(step, "cycle")
        if drain is None or cycle is None:
            continue
        (drain_ms, tasks), (cycle_ms, _) = drain, cycle
        ratio = drain_ms / cycle_ms
        if ratio < DRAIN_CLAIM_RATIO or tasks < GROWTH_TASKS_FLOOR:
            continue
        queue = str(step.settings.get("contender", step.label))
        waiting = int(step.metrics.get("drain_tasks", 0))
        seconds = (drain_ms - cycle_ms) * tasks / 1e3
        cost = time_cost(run, seconds)
        why, recommendation = _claim_plan(run, queue)
        yield Finding(
            key=f"drain-claims-{queue}",
            cause=Cause.BACKLOG_GROWTH,
            op=f"{queue}.claim",
            title=f"{queue}.claim: cost per task grows with the backlog, {ratio:.1f}x in the "
            f"drain ({waiting:,} waiting at its start) over the cycle (one waiting){why}: "
            f"{_s(seconds)} ({_pct(cost.share)} of the run)",
            detail=f"{queue}'s claim took a median {_ms(drain_ms)} per task in the drain, "
            f"where the tasks wait, and {_ms(cycle_ms)} in the cycle, where each is claimed "
            f"as soon as it is enqueued: the same statement costs more the more tasks wait. "
            f"Its claim latency over both scenarios is therefore bimodal (a p99 far above "
            f"its median). {_s(seconds)} of the drain's {tasks:,} claims is beyond the "
            "cycle's cost per task. The backlog sweep (--param backlogs=1000,5000,20000) "
            "measures the growth.",
            evidence=(
                Evidence(f"{queue} drain.claim per task p50", drain_ms, "ms", RESULTS),
                Evidence(f"{queue} cycle.claim per task p50", cycle_ms, "ms", RESULTS),
            ),
            recommendation=recommendation,
            cost=cost,
            support=Support(tasks, "drain tasks", DRAIN_TASKS_FLOOR),
            subject=queue,
        )


# -- cause: memory --------------------------------------------------------------------------


def _memory_cost(category: CategoryBytes, snapshot: SnapshotByOperation, per_1k: float) -> Cost:
    share = category.bytes / snapshot.listed_bytes if snapshot.listed_bytes else 0.0
    return Cost(per_1k * share, "bytes/1k tasks", share, Measure.MEMORY)


def memory_growth(run: RunAnalysis) -> Iterable[Finding]:
    """Memory retained in steady state by operation and allocation site (heap-growth.json);
    without it, memray's leaked-at-exit stacks, with that caveat."""
    retained = run.retained
    heap = run.metrics.get("heap_growth_kib_per_1k_tasks")
    if retained is not None:
        per_1k = retained.bytes_per_1k_tasks
        snapshot = retained.growth
        source = retained.source
        tasks = retained.tasks
        where = "retained in the steady-state window (after warm-up, before teardown)"
    elif run.allocations is not None and heap is not None:
        per_1k = heap * 1024
        snapshot = run.allocations.leaked
        source = run.allocations.source
        tasks = _completed(run)
        where = (
            "still allocated when memray stopped tracking (CAVEAT: at teardown, not steady "
            "state: whatever the run freed on exit is missing)"
        )
    else:
        if heap is not None:
            yield Finding(
                key="memory-growth",
                cause=Cause.MEMORY_GROWTH,
                title=f"heap grows {heap:.1f} KiB per 1,000 tasks (no allocation sites)",
                detail="The memory workload's linear fit; no heap-growth.json or memray capture "
                "says where it was allocated.",
                evidence=(Evidence("heap growth per 1k tasks", heap, "KiB", RESULTS),),
                cost=Cost(heap * 1024, "bytes/1k tasks", 0.0, Measure.MEMORY),
            )
        return
    categories = [c for c in snapshot.categories if c.bytes > 0]
    if not categories:
        return
    verdict = next((v for v in run.targets if v.metric == "heap_growth_kib_per_1k_tasks"), None)
    floor = verdict.target * 1024 if verdict is not None else GROWTH_FLOOR_BYTES_PER_1K
    if per_1k < floor:
        yield Finding(
            key="memory-steady",
            cause=Cause.MEMORY_GROWTH,
            title=f"no retained growth: {per_1k / 1024:.2g} KiB per 1,000 tasks "
            + where.split(" (")[0],
            detail=f"Below {floor / 1024:.3g} KiB per 1,000 tasks (the leak target), growth is "
            "allocator and cache noise rather than retention. By operation: "
            + ", ".join(f"{c.category} {c.bytes / 1024:.3g} KiB" for c in categories)
            + ".",
            evidence=(Evidence("growth per 1k tasks", per_1k, "bytes", source),),
            cost=Cost(per_1k, "bytes/1k tasks", 0.0, Measure.MEMORY),
            support=Support(tasks, "tasks", GROWTH_TASKS_FLOOR),
        )
        return
    for category in categories[:3]:
        cost = _memory_cost(category, snapshot, per_1k)
        site = category.top_sites[0] if category.top_sites else None
        op = str(category.category)
        yield Finding(
            key=f"memory-growth-{op}",
            cause=Cause.MEMORY_GROWTH,
            op=op,
            title=f"{op}: memory retained per task: {cost.value / 1024:.3g} KiB per 1,000 tasks "
            f"({_pct(cost.share)} of the growth)"
            + (f", allocated in {site.function} ({site.file})" if site else ""),
            detail=f"Bytes {where}: {per_1k / 1024:.3g} KiB per 1,000 tasks over {tasks:,} "
            f"tasks. {op} stacks hold {category.bytes / 1024:.3g} KiB in "
            f"{category.allocations:,} allocations; by site: "
            + "; ".join(
                f"{s.function} ({s.file}) {s.bytes / 1024:.3g} KiB" for s in category.top_sites
            )
            + f". The listed stacks cover {_pct(snapshot.coverage)} of the growth; by "
            "operation: " + ", ".join(f"{c.category} {_pct(c.share)}" for c in categories) + ".",
            evidence=(
                Evidence("growth per 1k tasks", per_1k, "bytes", source),
                Evidence(f"{op} bytes retained", category.bytes, "bytes", source),
            ),
            recommendation=f"Find what keeps {site.function}'s objects alive after the task "
            "is done (a list, a cache, a closure) and drop the reference."
            if site
            else None,
            cost=cost,
            support=Support(tasks, "tasks", GROWTH_TASKS_FLOOR),
        )


def peak_memory(run: RunAnalysis) -> Iterable[Finding]:
    """What held the memory at the peak, by operation (other included) and site."""
    allocations = run.allocations
    if allocations is None:
        return
    categories = [c for c in allocations.peak.categories if c.bytes > 0]
    if not categories:
        return
    top = categories[0]
    site = top.top_sites[0] if top.top_sites else None
    yield Finding(
        key="peak-memory",
        cause=Cause.MEMORY_PEAK,
        op=str(top.category) if is_operation(top.category) else None,
        title=f"at the memory peak ({allocations.peak_memory_bytes / 2**20:.1f} MiB), "
        f"{top.category} held {top.bytes / 1024:.0f} KiB ({_pct(top.share)} of the listed stacks)"
        + (f", mostly {site.function}" if site else ""),
        detail="By operation at the peak: "
        + "; ".join(
            f"{c.category} {c.bytes / 1024:.0f} KiB in {c.allocations:,} allocations"
            + (f" (top site {c.top_sites[0].function})" if c.top_sites else "")
            for c in categories
        )
        + f". The listed stacks cover {_pct(allocations.peak.coverage)} of the peak.",
        evidence=(
            Evidence("peak memory", allocations.peak_memory_bytes, "bytes", MANIFEST),
            Evidence(f"{top.category} bytes at peak", top.bytes, "bytes", allocations.source),
        ),
        cost=Cost(top.bytes, "bytes", top.share, Measure.MEMORY),
    )


# -- information ----------------------------------------------------------------------------


def _tail_floor(metric: str) -> int | None:
    """Samples a percentile metric needs (``claim_p99_ms`` -> 100); None if not a tail."""
    match = re.search(r"_p(\d+)(?:_|$)", metric)
    if match is None:
        return None
    digits = match[1]
    quantile = int(digits) / 10 ** len(digits)
    if quantile <= 0 or quantile >= 1:
        return None
    floor: int = round(TAIL_SAMPLES_PER_QUANTILE / (1 - quantile))
    return max(1, floor)


def _tail_samples(run: RunAnalysis, metric: str) -> int | None:
    """How many samples ``metric`` (``claim_p99_ms_10_workers``) was computed from."""
    op = metric.split("_p", 1)[0]
    suffix = metric.split("_ms", 1)[1].lstrip("_") if "_ms" in metric else ""
    counts = []
    for step in run.steps:
        summary = step.latencies.get(op)
        if summary is None:
            continue
        label = step.label.replace(" ", "_")
        if suffix and suffix != label:
            continue
        counts.append(summary.count)
    if counts:
        # An unsuffixed metric is the worse phase's: the least-sampled step is its floor.
        return min(counts)
    calls = _op_calls(run)
    return calls.get(op)


def missed_targets(run: RunAnalysis) -> Iterable[Finding]:
    """Each target the run did not meet; a tail needs enough samples to be judged."""
    for verdict in run.targets:
        if verdict.passed or verdict.metric in COVERED_TARGETS:
            continue
        floor = _tail_floor(verdict.metric)
        samples = _tail_samples(run, verdict.metric) if floor is not None else None
        support = Support(samples, "samples", floor) if floor and samples is not None else None
        short = support is not None and not support.sufficient
        yield Finding(
            key=f"target-{verdict.metric}",
            cause=Cause.TARGET,
            op=verdict.metric.split("_", 1)[0] if floor else None,
            title=(
                f"not enough samples to judge {verdict.metric}: {samples} < {floor}"
                if short
                else f"target missed: {verdict.metric}"
            ),
            detail=(
                f"{verdict.metric} measured {verdict.measured:.4g} {verdict.unit}; the target is "
                f"{verdict.comparator} {verdict.target:g} {verdict.unit}"
                + (f" ({verdict.description})" if verdict.description else "")
                + "."
                + (
                    f" From {samples} samples: a p-tail from fewer than {floor} is one or two "
                    "calls; run a larger size."
                    if short
                    else ""
                )
            ),
            evidence=(Evidence(verdict.metric, verdict.measured, verdict.unit, RESULTS),),
            support=support,
        )


def latency_tails(run: RunAnalysis) -> Iterable[Finding]:
    """Operations whose p99 is far above their median (information: the causes explain it)."""
    for dist in run.latencies:
        if dist.op == "handler" or dist.p50_ms <= 0:
            continue
        ratio = dist.p99_ms / dist.p50_ms
        if ratio < TAIL_RATIO:
            continue
        yield Finding(
            key=f"tail-{dist.op}",
            cause=Cause.TAIL,
            op=dist.op,
            title=f"{dist.op} p99 is {ratio:.0f}x its median"
            if dist.count >= MIN_TAIL_SAMPLES
            else f"{dist.op} p99: not enough samples ({dist.count} < {MIN_TAIL_SAMPLES})",
            detail=f"{dist.op}: p50 {_ms(dist.p50_ms)}, p99 {_ms(dist.p99_ms)}, p99.9 "
            f"{_ms(dist.p999_ms)}, max {_ms(dist.max_ms)} over {dist.count:,} calls.",
            evidence=(
                Evidence(f"{dist.op} p50", dist.p50_ms, "ms", dist.source),
                Evidence(f"{dist.op} p99", dist.p99_ms, "ms", dist.source),
            ),
            support=Support(dist.count, "calls", MIN_TAIL_SAMPLES),
        )


def profiler_overhead(run: RunAnalysis) -> Iterable[Finding]:
    """The profiler's overhead, as information: one bare run against one profiled run is not
    a paired measurement (benchmarks/profiler_overhead.py pairs them)."""
    overhead = run.overhead
    if overhead is None or overhead.goal is None or overhead.ratio <= overhead.goal:
        return
    yield Finding(
        key="profiler-overhead",
        cause=Cause.OVERHEAD,
        title=f"{overhead.profiler} ran {overhead.ratio:.2f}x the bare run (one unpaired "
        f"pair; goal <= {overhead.goal:g}x)",
        detail=f"Rates under {overhead.profiler} against the bare run in "
        f"{overhead.baseline or 'the baseline'}: {overhead.ratio:.2f}x"
        + (f", wall time {overhead.wall_ratio:.2f}x" if overhead.wall_ratio else "")
        + ". One bare and one profiled run on a noisy machine (±30%) give no band: this is "
        "information, not a measurement of the profiler. Paired, interleaved measurements: "
        "`python -m benchmarks.profiler_overhead`. Absolute times in this profile are inflated; "
        "shares are what the ranking uses.",
        evidence=(Evidence("overhead ratio", overhead.ratio, "x", MANIFEST),),
    )


def where_time_goes(run: RunAnalysis) -> Iterable[Finding]:
    """The event loop's largest operation and the operation with the most SQL-code time: a
    description of the profile, not a cause."""
    for attribution in run.attributions:
        loop = attribution.role(ThreadRole.EVENT_LOOP)
        if loop is not None and loop.total > 0:
            ops = sorted(
                (c for c in loop.categories if is_operation(c.category)),
                key=lambda c: -c.wall,
            )
            idle = loop.get(Category.IDLE)
            measure = "wall" if attribution.measure == "wall" else "traced running"
            if ops:
                top = ops[0]
                functions = ", ".join(
                    f"{f.function} {_pct(f.total_time / top.wall)}"
                    for f in top.top_inner[:3]
                    if top.wall > 0
                )
                yield Finding(
                    key=f"largest-{attribution.profiler}",
                    cause=Cause.PROFILE,
                    op=str(top.category),
                    title=f"{top.category} takes the most event-loop {measure} time: "
                    f"{_pct(top.share)} ({attribution.profiler})",
                    detail=f"{attribution.source}: "
                    + ", ".join(f"{c.category} {_pct(c.share)}" for c in ops)
                    + (f", idle/wait {_pct(idle.share)}" if idle is not None else "")
                    + (
                        f". Inside {top.category}, by inclusive time outside SQL: {functions}."
                        if functions
                        else "."
                    ),
                    evidence=(
                        Evidence(
                            f"{top.category} share of event-loop time",
                            top.share,
                            "fraction",
                            attribution.source,
                        ),
                    ),
                    cost=Cost(top.wall, _unit(loop.unit), top.share, Measure.WALL),
                    support=Support(top.samples, "samples", SAMPLES_FLOOR),
                )
        yield from _busiest(run, attribution)


_ROLE_PLACES = {
    ThreadRole.SQLITE_THREAD: "on the connection threads",
    ThreadRole.EVENT_LOOP: "inline on the event loop",
    ThreadRole.OTHER_THREAD: "on other threads",
}


def _busiest(run: RunAnalysis, attribution: Attribution) -> Iterable[Finding]:
    store = attribution.store_time()
    totals = {category: sum(roles.values()) for category, roles in store.items()}
    busy = sum(totals.values())
    if busy <= 0:
        return
    ranked_ops = sorted(totals, key=lambda c: -totals[c])
    top = ranked_ops[0]
    where = ", ".join(
        f"{_s(seconds)} {_ROLE_PLACES[role]}"
        for role, seconds in sorted(store[top].items(), key=lambda item: -item[1])
    )
    functions = ", ".join(
        f"{f.function} {_pct(f.self_time / totals[top])}"
        for f in _store_functions(attribution, top)[:3]
    )
    unit = next((r.unit for r in attribution.roles if r.role in store[top]), "seconds")
    yield Finding(
        key=f"busiest-{attribution.profiler}",
        cause=Cause.PROFILE,
        op=str(top),
        title=f"{top} takes the most of the store's SQL time: {_pct(totals[top] / busy)} "
        f"({attribution.profiler})",
        detail=f"{attribution.source}, time in the store's code (taskqueue/store.py, where "
        "every statement runs) by operation: "
        + ", ".join(f"{c} {_pct(totals[c] / busy)}" for c in ranked_ops)
        + f". {top} ran {where}"
        + (f"; inside it, by self time: {functions}." if functions else "."),
        evidence=tuple(
            Evidence(f"{top} store time {_ROLE_PLACES[role]}", seconds, unit, attribution.source)
            for role, seconds in store[top].items()
        ),
        cost=time_cost(run, totals[top]) if unit == "seconds" else None,
    )


def _store_functions(attribution: Attribution, category: Op) -> list[FunctionTime]:
    """The functions with the most self time inside ``category``'s store code: every one of
    the connection threads' (they run nothing else for it), the store's own elsewhere."""
    merged: dict[tuple[str, str | None], FunctionTime] = {}
    for role in attribution.roles:
        entry = role.get(category)
        if entry is None or entry.store <= 0:
            continue
        for f in entry.top_self:
            if role.role is not ThreadRole.SQLITE_THREAD and not is_store_frame(
                Frame(f.function, f.file)
            ):
                continue
            key = (f.function, f.file)
            seen = merged.get(key)
            self_time = f.self_time + (seen.self_time if seen else 0.0)
            total = f.total_time + (seen.total_time if seen else 0.0)
            merged[key] = FunctionTime(f.function, f.file, self_time, total)
    return sorted(merged.values(), key=lambda f: -f.self_time)


def waiting_operations(run: RunAnalysis) -> Iterable[Finding]:
    """Operations whose event-loop time is mostly waiting for the connection thread."""
    for attribution in run.attributions:
        loop = attribution.role(ThreadRole.EVENT_LOOP)
        if loop is None or not loop.waits_known or loop.total <= 0:
            continue
        rows = []
        waited_total = 0.0
        for category in in_order(c.category for c in loop.categories if is_operation(c.category)):
            entry = loop.get(category)
            if entry is None or entry.wait is None or entry.share < 0.05 or entry.wall <= 0:
                continue
            fraction = entry.wait / entry.wall
            if fraction < 0.5:
                continue
            waited_total += entry.wait
            rows.append(f"{category} waited {_pct(fraction)} of its {_s(entry.wall)}")
        if not rows:
            continue
        share = waited_total / loop.total
        waited_for, trip = _waited_for(run)
        yield Finding(
            key=f"waiting-{attribution.profiler}",
            cause=Cause.WAITING,
            title=f"operations spend most of their event-loop time waiting for {waited_for} "
            f"({_pct(share)} of the loop's time)",
            detail=f"{attribution.profiler} ({attribution.source}): " + "; ".join(rows) + ". "
            f"The part of a wait {trip}.",
            evidence=(
                Evidence("waiting share of the loop", share, "fraction", attribution.source),
            ),
            cost=Cost(waited_total, _unit(loop.unit), share, Measure.WALL),
        )


_DATABASE_CLIENTS = ("asyncpg", "psycopg", "psycopg2", "pymysql", "aiomysql", "asyncmy")
"""Client libraries whose frames in a hot subtree are the wait for a server's reply."""


def _database_client(chain: Sequence[FunctionTime]) -> str | None:
    """The database client library the deepest frames of ``chain`` belong to, if any."""
    for function in reversed(chain):
        parts = (function.file or "").replace("\\", "/").split("/")
        for client in _DATABASE_CLIENTS:
            if client in parts:
                return client
    return None


def _waited_for(run: RunAnalysis) -> tuple[str, str]:
    """What a run's operations wait on, and what of a wait is not the operation's own work."""
    if _on_postgres(run):
        return "the PostgreSQL server", (
            "the server did not spend running the statement is the network round trip, the "
            "commit's flush and time queued behind other sessions' locks"
        )
    if run.workload == "comparison":
        # Other people's queues: a SQLite library's thread, or a server's reply.
        return "their database connection (a thread or a server)", (
            "the database did not spend on the operation is the trip there and back and time "
            "queued behind other calls"
        )
    return "the connection thread", (
        "the thread did not spend on the operation is the trip there and back and time "
        "queued behind other calls"
    )


PROGRAM_BLOCKING_SHARE = 0.1
"""A blocking call outside every operation of a profiled program is reported as a cause from
this share of the thread's time: below it, a program's own waits (reading its input, a
final join) are what programs do."""
EVENT_LOOP_FUNCTIONS = frozenset({"run_until_complete", "run_forever", "_run_once"})


def program_blocking(run: RunAnalysis) -> Iterable[Finding]:
    """A profiled program's blocking calls outside every operation (a ``time.sleep`` or an
    ``os.fsync`` in its consumer loop), named by the function that made them: the loop's
    time no operation accounts for. Workloads' own waits are their harness's, not looked at."""
    if run.workload != PROGRAM_WORKLOAD:
        return
    for attribution in run.attributions:
        role = attribution.role(ThreadRole.EVENT_LOOP)
        if role is None or role.total <= 0:
            continue
        per_thread = _per_thread(role)
        for entry in role.categories:
            if is_operation(entry.category):
                continue
            on_loop = any(
                f.function.rsplit(".", 1)[-1] in EVENT_LOOP_FUNCTIONS for f in entry.top_total
            )
            for call in entry.blocking:
                share = min(call.time / per_thread, 1.0) if per_thread > 0 else 0.0
                op = operation_name(call.caller)
                if op is None or share < PROGRAM_BLOCKING_SHARE:
                    continue
                where = (
                    f"{call.caller} ({_short(call.caller_file)})"
                    if call.caller_file
                    else call.caller
                )
                unit = _unit(role.unit)
                cost = (
                    time_cost(run, call.time)
                    if role.unit == "seconds"
                    else Cost(call.time, unit, share, Measure.WALL)
                )
                yield Finding(
                    key=f"program-blocking-{op}-{attribution.profiler}",
                    cause=Cause.LOOP_HOLD if on_loop else Cause.HOT_SUBTREE,
                    op=op,
                    subject=call.call.rsplit(".", 1)[-1],
                    title=f"{op}: blocking call {call.call} in {where} holds "
                    f"{_pct(share)} of the main thread ({_s(call.time)}), outside every "
                    "operation" + (": the event loop waits with it" if on_loop else ""),
                    detail=f"{attribution.profiler} ({attribution.source}): {call.samples:,} "
                    f"samples in {call.call} called from {where}, {_category_phrase(entry)}. "
                    "While it blocks, the thread does no other work: no job is taken, handled "
                    "or acknowledged.",
                    evidence=(
                        Evidence(
                            f"{call.call} in {call.caller} time",
                            call.time,
                            role.unit,
                            attribution.source,
                        ),
                        Evidence("main thread time", per_thread, role.unit, attribution.source),
                    ),
                    recommendation=f"Take {call.call} out of {call.caller}'s loop (wait for "
                    "work with a blocking read or a notification instead of sleeping, batch "
                    "fsyncs, or move the call to a thread of its own).",
                    cost=dataclasses.replace(cost, share=share),
                    support=Support(call.samples, "samples", SAMPLES_FLOOR),
                )


def _category_phrase(entry: CategoryTime) -> str:
    return f"in the {entry.category} time ({_pct(entry.share)} of the thread)"


RULES: tuple[Callable[[RunAnalysis], Iterable[Finding]], ...] = (
    sql_plans,
    wide_reads,
    waiting_statements,
    statements_per_call,
    read_backs,
    subtree_findings,
    own_code,
    program_blocking,
    round_trips,
    busy_polling,
    status_polling,
    handoff,
    contention,
    server_lock_waits,
    server_io_waits,
    server_plans,
    server_statements_per_call,
    asyncio_waits,
    worker_imbalance,
    backlog_growth,
    drain_claims_grow,
    memory_growth,
    peak_memory,
    missed_targets,
    latency_tails,
    profiler_overhead,
    waiting_operations,
    where_time_goes,
)


def run_findings(run: RunAnalysis) -> tuple[Finding, ...]:
    """Every rule's findings for ``run``, tagged with its run id."""
    return tuple(
        dataclasses.replace(finding, run_id=run.run_id) for rule in RULES for finding in rule(run)
    )


def agreement_findings(
    agreements: Iterable[RunAgreement], runs: Mapping[str, RunAnalysis]
) -> tuple[Finding, ...]:
    """One finding per compared pair (information): the profilers agree, or where not."""
    found = []
    for pair in agreements:
        a = pair.agreement
        name_a, name_b = a.source_a.split(":")[0], a.source_b.split(":")[0]
        key = f"agree-{pair.run_a}-{pair.run_b}-{a.role}"
        if not a.comparable:
            found.append(
                Finding(
                    key=key,
                    cause=Cause.AGREEMENT,
                    title=f"too few samples to compare {name_a} and {name_b} on the {a.role}",
                    detail=f"Sampling noise ({_pct(a.tolerance)} of the operations' time) is "
                    f"larger than the differences between operations (runs {pair.run_a} and "
                    f"{pair.run_b}); run a larger size (e.g. --size default) to compare them.",
                    evidence=(),
                )
            )
            continue
        if a.agree:
            found.append(
                Finding(
                    key=key,
                    cause=Cause.AGREEMENT,
                    title=f"{name_a} and {name_b} rank the operations alike on the {a.role}",
                    detail=f"Ranking by running time: {' > '.join(a.ranking_a)} "
                    f"(runs {pair.run_a} and {pair.run_b}; differences under "
                    f"{_pct(a.tolerance)} count as noise).",
                    evidence=tuple(
                        Evidence(f"{op} share ({side})", share, "fraction", source)
                        for side, source, shares in (
                            ("a", a.source_a, a.shares_a),
                            ("b", a.source_b, a.shares_b),
                        )
                        for op, share in shares
                    ),
                )
            )
            continue
        worst = max(
            a.disagreements,
            key=lambda d: abs(d.shares_a[0] - d.shares_a[1]) + abs(d.shares_b[0] - d.shares_b[1]),
        )
        overheads = {
            run.profiler: run.overhead.ratio
            for run in (runs.get(pair.run_a), runs.get(pair.run_b))
            if run is not None and run.overhead is not None
        }
        cheaper = min(overheads, key=lambda p: overheads[p]) if len(overheads) == 2 else None
        found.append(
            Finding(
                key=f"disagree-{pair.run_a}-{pair.run_b}-{a.role}",
                cause=Cause.AGREEMENT,
                title=f"profilers disagree on the {a.role}: {worst.first} vs {worst.second}",
                detail=f"{a.source_a}: {worst.first} {_pct(worst.shares_a[0])}, {worst.second} "
                f"{_pct(worst.shares_a[1])}; {a.source_b}: {worst.first} "
                f"{_pct(worst.shares_b[0])}, {worst.second} {_pct(worst.shares_b[1])} (shares "
                f"of the operations' running time; noise tolerance {_pct(a.tolerance)}). "
                f"Rankings: {' > '.join(a.ranking_a)} vs {' > '.join(a.ranking_b)}.",
                evidence=(
                    Evidence(f"{worst.first} share (a)", worst.shares_a[0], "fraction", a.source_a),
                    Evidence(f"{worst.first} share (b)", worst.shares_b[0], "fraction", a.source_b),
                ),
                recommendation=(
                    f"Weigh {cheaper}'s ranking higher: its overhead was {overheads[cheaper]:.2f}x "
                    f"against {max(overheads.values()):.2f}x."
                    if cheaper
                    else None
                ),
            )
        )
    return tuple(found)


__all__: Sequence[str] = (
    "OVERHEAD_GOALS",
    "RULES",
    "agreement_findings",
    "hot_subtrees",
    "run_findings",
    "wall_s",
)
