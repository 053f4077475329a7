"""``findings.json``: the whole analysis as JSON, with ``schema_version`` at the top.

Each finding also carries what its properties compute (``standing``, ``sufficient``) and its
``rank``; ``leading`` is the #1 finding (None when no finding stands as a cause or
information), so tools need not re-derive the ranking.
"""

from __future__ import annotations

from typing import Any

import orjson

from ..model import Analysis, Finding, Standing


def _finding(rank: int, finding: Finding) -> dict[str, Any]:
    document: dict[str, Any] = orjson.loads(orjson.dumps(finding))
    document["standing"] = finding.standing.value
    document["sufficient"] = finding.sufficient
    document["rank"] = rank
    return document


def render(analysis: Analysis) -> str:
    """Indented JSON with sorted keys (dataclasses and enums as orjson writes them)."""
    document: dict[str, Any] = orjson.loads(
        orjson.dumps(analysis, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY)
    )
    findings = [_finding(rank, f) for rank, f in enumerate(analysis.findings, start=1)]
    document["findings"] = findings
    leading = analysis.findings[0] if analysis.findings else None
    document["leading"] = (
        findings[0]
        if leading is not None and leading.standing is not Standing.INSUFFICIENT
        else None
    )
    document["insufficient_evidence"] = [f for f in findings if not f["sufficient"]]
    runs = document.get("runs", [])
    for run, analysed in zip(runs, analysis.runs, strict=True):
        run["findings"] = [_finding(rank, f) for rank, f in enumerate(analysed.findings, start=1)]
    return orjson.dumps(
        document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS
    ).decode()
