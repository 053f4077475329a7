"""Differential flame graph: where two runs' CPU profiles differ, call path by call path.

:func:`diff_profiles` merges each run's sampled profiles (one per thread, as
:func:`analysis.load.speedscope.load_speedscope` reads them) into one call tree whose first
level is the thread's role (event loop, aiosqlite threads, other threads) and below that the
frames root to leaf. Every node carries its inclusive and self time in both runs.

:func:`layout` turns the tree into boxes of an icicle chart (root on top): width is the
candidate's time, colour the change: red where the candidate spends more time, blue where
less, pale where the change is small next to the largest one. Paths that exist only in the
baseline have no width; :func:`function_changes` lists them with every other change.
:func:`render_html` writes one offline HTML page (inline SVG, a few lines of inline script for
hover and click-to-zoom, no external script, style or font).
"""

from __future__ import annotations

import html
import re
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath

from .errors import ProfileDiffError
from .load.speedscope import load_speedscope
from .profile import Frame, SampledProfile

MIN_FRACTION = 0.001
"""Nodes below this share of the larger total, in both runs, are folded into their parent."""
NEUTRAL_SHARE = 0.02
"""A node whose change is under this share of the larger total is drawn neutral (beige)."""
_PROCESS_FRAME = re.compile(r"^process \d+:")


@dataclass(frozen=True, slots=True)
class DiffNode:
    """One call path: its last frame's name, time in both runs, and its callees."""

    name: str
    baseline: float
    candidate: float
    baseline_self: float
    candidate_self: float
    children: tuple[DiffNode, ...] = ()

    @property
    def delta(self) -> float:
        """Candidate minus baseline inclusive time (positive: slower in the candidate)."""
        return self.candidate - self.baseline


@dataclass(frozen=True, slots=True)
class ProfileDiff:
    """The merged call tree of two runs' profiles."""

    root: DiffNode
    unit: str
    """``seconds`` (or ``samples`` when the profiler counted samples)."""
    baseline_label: str = "baseline"
    candidate_label: str = "candidate"

    @property
    def scale(self) -> float:
        """The larger of the two totals: what shares and colours are relative to."""
        return max(self.root.baseline, self.root.candidate)


@dataclass(frozen=True, slots=True)
class FunctionChange:
    """Self time of one function (over every path it appears on), in both runs."""

    name: str
    baseline: float
    candidate: float

    @property
    def delta(self) -> float:
        """Candidate minus baseline self time."""
        return self.candidate - self.baseline


@dataclass(frozen=True, slots=True)
class Box:
    """One rectangle of the icicle chart, in fractions of the chart's width."""

    path: tuple[str, ...]
    depth: int
    x: float
    width: float
    node: DiffNode
    colour: str


@dataclass
class _Building:
    baseline: float = 0.0
    candidate: float = 0.0
    children: dict[str, _Building] = field(default_factory=dict)

    def add(self, path: Sequence[str], weight: float, side: int) -> None:
        node = self
        node._weigh(weight, side)
        for name in path:
            node = node.children.setdefault(name, _Building())
            node._weigh(weight, side)

    def _weigh(self, weight: float, side: int) -> None:
        if side == 0:
            self.baseline += weight
        else:
            self.candidate += weight

    def freeze(self, name: str, floor: float) -> DiffNode:
        kept = [
            child.freeze(child_name, floor)
            for child_name, child in sorted(self.children.items())
            if max(child.baseline, child.candidate) >= floor
        ]
        return DiffNode(
            name=name,
            baseline=self.baseline,
            candidate=self.candidate,
            baseline_self=self.baseline - sum(c.baseline for c in self.children.values()),
            candidate_self=self.candidate - sum(c.candidate for c in self.children.values()),
            children=tuple(kept),
        )


def diff_profiles(
    baseline: Sequence[SampledProfile],
    candidate: Sequence[SampledProfile],
    *,
    min_fraction: float = MIN_FRACTION,
    labels: tuple[str, str] = ("baseline", "candidate"),
) -> ProfileDiff:
    """Merge both runs' profiles into one tree of call paths with their time in each run."""
    for label, profiles in zip(labels, (baseline, candidate), strict=True):
        if not profiles:
            raise ProfileDiffError(
                f"the {label} has no sampled profile; record one with a profiler"
            )
    units = {p.unit for p in (*baseline, *candidate)}
    if len(units) != 1:
        raise ProfileDiffError(
            f"the profiles weigh samples in different units ({', '.join(sorted(units))}); "
            "diff two runs recorded by the same profiler"
        )
    root = _Building()
    for side, profiles in enumerate((baseline, candidate)):
        for profile in profiles:
            names = [_frame_name(frame) for frame in profile.frames]
            thread = str(profile.role)
            for stack, weight in zip(profile.stacks, profile.weights, strict=True):
                root.add([thread, *(names[i] for i in stack)], weight, side)
    scale = max(root.baseline, root.candidate)
    return ProfileDiff(
        root=root.freeze("all threads", scale * min_fraction),
        unit=units.pop(),
        baseline_label=labels[0],
        candidate_label=labels[1],
    )


def diff_speedscope_files(
    baseline: Path, candidate: Path, *, labels: tuple[str, str] = ("baseline", "candidate")
) -> ProfileDiff:
    """:func:`diff_profiles` of two speedscope files (read by the analysis's loader)."""
    return diff_profiles(load_speedscope(baseline), load_speedscope(candidate), labels=labels)


def function_changes(diff: ProfileDiff, limit: int = 20) -> list[FunctionChange]:
    """The functions whose self time changed most (either way), largest change first.

    Self time is summed over every path a function appears on; time folded away by
    ``min_fraction`` stays with the parent that kept it.
    """
    totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for node in _walk(diff.root):
        totals[node.name][0] += node.baseline_self
        totals[node.name][1] += node.candidate_self
    changes = [FunctionChange(name, b, c) for name, (b, c) in totals.items()]
    return sorted(changes, key=lambda change: abs(change.delta), reverse=True)[:limit]


def layout(diff: ProfileDiff) -> list[Box]:
    """The icicle chart's boxes: root first, each child inside its parent's span."""
    total = diff.root.candidate
    largest = max((abs(n.delta) for n in _walk(diff.root)), default=0.0)
    boxes: list[Box] = []

    def place(node: DiffNode, path: tuple[str, ...], depth: int, x: float) -> None:
        width = node.candidate / total if total > 0 else 0.0
        boxes.append(Box(path, depth, x, width, node, colour(node.delta, largest, diff.scale)))
        offset = x
        for child in node.children:
            place(child, (*path, child.name), depth + 1, offset)
            offset += child.candidate / total if total > 0 else 0.0

    place(diff.root, (diff.root.name,), 0, 0.0)
    return boxes


def colour(delta: float, largest: float, scale: float) -> str:
    """Red for more time in the candidate, blue for less, deeper the larger the change.

    ``largest`` (the largest absolute change in the chart) is full saturation; changes under
    :data:`NEUTRAL_SHARE` of ``scale`` (the larger total) are drawn a neutral beige.
    """
    if largest <= 0 or abs(delta) < NEUTRAL_SHARE * scale:
        return "rgb(238,232,213)"
    strength = min(1.0, abs(delta) / largest)
    fade = round(230 - 180 * strength)  # 230: a pale tint; 50: deep
    return f"rgb(255,{fade},{fade})" if delta > 0 else f"rgb({fade},{fade},255)"


def render_html(diff: ProfileDiff, title: str) -> str:
    """One self-contained HTML page: the chart, hover details, click to zoom, top changes."""
    boxes = [box for box in layout(diff) if box.width > 0]
    depth = max((box.depth for box in boxes), default=0) + 1
    height = depth * _ROW + 2
    unit = diff.unit
    rows = "\n".join(_svg_box(box, unit, diff) for box in boxes)
    changes = "\n".join(
        f"<tr><td>{_e(c.name)}</td><td>{_amount(c.baseline, unit)}</td>"
        f"<td>{_amount(c.candidate, unit)}</td><td class='{_sign(c.delta)}'>"
        f"{_amount(c.delta, unit, signed=True)}</td></tr>"
        for c in function_changes(diff)
    )
    return _PAGE.format(
        title=_e(title),
        baseline=_e(diff.baseline_label),
        candidate=_e(diff.candidate_label),
        baseline_total=_amount(diff.root.baseline, unit),
        candidate_total=_amount(diff.root.candidate, unit),
        width=_WIDTH,
        height=height,
        boxes=rows,
        changes=changes,
        script=_SCRIPT,
    )


def write_html(diff: ProfileDiff, out: Path, title: str) -> Path:
    """Write :func:`render_html` to ``out``; returns ``out``."""
    out.write_text(render_html(diff, title), encoding="utf-8")
    return out


def _frame_name(frame: Frame) -> str:
    # Line numbers shift with every edit and absolute paths with every checkout, so a
    # function is its name plus the last two parts of its file: the same in both runs.
    name = "process" if _PROCESS_FRAME.match(frame.name) else frame.name
    if not frame.file or frame.file.startswith("<"):
        return name
    short = "/".join(PurePath(frame.file).parts[-2:])
    return f"{name} ({short})"


def _walk(node: DiffNode) -> Iterator[DiffNode]:
    yield node
    for child in node.children:
        yield from _walk(child)


_WIDTH = 1200
_ROW = 17


def _svg_box(box: Box, unit: str, diff: ProfileDiff) -> str:
    node = box.node
    change = f"{node.delta / node.baseline:+.0%}" if node.baseline > 0 else "new in the candidate"
    tip = (
        f"{' > '.join(box.path[1:]) or box.path[0]}\n"
        f"{diff.baseline_label}: {_amount(node.baseline, unit)}, "
        f"{diff.candidate_label}: {_amount(node.candidate, unit)} "
        f"({_amount(node.delta, unit, signed=True)}, {change})"
    )
    return (
        f'<g class="f" data-x="{box.x:.6f}" data-w="{box.width:.6f}" data-d="{box.depth}">'
        f"<title>{_e(tip)}</title>"
        f'<rect x="{box.x * _WIDTH:.1f}" y="{box.depth * _ROW}" width="{box.width * _WIDTH:.1f}" '
        f'height="{_ROW - 1}" fill="{box.colour}"/>'
        f'<text x="{box.x * _WIDTH + 3:.1f}" y="{box.depth * _ROW + 12}">{_e(node.name)}</text>'
        "</g>"
    )


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _sign(value: float) -> str:
    return "slower" if value > 0 else "faster" if value < 0 else ""


def _amount(value: float, unit: str, *, signed: bool = False) -> str:
    shown, suffix = (round(value * 1e3, 1), " ms") if unit == "seconds" else (value, f" {unit}")
    shown = shown if shown != 0 else 0.0  # a sum of float weights may leave "-0.0"
    sign = "+" if signed and shown > 0 else ""
    return f"{sign}{shown:,.1f}{suffix}" if unit == "seconds" else f"{sign}{shown:,.0f}{suffix}"


_SCRIPT = """
(function () {
  var W = __WIDTH__, svg = document.getElementById("chart");
  var frames = Array.prototype.slice.call(svg.querySelectorAll("g.f"));
  function fit(g, x, w) {
    var rect = g.querySelector("rect"), text = g.querySelector("text");
    rect.setAttribute("x", (x * W).toFixed(1));
    rect.setAttribute("width", (w * W).toFixed(1));
    text.setAttribute("x", (x * W + 3).toFixed(1));
    var name = text.getAttribute("data-name") || text.textContent;
    text.setAttribute("data-name", name);
    var room = Math.floor((w * W - 6) / 7);
    text.textContent = room >= name.length ? name
      : room > 2 ? name.slice(0, room - 1) + "\\u2026" : "";
  }
  function zoom(target) {
    var zx = +target.dataset.x, zw = +target.dataset.w, zd = +target.dataset.d;
    frames.forEach(function (g) {
      var x = +g.dataset.x, w = +g.dataset.w, d = +g.dataset.d;
      var inside = x >= zx - 1e-9 && x + w <= zx + zw + 1e-9;
      var above = d < zd && x <= zx + 1e-9 && x + w >= zx + zw - 1e-9;
      g.style.display = inside || above ? "" : "none";
      if (inside) { fit(g, (x - zx) / zw, w / zw); } else if (above) { fit(g, 0, 1); }
      g.style.opacity = above ? 0.6 : 1;
    });
  }
  frames.forEach(function (g) {
    fit(g, +g.dataset.x, +g.dataset.w);
    g.addEventListener("click", function () { zoom(g); });
  });
  document.getElementById("reset").addEventListener("click", function () { zoom(frames[0]); });
})();
""".replace("__WIDTH__", str(_WIDTH))

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font: 13px system-ui, sans-serif; margin: 1em; color: #222; }}
#chart text {{ font: 11px monospace; pointer-events: none; }}
#chart g.f {{ cursor: pointer; }}
#chart rect {{ stroke: #fff; stroke-width: 0.5; }}
table {{ border-collapse: collapse; margin-top: 1em; }}
td, th {{ padding: 2px 8px; text-align: right; font-family: monospace; }}
td:first-child, th:first-child {{ text-align: left; }}
.slower {{ color: #b00; }} .faster {{ color: #00b; }}
.key span {{ padding: 1px 6px; margin-right: 6px; }}
</style></head><body>
<h1>{title}</h1>
<p>Width: time in the {candidate} ({candidate_total}; {baseline}: {baseline_total}), all
threads merged, grouped by thread role. Colour: <span class="key"><span
style="background:rgb(255,50,50)">more time in the {candidate}</span><span
style="background:rgb(50,50,255);color:#fff">less time</span><span
style="background:rgb(238,232,213)">little change</span></span>.
Hover a frame for its numbers; click to zoom; <button id="reset">reset zoom</button>.
Paths that only the {baseline} has are not drawn (no time in the {candidate}): see the table.</p>
<svg id="chart" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}"
 viewBox="0 0 {width} {height}">
{boxes}
</svg>
<h2>Largest changes in self time, by function</h2>
<table><tr><th>function</th><th>{baseline}</th><th>{candidate}</th><th>change</th></tr>
{changes}
</table>
<script>{script}</script>
</body></html>
"""
