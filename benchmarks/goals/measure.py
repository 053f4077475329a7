"""The measurements of the goal table: sizes, and one function per row returning figures.

Each ``measure_*`` takes the :class:`Sizes`, a scratch folder of its own and a ``say``
callback for progress, and returns :class:`Measured` figures; judging them is
:mod:`benchmarks.goals.table`'s job.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from benchmarks.analysis_load import CHILD as LOAD_CHILD
from benchmarks.analysis_load import write_trace
from benchmarks.profiler_overhead import GOALS as OVERHEAD_GOALS
from benchmarks.profiler_overhead import Overhead, Round, interleaved_pairs
from benchmarks.queue_vs_sqlite import raw_batched, raw_cycle
from profilers import get_profiler
from queueprof.profiled import RunRequest
from runs import MANIFEST, Manifest, RunStatus, WorkloadResult
from taskqueue import QueueConfig, TaskQueue, WorkerEngine, redact_dsn, run_async_workers
from workloads.adapters.catalog import POSTGRES_NAMES
from workloads.adapters.plugins import installed_plugins
from workloads.goals import E2E_PERCENTILES, OPERATIONS
from workloads.runner import RunOutcome, execute

from . import ROOT, GoalsError, Say
from .tox_env import run_tox_commands

Figures = dict[str, float]


@dataclass(frozen=True)
class Sizes:
    """How much each row measures. The defaults (``FULL``) give the figures the goals are
    about, in about 3 minutes on the 2-core reference machine; ``QUICK`` shows the rows work."""

    rounds: int = 9
    """Interleaved rounds of the queue-vs-sqlite3 rows (each side's best is judged)."""
    cycle_tasks: int = 3_000
    batched_tasks: int = 20_000
    concurrency_tasks: int = 20_000
    """Tasks per worker count: at 60,000-90,000 tasks/s a step of 3,000 lasted 40 ms, and one
    step's hiccup made it the 'best' count."""
    concurrency_rounds: int = 3
    """Sweeps over 1..20 workers; each worker count's rate is the median over them."""
    process_tasks: int = 30_000
    stress_duration_s: float = 5.0
    dbops_tasks: int = 2_000
    latency_tasks: int = 5_000
    overhead_tasks: int = 10_000
    overhead_rounds: int = 40
    """Profiled/bare pairs of drains per profiler. One pair's ratio swings 0.8-1.3x on the
    shared VM with the machine's own speed: the median needs many (see
    benchmarks.profiler_overhead)."""
    trace_tasks: int | None = None
    """Tasks of the Perfetto row; None keeps ``tox -e profile-trace``'s own count."""
    load_mb: float = 150.0
    profile_cpu_args: tuple[str, ...] = ()
    """Put where ``{posargs}`` is in ``tox -e profile-cpu``'s commands."""
    pg_cycle_tasks: int = 1_000
    """Tasks per side per round of the Postgres one-at-a-time row: each task is two commits,
    each waiting for the server's WAL flush with synchronous_commit=on (5 ms here)."""
    pg_batched_tasks: int = 20_000
    hosts_duration_s: float = 8.0
    """Seconds of load of the hosts row; one host is SIGKILLed halfway."""
    pg_peers_tasks: int = 2_000
    """Tasks per scenario per contender of the PostgreSQL peers row (the slow peers run
    fewer within ``pg_peers_budget_s``; rates are per task)."""
    pg_peers_rounds: int = 3
    pg_peers_budget_s: float = 3.0
    """Seconds each contender's scenario may take: procrastinate's defaults do ~70 tasks/s,
    so 2,000 of them would take a minute per scenario and round."""
    pg_overhead_tasks: int = 5_000
    """Tasks per drain of the PostgreSQL overhead row: a drain takes 1.2-2.4 s here, most of
    it waiting on the server's WAL flushes."""
    pg_overhead_rounds: int = 16


FULL = Sizes()
QUICK = Sizes(
    rounds=2,
    cycle_tasks=500,
    # Big enough that every engine gets work: claims of up to 100 in 2 ms turns ran out
    # before every engine's turn came at 2,000 tasks on 10 engines (1-3 idle) and at 300 on
    # 20 (17-18 idle); 3,000 on 20 engines left 4-9 idle, 5,000 and 8,000 none (3 runs each).
    batched_tasks=5_000,
    concurrency_tasks=10_000,
    concurrency_rounds=1,
    process_tasks=2_000,
    stress_duration_s=1.0,
    dbops_tasks=300,
    latency_tasks=500,
    overhead_tasks=1_000,
    overhead_rounds=1,
    trace_tasks=1_000,
    load_mb=10.0,
    profile_cpu_args=("--size", "smoke"),
    pg_cycle_tasks=300,
    pg_batched_tasks=2_000,
    hosts_duration_s=4.0,
    pg_peers_tasks=200,
    pg_peers_rounds=1,
    pg_peers_budget_s=1.0,
    pg_overhead_tasks=500,
    pg_overhead_rounds=1,
)


@dataclass
class Measured:
    """What a row's measurement returns: figures, the commands behind them, and notes."""

    figures: Figures = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)
    """Commands that produced the underlying figures (``queueprof run ...``)."""
    notes: list[str] = field(default_factory=list)
    detail: str = ""
    """The figures behind the checks, shown after them in the table (e.g. both sides' rates)."""


def _ratio_rounds(
    rounds: int,
    bare: Callable[[int], float],
    ours: Callable[[int], float],
    say: Say,
    reference: str = "sqlite3",
) -> Figures:
    """``rounds`` back-to-back pairs, order alternating: each side's best rate, their ratio
    (judged), and the median of the per-round ratios (reported)."""
    raw_rates: list[float] = []
    queue_rates: list[float] = []
    for round_no in range(rounds):
        if round_no % 2 == 0:
            raw, queue = bare(round_no), ours(round_no)
        else:
            queue, raw = ours(round_no), bare(round_no)
        raw_rates.append(raw)
        queue_rates.append(queue)
        say(f"round {round_no + 1}/{rounds}: {reference} {raw:,.0f}/s, queue {queue:,.0f}/s")
    pairs = [q / r for q, r in zip(queue_rates, raw_rates, strict=True)]
    return {
        "raw_tasks_per_s": max(raw_rates),
        "queue_tasks_per_s": max(queue_rates),
        "ratio": max(queue_rates) / max(raw_rates),
        "median_round_ratio": statistics.median(pairs),
        "lowest_round_ratio": min(pairs),
        "highest_round_ratio": max(pairs),
        "rounds": rounds,
    }


def _rates(figures: Mapping[str, float]) -> str:
    return (
        f"best rounds: queue {figures['queue_tasks_per_s']:,.0f}/s vs sqlite3 "
        f"{figures['raw_tasks_per_s']:,.0f}/s; round ratios {figures['lowest_round_ratio']:.2f}-"
        f"{figures['highest_round_ratio']:.2f}, median {figures['median_round_ratio']:.2f}"
    )


async def engine_cycle(path: Path | str, tasks: int) -> float:
    """Tasks/s of enqueueing ``tasks`` one at a time, then one engine claiming and acking 1.

    Per task that is the work of :func:`raw_cycle`: one insert, one claim of one task, one
    ack (which rides on the next claim, as the engine does it).
    """
    config = QueueConfig(claim_batch=1, ack_batch=1)
    async with TaskQueue(path, config) as queue:
        started = time.perf_counter()
        for _ in range(tasks):
            await queue.enqueue("noop", {"n": 0})
        stats = await WorkerEngine("w0", queue, claim_batch=1, ack_batch=1).run_until_empty()
        elapsed = time.perf_counter() - started
    if stats.completed != tasks:
        raise GoalsError(f"engine cycle: {stats.completed} of {tasks} tasks completed")
    return tasks / elapsed


@dataclass(frozen=True)
class PoolCycle:
    """One round of the queue side of ``workers_10``."""

    tasks_per_s: float
    """The whole cycle: enqueue in batches, then drain."""
    drain_tasks_per_s: float
    smallest_worker_x_even_share: float
    """The fewest tasks one engine completed, against an even share (1.0: even; 0: idle)."""
    idle_workers: int
    """Engines that completed no task (0: every engine of the pool worked)."""


async def pool_cycle(path: Path | str, tasks: int, workers: int, batch: int) -> PoolCycle:
    """A cycle of ``workers`` engines with ``QueueConfig()``.

    The cycle enqueues in batches of ``batch`` (as :func:`raw_batched` inserts) and then drains;
    the drain-only rate leaves the enqueue out.
    """
    async with TaskQueue(path, QueueConfig()) as queue:
        started = time.perf_counter()
        for first in range(0, tasks, batch):
            await queue.enqueue_many([("noop", {"n": 0})] * min(batch, tasks - first))
        result = await run_async_workers(queue, workers)
        elapsed = time.perf_counter() - started
    completed = result.total.completed
    if completed != tasks:
        raise GoalsError(f"{workers} workers: {completed} of {tasks} tasks completed")
    each = [engine.completed for engine in result.engines]
    return PoolCycle(
        tasks / elapsed,
        tasks / result.wall_s,
        min(each) * len(each) / completed,
        sum(1 for n in each if n == 0),
    )


def measure_cycle_1_worker(sizes: Sizes, scratch: Path, say: Say) -> Measured:
    """Row 1."""
    n = sizes.cycle_tasks
    figures = _ratio_rounds(
        sizes.rounds,
        lambda r: raw_cycle(scratch / f"raw-{r}.db", n),
        lambda r: asyncio.run(engine_cycle(scratch / f"queue-{r}.db", n)),
        say,
    )
    return Measured(
        {**figures, "tasks": n},
        detail=_rates(figures),
        notes=[
            f"{n:,} tasks per side per round: one enqueue each, then one WorkerEngine with "
            "claim_batch=1, ack_batch=1; sqlite3 runs the queue's own statements one task at "
            "a time (benchmarks.queue_vs_sqlite.raw_cycle)"
        ],
    )


def measure_workers_10(sizes: Sizes, scratch: Path, say: Say) -> Measured:
    """Row 2."""
    n, batch = sizes.batched_tasks, 100
    cycles: list[PoolCycle] = []

    def ours(round_no: int) -> float:
        cycle = asyncio.run(pool_cycle(scratch / f"pool-{round_no}.db", n, 10, batch))
        cycles.append(cycle)
        return cycle.tasks_per_s

    figures = _ratio_rounds(
        sizes.rounds, lambda r: raw_batched(scratch / f"rawb-{r}.db", n, batch), ours, say
    )
    drain = max(c.drain_tasks_per_s for c in cycles)
    fairness = min(c.smallest_worker_x_even_share for c in cycles)
    return Measured(
        {
            **figures,
            "tasks": n,
            "queue_drain_only_tasks_per_s": drain,
            "drain_only_ratio": drain / figures["raw_tasks_per_s"],
            "smallest_worker_x_even_share": fairness,
            "idle_workers": max(c.idle_workers for c in cycles),
        },
        notes=[
            f"{n:,} tasks per side per round; the queue side enqueues in batches of {batch} "
            "(as sqlite3 inserts) and 10 async engines with QueueConfig() defaults drain them; "
            f"judged on that whole cycle (drain alone, best round: {drain:,.0f}/s, "
            f"{drain / figures['raw_tasks_per_s']:.2f}x)"
        ],
        detail=(
            f"{_rates(figures)}; drain alone {drain:,.0f}/s; smallest worker "
            f"{fairness:.2f}x an even share (worst round)"
        ),
    )


def _pg_ratio_rounds(
    sizes: Sizes,
    raw: Callable[[str], Awaitable[float]],
    ours: Callable[[str], Awaitable[float]],
    label: str,
    say: Say,
) -> tuple[Figures, str]:
    """:func:`_ratio_rounds` on PostgreSQL: each side of each round on a fresh database of
    the server (``QUEUEPROF_PG`` or the local one), dropped after; returns the server too."""
    from benchmarks import pg_vs_asyncpg as pg

    server = _pg_server()

    def side(work: Callable[[str], Awaitable[float]], name: str) -> Callable[[int], float]:
        return lambda r: pg.run(pg.on_scratch_database(server, f"{label}-{name}-{r}", work))

    figures = _ratio_rounds(sizes.rounds, side(raw, "raw"), side(ours, "queue"), say, "asyncpg")
    return figures, redact_dsn(server)


def _pg_server() -> str:
    """The PostgreSQL server of the Postgres rows (``QUEUEPROF_PG`` or the local one), once
    it answers; else GoalsError saying what to start or set."""
    try:
        from taskqueue import pgadmin
    except ImportError as error:
        raise GoalsError(
            f"the PostgreSQL rows need asyncpg ({error}); pip install asyncpg"
        ) from None
    server = pgadmin.default_server()
    problem = asyncio.run(pgadmin.server_answers(server))
    if problem is not None:
        raise GoalsError(
            f"no PostgreSQL server answers at {redact_dsn(server)} ({problem}); start "
            f"one or set {pgadmin.SERVER_ENV}=postgresql://USER@HOST:PORT/DATABASE"
        )
    return server


def measure_pg_cycle_1_worker(sizes: Sizes, scratch: Path, say: Say) -> Measured:
    """Postgres row 1: one engine, one task per call, against plain asyncpg."""
    from benchmarks import pg_vs_asyncpg as pg

    n = sizes.pg_cycle_tasks
    figures, server = _pg_ratio_rounds(
        sizes,
        lambda dsn: pg.raw_pg_cycle(dsn, n),
        lambda dsn: engine_cycle(dsn, n),
        "goal-cycle",
        say,
    )
    return Measured(
        {**figures, "tasks": n},
        detail=_rates(figures).replace("sqlite3", "asyncpg"),
        notes=[
            f"{n:,} tasks per side per round on {server}: one enqueue each, then one "
            "WorkerEngine with claim_batch=1, ack_batch=1; plain asyncpg runs the queue's own "
            "statements on one connection, the ack riding on the next claim as the engine's "
            "does (benchmarks.pg_vs_asyncpg.raw_pg_cycle)"
        ],
    )


def measure_pg_workers_10(sizes: Sizes, scratch: Path, say: Say) -> Measured:
    """Postgres row 2: ten engines with the default batching against plain asyncpg
    claiming 100 at a time."""
    from benchmarks import pg_vs_asyncpg as pg

    n, batch = sizes.pg_batched_tasks, 100
    idle: list[int] = []

    async def ours(dsn: str) -> float:
        cycle = await pool_cycle(dsn, n, 10, batch)
        idle.append(cycle.idle_workers)
        return cycle.tasks_per_s

    figures, server = _pg_ratio_rounds(
        sizes, lambda dsn: pg.raw_pg_batched(dsn, n, batch), ours, "goal-pool", say
    )
    return Measured(
        {**figures, "tasks": n, "idle_workers": max(idle)},
        detail=_rates(figures).replace("sqlite3", "asyncpg"),
        notes=[
            f"{n:,} tasks per side per round on {server}: the queue enqueues in batches of "
            f"{batch} and 10 async engines with QueueConfig() defaults drain them; plain "
            f"asyncpg inserts {batch} at a time and claims {batch} at a time with the acks "
            "riding along, on one connection (benchmarks.pg_vs_asyncpg.raw_pg_batched)"
        ],
    )


def _stress_load(sizes: Sizes, *workers: str) -> list[str]:
    """stress's parameters for the process rows' database audit: noop tasks without
    payloads, no kills, 2,000 tasks/s plus 2,000 every half second for the size's duration;
    ``workers`` says how many workers (and engines per process)."""
    return [
        "mode=process",
        *workers,
        "task_type=noop",
        "payload_bytes=0",
        "large_payload_bytes=0",
        "kill_every_s=0",
        f"duration_s={sizes.stress_duration_s:g}",
        "rate=2000",
        "burst_every_s=0.5",
        "burst_tasks=2000",
    ]


def measure_pg_processes_20(sizes: Sizes, scratch: Path, say: Say) -> Measured:
    """20 worker engines over 4 processes on PostgreSQL: stress's database audit (no kills)
    and the claim latency over every claim of every engine."""
    result, shown = _workload(
        "stress",
        _stress_load(sizes, "workers=20", "engines_per_process=5"),
        scratch,
        say,
        queue=f"backend={_pg_server()}",
    )
    claim = result.latencies.get("claim")
    if claim is None or claim.p99_ms is None:
        raise GoalsError("the stress run recorded no claim latencies")
    (step,) = result.steps
    idle = sum(1 for w in step.workers if w.completed == 0)
    figures: Figures = {
        "lost": _metric(result, "lost_tasks"),
        "duplicated": _metric(result, "duplicated_tasks"),
        "claim_p99_ms": claim.p99_ms,
        "claim_p50_ms": claim.p50_ms if claim.p50_ms is not None else math.nan,
        "claim_max_ms": claim.max_ms if claim.max_ms is not None else math.nan,
        "claims": claim.count,
        "tasks": _metric(result, "tasks_enqueued"),
        "engines": len(step.workers),
        "idle_workers": idle,
    }
    return Measured(
        figures,
        [shown],
        [
            "stress on the PostgreSQL server (a scratch database), 4 worker processes of 5 "
            "engines each sharing their process's queue (pool of pg_pool connections); "
            f"{sizes.stress_duration_s:g} s at 2,000 noop tasks/s plus 2,000 every half second; "
            "no kills; lost and duplicated from a trigger on tasks; claim percentiles over "
            "every claim of every engine"
        ],
        f"{int(figures['tasks']):,} tasks, {claim.count:,} claims, p50 "
        f"{figures['claim_p50_ms']:.1f} ms, max {figures['claim_max_ms']:.0f} ms; {idle} of "
        f"{len(step.workers)} engines idle",
    )


def measure_pg_hosts_kill(sizes: Sizes, scratch: Path, say: Say) -> Measured:
    """3 hosts (network namespaces) x 4 worker processes against one PostgreSQL, one host
    SIGKILLed halfway: stress's database audit and its reclaim timing."""
    result, shown = _workload(
        "stress",
        [
            "hosts=3",
            "workers=12",
            "mode=process",
            f"duration_s={sizes.hosts_duration_s:g}",
            f"kill_every_s={sizes.hosts_duration_s / 2:g}",
            "rate=200",
            "burst_every_s=1",
            "burst_tasks=300",
            "sleep_ms=10",
        ],
        scratch,
        say,
        # The run starts its own cluster on the hosts' bridge; the backend names the kind.
        queue=f"backend={_pg_server()}",
    )
    c = result.counters
    lease = float(result.queue.get("lease_s", math.nan))
    # No kill caught tasks in flight: nothing was reclaimed, and the row fails on that.
    reclaim = result.metrics.get("kill_reclaim_max_s", math.nan)
    figures: Figures = {
        "lost": _metric(result, "lost_tasks"),
        "duplicated": _metric(result, "duplicated_tasks"),
        "hosts_killed": c.get("hosts_killed", 0),
        "processes_killed": c.get("processes_killed", 0),
        "kills_with_tasks_in_flight": c.get("kills_with_tasks_in_flight", 0),
        "kill_reclaim_max_s": reclaim,
        "kill_reclaim_max_x_lease": reclaim / lease,
        "recovery_max_s": result.metrics.get("recovery_max_s", math.nan),
        "tasks": _metric(result, "tasks_enqueued"),
        "lease_s": lease,
    }
    per_host = ", ".join(
        f"{s.settings['host']} {s.counters.get('completed', 0):,}"
        + (" (killed)" if s.counters.get("times_killed") else "")
        for s in result.steps
    )
    return Measured(
        figures,
        [shown],
        [
            "stress with 12 worker processes over 3 network namespaces, each on a veth into a "
            "bridge, against a throwaway cluster listening on the bridge; "
            f"{sizes.hosts_duration_s:g} s of load at 200 tasks/s (10 ms sleeps) with a burst "
            "of 300 each second; halfway, every process of the host whose workers held tasks "
            "was SIGKILLed (ip netns pids), and the host's workers started again; lost and "
            "duplicated from a trigger on tasks; reclaim = from the kill until none of the "
            f"host's tasks is still leased to it (the lease is {lease:g} s: stress's default)"
        ],
        f"{int(figures['tasks']):,} tasks; completed per host: {per_host}; "
        f"{int(figures['processes_killed'])} processes killed; recovery "
        f"{figures['recovery_max_s']:.2f} s",
    )


PG_PEERS_DEFAULTS = ("pgqueuer", "procrastinate")
"""The PostgreSQL peers at their documented defaults (contenders of the example plugins)."""
PG_PEERS_BEST = ("pgqueuer-batch100", "procrastinate-c10")
"""The same peers at their best documented settings (synchronous_commit=off among them)."""
PG_PEER_PACKAGES = "./examples/queueprof-pgqueuer ./examples/queueprof-procrastinate"
OURS_COMMIT_OFF = POSTGRES_NAMES[1]
"""Our queue with synchronous_commit=off: the like-for-like row against the peers' best."""
PG_SCENARIOS = ("drain", "cycle")


def measure_pg_vs_peers(sizes: Sizes, scratch: Path, say: Say) -> Measured:
    """PostgreSQL peers row: ``queueprof run comparison --queue backend=<server>``, our
    queue and both peers at both settings on the same server, interleaved round by round."""
    server = _pg_server()
    peers = (*PG_PEERS_DEFAULTS, *PG_PEERS_BEST)
    installed = installed_plugins()
    missing = [name for name in peers if name not in installed]
    if missing:
        raise GoalsError(
            f"the PostgreSQL peers {', '.join(missing)} are not installed (they come as "
            f"plugins): pip install {PG_PEER_PACKAGES}"
        )
    result, shown = _workload(
        "comparison",
        [
            f"contenders={','.join(('taskqueue', OURS_COMMIT_OFF, *peers))}",
            f"tasks={sizes.pg_peers_tasks}",
            f"rounds={sizes.pg_peers_rounds}",
            f"budget_s={sizes.pg_peers_budget_s:g}",
        ],
        scratch,
        say,
        queue=f"backend={server}",
    )
    rows = {str(step.settings["contender"]): step.metrics for step in result.steps}

    def rate(name: str, scenario: str) -> float:
        metric = f"{scenario}_tasks_per_s"
        if metric not in rows.get(name, {}):
            raise GoalsError(f"the comparison reported no {metric} for {name}")
        return float(rows[name][metric])

    figures: Figures = {"lost": float(result.counters.get("lost_tasks", 0))}
    shown_rates = []
    for scenario in PG_SCENARIOS:
        for name in ("taskqueue", OURS_COMMIT_OFF, *peers):
            figures[f"{scenario}_tasks_per_s_{name.replace('-', '_')}"] = rate(name, scenario)
        ours, ours_off = rate("taskqueue", scenario), rate(OURS_COMMIT_OFF, scenario)
        best_default = max(PG_PEERS_DEFAULTS, key=lambda n: rate(n, scenario))
        best_best = max(PG_PEERS_BEST, key=lambda n: rate(n, scenario))
        peer_default, peer_best = rate(best_default, scenario), rate(best_best, scenario)
        shown_rates.append(
            f"{scenario}: taskqueue {ours:,.0f}/s vs {best_default} {peer_default:,.0f}/s; "
            f"commit-off {ours_off:,.0f}/s vs {best_best} {peer_best:,.0f}/s"
        )
        figures[f"{scenario}_x_peers_defaults"] = ours / peer_default
        figures[f"{scenario}_x_peers_best"] = ours_off / peer_best
        # Shown, not judged: our defaults (a WAL flush per commit) against the peers' best
        # (synchronous_commit=off), unlike durabilities.
        figures[f"{scenario}_x_peers_best_ours_defaults"] = ours / peer_best
    figures.update(
        tasks=sizes.pg_peers_tasks, rounds=sizes.pg_peers_rounds, budget_s=sizes.pg_peers_budget_s
    )
    return Measured(
        figures,
        [shown],
        [
            f"on {redact_dsn(server)}: one producer and one worker per contender, "
            f"{sizes.pg_peers_tasks:,} tasks per scenario, at most {sizes.pg_peers_budget_s:g} s "
            f"each (rates per task), median of {sizes.pg_peers_rounds} interleaved rounds; "
            "taskqueue (QueueConfig() defaults, synchronous_commit=on as the server's default) "
            f"is judged against {' and '.join(PG_PEERS_DEFAULTS)} at their documented defaults, "
            f"{OURS_COMMIT_OFF} against {' and '.join(PG_PEERS_BEST)} at their best documented "
            "settings (both sides synchronous_commit=off); taskqueue's defaults against the "
            "peers' best are the *_x_peers_best_ours_defaults figures (shown, not judged)"
        ],
        "; ".join(shown_rates),
    )


def _workload(
    name: str, params: Sequence[str], scratch: Path, say: Say, queue: str = ""
) -> tuple[WorkloadResult, str]:
    """Run one workload bare (in this process) into ``scratch``; returns it and its command."""
    request = RunRequest(name, params=tuple(params), queue=queue, out_dir=scratch)
    command = request.argv()
    shown = shlex.join(command)
    say(shown)
    outcome: RunOutcome = execute(dataclasses.replace(request, command=tuple(command)).plan())
    if outcome.status is RunStatus.INTERRUPTED:
        # The runner turns Ctrl-C into an interrupted run; stop the whole table, as Ctrl-C means.
        raise KeyboardInterrupt
    if outcome.status is not RunStatus.COMPLETE:
        reason = f": {outcome.error.type}: {outcome.error.message}" if outcome.error else ""
        raise GoalsError(f"`{shown}` ended {outcome.status.value}{reason}")
    return outcome.result, shown


def _metric(result: WorkloadResult, name: str) -> float:
    if name not in result.metrics:
        raise GoalsError(
            f"the {result.workload} workload reported no metric {name!r} "
            f"(it has: {', '.join(sorted(result.metrics))})"
        )
    return float(result.metrics[name])


def measure_workers_20(sizes: Sizes, scratch: Path, say: Say) -> Measured:
    """Row 3."""
    counts = (1, 2, 5, 10, 15, 20)
    params = [
        f"worker_counts={','.join(map(str, counts))}",
        "modes=async",
        f"tasks={sizes.concurrency_tasks}",
    ]
    rates: dict[int, list[float]] = {c: [] for c in counts}
    claim_max = 0.0
    busy = lost = idle = 0
    fairness_20 = math.inf
    shown = ""
    for _ in range(sizes.concurrency_rounds):
        result, shown = _workload("concurrency", params, scratch, say)
        for step in result.steps:
            workers = int(step.settings["workers"])
            if "tasks_per_s" not in step.metrics:
                raise GoalsError(f"concurrency step {step.label!r} reported no tasks_per_s")
            rates[workers].append(float(step.metrics["tasks_per_s"]))
            lost += int(step.counters.get("lost", 0))
            if workers == 20:
                claim_max = max(claim_max, float(step.metrics.get("claim_max_ms", "nan")))
                busy += int(step.counters.get("sqlite_busy_retries", 0))
                fairness_20 = min(
                    fairness_20, float(step.metrics.get("smallest_worker_x_even_share", "nan"))
                )
                idle = max(idle, sum(1 for w in step.workers if w.completed == 0))
    medians = {c: statistics.median(v) for c, v in rates.items() if v}
    if 20 not in medians:
        raise GoalsError("the concurrency workload ran no 20-worker step")
    best = max(medians, key=lambda c: medians[c])
    figures: Figures = {f"tasks_per_s_{c}": rate for c, rate in medians.items()}
    figures.update(
        ratio_to_best=medians[20] / medians[best],
        best_workers=best,
        claim_max_ms_20=claim_max,
        sqlite_busy_20=busy,
        smallest_worker_x_even_share_20=fairness_20,
        idle_workers_20=idle,
        lost=lost,
        rounds=sizes.concurrency_rounds,
    )
    notes = [
        f"async workers, QueueConfig() defaults, {sizes.concurrency_tasks:,} tasks per step; "
        f"medians over {sizes.concurrency_rounds} sweeps; best: {best} workers at "
        f"{medians[best]:,.0f}/s, 20 workers {medians[20]:,.0f}/s; claim max and SQLITE_BUSY "
        "retries are the worst and the sum over the sweeps at 20; at 20 workers the smallest "
        f"worker did {fairness_20:.2f}x an even share of the tasks (worst sweep)"
    ]
    if lost:
        notes.append(f"{lost} tasks lost over the steps (the concurrency workload's count)")
    detail = f"20: {medians[20]:,.0f}/s, best {best}: {medians[best]:,.0f}/s"
    return Measured(figures, [shown], notes, detail)


def measure_processes_10(sizes: Sizes, scratch: Path, say: Say) -> Measured:
    """Row 4: the drain rate from throughput, the database audit from stress."""
    drain, drain_cmd = _workload(
        "throughput",
        [
            "mode=process",
            "worker_counts=10",
            f"tasks={sizes.process_tasks}",
            "enqueue_batch=1000",
        ],
        scratch,
        say,
    )
    audit, audit_cmd = _workload(
        "stress",
        _stress_load(sizes, "workers=10"),
        scratch,
        say,
    )
    c, s = drain.counters, audit.counters
    errors = {
        "drain_failed_attempts": c.get("failed_attempts", 0),
        "drain_dead": c.get("dead", 0),
        "drain_stale_acks": c.get("stale_acks", 0),
        "audit_failed_attempts": s.get("failed_attempts", 0),
        "audit_stale_acks": s.get("stale_acks", 0),
    }
    figures: Figures = {
        "tasks_per_s": _metric(drain, "process_tasks_per_s_10_workers"),
        "errors": sum(errors.values()),
        "lost": c.get("lost", 0) + _metric(audit, "lost_tasks"),
        "duplicated": _metric(audit, "duplicated_tasks"),
        "drain_lost": c.get("lost", 0),
        "audit_lost": _metric(audit, "lost_tasks"),
        "audit_tasks": _metric(audit, "tasks_enqueued"),
        "sqlite_busy_retries": c.get("sqlite_busy_retries", 0) + s.get("sqlite_busy_retries", 0),
        **errors,
    }
    return Measured(
        figures,
        [drain_cmd, audit_cmd],
        [
            "no workload counts duplicates from the database in a plain process-mode drain: "
            f"the rate is throughput's drain of {sizes.process_tasks:,} tasks (lost = enqueued "
            "- completed - dead, by the workers' counts); lost and duplicated are also audited "
            "in the database by stress (a trigger logs every transition to done), with 10 "
            f"processes and no kills, {int(figures['audit_tasks']):,} tasks; errors = failed "
            "attempts, dead tasks and stale acks of both runs"
        ],
        f"audit of {int(figures['audit_tasks']):,} tasks by stress",
    )


SINGLE_TASK_CALLS = "claim_batch=1,ack_batch=1"
"""The strategy of the per-operation latency row: every enqueue, claim and status one task."""


def measure_op_p50(sizes: Sizes, scratch: Path, say: Say) -> Measured:
    """Row 5."""
    # Each call handles one task: the latency of an operation, not of a batch (the default
    # strategy claims up to 100 tasks per call, which costs more per call and far less per task).
    result, shown = _workload(
        "dbops", [f"tasks={sizes.dbops_tasks}"], scratch, say, queue=SINGLE_TASK_CALLS
    )
    figures: Figures = {
        f"{op}_p50_us": _metric(result, f"{op}_p50_ms_1_worker") * 1000 for op in OPERATIONS
    }
    figures.update(
        {f"{op}_p99_us": _metric(result, f"{op}_p99_ms_1_worker") * 1000 for op in OPERATIONS}
    )
    return Measured(
        figures,
        [shown],
        [
            f"the dbops workload's 1-worker phase ({sizes.dbops_tasks:,} tasks), one task per "
            f"call ({SINGLE_TASK_CALLS}; the default claims up to 100 per call), p50 over "
            "every sample"
        ],
        "p99 " + " / ".join(f"{figures[f'{op}_p99_us']:.0f}" for op in OPERATIONS) + " us",
    )


def measure_latency_500(sizes: Sizes, scratch: Path, say: Say) -> Measured:
    """Row 6."""
    result, shown = _workload(
        "latency", ["rate=500", "workers=5", f"tasks={sizes.latency_tasks}"], scratch, say
    )
    figures: Figures = {f"e2e_{p}_ms": _metric(result, f"e2e_{p}_ms") for p in E2E_PERCENTILES}
    figures["achieved_rate_tasks_per_s"] = _metric(result, "achieved_rate_tasks_per_s")
    figures["lost"] = result.counters.get("lost", 0)
    notes = [
        f"{sizes.latency_tasks:,} tasks offered at 500/s (open loop), 5 async workers, "
        "QueueConfig() defaults; e2e as a client polling every 1 ms sees it"
    ]
    if figures["lost"]:
        notes.append(f"{int(figures['lost'])} tasks never observed as finished")
    detail = f"achieved {figures['achieved_rate_tasks_per_s']:,.0f}/s"
    return Measured(figures, [shown], notes, detail)


def measure_profiler_overhead(sizes: Sizes, scratch: Path, say: Say) -> Measured:
    """Row 7: benchmarks.profiler_overhead's pairs, order alternating between rounds."""
    return _profiler_overhead(sizes.overhead_tasks, sizes.overhead_rounds, "", say)


def measure_pg_profiler_overhead(sizes: Sizes, scratch: Path, say: Say) -> Measured:
    """Row 7 on the PostgreSQL backend: each drain on a fresh database of the server."""
    server = _pg_server()
    return _profiler_overhead(
        sizes.pg_overhead_tasks, sizes.pg_overhead_rounds, f"backend={server}", say
    )


def _profiler_overhead(tasks: int, rounds_wanted: int, queue: str, say: Say) -> Measured:
    workers = 5
    rounds: dict[str, list[Round]] = {name: [] for name in OVERHEAD_GOALS}
    for name in OVERHEAD_GOALS:
        get_profiler(name).check_available()
    defaults: dict[str, list[str]] = {name: [] for name in OVERHEAD_GOALS}
    measured = interleaved_pairs(defaults, tasks, workers, rounds_wanted, queue)
    for round_no, name, pair, _ in measured:
        rounds[name].append(pair)
        say(
            f"round {round_no + 1}: {name} bare {pair.bare_s:.3f} s, profiled "
            + f"{pair.profiled_s:.3f} s"
        )
    figures: Figures = {}
    bands = []
    for name, pairs in rounds.items():
        overhead = Overhead.of(pairs)
        figures[f"{name}_ratio"] = overhead.ratio
        figures[f"{name}_band_low"] = overhead.low
        figures[f"{name}_band_high"] = overhead.high
        bands.append(f"{name} {overhead.band}")
    figures.update(tasks=tasks, workers=workers, rounds=rounds_wanted)
    backend = QueueConfig.parse(queue).backend
    where = "" if backend == "sqlite" else f" on PostgreSQL ({redact_dsn(backend)})"
    shown = (
        f"python -m benchmarks.profiler_overhead --tasks {tasks} --workers {workers} "
        f"--rounds {rounds_wanted}" + (f" --queue {shlex.quote(queue)}" if queue else "")
    )
    return Measured(
        figures,
        [shown],
        [
            f"{tasks:,} noop tasks, {workers} async workers{where}, each profiler's "
            f"default options; median of {rounds_wanted} back-to-back profiled/bare "
            "pairs of drains; 95% bootstrap bands: " + ", ".join(bands)
        ],
    )


def measure_perfetto_trace(sizes: Sizes, scratch: Path, say: Say) -> Measured:
    """Row 8: ``tox -e profile-trace``'s run, and the size of the trace it wrote."""
    folder = scratch / "profile-trace"
    folder.mkdir()
    posargs = ["--no-baseline", "--quiet"]
    if sizes.trace_tasks is not None:
        posargs += ["--param", f"tasks={sizes.trace_tasks}"]
    _, shown = run_tox_commands("profile-trace", posargs, folder, say, runs_only=True)
    traces = sorted((folder / "traces").glob("*/viztracer.trace.json*"))
    if len(traces) != 1:
        raise GoalsError(
            f"tox -e profile-trace should write one viztracer trace; found {len(traces)} "
            f"under {folder / 'traces'} ({', '.join(map(str, traces)) or 'none'})"
        )
    manifest = Manifest.from_json((traces[0].parent / MANIFEST).read_bytes())
    tasks = int(manifest.params["tasks"])
    return Measured(
        {"trace_mb": traces[0].stat().st_size / 1e6, "tasks": tasks},
        shown,
        [
            f"{traces[0].name} of a {tasks:,}-task run (tox -e profile-trace's command); "
            "that it opens in the Perfetto UI is checked by `tox -e viewers`"
        ],
        f"{tasks:,} tasks; Perfetto: tox -e viewers",
    )


def measure_analysis_load(sizes: Sizes, scratch: Path, say: Say) -> Measured:
    """Row 9: benchmarks.analysis_load's synthetic trace, loaded in a fresh child process."""
    path = scratch / "synthetic.trace.json"
    say(f"writing a {sizes.load_mb:g} MB synthetic trace")
    events = write_trace(path, int(sizes.load_mb * 1e6))
    size = path.stat().st_size
    done = subprocess.run(
        [sys.executable, "-c", LOAD_CHILD.format(root=str(ROOT), path=str(path))],
        capture_output=True,
        text=True,
        check=False,
    )
    path.unlink()
    if done.returncode != 0:
        raise GoalsError(f"loading the synthetic trace failed: {done.stderr.strip()[-800:]}")
    try:
        child = orjson.loads(done.stdout.strip().splitlines()[-1])
        seconds, peak = float(child["seconds"]), float(child["peak_kib"]) * 1024
    except (IndexError, KeyError, TypeError, ValueError) as error:  # JSONDecodeError too
        raise GoalsError(
            "benchmarks.analysis_load's child printed no seconds/peak_kib figures "
            f"({type(error).__name__}: {error}); it printed: {done.stdout.strip()[-400:]!r}"
        ) from None
    return Measured(
        {
            "load_s": seconds,
            "rss_ratio": peak / size,
            "peak_rss_mb": peak / 1e6,
            "file_mb": size / 1e6,
            "events": events,
        },
        [f"python -m benchmarks.analysis_load --mb {sizes.load_mb:g}"],
        [
            f"a {size / 1e6:.0f} MB trace of {events:,} events loaded by "
            "analysis.load.trace.load_trace in a fresh process; RSS is its peak over the file"
        ],
        f"{size / 1e6:.0f} MB file, peak RSS {peak / 1e6:.0f} MB",
    )


def measure_profile_cpu(sizes: Sizes, scratch: Path, say: Say) -> Measured:
    """Row 10: the commands of ``tox -e profile-cpu``, timed in this (warm) environment."""
    folder = scratch / "profile-cpu"
    folder.mkdir()
    wall, shown = run_tox_commands("profile-cpu", sizes.profile_cpu_args, folder, say)
    return Measured(
        {"wall_s": wall, "commands": len(shown)},
        shown,
        [
            f"the {len(shown)} commands of tox.ini's [testenv:profile-cpu], run in order with "
            "this interpreter (an installed, warm env)"
        ],
    )
