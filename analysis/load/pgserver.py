"""``pg-activity.json`` and ``pg-statements.json``: the database side of a PostgreSQL run.

Written by ``workloads.pgactivity`` while the run's scratch databases existed: sessions
sampled from ``pg_stat_activity`` and counted by (operation, statement, state, wait event),
and ``pg_stat_statements`` diffed over the run, or the reason the server could not give it.
Every value is checked here, so the analysis works on typed, plausible figures only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runs.files import PG_ACTIVITY, PG_STATEMENTS

from ..errors import ArtifactError
from .jsonfile import read_json_object

FIX = (
    "re-run the workload with --queue backend=postgresql://... (the run samples its database "
    "side), or delete the file to analyse the run without it"
)
SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True)
class ActivitySamples:
    """Session samples of one (operation, statement, state, wait event)."""

    op: str
    statement: str
    """The queue's statement name (``claim_with_acks_for-update``), or the start of a query
    that is not the queue's."""
    state: str
    """``running``, ``Lock``, ``LWLock``, ``IO``, ``Client``, ``idle``..."""
    wait_event: str
    count: int
    blocked_by: tuple[tuple[str, int], ...] = ()
    """For lock waits: the operations of the sessions holding the lock, with how often."""


@dataclass(frozen=True, slots=True)
class ServerActivity:
    """``pg-activity.json``."""

    interval_ms: float
    polls: int
    poll_seconds: float
    """The sampler's own time querying the server (its cost)."""
    elapsed_s: float
    databases: tuple[str, ...]
    problems: tuple[str, ...]
    samples: tuple[ActivitySamples, ...]


@dataclass(frozen=True, slots=True)
class ServerStatement:
    """One statement's ``pg_stat_statements`` counters, diffed over the run."""

    op: str | None
    """The queue operation, None for a statement that is not the queue's."""
    statement: str | None
    sql: str | None
    """The statement as the queue sends it (the key of its plan), None if not the queue's."""
    query: str
    calls: int
    total_exec_ms: float
    mean_exec_ms: float
    rows: int
    shared_blks_hit: int
    shared_blks_read: int
    shared_blks_dirtied: int
    shared_blks_written: int


@dataclass(frozen=True, slots=True)
class ServerStatements:
    """``pg-statements.json``: the counters, or why the server had none."""

    available: bool
    reason: str | None
    statements: tuple[ServerStatement, ...]


def load_server_activity(path: Path) -> ServerActivity:
    """Read ``pg-activity.json`` (schema_version 1); :class:`ArtifactError` naming the file
    and what is wrong otherwise."""
    document = _document(path, "the pg_stat_activity samples")
    try:
        samples = document["samples"]
        if not isinstance(samples, list):
            raise TypeError("samples is not a list")
        return ServerActivity(
            interval_ms=_number(document["interval_ms"], "interval_ms", positive=True),
            polls=_count(document["polls"], "polls"),
            poll_seconds=_number(document["poll_seconds"], "poll_seconds"),
            elapsed_s=_number(document["elapsed_s"], "elapsed_s"),
            databases=_texts(document.get("databases", []), "databases"),
            problems=_texts(document.get("problems", []), "problems"),
            samples=tuple(_samples(entry) for entry in samples),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise ArtifactError(
            path, f"not a pg_stat_activity sample document ({_why(error)})", FIX
        ) from None


def load_server_statements(path: Path) -> ServerStatements:
    """Read ``pg-statements.json`` (schema_version 1)."""
    document = _document(path, "the pg_stat_statements counters")
    try:
        available = document["available"]
        if not isinstance(available, bool):
            raise TypeError(f"available is {available!r}, not true or false")
        reason = document.get("reason")
        if reason is not None and not isinstance(reason, str):
            raise TypeError("reason is not text")
        if not available and not reason:
            raise ValueError("available is false and no reason says why")
        rows = document["statements"]
        if not isinstance(rows, list):
            raise TypeError("statements is not a list")
        return ServerStatements(available, reason, tuple(_statement(row) for row in rows))
    except (KeyError, TypeError, ValueError) as error:
        raise ArtifactError(
            path, f"not a pg_stat_statements document ({_why(error)})", FIX
        ) from None


def _document(path: Path, what: str) -> dict[str, Any]:
    document = read_json_object(path, what, FIX)
    version = document.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ArtifactError(
            path,
            f"schema_version {version!r} is not supported (expected {SCHEMA_VERSION})",
            "analyse it with the queueprof that wrote it, or re-run the workload",
        )
    return document


def _samples(entry: Any) -> ActivitySamples:
    if not isinstance(entry, Mapping):
        raise TypeError(f"a sample entry is a {type(entry).__name__}, not an object")
    blocked = entry.get("blocked_by", {})
    if not isinstance(blocked, Mapping):
        raise TypeError("blocked_by is not an object")
    return ActivitySamples(
        op=_text(entry["op"], "op", empty=False),
        statement=_text(entry["statement"], "statement"),
        state=_text(entry["state"], "state", empty=False),
        wait_event=_text(entry.get("wait_event", ""), "wait_event"),
        count=_count(entry["count"], "count"),
        blocked_by=tuple(
            (_text(op, "blocked_by operation", empty=False), _count(n, "blocked_by count"))
            for op, n in sorted(blocked.items())
        ),
    )


def _statement(row: Any) -> ServerStatement:
    if not isinstance(row, Mapping):
        raise TypeError(f"a statement entry is a {type(row).__name__}, not an object")
    calls = _count(row["calls"], "calls")
    if calls == 0:
        raise ValueError("a statement has 0 calls (the writer lists only statements that ran)")
    return ServerStatement(
        op=_optional_text(row.get("op"), "op"),
        statement=_optional_text(row.get("statement"), "statement"),
        sql=_optional_text(row.get("sql"), "sql"),
        query=_text(row["query"], "query"),
        calls=calls,
        total_exec_ms=_number(row["total_exec_ms"], "total_exec_ms"),
        mean_exec_ms=_number(row["mean_exec_ms"], "mean_exec_ms"),
        rows=_count(row["rows"], "rows"),
        shared_blks_hit=_count(row["shared_blks_hit"], "shared_blks_hit"),
        shared_blks_read=_count(row["shared_blks_read"], "shared_blks_read"),
        shared_blks_dirtied=_count(row["shared_blks_dirtied"], "shared_blks_dirtied"),
        shared_blks_written=_count(row["shared_blks_written"], "shared_blks_written"),
    )


MAX_TEXT = 4096
"""The longest text a field may hold: the queue's longest statement is under 1 kB."""


def _text(value: Any, what: str, *, empty: bool = True) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} is {value!r}, not text")
    if len(value) > MAX_TEXT:
        raise ValueError(f"{what} is {len(value):,} characters long (at most {MAX_TEXT:,})")
    if not empty and not value:
        raise ValueError(f"{what} is empty")
    return value


def _optional_text(value: Any, what: str) -> str | None:
    return None if value is None else _text(value, what, empty=False)


def _texts(value: Any, what: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise TypeError(f"{what} is not a list")
    return tuple(_text(item, what) for item in value)


def _count(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{what} is {value!r}, not a whole number >= 0")
    return value


def _number(value: Any, what: str, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{what} is {value!r}, not a finite number")
    if value < 0 or (positive and value == 0):
        raise ValueError(f"{what} is {value!r}, must be {'> 0' if positive else '>= 0'}")
    return float(value)


def _why(error: Exception) -> str:
    if isinstance(error, KeyError):
        return f"no {error.args[0]!r} field"
    return str(error)


__all__ = [
    "PG_ACTIVITY",
    "PG_STATEMENTS",
    "ActivitySamples",
    "ServerActivity",
    "ServerStatement",
    "ServerStatements",
    "load_server_activity",
    "load_server_statements",
]
