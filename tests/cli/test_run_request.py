"""``RunRequest``'s two command lines: the one a user types and the child's."""

from __future__ import annotations

import sys
from pathlib import Path

from queueprof.profiled import RunRequest


def test_argv_is_the_command_a_user_types_and_the_child_adds_where_and_how() -> None:
    # GIVEN a request with params, a queue strategy and a targets file
    request = RunRequest(
        "dbops", params=("tasks=300",), queue="claim_batch=1", targets_file=Path("t.toml")
    )
    options = ["--param", "tasks=300", "--queue", "claim_batch=1", "--targets", "t.toml"]
    # THEN the user's command leaves the default size out, and the child's names it all
    assert request.argv() == ["queueprof", "run", "dbops", *options]
    assert request.child_argv(Path("out"), "r1") == [
        sys.executable,
        "-m",
        "queueprof",
        "run",
        "dbops",
        "--size",
        "default",
        "--out",
        "out",
        "--run-id",
        "r1",
        "--quiet",
        *options,
    ]


def test_argv_names_a_size_other_than_the_default() -> None:
    assert RunRequest("latency", size="smoke").argv() == [
        "queueprof",
        "run",
        "latency",
        "--size",
        "smoke",
    ]
