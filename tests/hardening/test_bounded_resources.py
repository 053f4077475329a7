"""Issue 16 item 10: hostile artifacts are refused (or read) in bounded memory and linear time.

Each bomb is loaded in a fresh subprocess (``tests.hardening.measure``) that reports the
growth of its peak RSS; the error must name the file, the limit and the variable that
raises it.
"""

from __future__ import annotations

import gzip
import io
import os
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from analysis import hotspots
from analysis.errors import ArtifactError
from analysis.hotspots import sql_hotspots
from analysis.load.capture import SqlStatement
from analysis.load.trace import load_trace

ROOT = Path(__file__).parents[2]
CEILING_MIB = 100
"""Peak RSS growth allowed while refusing a bomb (the refusals read headers, not data)."""


def measured(loader: str, path: Path, timeout: float = 60) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "tests.hardening.measure", loader, str(path)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    result: dict[str, Any] = orjson.loads(done.stdout.splitlines()[-1])
    return result


def npy_header(dtype: str, items: int) -> bytes:
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": dtype, "fortran_order": False, "shape": (items,)}
    )
    return header.getvalue()


def test_sparse_2gb_speedscope_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "pyinstrument.speedscope.json"
    with path.open("wb") as out:
        out.write(b'{"profiles":[')
        out.truncate(2 << 30)  # sparse: no disk used
    result = measured("speedscope", path)
    assert str(path) in result["outcome"]
    assert "268,435,456 bytes" in result["outcome"]
    assert "QUEUEPROF_MAX_JSON_BYTES" in result["outcome"]
    assert result["rss_growth_mib"] < CEILING_MIB


def test_npz_zip_bomb_is_refused_before_unpacking(tmp_path: Path) -> None:
    # 136 Mi one-byte zeros deflate to ~130 kB and would unpack to 1.09 GB as int64.
    items = 136 << 20
    path = tmp_path / "op-samples.npz"
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
    assert path.stat().st_size < 2 << 20
    result = measured("npz", path)
    assert "once unpacked, over the limit" in result["outcome"]
    assert "QUEUEPROF_MAX_NPZ_BYTES" in result["outcome"]
    assert result["rss_growth_mib"] < CEILING_MIB


def test_npz_whose_header_claims_2_40_items_is_a_clean_error(tmp_path: Path) -> None:
    path = tmp_path / "op-samples.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("op/claim.npy", npy_header("<i8", 1 << 40))
    assert path.stat().st_size < 400
    result = measured("npz", path)
    assert "claims 1,099,511,627,776 items but holds 0 bytes" in result["outcome"]
    assert result["rss_growth_mib"] < CEILING_MIB


def test_trace_of_nul_bytes_after_the_array_opens_is_refused_in_linear_time(
    tmp_path: Path,
) -> None:
    path = tmp_path / "viztracer.trace.json"
    with path.open("wb") as out:
        out.write(b'{"traceEvents":[')
        out.truncate(512 << 20)  # sparse
    result = measured("trace", path, timeout=30)
    assert "without one complete event" in result["outcome"]
    assert "QUEUEPROF_MAX_TRACE_EVENT_BYTES" in result["outcome"]
    assert result["seconds"] < 5
    assert result["rss_growth_mib"] < CEILING_MIB


def test_trace_event_holding_millions_of_separators_parses_in_linear_time(
    tmp_path: Path,
) -> None:
    path = tmp_path / "viztracer.trace.json"
    path.write_bytes(b'{"traceEvents":[{"ph":"X","args":[' + b"{}," * 2_000_000 + b"{}]}]}")
    result = measured("trace", path, timeout=30)
    assert result["outcome"].startswith(("loaded", "ArtifactError"))
    assert result["seconds"] < 5  # was 60 s+ (one full parse per separator stepped back)


def test_sql_capture_is_planned_on_one_database_once_per_statement(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    connections = []
    connect = sqlite3.connect

    def counting(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        connections.append(args)
        return connect(*args, **kwargs)

    monkeypatch.setattr(sqlite3, "connect", counting)
    monkeypatch.setattr(hotspots, "MAX_PLANNED", 300)
    statements = [
        SqlStatement(
            i, "claim", f"SELECT * FROM tasks WHERE id = {i % 500}", 1, 1.0 + i, 1, 1, 1, 1, 0
        )
        for i in range(2_000)
    ]
    found = sql_hotspots(statements, {}, {})
    assert len(connections) == 1
    planned = [h for h in found if h.plan.error is None]
    assert len({h.sql for h in planned}) == 300
    costliest = max(found, key=lambda h: h.total_ms)
    assert costliest.plan.error is None
    assert "only the 300 costliest" in str(found[-1].plan.error)


def test_gzipped_trace_that_unpacks_to_too_many_events_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The same bound stops a .gz of a few MB that unpacks to billions of valid events; it is
    # lowered here so the test stays small.
    monkeypatch.setenv("QUEUEPROF_MAX_TRACE_EVENTS", "10000")
    event = b'{"ph":"X","name":"f","pid":1,"tid":1,"ts":1,"dur":1}'
    path = tmp_path / "viztracer.trace.json.gz"
    path.write_bytes(gzip.compress(b'{"traceEvents":[' + b",".join([event] * 50_000) + b"]}"))
    with pytest.raises(ArtifactError, match="QUEUEPROF_MAX_TRACE_EVENTS"):
        load_trace(path)
