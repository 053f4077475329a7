"""Files a run folder may hold without listing them (adapters.json, heap-growth.json,
schema.sql, schema-postgres.json) follow the rule the listed artifacts follow: a regular file
inside the folder, or a clear refusal (exit 2) that names the file, never a traceback, a hang
on a FIFO, or a read of a file outside the folder.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from queueprof.cli import main
from runs.files import ADAPTERS, HEAP_GROWTH, SCHEMA_POSTGRES, SCHEMA_SQL

from .conftest import add_artifact, secret_file


def as_link_out(path: Path, tmp_path: Path) -> None:
    path.symlink_to(secret_file(tmp_path))


def as_folder(path: Path, tmp_path: Path) -> None:
    path.mkdir()


def as_fifo(path: Path, tmp_path: Path) -> None:
    os.mkfifo(path)


def as_dangling_link(path: Path, tmp_path: Path) -> None:
    path.symlink_to(tmp_path / "nowhere.json")


HOSTILE: dict[str, Callable[[Path, Path], None]] = {
    "link-out": as_link_out,
    "folder": as_folder,
    "fifo": as_fifo,
    "dangling-link": as_dangling_link,
}


@pytest.mark.parametrize("name", [ADAPTERS, HEAP_GROWTH, SCHEMA_SQL, SCHEMA_POSTGRES])
@pytest.mark.parametrize("hostile", sorted(HOSTILE))
def test_an_unlisted_run_file_that_is_not_a_regular_file_inside_is_refused_naming_it(
    run_folder: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    hostile: str,
) -> None:
    # GIVEN a profiled run folder whose optional file is a link out, a folder or a FIFO
    # (schema.sql is read only for a run with a SQL capture: give the fixture one)
    if name == SCHEMA_SQL:
        add_sql_capture(run_folder)
    HOSTILE[hostile](run_folder / name, tmp_path)
    # WHEN it is analysed
    status = main(["analyze", str(run_folder), "--format", "json", "--out", str(tmp_path / "o")])
    # THEN exit 2 naming the file, nothing of the outside file shown
    err = capsys.readouterr().err
    assert status == 2, err
    assert name in err
    assert "Traceback" not in err
    assert "SECRET" not in err


def test_adapters_json_of_the_wrong_shape_is_exit_2_naming_the_file(
    run_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (run_folder / ADAPTERS).write_bytes(b'{"schema_version": 1, "adapters": [{"name": 1}]}')
    status = main(["analyze", str(run_folder), "--format", "json", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert status == 2
    assert f"{ADAPTERS}: not an adapters file" in err
    assert f"delete {ADAPTERS}" in err


def test_a_schema_snapshot_that_is_not_utf8_falls_back_to_the_checkouts_schema(
    run_folder: Path, tmp_path: Path
) -> None:
    # GIVEN a run whose schema.sql is damaged (not UTF-8): the plans cannot use it
    add_sql_capture(run_folder)
    (run_folder / SCHEMA_SQL).write_bytes(b"\xff\xfe CREATE TABLE t (x);")
    # WHEN analysed THEN the rest is analysed, against the checkout's schema, with a note
    out = tmp_path / "o"
    assert main(["analyze", str(run_folder), "--format", "json", "--out", str(out)]) == 0
    notes = orjson.loads((out / "findings.json").read_bytes())["runs"][0]["notes"]
    assert any("schema" in note for note in notes)


def add_sql_capture(run_folder: Path) -> None:
    """List a one-statement SQL capture in the fixture run (so its schema.sql is read)."""
    statement = {
        "index": 0,
        "op": "status",
        "sql": "SELECT state FROM tasks WHERE id = ?",
        "count": 10,
        "total_ms": 0.5,
        "p50_us": 40.0,
        "p95_us": 60.0,
        "p99_us": 70.0,
        "max_us": 80.0,
        "rows": 10,
    }
    capture = {"schema_version": 1, "statements": [statement]}
    (run_folder / "sql-statements.json").write_bytes(orjson.dumps(capture))
    add_artifact(run_folder, "sql-statements.json", fmt="json", kind="sql")
