"""plots: every function returns one self-contained <svg> element, and refuses empty data."""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import pytest

from analysis.errors import PlotInputError
from analysis.plots import allocations_svg, latency_cdf_svg, scaling_svg, timeline_svg
from analysis.scaling import ScalingPoint, fit_usl, usl

_NAMESPACES = {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}


def _scaling() -> str:
    n = np.array([1, 2, 5, 10, 20], dtype=np.float64)
    points = [
        ScalingPoint(int(w), float(x)) for w, x in zip(n, usl(n, 900.0, 0.1, 0.003), strict=True)
    ]
    return scaling_svg([fit_usl(points, "async")])


def _cdf() -> str:
    rng = np.random.default_rng(1)
    return latency_cdf_svg(
        {"claim": rng.lognormal(12, 1, 5_000), "enqueue": rng.lognormal(11, 0.5, 3_000)}
    )


def _timeline() -> str:
    return timeline_svg([0, 1, 2, 3], [100, 250, 240, 90], [1_000, 700, 300, 0])


def _allocations() -> str:
    return allocations_svg({"store.py:insert": 3e6, "<b>queue</b>": 2e5, "json": 4_096}, top=2)


PLOTS: list[Callable[[], str]] = [_scaling, _cdf, _timeline, _allocations]


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
        lambda: latency_cdf_svg({"claim": np.array([], dtype=np.int64)}),
        lambda: timeline_svg([0, 1]),
        lambda: timeline_svg([0, 1, 2], throughput=[1, 2]),
        lambda: allocations_svg({}),
    ],
)
def test_unplottable_input_is_a_clear_error(call: Callable[[], str]) -> None:
    with pytest.raises(PlotInputError) as raised:
        call()
    assert raised.value.exit_code == 2
