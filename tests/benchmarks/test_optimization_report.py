"""benchmarks.optimization_report: before/after comparisons and goal tables into one report."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from benchmarks.optimization_report import REPORT, RESULTS, main, provenance
from tests.analysis_compare.conftest import ONE_AT_A_TIME, make_run


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two real throughput smoke runs: one task per call, then the batched default."""
    out = tmp_path_factory.mktemp("runs")
    return (
        make_run(out, "before", "throughput", *ONE_AT_A_TIME),
        make_run(out, "after", "throughput"),
    )


def _goals(path: Path, verdict: str, ratio: float) -> Path:
    row = {
        "key": "cycle_1_worker",
        "metric": "1 worker",
        "goal": ">= 0.35x",
        "verdict": verdict,
        "error": None,
        "checks": [{"name": "ratio", "measured": ratio, "unit": "x", "passed": verdict == "PASS"}],
    }
    document = {"kind": "goals", "rows": [row], "machine_load": {}}
    path.write_bytes(orjson.dumps(document))
    return path


def test_the_report_holds_the_notes_the_goals_and_every_comparison(
    pair: tuple[Path, Path], tmp_path: Path
) -> None:
    # GIVEN notes, a before and an after goal table, and a before/after pair of runs
    notes = tmp_path / "notes.md"
    notes.write_text("# Why batching\n\nThe profiles said so.\n")
    before, after = pair
    argv = ["--notes", str(notes), "--pair", "throughput", str(before), str(after)]
    argv += ["--goals-before", str(_goals(tmp_path / "b.json", "FAIL", 0.2))]
    argv += ["--goals-after", str(_goals(tmp_path / "a.json", "PASS", 0.5))]
    # WHEN the report is written
    assert main([*argv, "--out", str(tmp_path / "out")]) == 0
    # THEN the Markdown starts with the notes, then the goal table, then the comparison
    report = (tmp_path / "out" / REPORT).read_text()
    assert report.startswith("# Why batching")
    assert "| 1 worker | >= 0.35x | **FAIL**: ratio 0.2x (fail) | **PASS**: ratio 0.5x |" in report
    assert "## throughput" in report
    assert "process_tasks_per_s_1_worker" in report
    # AND the JSON has the comparison as data, with the batched rates as improvements
    document = orjson.loads((tmp_path / "out" / RESULTS).read_bytes())
    assert document["schema_version"] == 1
    (comparison,) = document["comparisons"]
    assert "process_tasks_per_s_1_worker" in comparison["improvements"]
    assert document["goals"]["after"]["rows"][0]["verdict"] == "PASS"


def test_bad_inputs_exit_2_naming_them(pair: tuple[Path, Path], tmp_path: Path) -> None:
    before, after = pair
    notes = tmp_path / "notes.md"
    assert main(["--notes", str(notes), "--pair", "x", str(before), str(after)]) == 2
    notes.write_text("notes")
    garbage = tmp_path / "g.json"
    garbage.write_text("{not json")
    argv = ["--notes", str(notes), "--pair", "x", str(before), str(after)]
    assert main([*argv, "--goals-after", str(garbage), "--out", str(tmp_path / "o")]) == 2
    assert main(["--notes", str(notes), "--pair", "x", str(before), str(tmp_path / "no")]) == 2
    assert not (tmp_path / "o").exists()


def test_the_goal_tables_provenance_says_whether_one_machine_measured_both() -> None:
    # GIVEN goal tables from two CPUs, and two from one
    def table(model: str) -> dict[str, object]:
        return {
            "created_at": "2026-12-01T22:07:36+0000",
            "environment": {"cpu": {"model": model, "logical_cores": 2}},
            "machine_load": {"loadavg_1m_before": 0.5, "loadavg_1m_after": 1.25},
        }

    # WHEN their provenance is written
    different = provenance(table("Intel Xeon"), table("AMD EPYC"))
    same = provenance(table("AMD EPYC"), table("AMD EPYC"))
    # THEN it names both hosts and warns off comparing rates only when they differ
    assert "different hosts: before Intel Xeon, 2 CPUs" in different
    assert "after AMD EPYC, 2 CPUs" in different
    assert "compare the ratio rows" in different
    assert "same machine (AMD EPYC, 2 CPUs; load average 0.5 -> 1.2 before" in same
    assert "different" not in same
