"""Reading a plot back from its SVG: the strings drawn and the data artists by id.

matplotlib draws each string as glyph paths and writes the string itself in a comment
beside them; the plots give each data artist an id (``gid``), which becomes its group's id.
"""

from __future__ import annotations

import re

import numpy as np

_COMMENT = re.compile(r"<!--\s?(.*?)\s?-->", re.S)
_NUMBER = r"-?\d+(?:\.\d+)?(?:e-?\d+)?"


def texts(svg: str) -> list[str]:
    """Every string drawn: axis labels, tick labels, titles, legend entries."""
    return [text.strip() for text in _COMMENT.findall(svg)]


def group(svg: str, gid: str) -> str:
    """The body of the group with id ``gid`` (up to the next group opened at any depth)."""
    start = svg.find(f'<g id="{gid}">')
    assert start >= 0, f"no group {gid!r} in the plot"
    body = svg[start + len(f'<g id="{gid}">') :]
    return body[: body.find("</g>")]


def ids(svg: str, prefix: str) -> list[str]:
    """Ids of every group whose id starts with ``prefix``, in drawing order."""
    return re.findall(rf'<g id="({re.escape(prefix)}[^"]*)">', svg)


def points(svg: str, gid: str) -> np.ndarray:
    """The (x, y) vertices of the group's path (a line), or its markers' positions."""
    body = group(svg, gid)
    uses = re.findall(rf'<use xlink:href="#[^"]+" x="({_NUMBER})" y="({_NUMBER})"', body)
    if uses:
        return np.asarray(uses, dtype=np.float64)
    path = re.search(r'<path d="([^"]*)"', body)
    assert path is not None, f"group {gid!r} draws nothing"
    pairs = re.findall(rf"[ML] ({_NUMBER}) ({_NUMBER})", path.group(1))
    return np.asarray(pairs, dtype=np.float64)


def bar_width(svg: str, gid: str) -> float:
    """The horizontal extent of a bar (a rectangle path), in SVG units."""
    xy = points(svg, gid)
    return float(xy[:, 0].max() - xy[:, 0].min())
