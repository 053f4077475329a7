"""``findings.json``: the whole analysis as JSON, with ``schema_version`` at the top."""

from __future__ import annotations

import orjson

from ..model import Analysis


def render(analysis: Analysis) -> str:
    """Indented JSON with sorted keys (dataclasses and enums as orjson writes them)."""
    return orjson.dumps(
        analysis, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS
    ).decode()
