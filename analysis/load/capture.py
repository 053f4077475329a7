"""The queue's own captures: ``op-samples.npz`` and ``sql-statements.json``."""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from runs.adapters import SqlCaller

from ..errors import ArtifactError
from .jsonfile import read_json_object
from .limits import NPZ_ARRAYS, NPZ_BYTES

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
        _check_npz_headers(path)
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
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        EOFError,
        OSError,
        ValueError,
        NotImplementedError,  # a compression method zipfile lacks
        RuntimeError,  # an encrypted member
        zlib.error,
    ) as error:
        raise ArtifactError(
            path, f"not a readable .npz archive (truncated or damaged: {error})", FIX
        ) from None
    return OpSamples(ops, statements)


def _check_npz_headers(path: Path) -> None:
    """Refuse, before unpacking anything, an archive whose arrays would not fit the bounds.

    Each member's ``.npy`` header says its shape and type; numpy allocates what the header
    claims, so a 314-byte file claiming 2**40 items, or a zip bomb of a few MB unpacking to
    gigabytes, is stopped here: every array must be 1-D integers whose header agrees with
    the member's size, and all of them together must fit
    :data:`~analysis.load.limits.NPZ_BYTES` as 64-bit integers.
    """
    with zipfile.ZipFile(path) as archive:
        members = archive.infolist()
        NPZ_ARRAYS.check(path, len(members), "the operation samples archive")
        unpacked = 0
        for info in members:
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                # numpy writes stored or deflated members; bzip2 and lzma members unpack a
                # whole read at once, so a small one can fill memory before any check.
                raise ArtifactError(
                    path,
                    f"array {info.filename!r} is compressed with method "
                    f"{info.compress_type}; numpy writes stored or deflated arrays only",
                    FIX,
                )
            with archive.open(info) as member:
                shape, dtype, header_bytes = _npy_header(member, path, info.filename)
            if len(shape) != 1 or dtype.kind not in "iu" or dtype.hasobject:
                raise ArtifactError(
                    path, f"array {info.filename!r} is not a 1-D array of integer nanoseconds", FIX
                )
            if shape[0] * dtype.itemsize != info.file_size - header_bytes:
                raise ArtifactError(
                    path,
                    f"array {info.filename!r} claims {shape[0]:,} items but holds "
                    f"{max(info.file_size - header_bytes, 0):,} bytes (damaged or forged)",
                    FIX,
                )
            unpacked += shape[0] * max(dtype.itemsize, 8)
        NPZ_BYTES.check(path, unpacked, "the operation samples archive")


def _npy_header(member: IO[bytes], path: Path, name: str) -> tuple[tuple[int, ...], Any, int]:
    """(shape, dtype, header length) of the ``.npy`` stream ``member``."""
    version = np.lib.format.read_magic(member)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(member)
    elif version == (2, 0):
        shape, _, dtype = np.lib.format.read_array_header_2_0(member)
    else:
        raise ArtifactError(path, f"array {name!r} uses .npy format {version}, not 1.0/2.0", FIX)
    return tuple(shape), np.dtype(dtype), member.tell()


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
    caller: SqlCaller | None = None
    """The program's function that ran it (statements of other connections than taskqueue's)."""
    caller_calls: int = 0
    """That function's calls that ran SQL, as the capture counted them (0: not counted)."""


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
                    caller=SqlCaller.from_dict(row["caller"]) if "caller" in row else None,
                    caller_calls=int(row.get("caller_calls", 0)),
                )
            )
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise ArtifactError(
                path, f"statement #{number} is malformed ({type(error).__name__}: {error})", SQL_FIX
            ) from None
    return tuple(statements)
