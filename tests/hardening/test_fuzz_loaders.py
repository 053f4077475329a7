"""Fuzz every loader with random bytes and mutated real artifacts (issue 16, "prove it").

Whatever the bytes, a loader returns or raises an :class:`~runs.UsageError` (exit 2, an
``ArtifactError`` naming the file): never another exception, never a hang. Seeds are the
artifacts the project writes (the analysis fixture run, the builders' profiles, a trace with
separators inside strings and args, a real ``np.savez`` archive). Derandomized and small
enough for CI: a few seconds in all.
"""

from __future__ import annotations

import contextlib
import io
import resource
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analysis.load.capture import load_op_samples, load_sql_statements
from analysis.load.collapsed import load_collapsed
from analysis.load.memray_stats import load_memray_stats
from analysis.load.pyinstrument_session import load_session
from analysis.load.runfolder import load_run
from analysis.load.speedscope import load_speedscope
from analysis.load.trace import load_trace
from runs import UsageError

from ..analysis import builders
from .conftest import FIXTURE_RUN

FUZZ = settings(
    max_examples=60,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
RSS_CEILING_MIB = 300


def _npz() -> bytes:
    out = io.BytesIO()
    np.savez(out, **{"op/claim": np.arange(50, dtype=np.int64), "sql/0": np.ones(9, np.int32)})
    return out.getvalue()


def _trace() -> bytes:
    events = [
        {"ph": "M", "name": "thread_name", "pid": 1, "tid": 1, "args": {"name": "MainThread"}},
        *(
            {
                "ph": "X",
                "name": "f},{g",
                "cat": "queue-op" if i % 3 == 0 else "",
                "pid": 1,
                "tid": 1,
                "ts": float(i),
                "dur": 0.5,
                "args": {"nested": [{"a": 1}, {"b": "},{"}]},
            }
            for i in range(30)
        ),
    ]
    return orjson.dumps({"traceEvents": events, "displayTimeUnit": "ms"})


def _run_file(name: str) -> Callable[[Path], Any]:
    """A loader of the fixture run with its ``name`` file replaced by the fuzzed bytes."""

    def load(path: Path) -> Any:
        folder = path.parent / "run"
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(FIXTURE_RUN, folder)
        shutil.copyfile(path, folder / name)
        return load_run(folder)

    return load


SQL = {
    "schema_version": 1,
    "statements": [
        {
            "index": 0,
            "op": "claim",
            "sql": "UPDATE tasks SET state = 'running' WHERE id IN (SELECT id FROM tasks LIMIT ?)",
            "count": 3,
            "total_ms": 1.5,
            "p50_us": 1,
            "p95_us": 2,
            "p99_us": 3,
            "max_us": 4,
            "rows": 1,
        }
    ],
}
MEMRAY = {
    "schema_version": 1,
    "peak_memory_bytes": 10,
    "total_allocations": 2,
    "peak_by_stack": {
        "total_bytes": 10,
        "total_allocations": 2,
        "stacks": [{"stack": [["f", "a.py", 3]], "bytes": 10, "allocations": 2}],
    },
    "leaked_by_stack": {"total_bytes": 0, "total_allocations": 0, "stacks": []},
}

LOADERS: dict[str, tuple[Callable[[Path], Any], bytes]] = {
    "speedscope": (load_speedscope, (FIXTURE_RUN / "pyinstrument.speedscope.json").read_bytes()),
    "session": (load_session, orjson.dumps(builders.session(builders.LOOP_SAMPLES))),
    "collapsed": (
        load_collapsed,
        builders.collapsed([("MainThread", builders.LOOP_SAMPLES)]).encode(),
    ),
    "memray": (load_memray_stats, orjson.dumps(MEMRAY)),
    "sql": (load_sql_statements, orjson.dumps(SQL)),
    "npz": (load_op_samples, _npz()),
    "trace": (load_trace, _trace()),
    "manifest": (_run_file("manifest.json"), (FIXTURE_RUN / "manifest.json").read_bytes()),
    "results": (_run_file("results.json"), (FIXTURE_RUN / "results.json").read_bytes()),
}


@st.composite
def mutated(draw: st.DrawFn, seed: bytes) -> bytes:
    """``seed`` cut, flipped, spliced or replaced by random bytes."""
    how = draw(st.sampled_from(["random", "truncate", "flip", "insert", "delete", "splice"]))
    if how == "random":
        return draw(st.binary(max_size=400))
    at = draw(st.integers(0, len(seed)))
    if how == "truncate":
        return seed[:at]
    if how == "flip":
        data = bytearray(seed)
        for _ in range(draw(st.integers(1, 8))):
            i = draw(st.integers(0, len(data) - 1))
            data[i] = draw(st.integers(0, 255))
        return bytes(data)
    if how == "insert":
        return seed[:at] + draw(st.binary(min_size=1, max_size=40)) + seed[at:]
    if how == "delete":
        return seed[:at] + seed[at + draw(st.integers(1, 64)) :]
    end = draw(st.integers(at, len(seed)))
    return seed[:at] + seed[end:] + seed[at:end]  # move a slice: brackets out of order


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_loader_refuses_any_bytes_cleanly(name: str, tmp_path: Path) -> None:
    load, seed = LOADERS[name]
    load_target = tmp_path / ("artifact.npz" if name == "npz" else "artifact.json")
    load_target.write_bytes(seed)
    load(load_target)  # the seed itself loads
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    @FUZZ
    @given(data=mutated(seed))
    def fuzz(data: bytes) -> None:
        load_target.write_bytes(data)
        with contextlib.suppress(UsageError):
            load(load_target)

    fuzz()
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - before
    assert grown < RSS_CEILING_MIB
