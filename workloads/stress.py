"""stress: sustained load with bursts, large payloads, status queries and killed workers.

A producer offers ``rate`` tasks/s for ``duration_s`` seconds, adds a burst of
``burst_tasks`` every ``burst_every_s``, gives every ``large_every``-th task a large payload,
and a reader queries random task statuses. In process mode a worker is killed with SIGKILL
every ``kill_every_s`` and replaced; the tasks it held must come back once their lease
expires (recovery time). Afterwards the database itself is audited: a trigger installed
before the run logs every transition to ``done``, so a task completed twice shows up twice,
and a task never completed is lost. Both counts must be 0.

With ``hosts=N`` the worker processes run on N "hosts", network namespaces on a bridge
(workloads/hosts.py), against a PostgreSQL cluster the run starts on the bridge address, and
each kill SIGKILLs every process of a host; results get one step per host.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import random
import re
import sqlite3
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from multiprocessing.context import SpawnProcess
from pathlib import Path
from typing import Any

from runs import LatencySummary, WorkerShare, WorkloadResult
from taskqueue import (
    EngineOptions,
    PoolResult,
    QueueConfig,
    QueueStats,
    TaskQueue,
    TaskState,
    is_dsn,
)

from . import pgaudit
from .base import DerivesNothingAfterRun
from .context import RunContext
from .errors import ParameterError, WorkloadError
from .hosts import (
    Host,
    HostNetwork,
    HostsUnavailableError,
    check_hosts_available,
    process_alive,
    split,
)
from .params import (
    Size,
    WorkloadParams,
    mode_param,
    param,
    payload_bytes_param,
    task_type_param,
    workers_param,
)
from .sampler import QUEUE_COLUMNS, QueueDepthSampler
from .tasks import error_counters, make_tasks, op_latencies
from .workers import Workers, worker_step

AUDIT_SCHEMA = """
CREATE TABLE IF NOT EXISTS stress_completions (
    task_id INTEGER NOT NULL, attempts INTEGER, worker TEXT
);
CREATE TRIGGER IF NOT EXISTS stress_audit_done AFTER UPDATE OF state ON tasks
WHEN NEW.state = 'done' AND OLD.state <> 'done'
BEGIN
    INSERT INTO stress_completions (task_id, attempts, worker)
    VALUES (NEW.id, NEW.attempts, NEW.worker);
END;
"""


@dataclass(frozen=True)
class StressParams(WorkloadParams):
    """Options of the stress workload."""

    workload_name = "stress"

    duration_s: float = param(20.0, "seconds of sustained load", minimum=0.5, maximum=86_400)
    rate: float = param(200.0, "steady offered rate in tasks/s", minimum=1, maximum=100_000)
    workers: int = workers_param(4)
    mode: str = mode_param("process")
    task_type: str = task_type_param("sleep")
    sleep_ms: float = param(
        1.0,
        "how long each sleep task sleeps, in ms (longer: more tasks in flight for a kill)",
        minimum=0,
        maximum=60_000,
    )
    payload_bytes: int = payload_bytes_param(256)
    burst_every_s: float = param(5.0, "seconds between bursts (0: none)", minimum=0, maximum=3600)
    burst_tasks: int = param(500, "tasks in each burst", minimum=1, maximum=1_000_000)
    large_payload_bytes: int = param(
        65_536, "bytes of padding in the large payloads", minimum=0, maximum=4_194_304
    )
    large_every: int = param(10, "every n-th task carries the large payload", minimum=1)
    status_rate: float = param(50.0, "status queries per second", minimum=0, maximum=10_000)
    kill_every_s: float = param(
        5.0, "process mode: SIGKILL a worker this often (0: never)", minimum=0, maximum=3600
    )
    drain_timeout_s: float = param(
        120.0, "longest wait for the queue to drain after the load", minimum=1, maximum=3600
    )
    seed: int = param(1, "random seed (status ids, which worker to kill)", minimum=0)
    engines_per_process: int = param(
        1,
        "process mode: worker engines in each process, sharing its queue and connections "
        "(workers=20 engines_per_process=5 runs 4 processes)",
        minimum=1,
        maximum=64,
    )
    hosts: int = param(
        0,
        "spread the worker processes over this many hosts: network namespaces of their own "
        "on a bridge, talking TCP to a PostgreSQL cluster the run starts on the bridge; "
        "kill_every_s then SIGKILLs a whole host (0: every worker on this machine; needs "
        "root, ip and initdb)",
        minimum=0,
        maximum=50,
    )
    sample_interval_s: float = param(
        0.2, "seconds between counts of the queue's tasks by state", minimum=0.01, maximum=60
    )

    @property
    def processes(self) -> int:
        """Worker processes (process mode) or engines (async mode) to start."""
        return self.workers // self.engines_per_process

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.engines_per_process > 1 and self.mode != "process":
            raise ParameterError(
                f"stress: engines_per_process={self.engines_per_process} groups worker engines "
                "into processes; set mode=process (async mode runs every engine in one)"
            )
        if self.workers % self.engines_per_process:
            raise ParameterError(
                f"stress: workers={self.workers} is not a multiple of engines_per_process="
                f"{self.engines_per_process}; give workers as processes x engines per process"
            )
        if self.hosts and self.mode != "process":
            raise ParameterError(
                f"stress: hosts={self.hosts} runs worker processes in network namespaces; "
                "set mode=process"
            )
        if self.hosts and self.processes < self.hosts:
            raise ParameterError(
                f"stress: {self.processes} worker processes cannot be spread over hosts="
                f"{self.hosts}; give at least one process per host (workers="
                f"{self.hosts * 4 * self.engines_per_process} is 4 per host)"
            )

    def check_ready(self) -> None:
        if self.hosts:
            check_hosts_available()
            if importlib.util.find_spec("asyncpg") is None:
                raise HostsUnavailableError(
                    f"stress: hosts={self.hosts} runs the queue on PostgreSQL, which needs "
                    "asyncpg; pip install 'queueprof[postgres]'"
                )
            from taskqueue.pgadmin import find_initdb

            if find_initdb() is None:
                raise HostsUnavailableError(
                    f"stress: hosts={self.hosts} starts a PostgreSQL cluster on the hosts' "
                    "bridge, and no initdb was found on PATH or in /usr/lib/postgresql/*/bin; "
                    "install postgresql"
                )

    def check_queue(self, config: QueueConfig) -> None:
        if self.hosts and config.backend == "sqlite":
            raise ParameterError(
                f"stress: hosts={self.hosts} needs --queue backend=postgresql://... (a SQLite "
                "file lives on one host); the run puts the queue on a PostgreSQL cluster of "
                "its own listening on the hosts' bridge, with the strategy given"
            )


class StressWorkload(DerivesNothingAfterRun):
    """Sustained load with bursts and killed workers; audits lost and duplicated tasks."""

    name = "stress"
    description = "sustained load, bursts, 64 KiB payloads, SIGKILLed workers: lost/duplicated"
    params_type = StressParams
    queue_defaults = "lease_s=1"
    """A short lease so a killed worker's tasks come back within the run."""
    sizes: Mapping[Size, StressParams] = {
        Size.SMOKE: StressParams(
            duration_s=3, rate=100, burst_every_s=1, burst_tasks=100, kill_every_s=1.2, workers=3
        ),
        Size.DEFAULT: StressParams(),
        Size.FULL: StressParams(duration_s=300, rate=400, burst_tasks=2_000),
    }

    async def run(self, params: StressParams, ctx: RunContext) -> WorkloadResult:
        """Load, kill, drain, then audit the database."""
        if not params.hosts:
            return await self._run(params, ctx, ctx.database("stress"), None)
        # Every way out of the block (errors, Ctrl-C, SIGTERM cancelling the run) kills
        # the hosts' processes and removes their namespaces, links and bridge and the cluster.
        with (
            HostNetwork(params.hosts) as network,
            _cluster_on(network, params, ctx.queue_config) as server,
        ):
            from taskqueue import pgadmin

            ctx.partial.note(
                f"{params.hosts} hosts (network namespaces at "
                f"{', '.join(h.address for h in network.hosts)} on a bridge) and a PostgreSQL "
                "cluster of the run's own listening on "
                f"{network.server_address}: the queue lived there, not on the --queue backend "
                "server, which the hosts cannot reach"
            )
            name = pgadmin.scratch_name("stress-hosts")
            path = await asyncio.to_thread(pgadmin.create_database_now, server, name)
            return await self._run(params, ctx, path, network)

    async def _run(
        self,
        params: StressParams,
        ctx: RunContext,
        path: Path | str,
        network: HostNetwork | None,
    ) -> WorkloadResult:
        rng = random.Random(params.seed)
        ids: list[int] = []
        kills = _Kills()
        pools: list[Workers] = []
        hosts: dict[Workers, Host] = {}
        """The host each pool runs on (hosts mode)."""
        results: list[tuple[Workers, PoolResult]] = []
        ctx.partial.declare_series("queue", QUEUE_COLUMNS)
        ctx.partial.declare_series("bursts", ("elapsed_s", "tasks"))
        ctx.partial.declare_series("kills", ("elapsed_s",))
        stack = contextlib.ExitStack()
        depth: QueueDepthSampler | None = None
        async with TaskQueue(path, ctx.queue_config) as queue:
            await asyncio.to_thread(_install_audit, path)
            if network is None:
                pools.append(
                    Workers(
                        queue,
                        params.processes,
                        params.mode,
                        until_empty=False,
                        options=EngineOptions(engines=params.engines_per_process),
                    )
                )
            for host, count in zip(
                network.hosts if network else (),
                split(params.processes, params.hosts),
                strict=True,
            ):
                pool = Workers(
                    queue, count, "process", until_empty=False, options=_on(host, 0, params)
                )
                pools.append(pool)
                hosts[pool] = host
            try:
                for pool in pools:
                    await pool.start()
                ctx.progress.phase(f"{params.duration_s:g} s of load", params.duration_s)
                # One clock for the queue's depth and the events marked on it.
                depth = QueueDepthSampler(path, time.perf_counter(), params.sample_interval_s)
                stack.enter_context(depth)
                load = asyncio.create_task(self._produce(queue, params, ids, ctx, depth.started))
                reader = asyncio.create_task(
                    self._read(queue, params, ids, rng), name="status reader"
                )
                if network is None:
                    killing = self._kill(queue, params, pools, rng, kills, ctx, depth.started)
                else:
                    killing = self._kill_hosts(
                        queue, params, network, pools, hosts, rng, kills, ctx, depth.started
                    )
                killer = asyncio.create_task(killing, name="worker killer")
                try:
                    await load
                finally:
                    reader.cancel()
                    killer.cancel()
                    await asyncio.wait([reader, killer])
                for helper in (reader, killer):
                    if not helper.cancelled() and helper.exception() is not None:
                        raise WorkloadError(f"stress: {helper.get_name()} failed") from (
                            helper.exception()
                        )
                ctx.progress.phase("drain", None)
                deadline = time.monotonic() + params.drain_timeout_s
                while not await queue.is_drained():
                    if params.mode == "process" and not _alive(pools):
                        # Every worker exited on its own: joining them reports why.
                        for pool in pools:
                            await pool.stop()
                        raise WorkloadError(
                            "stress: every worker process exited before the queue drained"
                        )
                    if time.monotonic() > deadline:
                        stuck = await asyncio.to_thread(_unfinished, path)
                        alive = [process.name for process in _alive(pools)]
                        raise WorkloadError(
                            f"stress: the queue did not drain within {params.drain_timeout_s} s "
                            f"after the load (unfinished: {stuck}; live worker processes: "
                            f"{alive or 'none'}); raise drain_timeout_s or lower the rate"
                        )
                    await asyncio.sleep(0.05)
                await asyncio.gather(*kills.watchers)
                stack.close()  # the depth series ends once the queue has drained
                for pool in pools:
                    results.append((pool, await pool.stop()))
            except BaseException:
                for watcher in kills.watchers:
                    watcher.cancel()
                for pool in pools:
                    await pool.abort()
                # What the producer side measured is the partial result.
                ctx.partial.metric("tasks_enqueued", len(ids))
                for op, summary in op_latencies(queue.stats).items():
                    ctx.partial.latency(op, summary)
                kills.record(ctx, ctx.queue_config.lease_s)
                raise
            finally:
                stack.close()
                for row in depth.samples if depth is not None else ():
                    ctx.partial.sample("queue", row)
            stats = QueueStats()
            stats.merge(queue.stats)
            if params.mode == "process":
                for _, result in results:
                    stats.merge(result.stats)
        audit = await asyncio.to_thread(_audit, path, ids)
        by_worker = await asyncio.to_thread(_completed_by_worker, path)
        pool_results = [result for _, result in results]
        self._record(params, ids, stats, audit, kills, pool_results, ctx)
        if network is None:
            self._record_workers(params, pool_results, by_worker, stats, ctx)
        else:
            self._record_hosts(network, results, hosts, kills, by_worker, ctx)
        return ctx.partial.result(complete=True)

    async def _produce(
        self,
        queue: TaskQueue,
        params: StressParams,
        ids: list[int],
        ctx: RunContext,
        started: float,
    ) -> None:
        small = "x" * params.payload_bytes
        large = "x" * params.large_payload_bytes
        next_burst = params.burst_every_s or float("inf")
        sent = 0
        while (elapsed := time.perf_counter() - started) < params.duration_s:
            if elapsed >= next_burst:
                burst = make_tasks(params.task_type, params.burst_tasks, start=len(ids))
                for _, body in burst:
                    _set_sleep(body, params)
                ctx.partial.sample("bursts", (elapsed, len(burst)))
                ids.extend(await queue.enqueue_many(burst))
                next_burst += params.burst_every_s
            due = sent / params.rate
            if due > elapsed:
                await asyncio.sleep(due - elapsed)
                continue
            pad = large if (sent + 1) % params.large_every == 0 else small
            ((task_type, payload),) = make_tasks(params.task_type, 1, start=len(ids))
            payload["pad"] = pad
            _set_sleep(payload, params)
            ids.append(await queue.enqueue(task_type, payload))
            sent += 1
            ctx.progress.update(elapsed)

    @staticmethod
    async def _read(
        queue: TaskQueue, params: StressParams, ids: list[int], rng: random.Random
    ) -> None:
        if params.status_rate <= 0:
            return
        while True:
            await asyncio.sleep(1.0 / params.status_rate)
            if ids:
                await queue.status(rng.choice(ids))

    async def _kill(
        self,
        queue: TaskQueue,
        params: StressParams,
        pools: list[Workers],
        rng: random.Random,
        kills: _Kills,
        ctx: RunContext,
        started: float,
    ) -> None:
        """Until cancelled: SIGKILL a random live worker, start a replacement, time recovery."""
        ctx.partial.count("workers_killed", 0)
        if params.mode != "process" or params.kill_every_s <= 0:
            if params.kill_every_s > 0:
                ctx.partial.note("async mode: no worker is killed (SIGKILL needs process mode)")
            return
        while True:
            await asyncio.sleep(params.kill_every_s)
            victim = await self._victim(queue.target, pools, rng)
            if victim is None:
                continue
            victim.kill()
            killed_at = time.perf_counter()
            ctx.partial.sample("kills", (killed_at - started,))
            await asyncio.to_thread(victim.join, 5)
            kills.count += 1
            # Counted now: the load may end (and cancel this) while the replacement starts.
            ctx.partial.count("workers_killed", kills.count)
            await kills.watch(queue, _engines_of(pools, victim), killed_at)
            replacement = Workers(
                queue,
                1,
                "process",
                until_empty=False,
                options=EngineOptions(
                    name_prefix=f"r{kills.count}-", engines=params.engines_per_process
                ),
            )
            pools.append(replacement)
            await replacement.start()

    async def _kill_hosts(
        self,
        queue: TaskQueue,
        params: StressParams,
        network: HostNetwork,
        pools: list[Workers],
        hosts: dict[Workers, Host],
        rng: random.Random,
        kills: _Kills,
        ctx: RunContext,
        started: float,
    ) -> None:
        """Until cancelled: SIGKILL every process of a host (its namespace, as
        ``ip netns pids`` lists it), time the recovery of the tasks its workers held, then
        start the host's workers again (the host rebooted)."""
        ctx.partial.count("hosts_killed", 0)
        ctx.partial.count("processes_killed", 0)
        if params.kill_every_s <= 0:
            return
        while True:
            await asyncio.sleep(params.kill_every_s)
            host = await self._victim_host(
                queue.target, network, pools, hosts, rng, params.kill_every_s
            )
            on_host = [pool for pool in pools if hosts.get(pool) is host]
            workers = [
                engine
                for pool in on_host
                for process in _alive([pool])
                for engine in _engines_of([pool], process)
            ]
            # Blocking, but milliseconds: killing on the loop keeps a cancellation from
            # leaving a host half killed.
            pids = network.kill(host)
            killed_at = time.perf_counter()
            ctx.partial.sample("kills", (killed_at - started,))
            for pool in on_host:
                if pool.processes is not None:
                    await asyncio.to_thread(_reap, pool.processes.processes)
            kills.count += 1
            kills.processes += len(pids)
            kills.by_host[host.name] = kills.by_host.get(host.name, 0) + 1
            ctx.partial.count("hosts_killed", kills.count)
            ctx.partial.count("processes_killed", kills.processes)
            await kills.watch(queue, workers, killed_at)
            replacement = Workers(
                queue,
                on_host[0].count,  # as many processes as the host started with
                "process",
                until_empty=False,
                options=_on(host, kills.count, params),
            )
            pools.append(replacement)
            hosts[replacement] = host
            await replacement.start()

    @staticmethod
    async def _victim(
        path: Path | str, pools: list[Workers], rng: random.Random
    ) -> SpawnProcess | None:
        """A live worker process, preferably one holding tasks (a crash in mid-task).

        Looks for a busy worker for up to half a second, then takes any live one.
        """
        alive = {
            engine: process for process in _alive(pools) for engine in _engines_of(pools, process)
        }
        if not alive:
            return None
        busy = await _busy_among(path, set(alive), 0.5)
        return alive[rng.choice(sorted(busy or alive))]

    @staticmethod
    async def _victim_host(
        path: Path | str,
        network: HostNetwork,
        pools: list[Workers],
        hosts: dict[Workers, Host],
        rng: random.Random,
        patience_s: float,
    ) -> Host:
        """A host whose workers hold tasks (a crash in mid-task), looked for until the next
        kill is due; then any host."""
        host_of = {
            engine: hosts[pool]
            for pool in pools
            for process in _alive([pool])
            for engine in _engines_of([pool], process)
        }
        busy = await _busy_among(path, set(host_of), patience_s)
        if busy:
            return host_of[rng.choice(sorted(busy))]
        return rng.choice(network.hosts)

    @staticmethod
    def _record(
        params: StressParams,
        ids: list[int],
        stats: QueueStats,
        audit: dict[str, int],
        kills: _Kills,
        results: list[PoolResult],
        ctx: RunContext,
    ) -> None:
        partial = ctx.partial
        partial.metric("lost_tasks", audit["lost"])
        partial.metric("duplicated_tasks", audit["duplicated"])
        partial.metric("tasks_enqueued", len(ids))
        partial.metric("offered_tasks_per_s", len(ids) / params.duration_s)
        kills.record(ctx, ctx.queue_config.lease_s)
        for op, summary in op_latencies(stats).items():
            partial.latency(op, summary)
        for name, value in error_counters(stats).items():
            partial.count(name, value)
        for name, value in audit.items():
            partial.count(name, value)
        partial.count("failed_attempts", sum(r.total.failed for r in results))

    @staticmethod
    def _record_workers(
        params: StressParams,
        results: list[PoolResult],
        by_worker: Mapping[str, int],
        stats: QueueStats,
        ctx: RunContext,
    ) -> None:
        """One step with every worker that ran, the killed ones and their replacements too.

        Completions come from the audit table (the database's own count, by the worker that
        held the lease), so a SIGKILLed worker's tasks are counted; its busy time died with
        its process and shows as 0.
        """
        shares = _shares(results, by_worker)
        ctx.partial.step(
            worker_step(
                f"{params.workers} workers, {params.mode}",
                {"workers": params.workers, "mode": params.mode, "workers_started": len(shares)},
                shares,
                latencies=op_latencies(stats),
                counters={"completed": sum(s.completed for s in shares)},
            )
        )
        if len(shares) > params.workers:
            ctx.partial.note(
                f"{len(shares) - params.workers} of the {len(shares)} workers are replacements "
                "for killed ones (r<n>-...): they started late, so they did less; a killed "
                "worker's busy time is lost with its process (recorded as 0 s)"
            )

    @staticmethod
    def _record_hosts(
        network: HostNetwork,
        results: list[tuple[Workers, PoolResult]],
        hosts: Mapping[Workers, Host],
        kills: _Kills,
        by_worker: Mapping[str, int],
        ctx: RunContext,
    ) -> None:
        """One step per host: its workers (the killed ones and their replacements too), the
        tasks it completed and how often it was killed."""
        everything = sum(by_worker.values())
        for host in network.hosts:
            pools = [pool for pool, _ in results if hosts[pool] is host]
            mine = [result for pool, result in results if hosts[pool] is host]
            shares = _shares(mine, by_worker)
            completed = sum(s.completed for s in shares)
            killed = kills.by_host.get(host.name, 0)
            ctx.partial.step(
                worker_step(
                    f"host {host.name} ({host.address})",
                    {
                        "host": host.name,
                        "address": host.address,
                        "processes": pools[0].count if pools else 0,
                        "engines_per_process": pools[0].options.engines if pools else 0,
                        "workers_started": len(shares),
                        "times_killed": killed,
                    },
                    shares,
                    metrics={"pct_of_tasks": 100.0 * completed / everything if everything else 0},
                    counters={"completed": completed, "times_killed": killed},
                )
            )
        ctx.partial.metric("hosts", len(network.hosts))
        if kills.count:
            ctx.partial.note(
                "a killed host's workers keep the tasks they completed (counted from the "
                "database's completion log) but lose their busy time with their processes "
                "(0 s); the host's workers started again as <host>r<n>-w..."
            )


@dataclass
class _Kills:
    """What the killer did and measured: for each kill that caught tasks in flight, the
    time until every task the victims held was out of their hands (reclaimed: requeued or
    leased by another worker, which needs the lease to end) and finished (recovered)."""

    count: int = 0
    processes: int = 0
    by_host: dict[str, int] = field(default_factory=dict)
    reclaims: list[float] = field(default_factory=list)
    recoveries: list[float] = field(default_factory=list)
    watchers: list[asyncio.Task[None]] = field(default_factory=list)

    async def watch(self, queue: TaskQueue, victims: list[str], killed_at: float) -> None:
        """Start timing the recovery of the tasks ``victims`` held when they were killed."""
        held = await asyncio.to_thread(_held_by, queue.target, victims)
        self.watchers.append(
            asyncio.create_task(self._recovery(queue, held, frozenset(victims), killed_at))
        )

    async def _recovery(
        self, queue: TaskQueue, held: list[int], victims: frozenset[str], killed_at: float
    ) -> None:
        unfinished, leased = set(held), set(held)
        reclaimed = False
        while unfinished:
            for task_id in list(unfinished):
                status = await queue.status(task_id)
                if status is None or status.finished:
                    unfinished.discard(task_id)
                    leased.discard(task_id)
                elif status.state is not TaskState.RUNNING or status.worker not in victims:
                    leased.discard(task_id)
            if not leased and not reclaimed:
                self.reclaims.append(time.perf_counter() - killed_at)
                reclaimed = True
            if unfinished:
                await asyncio.sleep(0.02)
        if held:
            self.recoveries.append(time.perf_counter() - killed_at)

    def record(self, ctx: RunContext, lease_s: float) -> None:
        """The recovery and reclaim figures, against the lease."""
        partial = ctx.partial
        if self.recoveries:
            partial.metric("recovery_max_s", max(self.recoveries))
            partial.latency("recovery", LatencySummary.from_seconds(self.recoveries))
        if self.reclaims:
            partial.metric("kill_reclaim_max_s", max(self.reclaims))
            partial.metric("kill_reclaim_max_x_lease", max(self.reclaims) / lease_s)
            partial.latency("kill_reclaim", LatencySummary.from_seconds(self.reclaims))
        partial.count("kills_with_tasks_in_flight", len(self.recoveries))


def _set_sleep(payload: dict[str, Any], params: StressParams) -> None:
    if params.task_type == "sleep":
        payload["seconds"] = params.sleep_ms / 1000.0


def _on(host: Host, generation: int, params: StressParams) -> EngineOptions:
    """Where a host's workers run, named ``h0-w0``... and, after its n-th kill, ``h0r<n>-w0``."""
    prefix = f"{host.name}-w" if generation == 0 else f"{host.name}r{generation}-w"
    return EngineOptions(name_prefix=prefix, engines=params.engines_per_process, netns=host.netns)


def _engines_of(pools: list[Workers], process: SpawnProcess) -> list[str]:
    """The names the engines of worker ``process`` (of one of ``pools``) claim under."""
    for pool in pools:
        if pool.processes is not None and process in pool.processes.processes:
            return pool.processes.engine_names(process.name)
    raise WorkloadError(f"stress: worker process {process.name} belongs to no pool of the run")


def _shares(results: list[PoolResult], by_worker: Mapping[str, int]) -> tuple[WorkerShare, ...]:
    """Every engine's share, its completions from the audit table (the database's own count,
    by the worker that held the lease), so a SIGKILLed worker's tasks are counted."""
    return tuple(
        WorkerShare(engine.name, by_worker.get(engine.name, 0), engine.busy_s)
        for result in results
        for engine in result.engines
    )


async def _busy_among(path: Path | str, names: set[str], patience_s: float) -> list[str]:
    """Those of ``names`` holding tasks, looked for up to ``patience_s`` (else none)."""
    deadline = time.monotonic() + patience_s
    while time.monotonic() < deadline:
        busy = [name for name in await asyncio.to_thread(_busy_workers, path) if name in names]
        if busy:
            return busy
        await asyncio.sleep(0.002)
    return []


def _reap(processes: list[SpawnProcess]) -> None:
    for process in processes:
        process.join(5)


CLUSTER_PREFIX = "queueprof-pg-hosts-"
"""The temporary folders of the hosts' clusters: ``queueprof-pg-hosts-<pid>-...``."""


@contextlib.contextmanager
def _cluster_on(network: HostNetwork, params: StressParams, config: QueueConfig) -> Iterator[str]:
    """A throwaway PostgreSQL cluster listening on the hosts' bridge; its URL."""
    from taskqueue import pgadmin

    initdb = pgadmin.find_initdb()
    if initdb is None:
        raise HostsUnavailableError("no initdb on PATH or in /usr/lib/postgresql/*/bin")
    # A run SIGKILLed itself could not stop its cluster: the folder names the run's process.
    for folder in Path(pgadmin.cluster_base_dir()).glob(f"{CLUSTER_PREFIX}*"):
        owner = re.match(rf"{CLUSTER_PREFIX}(\d+)-", folder.name)
        if owner and not process_alive(int(owner.group(1))):
            pgadmin.ThrowawayCluster(initdb.parent, folder=folder).stop()
    cluster = pgadmin.ThrowawayCluster(
        initdb.parent,
        folder_prefix=f"{CLUSTER_PREFIX}{os.getpid()}-",
        listen_address=network.server_address,
        trusted_network=network.network,
        # Each worker process opens up to pg_pool connections and one to LISTEN; a killed
        # host's are gone only once the server notices, while its replacements connect.
        max_connections=50 + 2 * params.workers * (config.pg_pool + 2),
    )
    try:
        cluster.start()
        yield cluster.dsn
    finally:
        cluster.stop()


def _alive(pools: list[Workers]) -> list[SpawnProcess]:
    return [
        process
        for pool in pools
        if pool.processes is not None
        for process in pool.processes.processes
        if process.is_alive()
    ]


# Each helper reads a SQLite file, or, given a postgresql:// URL, asks workloads.pgaudit.


def _install_audit(path: Path | str) -> None:
    if is_dsn(path):
        return pgaudit.install(str(path))
    with contextlib.closing(sqlite3.connect(path, timeout=30)) as db:
        db.executescript(AUDIT_SCHEMA)


def _busy_workers(path: Path | str) -> list[str]:
    if is_dsn(path):
        return pgaudit.busy_workers(str(path))
    with contextlib.closing(sqlite3.connect(path, timeout=30)) as db:
        rows = db.execute("SELECT DISTINCT worker FROM tasks WHERE state = 'running'").fetchall()
    return [row[0] for row in rows if row[0] is not None]


def _unfinished(path: Path | str) -> str:
    """Tasks still pending or running, by state and worker, for a drain-timeout message."""
    if is_dsn(path):
        rows = pgaudit.unfinished(str(path))
    else:
        with contextlib.closing(sqlite3.connect(path, timeout=30)) as db:
            rows = db.execute(
                "SELECT state, coalesce(worker, '-'), count(*), min(lease_until) - ? "
                "FROM tasks WHERE state IN ('pending', 'running') GROUP BY 1, 2",
                (time.time(),),
            ).fetchall()
    return ", ".join(
        f"{count} {state} on {worker} (lease ends in {left:.1f} s)"
        if left is not None
        else f"{count} {state}"
        for state, worker, count, left in rows
    )


def _held_by(path: Path | str, workers: list[str]) -> list[int]:
    if is_dsn(path):
        return pgaudit.held_by(str(path), workers)
    with contextlib.closing(sqlite3.connect(path, timeout=30)) as db:
        rows = db.execute(
            "SELECT id FROM tasks WHERE state = 'running' AND worker IN "
            f"({', '.join('?' * len(workers))})",
            workers,
        ).fetchall()
    return [row[0] for row in rows]


def _completed_by_worker(path: Path | str) -> dict[str, int]:
    """Tasks each worker completed, from the audit table."""
    if is_dsn(path):
        return pgaudit.completed_by_worker(str(path))
    with contextlib.closing(sqlite3.connect(path, timeout=30)) as db:
        rows = db.execute(
            "SELECT worker, count(*) FROM stress_completions GROUP BY worker"
        ).fetchall()
    return {str(worker): count for worker, count in rows}


def _audit(path: Path | str, ids: list[int]) -> dict[str, int]:
    """Count, from the database itself, tasks lost, completed twice and run more than once."""
    if is_dsn(path):
        return pgaudit.audit(str(path), ids)
    with contextlib.closing(sqlite3.connect(path, timeout=30)) as db:
        db.execute("CREATE TEMP TABLE enqueued (id INTEGER PRIMARY KEY)")
        db.executemany("INSERT INTO enqueued VALUES (?)", ((i,) for i in ids))
        lost = db.execute(
            "SELECT count(*) FROM enqueued e LEFT JOIN tasks t ON t.id = e.id "
            "WHERE t.id IS NULL OR t.state <> 'done'"
        ).fetchone()[0]
        duplicated = db.execute(
            "SELECT count(*) FROM (SELECT task_id FROM stress_completions "
            "GROUP BY task_id HAVING count(*) > 1)"
        ).fetchone()[0]
        rerun = db.execute(
            "SELECT count(*) FROM tasks WHERE state = 'done' AND attempts > 1"
        ).fetchone()[0]
        done = db.execute("SELECT count(*) FROM tasks WHERE state = 'done'").fetchone()[0]
    return {"lost": lost, "duplicated": duplicated, "rerun_after_reclaim": rerun, "done": done}
