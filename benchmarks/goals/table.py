"""The goal table: each row's goals, the verdicts on measured figures, the table and the JSON.

Judging is pure (figures in, :class:`~runs.Verdict` out), so it is tested on
hand-made numbers; :func:`run_row` is where a row's measurement and its verdict meet.
"""

from __future__ import annotations

import math
import os
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table

from benchmarks.profiler_overhead import GOALS as OVERHEAD_GOALS
from benchmarks.profiler_overhead import VIZTRACER_SIZE_GOAL_MB
from queueprof.render import number
from runs import QueueprofError, Verdict, now_iso
from taskqueue import TaskQueueError
from workloads.environment import capture_environment
from workloads.goals import (
    GOAL_CLAIM_MAX_MS,
    GOAL_CYCLE_RATIO,
    GOAL_E2E_MS,
    GOAL_KILL_RECLAIM_X_LEASE,
    GOAL_LOAD_RSS_RATIO,
    GOAL_LOAD_S,
    GOAL_OP_P50_US,
    GOAL_PG_CYCLE_RATIO,
    GOAL_PG_PEERS_RATIO,
    GOAL_PG_PROCESSES_20_CLAIM_P99_MS,
    GOAL_PG_WORKERS_10_RATIO,
    GOAL_PROCESSES_TASKS_PER_S,
    GOAL_PROFILE_CPU_S,
    GOAL_WORKERS_10_RATIO,
    GOAL_WORKERS_20_RATIO,
)
from workloads.targets import COMPARATORS

from . import PROG, GoalsError, Say
from .measure import (
    Measured,
    Sizes,
    measure_analysis_load,
    measure_cycle_1_worker,
    measure_latency_500,
    measure_op_p50,
    measure_perfetto_trace,
    measure_pg_cycle_1_worker,
    measure_pg_hosts_kill,
    measure_pg_processes_20,
    measure_pg_profiler_overhead,
    measure_pg_vs_peers,
    measure_pg_workers_10,
    measure_processes_10,
    measure_profile_cpu,
    measure_profiler_overhead,
    measure_workers_10,
    measure_workers_20,
)

SCHEMA_VERSION = 1
"""Version of the goals JSON (``--save``). Bump on any change of its shape."""


def _figure(figures: Mapping[str, float], name: str) -> float:
    try:
        return float(figures[name])
    except KeyError:
        raise GoalsError(
            f"figure {name!r} was not measured (have: {', '.join(sorted(figures)) or 'none'})"
        ) from None


GOAL_COMPARATORS = (">=", "<=", "==")
"""The ways a goal goes: at least, at most, exactly (counts that must be 0)."""


@dataclass(frozen=True)
class Goal:
    """One goal of a row: the figure it reads, which way that must go, and the target."""

    name: str
    figure: str
    comparator: str
    target: float
    unit: str

    def __post_init__(self) -> None:
        if self.comparator not in GOAL_COMPARATORS:
            raise ValueError(
                f"goal {self.name!r}: comparator {self.comparator!r} is not one of "
                f"{', '.join(GOAL_COMPARATORS)}"
            )

    def judge(self, figures: Mapping[str, float]) -> Verdict:
        """The check of this goal on measured ``figures``, as the workloads' targets are
        checked: a :class:`~runs.Verdict` whose metric is the figure's key and
        whose description is the goal's name (a NaN never passes)."""
        measured = _figure(figures, self.figure)
        return Verdict(
            metric=self.figure,
            measured=measured,
            target=self.target,
            comparator=self.comparator,
            unit=self.unit,
            passed=COMPARATORS[self.comparator](measured, self.target),
            description=self.name,
        )


def shown(check: Verdict) -> str:
    """``ratio 0.410x``, ``claim max 12.30 ms``: a goal's check as the table prints it."""
    return f"{check.description} {number(check.measured)}{_unit(check.unit)}"


def check_dict(check: Verdict) -> dict[str, Any]:
    """A goal's check as the JSON holds it: the goal, the measured figure and the verdict."""
    return {
        "name": check.description,
        "figure": check.metric,
        "comparator": check.comparator,
        "target": check.target,
        "unit": check.unit,
        "measured": check.measured,
        "passed": check.passed,
    }


PASS, FAIL, ERROR = "PASS", "FAIL", "ERROR"


def verdict(checks: Sequence[Verdict], error: str | None = None) -> str:
    """``ERROR`` if the row was not measured, else ``PASS`` only when every check passed."""
    if error is not None or not checks:
        return ERROR
    return PASS if all(c.passed for c in checks) else FAIL


def _unit(unit: str) -> str:
    return unit if unit in ("x", "") else f" {unit}"


@dataclass(frozen=True)
class Row:
    """One row of the issue's goal table: its wording, how to measure it, how to judge it."""

    key: str
    metric: str
    seed: str
    goal: str
    measure: Callable[[Sizes, Path, Say], Measured]
    goals: tuple[Goal, ...]

    def judge(self, figures: Mapping[str, float]) -> tuple[Verdict, ...]:
        """Every goal of the row checked on ``figures``; raises GoalsError if one is missing."""
        return tuple(goal.judge(figures) for goal in self.goals)


ROWS: Mapping[str, Row] = {
    row.key: row
    for row in (
        Row(
            "cycle_1_worker",
            "1 worker, claim and ack one at a time",
            "> 50 tasks/s",
            f">= {GOAL_CYCLE_RATIO}x plain sqlite3 doing the same cycle on one connection",
            measure_cycle_1_worker,
            (Goal("ratio", "ratio", ">=", GOAL_CYCLE_RATIO, "x"),),
        ),
        Row(
            "workers_10",
            "10 workers, default strategy",
            "> 300 tasks/s",
            f">= {GOAL_WORKERS_10_RATIO}x plain sqlite3 doing the cycle with claims of 100; "
            "every worker does work",
            measure_workers_10,
            (
                Goal("ratio", "ratio", ">=", GOAL_WORKERS_10_RATIO, "x"),
                Goal("idle workers", "idle_workers", "==", 0, ""),
            ),
        ),
        Row(
            "workers_20",
            "20 workers",
            "20+ workers",
            f">= {GOAL_WORKERS_20_RATIO}x the best worker count; claim max <= "
            f"{GOAL_CLAIM_MAX_MS:g} ms; 0 SQLITE_BUSY; every worker does work",
            measure_workers_20,
            (
                Goal("of best", "ratio_to_best", ">=", GOAL_WORKERS_20_RATIO, "x"),
                Goal("claim max", "claim_max_ms_20", "<=", GOAL_CLAIM_MAX_MS, "ms"),
                Goal("SQLITE_BUSY", "sqlite_busy_20", "==", 0, ""),
                Goal("idle workers", "idle_workers_20", "==", 0, ""),
            ),
        ),
        Row(
            "processes_10",
            "10 worker processes",
            "-",
            f">= {GOAL_PROCESSES_TASKS_PER_S:,.0f} tasks/s; 0 errors, 0 lost, 0 duplicated",
            measure_processes_10,
            (
                Goal("rate", "tasks_per_s", ">=", GOAL_PROCESSES_TASKS_PER_S, "tasks/s"),
                Goal("errors", "errors", "==", 0, ""),
                Goal("lost", "lost", "==", 0, ""),
                Goal("duplicated", "duplicated", "==", 0, ""),
            ),
        ),
        Row(
            "op_p50",
            "enqueue / claim / status p50",
            "10 / 20 / 5 ms",
            "<= " + " / ".join(f"{v:g}" for v in GOAL_OP_P50_US.values()) + " us",
            measure_op_p50,
            tuple(Goal(op, f"{op}_p50_us", "<=", v, "us") for op, v in GOAL_OP_P50_US.items()),
        ),
        Row(
            "latency_500",
            "end-to-end latency at 500 tasks/s offered, 5 workers",
            "p50 100, p95 500, p99 1000 ms",
            ", ".join(f"{p} <= {v:g}" for p, v in GOAL_E2E_MS.items()) + " ms",
            measure_latency_500,
            tuple(Goal(p, f"e2e_{p}_ms", "<=", v, "ms") for p, v in GOAL_E2E_MS.items()),
        ),
        Row(
            "profiler_overhead",
            "profiler overhead (profiled / bare, same run)",
            "-",
            ", ".join(f"{n} <= {v:g}x" for n, v in OVERHEAD_GOALS.items()),
            measure_profiler_overhead,
            tuple(Goal(n, f"{n}_ratio", "<=", v, "x") for n, v in OVERHEAD_GOALS.items()),
        ),
        Row(
            "perfetto_trace",
            "Perfetto trace of a 10,000-task run",
            "-",
            f"<= {VIZTRACER_SIZE_GOAL_MB:g} MB, opens in the Perfetto UI (tox -e viewers)",
            measure_perfetto_trace,
            (Goal("size", "trace_mb", "<=", VIZTRACER_SIZE_GOAL_MB, "MB"),),
        ),
        Row(
            "analysis_load",
            "analysis of a 150 MB Chrome trace",
            "-",
            f"<= {GOAL_LOAD_S:g} s, RSS <= {GOAL_LOAD_RSS_RATIO:g}x the file",
            measure_analysis_load,
            (
                Goal("load", "load_s", "<=", GOAL_LOAD_S, "s"),
                Goal("peak RSS/file", "rss_ratio", "<=", GOAL_LOAD_RSS_RATIO, "x"),
            ),
        ),
        Row(
            "pg_cycle_1_worker",
            "PostgreSQL backend, 1 worker, one task per call",
            "-",
            f">= {GOAL_PG_CYCLE_RATIO}x plain asyncpg running the same statements",
            measure_pg_cycle_1_worker,
            (Goal("ratio", "ratio", ">=", GOAL_PG_CYCLE_RATIO, "x"),),
        ),
        Row(
            "pg_workers_10",
            "PostgreSQL backend, 10 workers, default batching",
            "-",
            f">= {GOAL_PG_WORKERS_10_RATIO}x plain asyncpg claiming 100 at a time; every "
            "worker does work",
            measure_pg_workers_10,
            (
                Goal("ratio", "ratio", ">=", GOAL_PG_WORKERS_10_RATIO, "x"),
                Goal("idle workers", "idle_workers", "==", 0, ""),
            ),
        ),
        Row(
            "pg_processes_20",
            "PostgreSQL backend, 20 workers over 4 processes",
            "-",
            f"0 lost, 0 duplicated, claim p99 <= {GOAL_PG_PROCESSES_20_CLAIM_P99_MS:g} ms",
            measure_pg_processes_20,
            (
                Goal("lost", "lost", "==", 0, ""),
                Goal("duplicated", "duplicated", "==", 0, ""),
                Goal("claim p99", "claim_p99_ms", "<=", GOAL_PG_PROCESSES_20_CLAIM_P99_MS, "ms"),
            ),
        ),
        Row(
            "pg_hosts_kill",
            "PostgreSQL backend, 3 hosts x 4 processes under a host SIGKILL",
            "-",
            "0 lost, 0 duplicated; the host's tasks in flight reclaimed within "
            f"{GOAL_KILL_RECLAIM_X_LEASE:g} leases of the kill",
            measure_pg_hosts_kill,
            (
                Goal("lost", "lost", "==", 0, ""),
                Goal("duplicated", "duplicated", "==", 0, ""),
                Goal("kills in flight", "kills_with_tasks_in_flight", ">=", 1, ""),
                Goal("reclaim", "kill_reclaim_max_x_lease", "<=", GOAL_KILL_RECLAIM_X_LEASE, "x"),
            ),
        ),
        Row(
            "pg_vs_peers",
            "PostgreSQL backend against pgqueuer and procrastinate, same server: drain and "
            "full cycle",
            "-",
            f">= {GOAL_PG_PEERS_RATIO:g}x the better peer, at the peers' documented defaults "
            "(ours: QueueConfig()) and at their best documented settings (ours: "
            "synchronous_commit=off, as theirs); 0 lost",
            measure_pg_vs_peers,
            (
                *(
                    Goal(
                        f"{scenario} vs {setting}",
                        f"{scenario}_x_peers_{setting}",
                        ">=",
                        GOAL_PG_PEERS_RATIO,
                        "x",
                    )
                    for setting in ("defaults", "best")
                    for scenario in ("drain", "cycle")
                ),
                Goal("lost", "lost", "==", 0, ""),
            ),
        ),
        Row(
            "pg_profiler_overhead",
            "profiler overhead on the PostgreSQL backend (profiled / bare, same run)",
            "-",
            ", ".join(f"{n} <= {v:g}x" for n, v in OVERHEAD_GOALS.items()),
            measure_pg_profiler_overhead,
            tuple(Goal(n, f"{n}_ratio", "<=", v, "x") for n, v in OVERHEAD_GOALS.items()),
        ),
        Row(
            "profile_cpu",
            "tox -e profile-cpu in a warm env",
            "-",
            f"<= {GOAL_PROFILE_CPU_S:g} s wall",
            measure_profile_cpu,
            (Goal("wall", "wall_s", "<=", GOAL_PROFILE_CPU_S, "s"),),
        ),
    )
}


@dataclass(frozen=True)
class RowResult:
    """A measured (or failed) row: its figures, checks, verdict and reproducing command."""

    row: Row
    command: str
    measured: Measured
    checks: tuple[Verdict, ...]
    seconds: float
    error: str | None = None
    loadavg: tuple[float, float] = (math.nan, math.nan)
    """The machine's 1-minute load average before and after the row: on a shared machine,
    above the CPU count, a single-threaded side (plain sqlite3) gets a smaller share of the
    CPUs than the queue's two threads (event loop, SQLite thread), which flatters ratios."""

    @property
    def verdict(self) -> str:
        """PASS, FAIL or ERROR."""
        return verdict(self.checks, self.error)

    def to_dict(self) -> dict[str, Any]:
        """The row's JSON form."""
        return {
            "key": self.row.key,
            "metric": self.row.metric,
            "seed_target": self.row.seed,
            "goal": self.row.goal,
            "verdict": self.verdict,
            "checks": [check_dict(c) for c in self.checks],
            "figures": self.measured.figures,
            "command": self.command,
            "sources": self.measured.sources,
            "notes": self.measured.notes,
            "error": self.error,
            "seconds": self.seconds,
            "loadavg_1m": {"before": self.loadavg[0], "after": self.loadavg[1]},
        }


def row_command(key: str, quick: bool) -> str:
    """The command that measures row ``key`` alone."""
    return f"{PROG}{' --quick' if quick else ''} --only {key}"


def run_row(row: Row, sizes: Sizes, quick: bool, say: Say) -> RowResult:
    """Measure and judge one row; a failure to measure becomes the row's ``error``."""
    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    measured = Measured()
    checks: tuple[Verdict, ...] = ()
    error = None
    with tempfile.TemporaryDirectory(prefix=f"queueprof-goals-{row.key}-") as scratch:
        try:
            measured = row.measure(sizes, Path(scratch), say)
            checks = row.judge(measured.figures)
        except (QueueprofError, TaskQueueError, OSError, subprocess.SubprocessError) as crash:
            error = f"{type(crash).__name__}: {crash}"
        except SystemExit as crash:  # profiler_overhead's child helper exits on a failed child
            error = f"SystemExit: {crash}"
    return RowResult(
        row,
        row_command(row.key, quick),
        measured,
        checks,
        time.perf_counter() - started,
        error,
        (load_before, os.getloadavg()[0]),
    )


def goals_document(
    results: Sequence[RowResult], quick: bool, sizes: Sizes, load: Mapping[str, Any]
) -> dict[str, Any]:
    """The schema-versioned JSON of a goals run: environment once, then every row."""
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "goals",
        "created_at": now_iso(),
        "quick": quick,
        "sizes": asdict(sizes),
        "environment": capture_environment(),
        "machine_load": dict(load),
        "rows": [r.to_dict() for r in results],
        "verdicts": {r.row.key: r.verdict for r in results},
    }


VERDICT_STYLE = {PASS: "green", FAIL: "red", ERROR: "yellow"}


def render_table(results: Sequence[RowResult], title: str) -> Table:
    """The goal table: metric, seed, goal, measured, verdict, reproducing command."""
    table = Table(title=title, title_justify="left", show_lines=True)
    table.add_column("metric", overflow="fold", ratio=3)
    table.add_column("seed target", overflow="fold", ratio=2)
    table.add_column("goal", overflow="fold", ratio=4)
    table.add_column("measured", overflow="fold", ratio=4)
    table.add_column("verdict")
    table.add_column("reproduce", overflow="fold", ratio=3)
    for r in results:
        if r.error is not None:
            measured = f"not measured: {r.error}"
        else:
            measured = "; ".join(shown(c) + ("" if c.passed else " (fail)") for c in r.checks)
            if r.measured.detail:
                measured += f" ({r.measured.detail})"
        style = VERDICT_STYLE[r.verdict]
        table.add_row(
            escape(r.row.metric),
            escape(r.row.seed),
            escape(r.row.goal),
            escape(measured),
            f"[{style}]{r.verdict}[/{style}]",
            escape(r.command),
        )
    return table


def parse_only(text: str | None) -> list[str]:
    """Row keys from ``--only a,b``; every row when None. Raises ValueError on unknown keys."""
    if text is None:
        return list(ROWS)
    keys = [k.strip() for k in text.split(",") if k.strip()]
    unknown = [k for k in keys if k not in ROWS]
    if unknown or not keys:
        named = ", ".join(repr(k) for k in unknown) or "no row"
        raise ValueError(f"--only: {named} is not a row; valid rows: {', '.join(ROWS)}")
    return list(dict.fromkeys(keys))
