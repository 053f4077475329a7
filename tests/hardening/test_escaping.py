"""Issue 16 item 3: run strings never become HTML in Markdown nor escape sequences in a terminal.

report.md, comparison.md and a bundle's index.md are rendered as CommonMark (markdown-it, the
parser rich itself uses) and must hold no element a run string opened; what ``analyze``,
``compare`` and ``list`` print must hold no control character from a run.
"""

from __future__ import annotations

import html
import re
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from analysis.plots import samples_cdf_svg
from queueprof.cli import main
from runs.text import markdown_code, markdown_text, strip_controls, terminal_text

from .conftest import edit_manifest

SCRIPT = "<script>alert(1)</script>"
IMAGE = "![x](http://tracker.invalid/x.png)"
LINK = "[click](javascript:alert(1))"
OSC52 = "\x1b]52;c;cm0gLXJmIH4=\x07"
CSI = "\x1b[2J\x9b31m"
HOSTILE = f"{SCRIPT} {IMAGE} {LINK} {OSC52}{CSI} `tick` | pipe\n# heading"
ELEMENTS = ("<script", "<img", "<a ", "<iframe", "heading</h")
"""What a run string must never open (``heading</h``: its ``# heading`` line as a heading)."""


def hostile(folder: Path) -> Path:
    """``folder`` with a hostile string in every field a report shows."""

    def change(manifest: dict[str, Any]) -> None:
        manifest.update(size=HOSTILE, started_at=HOSTILE)
        manifest["queue"][HOSTILE] = HOSTILE
        manifest["profiler"]["problems"] = [HOSTILE]
        manifest["artifacts"][0]["description"] = HOSTILE
        manifest["artifacts"][0]["viewer"] = HOSTILE

    edit_manifest(folder, change)
    results = folder / "results.json"
    document = orjson.loads(results.read_bytes())
    document["notes"] = [HOSTILE]
    document["metrics"] = {HOSTILE: 1.0}
    document["steps"][0]["label"] = HOSTILE
    results.write_bytes(orjson.dumps(document))
    return folder


def rendered(markdown: str) -> str:
    return MarkdownIt("commonmark").enable("table").render(markdown)


OWN_LINK = re.compile(r'<a href="(?![A-Za-z][A-Za-z0-9+.-]*:)[^"]*">')
"""The report's own links to the run's files: relative, no scheme (a run string's link, e.g.
``javascript:``, would keep its scheme and so stay an element the check refuses)."""


def assert_inert(markdown: str) -> None:
    html = OWN_LINK.sub("", rendered(markdown))
    for element in ELEMENTS:
        assert element not in html, f"{element} in {html}"
    assert "\x1b" not in markdown
    assert "\x9b" not in markdown


def assert_no_controls(text: str) -> None:
    assert "\x1b" not in text
    assert "\x9b" not in text
    assert "\x07" not in text


@pytest.mark.parametrize("value", [SCRIPT, IMAGE, LINK, HOSTILE, "- item", "1. x", "&lt;b&gt;"])
def test_markdown_text_renders_literally(value: str) -> None:
    html = rendered(f"- {markdown_text(value)}")
    for element in ELEMENTS:
        assert element not in html
    assert "<li>" in html  # still one list item: no block opened by the value


@pytest.mark.parametrize("value", ["a`b", "``", "<script>", "`start", ""])
def test_markdown_code_is_one_code_span(value: str) -> None:
    html = rendered(markdown_code(value))
    assert html.count("<code>") == 1
    assert "<script" not in html


MARKDOWN_ALPHABET = st.text(
    alphabet=st.sampled_from(list("ab1 _*`[]()<>!&#;|~-+=.)\\:/\"'\t\n")), max_size=30
)
PROPERTY = settings(max_examples=300, derandomize=True, deadline=None, database=None)


@PROPERTY
@given(MARKDOWN_ALPHABET)
def test_markdown_text_shows_exactly_the_text_in_one_list_item(value: str) -> None:
    html_out = rendered(f"- {markdown_text(value)}\n")
    item = re.fullmatch(r"<ul>\n<li>(.*)</li>\n</ul>\n", html_out, re.DOTALL)
    assert item is not None, html_out
    assert not re.findall(r"<(/?\w+)", item[1])  # no element at all inside the item
    shown = " ".join(html.unescape(item[1]).split())
    assert shown == " ".join(strip_controls(value).split())


@PROPERTY
@given(MARKDOWN_ALPHABET)
def test_markdown_code_is_one_code_span_whatever_the_text(value: str) -> None:
    html_out = rendered(f"x {markdown_code(value)}\n")
    assert html_out.count("<code>") == 1
    assert not re.findall(r"<(?!/?code|/?p)", html_out)


def test_terminal_text_drops_escape_sequences_and_markup() -> None:
    assert terminal_text(f"a{OSC52}b{CSI}[red]c") == r"a]52;c;cm0gLXJmIH4=b[2J31m\[red]c"


def test_report_md_escapes_every_run_string(
    run_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hostile(run_folder)
    assert main(["analyze", str(run_folder)]) == 0
    assert_inert((run_folder / "report.md").read_text())
    assert_no_controls(capsys.readouterr().out)


def test_comparison_md_escapes_every_run_string(
    run_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    baseline = Path(shutil.copytree(run_folder, tmp_path / "traces" / "base"))
    edit_manifest(baseline, lambda m: m.update(run_id="base"))
    hostile(run_folder)
    status = main(["compare", str(baseline), str(run_folder), "--out", str(tmp_path / "cmp")])
    assert status == 0
    assert_inert((tmp_path / "cmp" / "comparison.md").read_text())
    assert_no_controls(capsys.readouterr().out)


def test_bundle_index_escapes_every_run_string(run_folder: Path, tmp_path: Path) -> None:
    hostile(run_folder)
    assert main(["report", str(run_folder), "--bundle", str(tmp_path / "bundle")]) == 0
    assert_inert((tmp_path / "bundle" / "index.md").read_text())
    assert_inert((tmp_path / "bundle" / "analysis" / "report.md").read_text())


def test_list_prints_no_control_sequence_from_a_run(
    run_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hostile(run_folder)
    edit_manifest(run_folder, lambda m: m.update(workload=f"thr{OSC52}"))
    (run_folder.parent / f"bad{CSI}").mkdir()
    (run_folder.parent / f"bad{CSI}" / "manifest.json").write_text("{")
    assert main(["list", "--out", str(run_folder.parent)]) == 0
    out = capsys.readouterr().out
    assert "thr]52" in out
    assert_no_controls(out)


def test_report_html_holds_no_control_sequence_from_a_run(run_folder: Path) -> None:
    # `cat report.html` in a terminal must not run a run string's escape sequence.
    hostile(run_folder)
    assert main(["analyze", str(run_folder), "--format", "html"]) == 0
    page = (run_folder / "report.html").read_text()
    assert_no_controls(page)
    assert "]52;c;cm0gLXJmIH4=" in page  # the rest of the string is still shown


def test_a_plot_of_hostile_labels_draws_them_without_their_control_characters() -> None:
    # A step or operation label with an escape sequence reached the terminal through
    # matplotlib's "Glyph 27 missing from font" warning, and sat in the SVG.
    samples = {HOSTILE: np.array([1e6, 2e6, 3e6])}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a missing-glyph warning fails the test
        svg = samples_cdf_svg(samples, title=HOSTILE)
    assert_no_controls(svg)
