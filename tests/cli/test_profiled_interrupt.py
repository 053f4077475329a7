"""Ctrl-C in the middle of a profiled run, through the real command."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from formats.speedscope import validate
from runs import Manifest, RunStatus
from tests.cli.test_cli import interrupt_long_run

SPEEDSCOPE = {"pyinstrument": "pyinstrument.speedscope.json", "py-spy": "py-spy.speedscope.json"}


@pytest.mark.slow
@pytest.mark.parametrize("profiler", ["pyinstrument", "py-spy"])
def test_sigint_leaves_an_interrupted_run_with_readable_profiles(
    tmp_path: Path, profiler: str
) -> None:
    # GIVEN a profiled latency run far longer than the test
    # WHEN it has finished some tasks and only queueprof gets SIGINT
    child, _, stderr = interrupt_long_run(tmp_path, "--profiler", profiler, "--no-baseline")
    # THEN the run is marked interrupted, every listed artifact exists, and the profile
    # loads in speedscope's format
    assert child.returncode == 130, stderr
    folder = tmp_path / "traces" / "cut"
    manifest = Manifest.from_json((folder / "manifest.json").read_bytes())
    assert manifest.status is RunStatus.INTERRUPTED
    assert manifest.profiler["name"] == profiler
    listed = {entry["path"] for entry in manifest.artifacts}
    assert SPEEDSCOPE[profiler] in listed
    for path in listed:
        assert (folder / path).stat().st_size > 0, path
    assert validate(orjson.loads((folder / SPEEDSCOPE[profiler]).read_bytes())) == []
