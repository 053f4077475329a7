"""Renderers: each formats an :class:`~analysis.model.Analysis` as one kind of output.

Every renderer is a function ``render(analysis) -> str``; :data:`RENDERERS` maps each
:class:`Format` to its renderer and the file it is written to.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from runs.files import FINDINGS_JSON, REPORT_HTML, REPORT_MD

from ..model import Analysis
from . import html_page, json_document, markdown, terminal


class Format(StrEnum):
    """The output formats of ``queueprof analyze --format``."""

    TERMINAL = "terminal"
    MARKDOWN = "md"
    HTML = "html"
    JSON = "json"


@dataclass(frozen=True, slots=True)
class Renderer:
    """A format's renderer and the file name it writes (None: printed, not written)."""

    render: Callable[[Analysis], str]
    file_name: str | None


RENDERERS: dict[Format, Renderer] = {
    Format.TERMINAL: Renderer(terminal.render, None),
    Format.MARKDOWN: Renderer(markdown.render, REPORT_MD),
    Format.HTML: Renderer(html_page.render, REPORT_HTML),
    Format.JSON: Renderer(json_document.render, FINDINGS_JSON),
}
