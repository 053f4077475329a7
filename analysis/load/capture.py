"""The queue's own captures: ``op-samples.npz`` and ``sql-statements.json``."""

from __future__ import annotations

import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ArtifactError
from .jsonfile import read_json_object

FIX = "re-run the workload (every `queueprof run` writes it)"
SQL_FIX = "re-run the workload with `--queue capture_sql=true` (or a profiler that turns it on)"
SQL_VERSION = 1

NsArray = np.ndarray[Any, np.dtype[np.int64]]


@dataclass(frozen=True)
class OpSamples:
    """Every operation call's duration (``op/<name>``) and every statement's (``sql/<index>``),
    in nanoseconds."""

    ops: Mapping[str, NsArray]
    statements: Mapping[int, NsArray]


def load_op_samples(path: Path) -> OpSamples:
    """Read ``op-samples.npz``; arrays other than ``op/*`` and ``sql/<int>`` are an error."""
    if not path.is_file():
        raise ArtifactError(path, "the operation samples are missing", FIX)
    if path.stat().st_size == 0:
        raise ArtifactError(path, "the operation samples file is empty", FIX)
    ops: dict[str, NsArray] = {}
    statements: dict[int, NsArray] = {}
    try:
        with np.load(path, allow_pickle=False) as archive:
            for key in archive.files:
                kind, _, name = key.partition("/")
                values = np.asarray(archive[key])
                if values.ndim != 1 or not np.issubdtype(values.dtype, np.integer):
                    raise ArtifactError(
                        path, f"array {key!r} is not a 1-D array of integer nanoseconds", FIX
                    )
                if kind == "op" and name:
                    ops[name] = values.astype(np.int64, copy=False)
                elif kind == "sql" and name.isdigit():
                    statements[int(name)] = values.astype(np.int64, copy=False)
                else:
                    raise ArtifactError(
                        path, f"unexpected array {key!r} (expected op/<name> or sql/<n>)", FIX
                    )
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as error:
        raise ArtifactError(
            path, f"not a readable .npz archive (truncated or damaged: {error})", FIX
        ) from None
    return OpSamples(ops, statements)


@dataclass(frozen=True, slots=True)
class SqlStatement:
    """One distinct (operation, statement) as the queue captured it."""

    index: int
    op: str
    sql: str
    count: int
    total_ms: float
    p50_us: float
    p95_us: float
    p99_us: float
    max_us: float
    rows: int
    database: str = ""
    """The database it ran on, for statements of other connections than taskqueue's."""
    schema: str | None = None
    """That database's schema as a script (None: taskqueue's own schema applies)."""


def load_sql_statements(path: Path) -> tuple[SqlStatement, ...]:
    """Read ``sql-statements.json`` (schema_version 1)."""
    document = read_json_object(path, "the SQL statement capture", SQL_FIX)
    version = document.get("schema_version")
    if version != SQL_VERSION:
        raise ArtifactError(
            path,
            f"schema_version {version!r} is not supported (this analysis reads {SQL_VERSION})",
            "re-run the workload with this queueprof",
        )
    rows = document.get("statements")
    if not isinstance(rows, list):
        raise ArtifactError(path, "no 'statements' list", SQL_FIX)
    schemas = document.get("databases") or {}
    if not isinstance(schemas, dict):
        raise ArtifactError(path, "'databases' is not an object of schemas", SQL_FIX)
    statements = []
    for number, row in enumerate(rows):
        try:
            statements.append(
                SqlStatement(
                    index=int(row["index"]),
                    op=str(row["op"]),
                    sql=str(row["sql"]),
                    count=int(row["count"]),
                    total_ms=float(row["total_ms"]),
                    p50_us=float(row["p50_us"]),
                    p95_us=float(row["p95_us"]),
                    p99_us=float(row["p99_us"]),
                    max_us=float(row["max_us"]),
                    rows=int(row["rows"]),
                    database=str(row.get("database", "")),
                    schema=(
                        str(schemas[row["database"]]) if row.get("database") in schemas else None
                    ),
                )
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ArtifactError(
                path, f"statement #{number} is malformed ({type(error).__name__}: {error})", SQL_FIX
            ) from None
    return tuple(statements)
