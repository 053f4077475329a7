"""Hostile artifacts of issue 16 item 10, written by the tests and by hand for the figures.

``python -m tests.hardening.bombs DIR`` writes the full-size set into DIR (sparse files: a
few MB of disk); then ``python -m tests.hardening.measure LOADER DIR/FILE`` loads one in a
fresh process and prints its time and peak-RSS growth::

    speedscope  sparse.speedscope.json   2 GiB sparse, JSON opening then NUL bytes
    npz         bomb.npz                 ~250 kB deflated, 256 Mi int8 = 2 GiB as int64
    npz         claim.npz                250 bytes, header claims 2**40 int64 items
    trace       nul.trace.json           512 MiB sparse: '{"traceEvents":[' then NULs
    trace       separators.trace.json    one event whose args hold 5,000,000 '{},'
    sql         sql-statements.json      200,000 distinct statements
"""

from __future__ import annotations

import io
import sys
import zipfile
from pathlib import Path

import numpy as np
import orjson


def sparse(path: Path, head: bytes, size: int) -> Path:
    """``head`` then NUL bytes up to ``size``, without using the disk for them."""
    with path.open("wb") as out:
        out.write(head)
        out.truncate(size)
    return path


def npy_header(dtype: str, items: int) -> bytes:
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": dtype, "fortran_order": False, "shape": (items,)}
    )
    return header.getvalue()


def npz_bomb(path: Path, items: int) -> Path:
    """A deflated ``op/claim`` of ``items`` int8 zeros: tiny on disk, ``8 * items`` as int64."""
    info = zipfile.ZipInfo("op/claim.npy")
    info.compress_type = zipfile.ZIP_DEFLATED
    with (
        zipfile.ZipFile(path, "w", compresslevel=1) as archive,
        archive.open(info, "w", force_zip64=True) as member,
    ):
        member.write(npy_header("|i1", items))
        zeros = bytes(8 << 20)
        for _ in range(items // len(zeros)):
            member.write(zeros)
    return path


def npz_claim(path: Path, items: int = 1 << 40) -> Path:
    """An npz whose only array's header claims ``items`` int64 items and holds none."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("op/claim.npy", npy_header("<i8", items))
    return path


def separator_trace(path: Path, separators: int) -> Path:
    """A trace whose one event holds ``separators`` empty objects in its args."""
    path.write_bytes(b'{"traceEvents":[{"ph":"X","args":[' + b"{}," * separators + b"{}]}]}")
    return path


def sql_capture(path: Path, statements: int) -> Path:
    """``sql-statements.json`` with ``statements`` distinct statements."""
    rows = [
        {
            "index": i,
            "op": "claim",
            "sql": f"SELECT * FROM tasks WHERE id = {i}",
            "count": 1,
            "total_ms": 1.0 + i % 7,
            "p50_us": 1,
            "p95_us": 1,
            "p99_us": 1,
            "max_us": 1,
            "rows": 0,
        }
        for i in range(statements)
    ]
    path.write_bytes(orjson.dumps({"schema_version": 1, "statements": rows}))
    return path


def main(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    sparse(folder / "sparse.speedscope.json", b'{"profiles":[', 2 << 30)
    npz_bomb(folder / "bomb.npz", 256 << 20)
    npz_claim(folder / "claim.npz")
    sparse(folder / "nul.trace.json", b'{"traceEvents":[', 512 << 20)
    separator_trace(folder / "separators.trace.json", 5_000_000)
    sql_capture(folder / "sql-statements.json", 200_000)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
