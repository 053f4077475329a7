"""Task payloads for the workloads and latency summaries of a queue's instrumentation."""

from __future__ import annotations

from typing import Any

from runs import LatencySummary
from taskqueue import OPERATIONS, PoolResult, QueueStats

SLEEP_SECONDS = 0.001
CPU_ITERATIONS = 10_000
ALLOC_BYTES = 65_536

QUEUE_OPERATIONS = OPERATIONS
"""Operations whose latencies the workloads report."""


def payload(task_type: str, seq: int, padding: str = "") -> dict[str, Any]:
    """The payload of task number ``seq`` for the built-in handler ``task_type``."""
    body: dict[str, Any] = {"seq": seq}
    if task_type == "sleep":
        body["seconds"] = SLEEP_SECONDS
    elif task_type == "cpu":
        body["iterations"] = CPU_ITERATIONS
    elif task_type == "alloc":
        body["bytes"] = ALLOC_BYTES
    elif task_type == "fail":
        body["times"] = 1  # fails once, then succeeds on its retry
    if padding:
        body["pad"] = padding
    return body


def make_tasks(
    task_type: str, count: int, payload_bytes: int = 0, start: int = 0
) -> list[tuple[str, dict[str, Any]]]:
    """``count`` ``(type, payload)`` pairs numbered from ``start``."""
    padding = "x" * payload_bytes
    return [(task_type, payload(task_type, seq, padding)) for seq in range(start, start + count)]


def op_latencies(stats: QueueStats) -> dict[str, LatencySummary]:
    """A latency summary per queue operation that has samples."""
    return {
        op: LatencySummary.from_samples(stats.timings_ns[op])
        for op in QUEUE_OPERATIONS
        if len(stats.timings_ns.get(op, ())) > 0
    }


def error_counters(stats: QueueStats, pool: PoolResult | None = None) -> dict[str, int]:
    """SQLITE_BUSY retries, claim conflicts, stale acks and claim trips from a queue's stats,
    and with ``pool`` what each of its workers did (:func:`worker_counters`).

    ``claim_trips`` counts calls that carried claims, each a trip to a connection thread
    unless it ran inline (``inline_calls`` counts every operation that did); engines sharing
    a connection send claims that wait for one another together (``grouped_claims``).
    Contention per operation: ``sqlite_busy_retries.<op>`` and ``lock_wait_us.<op>``, the
    microseconds the retry loop slept waiting for another connection's lock (``lock_wait_us``
    over all operations); microseconds, because counters are whole numbers.
    """
    counters = {
        "sqlite_busy_retries": sum(stats.busy_retries.values()),
        "claim_conflicts": stats.claim_conflicts,
        "stale_acks": stats.stale_acks,
        "claim_trips": stats.claim_trips,
        "grouped_claims": stats.grouped_claims,
        "inline_calls": stats.inline_calls,
        "lock_wait_us": sum(stats.busy_wait_ns.values()) // 1000,
    }
    for op, retries in sorted(stats.busy_retries.items()):
        if retries:
            counters[f"sqlite_busy_retries.{op}"] = retries
    for op, waited_ns in sorted(stats.busy_wait_ns.items()):
        if waited_ns:
            counters[f"lock_wait_us.{op}"] = waited_ns // 1000
    if pool is not None:
        counters.update(worker_counters(pool))
    return counters


def worker_counters(pool: PoolResult) -> dict[str, int]:
    """Per worker of ``pool``: ``worker_claims.<name>`` (claim calls),
    ``worker_empty_claims.<name>``, ``worker_tasks.<name>`` (tasks claimed) and
    ``worker_busy_us.<name>`` (microseconds holding claimed tasks), so an idle or starved
    worker shows next to the busy ones (the pool's wall time is ``pool_wall_us``)."""
    counters = {"pool_wall_us": int(pool.wall_s * 1e6)}
    for engine in pool.engines:
        counters[f"worker_claims.{engine.name}"] = engine.claims
        counters[f"worker_empty_claims.{engine.name}"] = engine.empty_claims
        counters[f"worker_tasks.{engine.name}"] = engine.claimed
        counters[f"worker_busy_us.{engine.name}"] = round(engine.busy_s * 1e6)
    return counters


def workers_label(count: int) -> str:
    """``1 worker``, ``5 workers``."""
    return f"{count} worker" + ("" if count == 1 else "s")
