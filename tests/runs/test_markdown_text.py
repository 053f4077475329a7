"""markdown_text leaves ordinary `<` and `&` as written, so report.md reads as it renders."""

from __future__ import annotations

import html
import re

import pytest
from markdown_it import MarkdownIt

from runs.text import markdown_text


def shown(markdown: str) -> str:
    """The text a CommonMark renderer shows for one paragraph (entities decoded)."""
    page = MarkdownIt("commonmark").render(markdown)
    paragraph = re.fullmatch(r"<p>(.*)</p>\n", page, re.DOTALL)
    assert paragraph is not None, page
    return html.unescape(paragraph[1])


@pytest.mark.parametrize(
    "text", ["goal <= 1.3x", "1 < 2 > 0", "a & b", "enqueue > claim", "p99 <5 ms"]
)
def test_a_comparison_or_an_ampersand_is_written_as_it_is(text: str) -> None:
    # WHEN text that opens no HTML is escaped THEN the file holds it unchanged, and it renders so
    assert markdown_text(text) == text
    assert shown(markdown_text(text)) == text


@pytest.mark.parametrize(
    "text",
    ["<script>", "</p>", "<!-- x", "<?php", "<http://x.invalid>", "&lt;", "&#60;", "a<", "y&"],
)
def test_what_would_open_a_tag_an_autolink_or_an_entity_is_escaped_and_shown_literally(
    text: str,
) -> None:
    escaped = markdown_text(text)
    assert escaped != text
    assert shown(escaped) == text
    assert "<" not in MarkdownIt("commonmark").render(escaped)[3:-5]
