"""What every queue of a run recorded, kept as artifacts for the analysis.

Workloads summarise latencies into ``results.json``; the analysis also needs the raw
samples (rank tests when comparing runs) and, when ``capture_sql`` is on, each SQL
statement's timings (SQL hotspots). :class:`RunCapture` observes every queue that closes
during the run (worker processes' queues arrive through the pool) and writes:

- ``op-samples.npz``: per operation, every duration in nanoseconds (``op/<name>``), and per
  distinct statement every duration (``sql/<index>``, index into the JSON below);
- ``sql-statements.json``: per (operation, statement): count, total, percentiles, rows;
  for statements of other ``sqlite3`` connections (:mod:`workloads.sqlcapture`), the
  database each ran on, the program's function that ran it (``caller``: file, function,
  qualname; one entry per function) with its calls that ran SQL (``caller_calls``), and
  each database's schema.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from runs import Artifact, ArtifactKind, write_atomic
from runs.adapters import AdapterSpec, SqlCaller, write_adapter_specs
from runs.files import ADAPTERS, OP_SAMPLES, SQL_STATEMENTS
from taskqueue import QueueObserver, QueueStats

from .sqlcapture import SqliteCapture

CAPTURE_VERSION = 1

_Key = tuple[str, str, SqlCaller | None]
"""(operation, statement, the program's function that ran it: None for taskqueue's own)."""


def _sort_key(key: _Key) -> tuple[str, str, str, str]:
    op, sql, caller = key
    return (op, sql, caller.file if caller else "", caller.qualname if caller else "")


class RunCapture(QueueObserver):
    """Accumulates the stats of every queue closed during a run."""

    def __init__(self) -> None:
        self.timings: dict[str, list[np.ndarray[Any, Any]]] = defaultdict(list)
        self.sql: dict[_Key, list[int]] = defaultdict(list)
        self.sql_rows: dict[_Key, int] = defaultdict(int)
        self.sql_database: dict[_Key, str] = {}
        self.schemas: dict[str, str] = {}
        self.caller_calls: dict[SqlCaller, int] = {}
        self.queues = 0

    def queue_closed(self, stats: QueueStats) -> None:
        self.queues += 1
        for op, samples in stats.timings_ns.items():
            self.timings[op].append(np.frombuffer(samples, dtype=np.int64).copy())
        for sample in stats.sql:
            key = (sample.op, sample.sql, None)
            self.sql[key].append(sample.duration_ns)
            self.sql_rows[key] += sample.rows

    def add_sqlite(self, capture: SqliteCapture) -> None:
        """Statements timed on other ``sqlite3`` connections (adapters, peers, programs),
        with the schema of each database they ran on; one entry per function that ran a
        statement, so the analysis can name it (and make it the operation when no other is
        known)."""
        for statement in capture.statements:
            key = (statement.op, statement.sql, statement.caller)
            self.sql[key].append(statement.duration_ns)
            self.sql_rows[key] += statement.rows
            self.sql_database[key] = statement.database
        self.schemas.update(capture.schemas)
        for caller, calls in capture.caller_calls.items():
            self.caller_calls[caller] = self.caller_calls.get(caller, 0) + calls

    def write(self, run_dir: Path) -> list[Artifact]:
        """Write what was captured; returns the artifacts (none if nothing was recorded)."""
        if not self.timings and not self.sql:
            return []
        arrays = {f"op/{op}": np.concatenate(parts) for op, parts in sorted(self.timings.items())}
        statements = []
        ordered = sorted(self.sql.items(), key=lambda item: _sort_key(item[0]))
        for index, ((op, sql, caller), durations) in enumerate(ordered):
            values = np.asarray(durations, dtype=np.int64)
            arrays[f"sql/{index}"] = values
            p50, p95, p99 = np.percentile(values, (50, 95, 99))
            statements.append(
                {
                    "index": index,
                    "op": op,
                    "sql": sql,
                    "count": int(values.size),
                    "total_ms": float(values.sum()) / 1e6,
                    "p50_us": float(p50) / 1e3,
                    "p95_us": float(p95) / 1e3,
                    "p99_us": float(p99) / 1e3,
                    "max_us": float(values.max()) / 1e3,
                    "rows": self.sql_rows[(op, sql, caller)],
                    **(
                        {"database": self.sql_database[(op, sql, caller)]}
                        if (op, sql, caller) in self.sql_database
                        else {}
                    ),
                    **({"caller": caller.to_dict()} if caller is not None else {}),
                    **(
                        {"caller_calls": self.caller_calls[caller]}
                        if caller is not None and caller in self.caller_calls
                        else {}
                    ),
                }
            )
        temp = run_dir / f".{OP_SAMPLES}.tmp.npz"
        np.savez_compressed(temp, **arrays)  # type: ignore[arg-type]
        temp.replace(run_dir / OP_SAMPLES)
        artifacts = [
            Artifact(
                ArtifactKind.SAMPLES,
                OP_SAMPLES,
                "npz",
                "numpy.load(path): arrays op/<operation> and sql/<index>, nanoseconds",
                f"every queue operation's duration ({sum(a.size for a in arrays.values()):,} "
                f"samples, {self.queues} queue(s) opened and closed)",
            )
        ]
        if statements:
            # "database" (per statement) and "databases" (its schema) are absent for
            # taskqueue's own statements, which are planned on taskqueue's schema.
            document = {
                "schema_version": CAPTURE_VERSION,
                "statements": statements,
                "databases": dict(sorted(self.schemas.items())),
            }
            write_atomic(
                run_dir / SQL_STATEMENTS,
                orjson.dumps(document, option=orjson.OPT_INDENT_2),
            )
            artifacts.append(
                Artifact(
                    ArtifactKind.SQL,
                    SQL_STATEMENTS,
                    "json",
                    "any JSON viewer; `queueprof analyze` ranks and explains them",
                    f"{len(statements)} distinct SQL statements with their timings",
                )
            )
        return artifacts


def write_declarations(run_dir: Path, specs: Iterable[AdapterSpec]) -> list[Artifact]:
    """``adapters.json`` with ``specs`` (none written when there are none)."""
    specs = list(specs)
    if not specs:
        return []
    write_adapter_specs(run_dir, specs)
    return [
        Artifact(
            ArtifactKind.DECLARATION,
            ADAPTERS,
            "json",
            "any JSON viewer; `queueprof analyze` maps frames to operations from it",
            f"the code paths and delivery guarantee of {len(specs)} queue adapter(s): "
            + ", ".join(sorted(s.name for s in specs)),
        )
    ]
