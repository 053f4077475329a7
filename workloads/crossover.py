"""crossover: the same drain on SQLite and on PostgreSQL at 1..20 workers, in both modes.

Per worker count and mode, one drain on a fresh SQLite file and one on a fresh scratch
database of the PostgreSQL server, back to back (so both see the same load on a shared
machine). Each step records throughput, the workers' busy time per task (the per-task cost:
claims, acks and handlers, with every wait on a lock or a server reply), the claim's
latency and the full cycle of every task (``finished_at - started_at`` from the queue's own
rows: from the claim that took it to the ack that finished it), and what each worker did.
``analysis.crossover`` reads the steps and says where one backend overtakes the other.

The server is the one ``--queue backend=postgresql://...`` names, else ``QUEUEPROF_PG``
(:func:`workloads.runner.plan_run` resolves it before anything is written).
"""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from runs import LatencySummary, StepResult, WorkloadResult
from taskqueue import QueueConfig, is_dsn

from .base import DerivesNothingAfterRun
from .context import RunContext
from .errors import ParameterError
from .params import (
    WORKER_MODES,
    Size,
    WorkloadParams,
    param,
    payload_bytes_param,
    task_type_param,
    tasks_param,
    worker_counts_param,
)
from .tasks import op_latencies
from .tasks import workers_label as _workers
from .workers import MeasuredDrain, fairness_metrics, measure_drain, worker_shares

SQLITE = "sqlite"
POSTGRESQL = "postgresql"
BACKENDS = (SQLITE, POSTGRESQL)
"""The backends a step's ``backend`` setting names, in the order each pair runs."""

CYCLE_QUERY = "SELECT finished_at - started_at FROM tasks WHERE state = 'done'"
"""Every finished task's full cycle, in seconds: from its claim to the ack that ended it
(both backends stamp these columns with the client's wall clock)."""


@dataclass(frozen=True)
class CrossoverParams(WorkloadParams):
    """Options of the crossover workload."""

    workload_name = "crossover"

    worker_counts: tuple[int, ...] = worker_counts_param((1, 2, 5, 10, 20))
    modes: tuple[str, ...] = param(
        WORKER_MODES, "worker modes to run, in order", choices=WORKER_MODES
    )
    tasks: int = tasks_param(10_000, "tasks drained at each step, on each backend")
    task_type: str = task_type_param()
    payload_bytes: int = payload_bytes_param()
    rounds: int = param(
        1,
        "times each worker count runs on both backends (the backend that goes first "
        "alternates); the analysis takes each backend's median",
        minimum=1,
        maximum=20,
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(set(self.worker_counts)) < 2:
            raise ParameterError(
                f"parameter worker_counts={','.join(map(str, self.worker_counts))}: a crossover "
                "needs at least two different worker counts, e.g. worker_counts=1,5,20"
            )
        if self.tasks < max(self.worker_counts):
            raise ParameterError(
                f"parameter tasks={self.tasks}: fewer tasks than the {max(self.worker_counts)} "
                f"workers of the largest step, so some would get none; give tasks >= "
                f"{max(self.worker_counts)} (e.g. tasks={50 * max(self.worker_counts)})"
            )


class CrossoverWorkload(DerivesNothingAfterRun):
    """SQLite against PostgreSQL at each worker count: throughput, cost per task, tails."""

    name = "crossover"
    description = "SQLite vs PostgreSQL at 1..20 workers, both modes: where one overtakes"
    params_type = CrossoverParams
    queue_defaults = ""
    needs_postgres = True
    """:func:`workloads.runner.plan_run` gives this workload a PostgreSQL server always."""
    sizes: Mapping[Size, CrossoverParams] = {
        Size.SMOKE: CrossoverParams(worker_counts=(1, 2, 5), tasks=3_000),
        Size.DEFAULT: CrossoverParams(tasks=10_000),
        Size.FULL: CrossoverParams(worker_counts=(1, 2, 5, 10, 15, 20), tasks=20_000, rounds=3),
    }

    async def run(self, params: CrossoverParams, ctx: RunContext) -> WorkloadResult:
        """Every (mode, worker count) on SQLite then PostgreSQL, each recorded when done."""
        if ctx.queue_config.backend == SQLITE:
            raise ParameterError(
                "the crossover workload needs a PostgreSQL server: run it through "
                "`queueprof run crossover` with --queue backend=postgresql://... or QUEUEPROF_PG"
            )
        for mode in params.modes:
            for workers in params.worker_counts:
                for round_ in range(1, params.rounds + 1):
                    # Alternating which backend goes first evens out drifts in the load.
                    order = BACKENDS if round_ % 2 else BACKENDS[::-1]
                    for backend in order:
                        await self._step(params, backend, mode, workers, round_, ctx)
                        self._summarise(ctx)
        return ctx.partial.result(complete=True)

    async def _step(
        self,
        params: CrossoverParams,
        backend: str,
        mode: str,
        workers: int,
        round_: int,
        ctx: RunContext,
    ) -> None:
        label = f"{backend}, {_workers(workers)}, {mode}"
        if params.rounds > 1:
            label += f", round {round_}"
        where = f"crossover-{mode}-w{workers}"
        database = ctx.sqlite_database(where) if backend == SQLITE else ctx.database(where)
        measured = await measure_drain(
            database,
            ctx.queue_config,
            params,
            workers=workers,
            mode=mode,
            label=label,
            progress=ctx.progress,
        )
        cycles = await cycle_seconds(database)
        ctx.partial.step(crossover_step(label, backend, mode, workers, measured, cycles, round_))

    @staticmethod
    def _summarise(ctx: RunContext) -> None:
        """Totals over the steps so far (so partial results have them too)."""
        for name in ("lost", "dead", "sqlite_busy_retries", "lock_wait_us"):
            ctx.partial.count(name, sum(s.counters.get(name, 0) for s in ctx.partial.steps))
        idle = sum(1 for s in ctx.partial.steps for w in s.workers if w.completed == 0)
        ctx.partial.count("idle_workers", idle)


def crossover_step(
    label: str,
    backend: str,
    mode: str,
    workers: int,
    measured: MeasuredDrain,
    cycles_s: list[float],
    round_: int = 1,
) -> StepResult:
    """One backend's drain at one worker count, as the analysis reads it: ``backend``,
    ``mode``, ``workers`` and ``round`` settings; ``tasks_per_s``, ``busy_us_per_task``,
    ``claim_p99_ms`` and ``cycle_p99_ms`` metrics; the ``cycle`` latency beside the queue's
    operations."""
    pool, stats = measured.pool, measured.stats
    total = pool.total
    shares = worker_shares(pool)
    latencies = op_latencies(stats)
    metrics = {"tasks_per_s": measured.tasks_per_s, **fairness_metrics(shares)}
    if total.completed:
        metrics["busy_us_per_task"] = 1e6 * sum(s.busy_s for s in shares) / total.completed
    claim = latencies.get("claim")
    if claim is not None and claim.p99_ms is not None:
        metrics["claim_p99_ms"] = claim.p99_ms
    if cycles_s:
        cycle = LatencySummary.from_seconds(cycles_s)
        latencies["cycle"] = cycle
        if cycle.p99_ms is not None:
            metrics["cycle_p99_ms"] = cycle.p99_ms
    return StepResult(
        label=label,
        settings={"backend": backend, "workers": workers, "mode": mode, "round": round_},
        metrics=metrics,
        latencies=latencies,
        counters=measured.counters(),
        workers=shares,
    )


async def cycle_seconds(database: Path | str) -> list[float]:
    """The full cycle of every finished task in the queue at ``database`` (a SQLite file or a
    PostgreSQL URL), read after its queue has closed."""
    if isinstance(database, Path):
        return await asyncio.to_thread(_sqlite_cycles, database)
    import asyncpg  # only on PostgreSQL

    conn = await asyncpg.connect(database)
    try:
        return [float(row[0]) for row in await conn.fetch(CYCLE_QUERY)]
    finally:
        await conn.close()


def _sqlite_cycles(path: Path) -> list[float]:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return [float(row[0]) for row in db.execute(CYCLE_QUERY)]
    finally:
        db.close()


def with_postgres_server(config: QueueConfig, server_env: str | None) -> QueueConfig:
    """``config`` with a PostgreSQL backend: its own, else the URL in ``QUEUEPROF_PG``
    (``server_env``); :class:`ParameterError` naming both when neither names a server."""
    if config.backend != SQLITE:
        return config
    if not server_env:
        raise ParameterError(
            "the crossover workload runs every step on SQLite and on PostgreSQL and needs a "
            "PostgreSQL server: pass --queue backend=postgresql://USER@HOST:PORT/DATABASE or "
            "set QUEUEPROF_PG=postgresql://USER@HOST:PORT/DATABASE (neither is given)"
        )
    if not is_dsn(server_env):
        raise ParameterError(
            f"QUEUEPROF_PG={server_env!r}: the crossover workload needs a postgresql:// URL "
            "there (e.g. postgresql://postgres@127.0.0.1:5432/postgres), or pass "
            "--queue backend=postgresql://..."
        )
    return dataclasses.replace(config, backend=server_env)
