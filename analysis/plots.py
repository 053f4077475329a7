"""Plots as self-contained SVG strings: pure functions of data, for reports to embed.

Every function takes numbers (never a run folder) and returns one ``<svg>`` element as text:
no XML prolog or DOCTYPE (so it can sit inline in HTML), text drawn as paths (no fonts to
load), no metadata, no external references. matplotlib draws them through its SVG canvas on a
private :class:`~matplotlib.figure.Figure`, so no global pyplot state is touched.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import matplotlib as mpl
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from .errors import PlotInputError
from .scaling import UslFit

CDF_POINTS = 1000
"""A CDF is drawn through at most this many quantiles, however many samples there are."""
_SVG_START = re.compile(r"<svg\b")


def scaling_svg(fits: Sequence[UslFit], title: str = "Throughput vs workers") -> str:
    """Measured throughput per worker count and the fitted USL curve, one colour per mode."""
    if not fits:
        raise PlotInputError("scaling plot: no fits given; pass at least one UslFit")
    with _figure() as (figure, axes):
        top = max(max(p.workers for p in fit.points) for fit in fits)
        for fit in fits:
            label = fit.mode or "workers"
            # Draw the fit a little past the last point, or to its peak if that is near.
            end = fit.peak_workers if math.isfinite(fit.peak_workers) else top
            grid = np.linspace(1.0, min(max(top, end), 2 * top) * 1.1, 200)
            measured = axes.plot(
                [p.workers for p in fit.points],
                [p.throughput for p in fit.points],
                "o",
                label=f"{label}: measured",
            )
            colour = measured[0].get_color()
            axes.plot(
                grid,
                fit.predict(grid),
                "-",
                color=colour,
                alpha=0.7,
                label=(
                    f"{label}: USL fit ($\\sigma$={fit.sigma:.2f}, "
                    f"$\\kappa$={fit.kappa:.2g}, $R^2$={fit.r_squared:.2f})"
                ),
            )
            if math.isfinite(fit.peak_workers):
                axes.axvline(fit.peak_workers, color=colour, linestyle=":", alpha=0.6)
        axes.set_xlabel("workers")
        axes.set_ylabel("tasks/s")
        axes.set_ylim(bottom=0)
        axes.set_title(title)
        axes.legend(loc="best", fontsize=7)
        return _render(figure)


def latency_cdf_svg(
    samples_ns: Mapping[str, np.ndarray[Any, Any]], title: str = "Latency per operation (CDF)"
) -> str:
    """Cumulative distribution of each series' durations (nanoseconds), log-scaled in ms.

    Keys are legend labels: operations (``claim``) or operations of two runs
    (``claim (baseline)``, ``claim (candidate)``). Empty series are left out.
    """
    drawn = {name: np.asarray(values, dtype=np.float64) for name, values in samples_ns.items()}
    drawn = {name: values[values > 0] for name, values in drawn.items()}
    drawn = {name: values for name, values in drawn.items() if values.size}
    if not drawn:
        raise PlotInputError(
            f"latency CDF: no positive samples in {sorted(samples_ns) or 'an empty mapping'}; "
            "pass durations in nanoseconds, e.g. the op/<name> arrays of op-samples.npz"
        )
    with _figure() as (figure, axes):
        fractions = np.linspace(0.0, 1.0, CDF_POINTS)
        for name, values in sorted(drawn.items()):
            quantiles = np.quantile(values, fractions) / 1e6
            axes.step(quantiles, fractions, where="post", label=f"{name} (n={values.size:,})")
        axes.set_xscale("log")
        axes.xaxis.set_major_formatter(FuncFormatter(_milliseconds))
        axes.set_xlabel("latency (ms, log scale)")
        axes.set_ylabel("fraction of operations ≤ latency")
        axes.set_ylim(0.0, 1.0)
        for level in (0.5, 0.95, 0.99):
            axes.axhline(level, color="grey", linewidth=0.6, linestyle="--")
        axes.set_title(title)
        axes.legend(loc="lower right", fontsize=7)
        return _render(figure)


def timeline_svg(
    elapsed_s: Sequence[float] | np.ndarray[Any, Any],
    throughput: Sequence[float] | np.ndarray[Any, Any] | None = None,
    queue_depth: Sequence[float] | np.ndarray[Any, Any] | None = None,
    title: str = "Throughput and queue depth over time",
) -> str:
    """Throughput (tasks/s, left axis) and queue depth (tasks, right axis) against time.

    Either series may be omitted, not both; each must have one value per ``elapsed_s``.
    """
    time = np.asarray(elapsed_s, dtype=np.float64)
    series = {"throughput": throughput, "queue depth": queue_depth}
    given = {name: np.asarray(v, dtype=np.float64) for name, v in series.items() if v is not None}
    if not given:
        raise PlotInputError("timeline: give throughput, queue_depth or both")
    for name, values in given.items():
        if values.shape != time.shape:
            raise PlotInputError(
                f"timeline: {name} has {values.size} values for {time.size} times; "
                "pass one value per elapsed_s entry"
            )
    with _figure() as (figure, axes):
        handles = []
        if "throughput" in given:
            handles += axes.plot(time, given["throughput"], color="tab:blue", label="throughput")
            axes.set_ylabel("tasks/s")
        if "queue depth" in given:
            depth_axes = axes.twinx() if "throughput" in given else axes
            handles += depth_axes.plot(
                time, given["queue depth"], color="tab:orange", label="queue depth"
            )
            depth_axes.set_ylabel("tasks queued")
        axes.set_xlabel("elapsed (s)")
        axes.set_title(title)
        axes.legend(handles=handles, loc="upper right", fontsize=7)
        return _render(figure)


def allocations_svg(
    bytes_by_name: Mapping[str, float], top: int = 15, title: str = "Allocations"
) -> str:
    """Horizontal bars of the ``top`` largest entries of ``bytes_by_name``, largest on top."""
    if not bytes_by_name:
        raise PlotInputError("allocations: empty mapping; pass {name: bytes}")
    if top < 1:
        raise PlotInputError(f"allocations: top={top}; show at least 1 entry")
    ranked = sorted(bytes_by_name.items(), key=lambda item: item[1], reverse=True)
    shown = ranked[:top]
    rest = sum(value for _, value in ranked[top:])
    if rest > 0:
        shown.append((f"{len(ranked) - top} others", rest))
    names = [name if len(name) <= 60 else "…" + name[-59:] for name, _ in shown]
    values = [float(value) for _, value in shown]
    with _figure(height=max(2.5, 0.3 * len(shown) + 1.0)) as (figure, axes):
        positions = np.arange(len(shown))[::-1]
        axes.barh(positions, values, color="tab:purple")
        axes.set_yticks(positions, labels=names, fontsize=7)
        axes.xaxis.set_major_formatter(FuncFormatter(_bytes))
        axes.set_xlabel("bytes allocated")
        for y, value in zip(positions, values, strict=True):
            axes.annotate(
                _bytes(value), (value, y), xytext=(3, 0), textcoords="offset points", va="center"
            )
        axes.set_title(title)
        axes.grid(axis="y", visible=False)
        return _render(figure)


@contextmanager
def _figure(width: float = 7.0, height: float = 4.0) -> Iterator[tuple[Figure, Axes]]:
    with mpl.rc_context(
        {
            "svg.fonttype": "path",
            "svg.hashsalt": "queueprof",  # stable ids: the same data gives the same SVG
            "font.size": 9.0,
            "axes.grid": True,
            "grid.alpha": 0.3,
        }
    ):
        figure = Figure(figsize=(width, height), layout="constrained")
        FigureCanvasSVG(figure)
        yield figure, figure.add_subplot()


def _render(figure: Figure) -> str:
    buffer = io.StringIO()
    figure.savefig(
        buffer,
        format="svg",
        metadata={"Date": None, "Creator": None, "Format": None, "Type": None},
    )
    text = buffer.getvalue()
    start = _SVG_START.search(text)
    if start is None:  # matplotlib always writes one; this guards a future format change
        raise PlotInputError("matplotlib wrote no <svg> element; check the matplotlib version")
    return text[start.start() :]


def _milliseconds(value: float, _position: float) -> str:
    return f"{value:g}"


def _bytes(value: float, _position: float | None = None) -> str:
    if abs(value) < 1024:
        return f"{value:.0f} B"
    exponent = min(3, int(math.log(abs(value), 1024)))
    return f"{value / 1024**exponent:.1f} {('KiB', 'MiB', 'GiB')[exponent - 1]}"
