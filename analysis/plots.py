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
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.container import BarContainer
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.ticker import FuncFormatter

from runs import WorkerShare
from runs.text import strip_controls

from .crossover import CrossoverMetric, CrossoverReport
from .errors import PlotInputError
from .latency import LatencyHistogram, log_histogram
from .scaling import UslFit
from .timelines import MemoryTimeline

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
                gid=f"measured-{label}",
            )
            colour = measured[0].get_color()
            axes.plot(
                grid,
                fit.predict(grid),
                "-",
                color=colour,
                alpha=0.7,
                gid=f"fit-{label}",
                label=(
                    f"{label}: USL fit ($\\sigma$={fit.sigma:.2f}, "
                    f"$\\kappa$={fit.kappa:.2g}, $R^2$={fit.r_squared:.2f})"
                ),
            )
            if math.isfinite(fit.peak_workers):
                # A peak far past the measured counts is named in the legend, not drawn.
                shown = fit.peak_workers <= grid[-1]
                if shown:
                    axes.axvline(fit.peak_workers, color=colour, linestyle=":", alpha=0.6)
                axes.plot(
                    [fit.peak_workers] if shown else [],
                    [fit.peak_throughput] if shown else [],
                    "*",
                    color=colour,
                    markersize=11,
                    gid=f"peak-{label}",
                    label=(
                        f"{label}: predicted peak {fit.peak_throughput:,.0f} tasks/s "
                        f"at {fit.peak_workers:.1f} workers" + ("" if shown else " (off the chart)")
                    ),
                )
            elif math.isfinite(fit.peak_throughput):
                axes.axhline(
                    fit.peak_throughput,
                    color=colour,
                    linestyle=":",
                    alpha=0.6,
                    label=f"{label}: predicted plateau {fit.peak_throughput:,.0f} tasks/s "
                    "(no peak)",
                )
        axes.set_xlabel("workers")
        axes.set_ylabel("tasks/s")
        axes.set_ylim(bottom=0)
        axes.set_title(title)
        axes.legend(loc="best", fontsize=7)
        return _render(figure)


BACKEND_COLOURS = {"sqlite": "tab:blue", "postgresql": "tab:orange"}
"""One colour per backend in the crossover plots (modes differ by line style)."""
MODE_STYLES = ("-", "--", ":", "-.")


def crossover_svg(report: CrossoverReport, metric: CrossoverMetric, title: str = "") -> str:
    """``metric`` of both backends against the worker count, one line style per worker mode,
    with a vertical line where one backend overtakes the other (worker counts and values on
    log scales: the backends can differ by an order of magnitude)."""
    drawn = [c for c in report.crossovers if c.metric == metric and c.points]
    if not drawn:
        raise PlotInputError(
            f"crossover plot: the report has no points of {metric.key!r}; pass a metric of "
            f"{', '.join(sorted({c.metric.key for c in report.crossovers})) or 'a crossover run'}"
        )
    with _figure() as (figure, axes):
        counts: set[int] = set()
        for number, crossover in enumerate(drawn):
            style = MODE_STYLES[number % len(MODE_STYLES)]
            workers = [p.workers for p in crossover.points]
            counts.update(workers)
            mode = crossover.mode or "workers"
            for backend, name in (("sqlite", "SQLite"), ("postgresql", "PostgreSQL")):
                axes.plot(
                    workers,
                    [getattr(p, backend) for p in crossover.points],
                    style,
                    marker="o" if backend == "sqlite" else "s",
                    color=BACKEND_COLOURS[backend],
                    gid=f"{backend}-{mode}",
                    label=f"{name}, {mode}",
                )
            if crossover.crosses and crossover.leader is not None:
                at = crossover.estimated_workers or float(crossover.at_workers or 0)
                axes.axvline(
                    at,
                    color=BACKEND_COLOURS[crossover.leader.value],
                    linestyle=style,
                    alpha=0.6,
                    gid=f"crossover-{mode}",
                    label=f"{mode}: {crossover.leader.shown} overtakes at "
                    f"{crossover.at_workers} (lines cross near {at:.1f})",
                )
        axes.set_xscale("log")
        axes.set_xticks(sorted(counts), labels=[str(c) for c in sorted(counts)])
        axes.xaxis.set_minor_formatter(FuncFormatter(lambda _v, _p: ""))
        values = [v for c in drawn for p in c.points for v in (p.sqlite, p.postgresql)]
        if min(values) > 0:
            axes.set_yscale("log")  # the backends can differ by an order of magnitude
        else:
            axes.set_ylim(bottom=0)
        axes.set_xlabel("workers")
        axes.set_ylabel(f"{metric.label} ({metric.unit})")
        axes.set_title(title or f"{metric.label.capitalize()}: SQLite and PostgreSQL")
        axes.legend(loc="best", fontsize=7)
        return _render(figure)


def latency_cdf_svg(
    histograms: Mapping[str, LatencyHistogram], title: str = "Latency per operation (CDF)"
) -> str:
    """Cumulative distribution of each operation's latency, from every sample, log-scaled ms.

    Keys are legend labels: operations (``claim``) or operations of two runs
    (``claim (baseline)``, ``claim (candidate)``); each legend entry gives the true sample
    count. Empty histograms are left out.
    """
    drawn = {name: h for name, h in histograms.items() if h.count}
    if not drawn:
        raise PlotInputError(
            f"latency CDF: no samples in {sorted(histograms) or 'an empty mapping'}; "
            "pass log_histogram(...) of durations in ms, e.g. of op-samples.npz's arrays"
        )
    with _figure() as (figure, axes):
        for number, (name, histogram) in enumerate(sorted(drawn.items())):
            counts = np.asarray(histogram.counts, dtype=np.float64)
            fractions = np.concatenate(([0.0], np.cumsum(counts) / counts.sum()))
            edges = np.concatenate((histogram.lower_edges_ms()[:1], histogram.upper_edges_ms()))
            axes.step(
                edges,
                fractions,
                where="post",
                label=f"{name} (n={histogram.count:,})",
                gid=f"cdf-{number}",
            )
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


def samples_cdf_svg(
    samples_ns: Mapping[str, np.ndarray[Any, Any]], title: str = "Latency per operation (CDF)"
) -> str:
    """:func:`latency_cdf_svg` of raw durations in nanoseconds (op-samples.npz's arrays)."""
    return latency_cdf_svg(
        {
            name: log_histogram(np.asarray(values, dtype=np.float64) / 1e6)
            for name, values in samples_ns.items()
            if len(values)
        },
        title,
    )


EVENT_STYLES = (("tab:red", "--"), ("tab:green", ":"), ("tab:purple", "-."))
"""Colour and line style of each kind of event marked on a timeline, in order."""


def timeline_svg(
    elapsed_s: Sequence[float] | np.ndarray[Any, Any],
    throughput: Sequence[float] | np.ndarray[Any, Any] | None = None,
    queue_depth: Sequence[float] | np.ndarray[Any, Any] | None = None,
    title: str | None = None,
    events: Mapping[str, Sequence[float]] | None = None,
) -> str:
    """Throughput (tasks/s, left axis) and queue depth (tasks, right axis) against time,
    with each kind of event (``{"worker killed": [1.2, 2.7]}``) marked by vertical lines.

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
    marked = {kind: times for kind, times in (events or {}).items() if len(times)}
    if len(marked) > len(EVENT_STYLES):
        raise PlotInputError(
            f"timeline: {len(marked)} kinds of event ({', '.join(marked)}); "
            f"mark at most {len(EVENT_STYLES)}"
        )
    if title is None:
        title = " and ".join(given).capitalize() + " over time"
    with _figure() as (figure, axes):
        handles = []
        if "throughput" in given:
            handles += axes.plot(
                time, given["throughput"], color="tab:blue", label="throughput", gid="throughput"
            )
            axes.set_ylabel("tasks/s")
        if "queue depth" in given:
            depth_axes = axes.twinx() if "throughput" in given else axes
            handles += depth_axes.plot(
                time, given["queue depth"], color="tab:orange", label="queue depth", gid="depth"
            )
            depth_axes.set_ylabel("tasks queued")
        kinds = zip(marked.items(), EVENT_STYLES, strict=False)
        for number, ((kind, times), (colour, style)) in enumerate(kinds):
            for i, at in enumerate(times):
                line = axes.axvline(
                    float(at),
                    color=colour,
                    linestyle=style,
                    linewidth=1.0,
                    gid=f"event-{number}-{i}",
                    label=f"{kind} (n={len(times)})" if i == 0 else None,
                )
                if i == 0:
                    handles.append(line)
        axes.set_xlabel("elapsed (s)")
        axes.set_title(title)
        axes.legend(handles=handles, loc="upper right", fontsize=7)
        return _render(figure)


def memory_svg(timeline: MemoryTimeline, title: str = "Memory over time") -> str:
    """RSS (sampled, and after each chunk; left axis) and the traced Python heap (right axis)
    against time, with each growth line fitted through the steady-state chunks (its slope in
    the legend). The heap is far smaller than RSS: each has its own axis so both can be read."""
    if not timeline.chunk_elapsed_s:
        raise PlotInputError("memory plot: the timeline has no chunks; pass a memory run's")
    mib = float(2**20)
    with _figure() as (figure, axes):
        handles = []
        if timeline.rss_elapsed_s:
            handles += axes.plot(
                timeline.rss_elapsed_s,
                np.asarray(timeline.rss_bytes) / mib,
                color="tab:blue",
                alpha=0.4,
                linewidth=1.0,
                gid="rss-sampled",
                label=f"RSS, sampled (n={len(timeline.rss_bytes):,})",
            )
        heap_axes = axes.twinx() if timeline.chunk_heap_bytes is not None else None
        chunk_series = [(axes, timeline.chunk_rss_bytes, "o", "tab:blue", "rss", "RSS")]
        if heap_axes is not None and timeline.chunk_heap_bytes is not None:
            chunk_series.append(
                (heap_axes, timeline.chunk_heap_bytes, "s", "tab:green", "heap", "Python heap")
            )
        for target, values, marker, colour, gid, what in chunk_series:
            handles += target.plot(
                timeline.chunk_elapsed_s,
                np.asarray(values) / mib,
                marker,
                color=colour,
                markersize=3,
                gid=f"{gid}-chunks",
                label=f"{what} after each chunk (n={len(values):,})",
            )
            target.set_ylabel(f"{what} (MiB)")
        for line in timeline.growth:
            rss = line.column == "rss_bytes"
            target = axes if rss or heap_axes is None else heap_axes
            handles += target.plot(
                line.elapsed_s,
                np.asarray(line.fitted_bytes) / mib,
                "-",
                color="tab:blue" if rss else "tab:green",
                linewidth=2.0,
                alpha=0.8,
                gid=f"growth-{'rss' if rss else 'heap'}",
                label=f"{'RSS' if rss else 'heap'} growth fit: "
                f"{line.slope_kib_per_1k_tasks:+.1f} KiB per 1,000 tasks",
            )
        if timeline.warmup_chunks:
            warm_end = timeline.chunk_elapsed_s[timeline.warmup_chunks - 1]
            handles.append(
                axes.axvspan(0.0, warm_end, color="grey", alpha=0.15, label="warm-up (not fitted)")
            )
        axes.set_xlabel("elapsed (s)")
        axes.set_title(title)
        axes.legend(handles=handles, loc="best", fontsize=7)
        return _render(figure)


def workers_svg(shares: Sequence[WorkerShare], title: str = "Work per worker") -> str:
    """One row per worker: the tasks it completed and the seconds it was busy, side by side
    (a worker that did nothing shows as an empty row)."""
    if not shares:
        raise PlotInputError("worker strip: no workers given; pass a step's WorkerShare list")
    names = [share.name if len(share.name) <= 24 else "…" + share.name[-23:] for share in shares]
    positions = np.arange(len(shares))[::-1]
    height = max(2.0, 0.22 * len(shares) + 1.2)
    with _figure(height=height, columns=2) as (figure, axes_pair):
        completed_axes, busy_axes = axes_pair
        completed = [share.completed for share in shares]
        busy = [share.busy_s for share in shares]
        _named(completed_axes.barh(positions, completed, color="tab:blue"), "completed")
        completed_axes.set_yticks(positions, labels=names, fontsize=7)
        completed_axes.set_xlabel(f"tasks completed (total {sum(completed):,})")
        _named(busy_axes.barh(positions, busy, color="tab:orange"), "busy")
        busy_axes.tick_params(labelleft=False)  # the shared axis names the workers once
        busy_axes.set_xlabel(f"busy (s, total {sum(busy):.3g})")
        for axes in axes_pair:
            axes.grid(axis="y", visible=False)
        figure.suptitle(title)
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


def _named(bars: BarContainer, prefix: str) -> None:
    """Give each bar an id (``prefix-0`` for the first), so a reader of the SVG finds it."""
    for number, bar in enumerate(bars):
        bar.set_gid(f"{prefix}-{number}")


@contextmanager
def _figure(
    width: float = 7.0, height: float = 4.0, columns: int = 1
) -> Iterator[tuple[Figure, Any]]:
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
        if columns == 1:
            yield figure, figure.add_subplot()
        else:
            yield figure, figure.subplots(1, columns, sharey=True)


def _render(figure: Figure) -> str:
    # Titles, legends and tick labels hold run strings (step labels, operation names): a
    # control character in one would reach the terminal through matplotlib's missing-glyph
    # warning, escape sequence and all.
    for label in figure.findobj(Text):
        label.set_text(strip_controls(label.get_text()))
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
