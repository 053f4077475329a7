"""Small inline SVG charts drawn without a plotting library: share bars per category."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

COLOURS = {
    "enqueue": "#4e79a7",
    "claim": "#f28e2b",
    "complete": "#59a14f",
    "status": "#b07aa1",
    "fail": "#e15759",
    "reclaim": "#76b7b2",
    "handler": "#edc948",
    "idle/wait": "#bab0ac",
    "other": "#9c755f",
}
BAR_HEIGHT = 18
LABEL_WIDTH = 110
BAR_WIDTH = 420


def share_bars(rows: Sequence[tuple[str, float, float | None]], title: str) -> str:
    """One bar per (category, share, waiting share of it); the waiting part is hatched."""
    height = BAR_HEIGHT * len(rows) + 28
    width = LABEL_WIDTH + BAR_WIDTH + 70
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="{escape(title)}" font-family="sans-serif" font-size="12">',
        '<defs><pattern id="wait" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><rect width="6" height="6" fill="white" opacity="0.0"/>'
        '<line x1="0" y1="0" x2="0" y2="6" stroke="white" stroke-width="3" opacity="0.6"/>'
        "</pattern></defs>",
        f'<text x="0" y="14" font-weight="bold">{escape(title)}</text>',
    ]
    for row, (category, share, waiting) in enumerate(rows):
        y = 22 + row * BAR_HEIGHT
        length = max(share, 0.0) * BAR_WIDTH
        colour = COLOURS.get(category, "#888888")
        parts.append(f'<text x="0" y="{y + 13}">{escape(category)}</text>')
        parts.append(
            f'<rect x="{LABEL_WIDTH}" y="{y + 2}" width="{length:.1f}" '
            f'height="{BAR_HEIGHT - 4}" fill="{colour}"><title>{escape(category)}: '
            f"{100 * share:.1f}%</title></rect>"
        )
        if waiting:
            parts.append(
                f'<rect x="{LABEL_WIDTH + length * (1 - waiting):.1f}" y="{y + 2}" '
                f'width="{length * waiting:.1f}" height="{BAR_HEIGHT - 4}" fill="url(#wait)">'
                f"<title>waiting: {100 * waiting:.0f}% of it</title></rect>"
            )
        parts.append(
            f'<text x="{LABEL_WIDTH + length + 6:.1f}" y="{y + 13}">{100 * share:.1f}%</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
