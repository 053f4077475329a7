"""The block that ends `queueprof analyze`: top findings, the file to open, the artifacts."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from rich.console import Console

from analysis.model import Cause, Cost, Finding, Measure
from queueprof.closing import TOP_FINDINGS, TOP_FINDINGS_QUIET, collapse_alike, print_closing
from tests.cli.test_cli import queueprof


def _closing(
    tmp_path: Path, *, quiet: bool, findings: int = 8, total: int | None = None, **env: str
) -> str:
    buffer = io.StringIO()
    print_closing(
        Console(file=buffer, width=200, color_system=None),
        findings=[(f"finding {n}", f"run{n}", n) for n in range(1, findings + 1)],
        report=tmp_path / "analysis-x" / "report.html",
        run_reports=2,
        folders=[tmp_path / "missing-run"],
        quiet=quiet,
        total=total,
    )
    return buffer.getvalue()


@pytest.mark.parametrize(("quiet", "shown"), [(False, TOP_FINDINGS), (True, TOP_FINDINGS_QUIET)])
def test_the_block_shows_the_top_findings_and_the_report_to_open(
    tmp_path: Path, quiet: bool, shown: int
) -> None:
    # GIVEN eight ranked findings and a run folder without a manifest
    # WHEN the block is drawn
    text = _closing(tmp_path, quiet=quiet)
    # THEN it shows the first findings in their order, says how many there are, names the
    # combined report.html, and adds nothing for the unreadable run
    numbered = re.findall(r"^  (\d+)\. finding (\d+) \(run\d+\)$", text, re.MULTILINE)
    assert numbered == [(str(n), str(n)) for n in range(1, shown + 1)]
    assert "(8 in all, ranked in the report)" in text
    assert f"open: {tmp_path / 'analysis-x' / 'report.html'}" in text
    assert "each run's own report is in its folder (2 runs)" in text
    assert "artifacts, offline" not in text
    # AND only the long form suggests the commands that come next
    assert ("queueprof compare" in text) is not quiet


def test_no_findings_is_said_so(tmp_path: Path) -> None:
    text = _closing(tmp_path, quiet=True, findings=0)
    assert "no findings" in text
    assert "top findings" not in text


def test_the_count_is_the_reports_when_negligible_findings_are_left_out(tmp_path: Path) -> None:
    text = _closing(tmp_path, quiet=True, findings=2, total=9)
    assert "(9 in all, ranked in the report)" in text
    text = _closing(tmp_path, quiet=True, findings=0, total=3)
    assert "none of the 3 in the report cost its run 10 ms or more" in text
    assert "no findings" not in text


def test_a_finding_that_cost_its_run_under_10_ms_is_negligible() -> None:
    def finding(seconds: float | None, unit: str = "s") -> Finding:
        cost = None if seconds is None else Cost(seconds, unit, 0.4, Measure.WALL)
        return Finding("k", Cause.WORKER_IMBALANCE, "t", "d", (), cost=cost)

    assert finding(0.00274).negligible
    assert finding(1.94e-05).negligible
    assert not finding(0.01).negligible
    assert not finding(None).negligible
    assert not finding(0.001, "bytes").negligible


@pytest.mark.slow
def test_analyze_ends_with_one_block_instead_of_a_line_per_file(tmp_path: Path) -> None:
    # GIVEN two smoke runs, one of them under pyinstrument (speedscope + HTML artifacts)
    for args in (["--profiler", "pyinstrument", "--run-id", "prof"], ["--run-id", "bare"]):
        done = queueprof(
            "run", "dbops", "--size", "smoke", "--param", "tasks=20", "--quiet", "--no-baseline",
            *args, cwd=tmp_path,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    # WHEN both are analysed, once in full, once --quiet, and once as the profile-* tox envs
    # do it, with the runs' own arguments (tox's posargs) after --run-args
    full = queueprof("analyze", "prof", "bare", cwd=tmp_path, TOX_ENV_DIR="/x/.tox/profile-cpu")
    quiet = queueprof("analyze", "prof", "bare", "--quiet", cwd=tmp_path)
    as_tox = queueprof(
        "analyze", "prof", "bare", "--run-args", "--size", "smoke", "--quiet", cwd=tmp_path
    )
    for done in (full, quiet, as_tox):
        assert done.returncode == 0, done.stderr
    # THEN the combined report is named once as the file to open, no `wrote` line per file,
    # and each artifact kind comes with its offline viewer's command on a real file
    for done in (full, quiet, as_tox):
        (report,) = re.findall(r"^open: (traces/analysis-[-\d]+/report\.html) ", done.stdout, re.M)
        assert (tmp_path / report).is_file()
        assert (tmp_path / report).with_name("report.md").is_file()
        assert "wrote " not in done.stdout
        assert "npx speedscope traces/prof/pyinstrument.speedscope.json" in done.stdout
        assert "open traces/prof/pyinstrument.html in a browser" in done.stdout
    # AND each run still gets its own report beside it
    assert (tmp_path / "traces" / "prof" / "report.md").is_file()
    assert (tmp_path / "traces" / "bare" / "report.html").is_file()
    # AND the full form also prints the summary and the commands that come next, with how to
    # reach queueprof from outside the tox env; --quiet prints neither
    assert "queueprof analysis of 2 run(s)" in full.stdout
    assert "queueprof analyze prof bare" in full.stdout
    assert "queueprof compare bare NEW_RUN" in full.stdout
    assert "source /x/.tox/profile-cpu/bin/activate" in full.stdout
    for short in (quiet, as_tox):
        assert "queueprof analysis of" not in short.stdout
        assert "next:" not in short.stdout


def test_alike_findings_show_once_saying_how_many_more_the_report_lists() -> None:
    # GIVEN where the time goes from two profilers and two runs, and one other cause
    loop = ("profile", "enqueue")
    findings = [
        ("enqueue takes the most event-loop wall time: 69% (py-spy)", "r1", loop),
        ("enqueue takes the most event-loop wall time: 66% (pyinstrument)", "r2", loop),
        ("claim: full table scan", "r1", ("sql-scan", "claim")),
        ("enqueue takes the most event-loop wall time: 38% (pyinstrument)", "r3", loop),
    ]
    # WHEN collapsed for the closing block
    shown = collapse_alike(findings)
    # THEN each group shows once, in rank order, its first saying how many more are alike
    first = "enqueue takes the most event-loop wall time: 69% (py-spy) [+2 alike in the report]"
    assert shown == [(first, "r1"), ("claim: full table scan", "r1")]
