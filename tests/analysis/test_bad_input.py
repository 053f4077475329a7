"""Truncated, empty, garbage and missing inputs give errors naming the file and the fix."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from analysis.analyze import analyze
from analysis.errors import AnalysisError, ArtifactError
from analysis.load.capture import load_op_samples, load_sql_statements
from analysis.load.collapsed import load_collapsed
from analysis.load.memray_stats import load_memray_stats
from analysis.load.pyinstrument_session import load_session
from analysis.load.speedscope import load_speedscope
from runs import QueueprofError, UsageError

from . import builders

VALID: dict[str, tuple[Callable[[Path], Any], bytes]] = {
    "speedscope": (
        load_speedscope,
        orjson.dumps(builders.speedscope([("event loop", builders.LOOP_SAMPLES)])),
    ),
    "session": (load_session, orjson.dumps(builders.session(builders.LOOP_SAMPLES))),
    "sql": (
        load_sql_statements,
        orjson.dumps({"schema_version": 1, "statements": []}),
    ),
    "memray": (
        load_memray_stats,
        orjson.dumps(
            {
                "schema_version": 1,
                "peak_memory_bytes": 1,
                "total_allocations": 1,
                "peak_by_stack": {"total_bytes": 0, "total_allocations": 0, "stacks": []},
                "leaked_by_stack": {"total_bytes": 0, "total_allocations": 0, "stacks": []},
            }
        ),
    ),
}


def test_analysis_errors_are_queueprof_errors() -> None:
    assert issubclass(AnalysisError, QueueprofError)
    assert issubclass(ArtifactError, UsageError)


@pytest.mark.parametrize("kind", sorted(VALID))
@pytest.mark.parametrize(
    ("damage", "says"),
    [
        (lambda data: b"", "is empty"),
        (lambda data: data[: len(data) // 2], "truncated"),
        (lambda data: b"\x00\x01garbage", "not JSON"),
    ],
    ids=["empty", "truncated", "garbage"],
)
def test_damaged_json_artifacts(
    tmp_path: Path, kind: str, damage: Callable[[bytes], bytes], says: str
) -> None:
    load, data = VALID[kind]
    path = tmp_path / f"{kind}.json"
    path.write_bytes(data)
    load(path)  # the undamaged file loads
    path.write_bytes(damage(data))
    with pytest.raises(ArtifactError) as raised:
        load(path)
    message = str(raised.value)
    assert str(path) in message
    assert says in message
    assert "re-run" in message


def test_speedscope_that_is_json_but_not_speedscope(tmp_path: Path) -> None:
    path = builders.write_json(tmp_path / "x.json", {"profiles": []})
    with pytest.raises(ArtifactError, match="not a valid speedscope profile"):
        load_speedscope(path)


def test_collapsed_line_without_a_count(tmp_path: Path) -> None:
    path = tmp_path / "c.txt"
    path.write_text("thread;a;b notanumber\n")
    with pytest.raises(ArtifactError, match="line 1 does not end with a sample count"):
        load_collapsed(path)


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 cut short", b"garbage"])
def test_op_samples_not_an_npz(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "op-samples.npz"
    path.write_bytes(content)
    with pytest.raises(ArtifactError) as raised:
        load_op_samples(path)
    assert str(path) in str(raised.value)


def test_artifact_listed_in_the_manifest_but_missing(tmp_path: Path) -> None:
    # GIVEN a hand-made run folder whose manifest lists a profile that is not there
    source = Path(__file__).parent / "fixtures" / "run"
    folder = tmp_path / "run"
    shutil.copytree(source, folder)
    analyze([folder])  # complete, it analyses
    (folder / "pyinstrument.speedscope.json").unlink()
    # WHEN it is analysed THEN the error names the missing file
    with pytest.raises(ArtifactError) as raised:
        analyze([folder])
    assert "pyinstrument.speedscope.json" in str(raised.value)
    assert "manifest lists" in str(raised.value)


def test_truncated_manifest(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    shutil.copytree(Path(__file__).parent / "fixtures" / "run", folder)
    manifest = folder / "manifest.json"
    manifest.write_bytes(manifest.read_bytes()[:100])
    with pytest.raises(ArtifactError) as raised:
        analyze([folder])
    assert "manifest.json" in str(raised.value)
    assert "not JSON" in str(raised.value)
