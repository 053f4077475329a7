"""A run named twice on the command line is analysed once.

``queueprof analyze RUN RUN`` (or a run id and its folder, or a RUN that ``--latest`` takes
too) analysed it twice: the profiler-agreement table compared the run with itself and every
finding was counted double.
"""

from __future__ import annotations

from pathlib import Path

import orjson

from queueprof.cli import main


def test_a_run_named_by_its_folder_and_its_id_is_analysed_once(
    run_folder: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    status = main(
        [
            "analyze",
            str(run_folder),
            run_folder.name,
            f"{run_folder.parent}/../{run_folder.parent.name}/{run_folder.name}",
            "--latest",
            "1",
            "--traces",
            str(run_folder.parent),
            "--format",
            "json",
            "--out",
            str(out),
        ]
    )
    assert status == 0
    document = orjson.loads((out / "findings.json").read_bytes())
    assert len(document["runs"]) == 1
