"""Every renderer formats the same Analysis, the empty one included; HTML escapes run data."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest

from analysis.attribution import attribute
from analysis.findings import run_findings
from analysis.hotspots import sql_hotspots
from analysis.load.capture import SqlStatement
from analysis.load.speedscope import load_speedscope
from analysis.model import SCHEMA_VERSION, Analysis, RunAnalysis
from analysis.render import RENDERERS, Format
from runs import Verdict

from . import builders

EVIL = "<script>alert(1)</script>"


def evil_analysis(tmp_path: Path) -> Analysis:
    """One run whose function names, SQL and notes hold HTML."""
    samples = [
        (
            [
                builders.LOOP,
                builders.RUN_FOREVER,
                builders.CLAIM,
                (f"Evil.{EVIL}", "taskqueue/queue.py"),
            ],
            1.0,
        ),
        ([builders.LOOP, builders.RUN_FOREVER, builders.SELECT], 1.0),
    ]
    path = builders.write_json(tmp_path / "p.json", builders.speedscope([("event loop", samples)]))
    attribution = attribute(load_speedscope(path), profiler="pyinstrument", source=path.name)
    statement = SqlStatement(
        0, "claim", f"SELECT '{EVIL}' FROM tasks ORDER BY created_at", 10, 5.0, 1, 2, 3, 4, 10
    )
    run = builders.run_analysis(
        run_id="run<1>",
        folder=str(tmp_path),
        queue={"connection": "shared"},
        targets=(Verdict("m<b>", 2.0, 1.0, "<", "ms", False),),
        attributions=(attribution,),
        sql=sql_hotspots([statement], {}, {}),
        notes=(EVIL,),
    )
    run = RunAnalysis(**{**run.__dict__, "findings": run_findings(run)})
    return Analysis(runs=(run,), findings=run.findings)


@pytest.mark.parametrize("fmt", list(Format))
@pytest.mark.parametrize("case", ["empty", "evil"])
def test_every_renderer_formats_every_case(tmp_path: Path, fmt: Format, case: str) -> None:
    analysis = Analysis(runs=()) if case == "empty" else evil_analysis(tmp_path)
    text = RENDERERS[fmt].render(analysis)
    assert text.strip()
    if fmt is Format.JSON:
        document = orjson.loads(text)
        assert document["schema_version"] == SCHEMA_VERSION
        assert len(document["runs"]) == len(analysis.runs)


def test_html_escapes_names_sql_and_notes(tmp_path: Path) -> None:
    analysis = evil_analysis(tmp_path)
    # the scan in the planted statement is a finding, so the SQL appears in findings too
    assert any(f.key.startswith("sql-plan") for f in analysis.findings)
    page = RENDERERS[Format.HTML].render(analysis)
    assert EVIL not in page
    assert "<b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "run&lt;1&gt;" in page


def test_html_is_self_contained(tmp_path: Path) -> None:
    page = RENDERERS[Format.HTML].render(evil_analysis(tmp_path))
    for external in ("<script", "<link", " src=", "@import", "url(http"):
        assert external not in page
    assert "<svg" in page  # the share bars are inline


def test_markdown_keeps_html_out(tmp_path: Path) -> None:
    # Outside code spans (where Markdown shows text as it is) no raw tag survives.
    text = RENDERERS[Format.MARKDOWN].render(evil_analysis(tmp_path))
    prose = re.sub(r"`[^`]*`", "", text)
    assert EVIL not in prose
    assert r"\<script>" in prose  # backslash-escaped: CommonMark shows it as text
