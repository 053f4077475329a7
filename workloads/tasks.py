"""Task payloads for the workloads and latency summaries of a queue's instrumentation."""

from __future__ import annotations

from typing import Any

from runs import LatencySummary
from taskqueue import OPERATIONS, QueueStats

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


def error_counters(stats: QueueStats) -> dict[str, int]:
    """SQLITE_BUSY retries, claim conflicts, stale acks and claim trips from a queue's stats.

    ``claim_trips`` counts calls that carried claims, each a trip to a connection thread
    unless it ran inline (``inline_calls`` counts every operation that did); engines sharing
    a connection send claims that wait for one another together (``grouped_claims``).
    """
    return {
        "sqlite_busy_retries": sum(stats.busy_retries.values()),
        "claim_conflicts": stats.claim_conflicts,
        "stale_acks": stats.stale_acks,
        "claim_trips": stats.claim_trips,
        "grouped_claims": stats.grouped_claims,
        "inline_calls": stats.inline_calls,
    }


def workers_label(count: int) -> str:
    """``1 worker``, ``5 workers``."""
    return f"{count} worker" + ("" if count == 1 else "s")
