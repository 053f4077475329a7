"""A slowdown planted in one operation of the real queue is found and named.

Each case runs the dbops workload (smoke size) under pyinstrument in this process, with one
``Store`` method replaced by a function of the same name, compiled as if it were in
``taskqueue/store.py``, that spins for a while before calling the original: to a profiler it
is that operation's own code. The analysis of the run folder must rank that operation first
in the store's SQL time (on the connection threads, or on the event loop where the queue ran
the call inline) and say so in a finding.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

import taskqueue.store
from analysis.analyze import analyze
from analysis.model import SCHEMA_VERSION, Analysis
from analysis.operations import Category
from analysis.profile import ThreadRole
from queueprof.cli import main
from taskqueue.store import Store

PLANTED = {
    "insert": Category.ENQUEUE,
    "claim_returning": Category.CLAIM,
    "complete_acks": Category.COMPLETE,
    "status": Category.STATUS,
}
SPIN_S = {"insert": 0.0025, "claim_returning": 0.05, "complete_acks": 0.05, "status": 0.0025}
"""Seconds each call spins: about 1-1.5 s per run, whatever the operation's call count (a
smoke dbops run makes 600 enqueues and 600 status reads, but claims, its acks riding on
them, in batches: about 22 calls)."""


def spinning(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
    """``original`` behind a busy loop, in a function the profilers see as ``Store.<name>``."""
    source = (
        f"def {name}(self, *args, **kwargs):\n"
        "    end = perf_counter() + SPIN_S\n"
        "    while perf_counter() < end:\n"
        "        pass\n"
        "    return original(self, *args, **kwargs)\n"
    )
    namespace: dict[str, Any] = {
        "original": original,
        "perf_counter": time.perf_counter,
        "SPIN_S": SPIN_S[name],
    }
    exec(compile(source, taskqueue.store.__file__, "exec"), namespace)
    return namespace[name]  # type: ignore[no-any-return]


def profiled_run(out: Path, run_id: str) -> Path:
    code = main(
        [
            "run",
            "dbops",
            "--size",
            "smoke",
            "--profiler",
            "pyinstrument",
            "--no-baseline",
            "--quiet",
            "--out",
            str(out),
            "--run-id",
            run_id,
        ]
    )
    assert code == 0
    return out / run_id


def top_operation(analysis: Analysis) -> Category:
    """The operation with the most time in the store's code, over every thread role."""
    (run,) = analysis.runs
    store = run.attributions[0].store_time()
    assert store, "no sample fell in the store's code"
    return max(store, key=lambda category: sum(store[category].values()))


@pytest.mark.slow
@pytest.mark.parametrize("method", sorted(PLANTED))
def test_planted_slowdown_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, method: str
) -> None:
    # GIVEN a run in which one Store method spins before doing its work
    monkeypatch.setattr(Store, method, spinning(method, getattr(Store, method)))
    folder = profiled_run(tmp_path / "traces", f"planted-{method}")
    # WHEN the run folder is analysed
    analysis = analyze([folder])
    planted = PLANTED[method]
    # THEN that operation leads the store's SQL time (on the event loop as a whole, a slow
    # call on the shared connection also lengthens the other operations' waits behind it)
    assert top_operation(analysis) is planted
    # AND a finding names it
    titles = [f.title for f in analysis.findings]
    assert any(t.startswith(f"{planted} takes the most of the store's SQL") for t in titles), titles


@pytest.fixture(scope="module")
def real_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One unmodified smoke run (dbops under pyinstrument) for the CLI tests."""
    return profiled_run(tmp_path_factory.mktemp("runs") / "traces", "plain-dbops")


def test_cli_analyze_writes_the_reports(real_run: Path) -> None:
    # GIVEN a real run folder WHEN `queueprof analyze RUN` runs as a user runs it
    done = subprocess.run(
        [sys.executable, "-m", "queueprof", "analyze", str(real_run)],
        capture_output=True,
        text=True,
        check=False,
        cwd=real_run.parent.parent,
    )
    # THEN it prints the summary and writes the three reports into the run folder
    assert done.returncode == 0, done.stderr
    assert "queueprof analysis of 1 run(s)" in done.stdout
    for name in ("report.md", "report.html", "findings.json"):
        assert (real_run / name).is_file()
    document = orjson.loads((real_run / "findings.json").read_bytes())
    assert document["schema_version"] == SCHEMA_VERSION
    assert document["runs"][0]["sql"], "the SQL capture is analysed"
    # AND a run id resolves under --traces, --latest finds it, --out collects the reports
    out = real_run.parent.parent / "reports"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "queueprof",
            "analyze",
            "--latest",
            "1",
            "--traces",
            str(real_run.parent),
            "--format",
            "md",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert (out / "report.md").read_text().startswith("# queueprof analysis")


def test_sessions_and_speedscope_of_one_run_agree(real_run: Path) -> None:
    # The same samples, read from pyinstrument's own sessions and from the speedscope file.
    from analysis.attribution import attribute
    from analysis.load.pyinstrument_session import load_session
    from analysis.load.speedscope import load_speedscope

    from_speedscope = attribute(
        load_speedscope(real_run / "pyinstrument.speedscope.json"), profiler="p", source="s"
    )
    from_sessions = attribute(
        [
            load_session(real_run / "pyinstrument.pyisession", role=ThreadRole.EVENT_LOOP),
            load_session(
                real_run / "pyinstrument-sqlite-threads.pyisession", role=ThreadRole.SQLITE_THREAD
            ),
        ],
        profiler="p",
        source="s",
    )
    for role in (ThreadRole.EVENT_LOOP, ThreadRole.SQLITE_THREAD):
        a, b = from_speedscope.role(role), from_sessions.role(role)
        assert a is not None
        assert b is not None
        assert {c.category: c.wall for c in a.categories} == pytest.approx(
            {c.category: c.wall for c in b.categories}
        )


@pytest.mark.parametrize("argument", ["no-such-run", "."], ids=["unknown-id", "not-a-run-folder"])
def test_cli_bad_run_exits_2_with_the_fix(tmp_path: Path, argument: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "queueprof", "analyze", argument],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 2
    assert "queueprof list" in done.stderr
    assert argument in done.stderr
