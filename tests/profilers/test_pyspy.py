"""py-spy wrapper: a real child process under py-spy, converted to collapsed stacks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from formats.speedscope import validate
from profilers import ProfilerError, PySpyProfiler
from profilers.pyspy_wrapper import PySpyOptions, collapse

CHILD = """
import asyncio, sys
sys.path.insert(0, {root!r})
from tests.profilers.conftest import small_workload
# One task per claim: a run long enough (about a second) for py-spy to read thread names.
db = __import__("pathlib").Path({db!r})
asyncio.run(small_workload(db, tasks=3000, queue="claim_batch=1,ack_batch=1"))
"""


def test_records_every_thread_and_writes_collapsed_stacks(tmp_path: Path) -> None:
    # GIVEN the py-spy wrapper and a child running a real queue workload
    PySpyProfiler.check_available()
    profiler = PySpyProfiler(PySpyOptions.parse(["rate=500"]), tmp_path)
    root = str(Path(__file__).resolve().parents[2])
    child = [sys.executable, "-c", CHILD.format(root=root, db=str(tmp_path / "q.db"))]
    # WHEN run under py-spy
    done = subprocess.run(profiler.command(child), capture_output=True, text=True, check=False)
    assert done.returncode == 0, profiler.explain(done.stderr)
    artifacts = profiler.finish()
    # THEN the speedscope file is valid, with the main thread and the aiosqlite thread
    document = orjson.loads((tmp_path / "py-spy.speedscope.json").read_bytes())
    assert validate(document) == []
    # (by the frames each thread ran: py-spy sometimes reads a thread's name as "" under load)
    threads = profiler.manifest()["summary"]["threads"]
    frames = document["shared"]["frames"]
    aiosqlite = [
        profile["name"]
        for profile in document["profiles"]
        if any(_connection_thread(frames[i]) for s in profile["samples"] for i in s)
    ]
    assert aiosqlite, threads
    assert len(document["profiles"]) > len(aiosqlite), "the event loop thread is missing"
    # AND the collapsed file has one line per stack, counts adding up to the samples
    lines = (tmp_path / "py-spy.collapsed.txt").read_text().splitlines()
    assert sum(int(line.rsplit(" ", 1)[1]) for line in lines) == profiler.summary["samples"]
    assert {a.format for a in artifacts} == {"speedscope", "collapsed"}


def _connection_thread(frame: dict[str, str]) -> bool:
    """True for the outermost frame of an aiosqlite connection thread."""
    name = frame.get("name", "")
    return "_connection_worker_thread" in name or (
        name == "run" and frame.get("file", "").endswith("aiosqlite/core.py")
    )


def test_collapse_counts_identical_stacks() -> None:
    document = {
        "shared": {"frames": [{"name": "a", "file": "x.py", "line": 1}, {"name": "b"}]},
        "profiles": [{"name": "T1", "samples": [[0, 1], [0, 1], [0]], "weights": [1, 1, 1]}],
    }
    lines, total = collapse(document)
    assert lines == ["T1;a (x.py:1) 1\n", "T1;a (x.py:1);b 2\n"]
    assert total == 3


def test_missing_output_is_a_clear_error(tmp_path: Path) -> None:
    profiler = PySpyProfiler(PySpyOptions(), tmp_path)
    with pytest.raises(ProfilerError, match=r"py-spy wrote no profile.*interrupted"):
        profiler.finish(interrupted=True)


def test_truncated_output_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "py-spy.speedscope.json").write_text('{"profiles": [')
    with pytest.raises(ProfilerError, match="not valid JSON"):
        PySpyProfiler(PySpyOptions(), tmp_path).finish()


def test_permission_failures_name_the_fix() -> None:
    message = PySpyProfiler(PySpyOptions(), Path(".")).explain(
        "Error: Permission Denied: Try running again with elevated permissions"
    )
    assert "ptrace_scope" in message
    assert "SYS_PTRACE" in message


PYSPY_STDOUT = [
    "py-spy> Sampling process 100 times a second. Press Control-C to exit.\n",
    "py-spy> 1.56s behind in sampling, results may be inaccurate. Try reducing the rate\n",
    "py-spy> 2.73s behind in sampling, results may be inaccurate. Try reducing the rate\n",
    "py-spy> Stopped sampling because process exited\n",
    "py-spy> Wrote speedscope file to 'traces/x/py-spy.speedscope.json'. Samples: 996 Errors: 4\n",
    "py-spy> Visit https://www.speedscope.app/ to view\n",
]
PYSPY_STDERR = (
    "[2026-12-04T21:40:22.638762352Z WARN  py_spy] Failed to get stack trace from 26347: "
    "Failed to call get_stack_trace for thread 94753760849408\n"
    "[2026-12-04T21:40:22.674201400Z WARN  py_spy] Failed to get stack trace from 26347: "
    "Failed to call get_stack_trace for thread 139993272302464\n"
    "[2026-12-04T21:40:23.100000000Z WARN  py_spy] Failed to get stack trace from 26528: "
    "Failed to call get_stack_trace for thread 140491790252928\n"
    "[2026-12-04T21:40:23.200000000Z WARN  py_spy] Failed to get stack trace from 26347: "
    "Failed to call get_stack_trace for thread 139993272302464\n"
)


def test_py_spys_counts_and_errors_are_read_and_explained_not_passed_on() -> None:
    # GIVEN what py-spy printed about a run: its own lines, and its warnings on stderr
    profiler = PySpyProfiler(PySpyOptions(), Path("."))
    assert all(profiler.owns_line(line) for line in PYSPY_STDOUT)
    assert all(profiler.owns_line(line) for line in PYSPY_STDERR.splitlines())
    assert not profiler.owns_line("throughput (smoke) - complete  traces/x\n")
    # WHEN it reads them
    profiler.read_output(PYSPY_STDOUT, PYSPY_STDERR)
    entry = profiler.manifest()
    # THEN the manifest has the counts, the errors by process and how far it fell behind
    summary = entry["summary"]
    assert summary["samples_reported"] == 996
    assert summary["sampling_errors"] == 4
    assert summary["sampling_errors_by_process"] == {"26347": 3, "26528": 1}
    assert summary["behind_s"] == 2.73
    assert summary["stopped"] == "Stopped sampling because process exited"
    # AND the notes say what an error is, in plain words, and nothing points at a website
    errors, behind = entry["notes"]
    assert errors.startswith("py-spy: 4 sampling error(s) in 2 process(es) (0.4% of")
    assert "could not read one live process's stacks" in errors
    assert "nonblocking" in errors
    assert "2.7 s behind" in behind
    assert not any("http" in note for note in entry["notes"])


def test_a_clean_py_spy_run_has_no_notes() -> None:
    profiler = PySpyProfiler(PySpyOptions(), Path("."))
    profiler.read_output(["py-spy> Wrote speedscope file to 'x'. Samples: 10 Errors: 0\n"], "")
    assert profiler.manifest()["notes"] == []


def test_py_spys_log_lines_stay_out_of_its_failure_message() -> None:
    message = PySpyProfiler(PySpyOptions(), Path(".")).explain(
        PYSPY_STDERR + "Error: Failed to create process 'nope': No such file or directory\n"
    )
    assert (
        message
        == "py-spy failed: Error: Failed to create process 'nope': No such file or directory"
    )
