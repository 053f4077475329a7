"""Issue 16 item 10: hostile artifacts are refused (or read) in bounded memory and linear time.

Each bomb is loaded in a fresh subprocess (``tests.hardening.measure``) that reports the
growth of its peak RSS; the error must name the file, the limit and the variable that
raises it.
"""

from __future__ import annotations

import gzip
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from analysis import hotspots
from analysis.errors import ArtifactError
from analysis.hotspots import sql_hotspots
from analysis.load.capture import SqlStatement
from analysis.load.trace import load_trace

from . import bombs

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


def test_sparse_2gb_speedscope_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = bombs.sparse(tmp_path / "pyinstrument.speedscope.json", b'{"profiles":[', 2 << 30)
    result = measured("speedscope", path)
    assert str(path) in result["outcome"]
    assert "268,435,456 bytes" in result["outcome"]
    assert "QUEUEPROF_MAX_JSON_BYTES" in result["outcome"]
    assert result["rss_growth_mib"] < CEILING_MIB


def test_npz_zip_bomb_is_refused_before_unpacking(tmp_path: Path) -> None:
    # 136 Mi one-byte zeros deflate to ~130 kB and would unpack to 1.09 GB as int64.
    path = bombs.npz_bomb(tmp_path / "op-samples.npz", 136 << 20)
    assert path.stat().st_size < 2 << 20
    result = measured("npz", path)
    assert "once unpacked, over the limit" in result["outcome"]
    assert "QUEUEPROF_MAX_NPZ_BYTES" in result["outcome"]
    assert result["rss_growth_mib"] < CEILING_MIB


def test_npz_whose_header_claims_2_40_items_is_a_clean_error(tmp_path: Path) -> None:
    path = bombs.npz_claim(tmp_path / "op-samples.npz")
    assert path.stat().st_size < 400
    result = measured("npz", path)
    assert "claims 1,099,511,627,776 items but holds 0 bytes" in result["outcome"]
    assert result["rss_growth_mib"] < CEILING_MIB


def test_trace_of_nul_bytes_after_the_array_opens_is_refused_in_linear_time(
    tmp_path: Path,
) -> None:
    path = bombs.sparse(tmp_path / "viztracer.trace.json", b'{"traceEvents":[', 512 << 20)
    result = measured("trace", path, timeout=30)
    assert "without one complete event" in result["outcome"]
    assert "QUEUEPROF_MAX_TRACE_EVENT_BYTES" in result["outcome"]
    assert result["seconds"] < 5
    assert result["rss_growth_mib"] < CEILING_MIB


def test_trace_event_holding_millions_of_separators_parses_in_linear_time(
    tmp_path: Path,
) -> None:
    path = bombs.separator_trace(tmp_path / "viztracer.trace.json", 2_000_000)
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
