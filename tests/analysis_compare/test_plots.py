"""plots: every function returns one self-contained <svg> element, and refuses empty data."""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import pytest

from analysis.errors import PlotInputError
from analysis.latency import LatencyHistogram, log_histogram
from analysis.plots import (
    allocations_svg,
    latency_cdf_svg,
    memory_svg,
    samples_cdf_svg,
    scaling_svg,
    timeline_svg,
    workers_svg,
)
from analysis.scaling import ScalingPoint, UslFit, fit_usl, usl
from analysis.timelines import GrowthLine, MemoryTimeline
from runs import WorkerShare

from .svgread import bar_width, ids, points, texts

_NAMESPACES = {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}


def _fit(mode: str = "async") -> UslFit:
    n = np.array([1, 2, 5, 10, 20], dtype=np.float64)
    points = [
        ScalingPoint(int(w), float(x)) for w, x in zip(n, usl(n, 900.0, 0.1, 0.003), strict=True)
    ]
    return fit_usl(points, mode)


def _scaling() -> str:
    return scaling_svg([_fit()])


def _cdf() -> str:
    rng = np.random.default_rng(1)
    return samples_cdf_svg(
        {"claim": rng.lognormal(12, 1, 5_000), "enqueue": rng.lognormal(11, 0.5, 3_000)}
    )


def _timeline() -> str:
    return timeline_svg(
        [0, 1, 2, 3],
        [100, 250, 240, 90],
        [1_000, 700, 300, 0],
        events={"burst": [0.5, 1.5, 2.5], "worker killed": [1.2, 2.7]},
    )


MEMORY = MemoryTimeline(
    rss_elapsed_s=(0.0, 0.5, 1.0, 1.5, 2.0, 2.5),
    rss_bytes=(50e6, 51e6, 52e6, 52.5e6, 53e6, 53.5e6),
    chunk_elapsed_s=(0.5, 1.0, 1.5, 2.0),
    chunk_rss_bytes=(51e6, 52e6, 52.5e6, 53e6),
    chunk_heap_bytes=(1e6, 1.1e6, 1.2e6, 1.3e6),
    warmup_chunks=1,
    growth=(
        GrowthLine("rss_bytes", 480.0, (1.0, 1.5, 2.0), (52e6, 52.5e6, 53e6)),
        GrowthLine("heap_bytes", 96.0, (1.0, 1.5, 2.0), (1.1e6, 1.2e6, 1.3e6)),
    ),
)


def _memory() -> str:
    return memory_svg(MEMORY)


SHARES = (WorkerShare("w0", 120, 0.6), WorkerShare("w1", 60, 0.3), WorkerShare("w2", 0, 0.0))


def _workers() -> str:
    return workers_svg(SHARES, "3 workers, async")


def _allocations() -> str:
    return allocations_svg({"store.py:insert": 3e6, "<b>queue</b>": 2e5, "json": 4_096}, top=2)


PLOTS: list[Callable[[], str]] = [_scaling, _cdf, _timeline, _allocations, _memory, _workers]


@pytest.mark.parametrize("plot", PLOTS, ids=lambda p: p.__name__.strip("_"))
def test_plots_are_self_contained_svg(plot: Callable[[], str]) -> None:
    svg = plot()
    assert svg.startswith("<svg")
    assert svg.rstrip().endswith("</svg>")
    assert "<?xml" not in svg
    assert "<!DOCTYPE" not in svg
    assert set(re.findall(r"https?://[^\"'\s)>]+", svg)) <= _NAMESPACES  # only namespace names
    for external in ("<image", "<script", "@import", "@font-face", "url(http", "<text"):
        assert external not in svg  # <text> would need fonts: glyphs are paths
    assert plot() == svg  # deterministic: same data, same bytes


def test_names_in_plots_are_drawn_not_injected() -> None:
    assert "<b>queue</b>" not in _allocations()


@pytest.mark.parametrize(
    "call",
    [
        lambda: scaling_svg([]),
        lambda: latency_cdf_svg({}),
        lambda: samples_cdf_svg({"claim": np.array([], dtype=np.int64)}),
        lambda: latency_cdf_svg({"claim": LatencyHistogram(50, (), ())}),
        lambda: timeline_svg([0, 1]),
        lambda: timeline_svg([0, 1, 2], throughput=[1, 2]),
        lambda: allocations_svg({}),
        lambda: timeline_svg([0, 1], [1, 2], events={str(k): [0.5] for k in range(4)}),
        lambda: memory_svg(MemoryTimeline((), (), (), (), None, 0, ())),
        lambda: workers_svg([]),
    ],
)
def test_unplottable_input_is_a_clear_error(call: Callable[[], str]) -> None:
    with pytest.raises(PlotInputError) as raised:
        call()
    assert raised.value.exit_code == 2


def test_cdf_draws_every_operation_with_its_true_count() -> None:
    # GIVEN 109 claims and 9,000 enqueues, the claims ten times slower
    rng = np.random.default_rng(2)
    claims, enqueues = rng.lognormal(0.0, 0.3, 109), rng.lognormal(-2.3, 0.3, 9_000)
    # WHEN their CDFs are drawn from the histograms of every sample (ms)
    svg = latency_cdf_svg({"claim": log_histogram(claims), "enqueue": log_histogram(enqueues)})
    # THEN the axes are labelled, each legend entry gives the calls, not the points drawn
    drawn = texts(svg)
    assert {"latency (ms, log scale)", "fraction of operations ≤ latency"} <= set(drawn)
    assert {"claim (n=109)", "enqueue (n=9,000)"} <= set(drawn)
    # AND each curve rises from 0 to 1 (SVG y grows downwards) ...
    claim, enqueue = points(svg, "cdf-0"), points(svg, "cdf-1")
    for curve in (claim, enqueue):
        assert np.all(np.diff(curve[:, 1]) <= 1e-9)
        assert np.all(np.diff(curve[:, 0]) >= -1e-9)
    bottom, top = claim[0, 1], claim[-1, 1]
    assert enqueue[0, 1] == pytest.approx(bottom)
    assert enqueue[-1, 1] == pytest.approx(top)

    # ... and the claims' median sits to the right of the enqueues'
    def median_x(curve: np.ndarray) -> float:
        return float(curve[np.argmax(curve[:, 1] <= (bottom + top) / 2), 0])

    assert median_x(claim) > median_x(enqueue)


def test_histogram_keeps_every_sample_in_its_bin() -> None:
    values = np.array([0.0, 1e-4, 0.0123, 0.0124, 1.0, 1.0, 37.5, 12_000.0])
    histogram = log_histogram(values)
    assert histogram.count == values.size
    assert list(histogram.bins) == sorted(set(histogram.bins))
    lower, upper = histogram.lower_edges_ms(), histogram.upper_edges_ms()
    for value in values:
        inside = (lower <= max(value, 1e-6)) & (max(value, 1e-6) < upper)
        assert inside.sum() == 1
    assert histogram.counts[list(histogram.bins).index(0)] == 2  # the two 1.0 ms samples


def test_timeline_marks_every_event_and_draws_both_series() -> None:
    svg = _timeline()
    drawn = texts(svg)
    assert {"elapsed (s)", "tasks/s", "tasks queued"} <= set(drawn)
    assert {"burst (n=3)", "worker killed (n=2)"} <= set(drawn)
    assert len(ids(svg, "event-0-")) == 3
    assert len(ids(svg, "event-1-")) == 2
    assert len(points(svg, "throughput")) == 4
    assert len(points(svg, "depth")) == 4
    # the kill at 1.2 s is drawn between the bursts at 0.5 s and 1.5 s
    x = {gid: points(svg, gid)[0, 0] for gid in ("event-0-0", "event-1-0", "event-0-1")}
    assert x["event-0-0"] < x["event-1-0"] < x["event-0-1"]


def test_memory_plot_draws_rss_heap_and_the_growth_lines() -> None:
    svg = _memory()
    drawn = texts(svg)
    assert {"elapsed (s)", "RSS (MiB)", "Python heap (MiB)"} <= set(drawn)
    assert "RSS after each chunk (n=4)" in drawn
    assert "RSS growth fit: +480.0 KiB per 1,000 tasks" in drawn
    assert "heap growth fit: +96.0 KiB per 1,000 tasks" in drawn
    assert len(points(svg, "rss-chunks")) == 4
    assert len(points(svg, "rss-sampled")) == 6
    assert len(points(svg, "growth-rss")) == 3  # the warm-up chunk is not fitted
    rising = points(svg, "growth-rss")[:, 1]
    assert rising[0] > rising[-1]  # growth: the line climbs (SVG y grows downwards)


def test_worker_strip_shows_each_workers_tasks_and_busy_time() -> None:
    svg = _workers()
    drawn = texts(svg)
    assert {"w0", "w1", "w2", "3 workers, async"} <= set(drawn)
    assert "tasks completed (total 180)" in drawn
    assert "busy (s, total 0.9)" in drawn
    # bars in worker order, lengths in proportion, the idle worker's empty
    completed = [bar_width(svg, f"completed-{i}") for i in range(3)]
    busy = [bar_width(svg, f"busy-{i}") for i in range(3)]
    assert completed[0] == pytest.approx(2 * completed[1])
    assert completed[2] == 0
    assert busy[0] == pytest.approx(2 * busy[1])
    assert busy[2] == 0


def test_scaling_plot_names_the_predicted_peak() -> None:
    fit = _fit()
    svg = scaling_svg([fit])
    drawn = texts(svg)
    assert {"workers", "tasks/s"} <= set(drawn)
    peak = f"{fit.peak_throughput:,.0f} tasks/s at {fit.peak_workers:.1f} workers"
    assert f"async: predicted peak {peak}" in drawn
    assert len(points(svg, "measured-async")) == 5
    assert len(points(svg, "peak-async")) == 1
