"""The machine's round-trip floor beside the 20-engine row (benchmarks.pg_floor)."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from benchmarks.pg_floor import KINDS, FloorShape, measure, prepare
from tests.helpers.db import fetch


def test_every_statement_of_every_client_is_timed(pg_dsn: str) -> None:
    # GIVEN 2 processes of 2 clients, one statement every 20 ms each for 0.3 s
    shape = FloorShape(processes=2, clients=2, interval_ms=20.0, duration_s=0.3)
    asyncio.run(prepare(pg_dsn, shape.processes * shape.clients))
    # WHEN both kinds are measured
    times = {kind: measure(pg_dsn, kind, shape) for kind in KINDS}
    # THEN each client sent several statements, each with a time
    for kind, ns in times.items():
        assert len(ns) >= 2 * shape.processes * shape.clients, kind
        assert (ns > 0).all(), kind
    # AND every timed update changed its client's own row once
    rows = fetch(pg_dsn, "SELECT id, n FROM floor_rows ORDER BY id")
    assert [r[0] for r in rows] == list(range(4))
    assert all(n > 0 for _, n in rows)
    assert sum(n for _, n in rows) == len(times["update"])


def test_a_kind_that_is_not_one_is_refused_with_the_choices(pg_dsn: str) -> None:
    with pytest.raises(ValueError, match="kind='insert': choose one of select, update"):
        measure(pg_dsn, "insert", FloorShape())


def test_a_server_that_cannot_be_reached_is_an_error_naming_the_fix() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.pg_floor", "--server", "postgresql://x@127.0.0.1:1/db"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "pg_floor:" in done.stderr
    assert "Traceback" not in done.stderr
