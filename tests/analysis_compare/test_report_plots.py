"""The plots of report.html: drawn from the run's own data, with the true counts."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import orjson
import pytest

from analysis.latency import distribution
from analysis.model import Analysis
from analysis.render import html_page, markdown
from analysis.scaling import ScalingPoint, fit_usl, usl
from analysis.timelines import memory_timeline, queue_timelines, worker_steps
from runs import MANIFEST, StepResult, WorkerShare, WorkloadResult
from tests.analysis import builders

from .conftest import queueprof
from .svgread import points, texts


def _result(**changes: object) -> WorkloadResult:
    fields: dict[str, object] = {
        "workload": "stress",
        "size": "smoke",
        "params": {},
        "queue": {},
        "complete": True,
        "duration_s": 4.0,
    }
    return WorkloadResult(**{**fields, **changes})  # type: ignore[arg-type]


STRESS = _result(
    series={
        "queue": ((0.0, 0, 0, 0), (1.0, 100, 40, 2), (2.0, 300, 10, 2), (3.0, 330, 0, 0)),
        "bursts": ((1.5, 100),),
        "kills": ((0.8,), (2.2,)),
    },
    series_columns={
        "queue": ("elapsed_s", "tasks_done", "tasks_pending", "tasks_running"),
        "bursts": ("elapsed_s", "tasks"),
        "kills": ("elapsed_s",),
    },
)


def test_queue_timeline_rates_depth_and_events() -> None:
    (timeline,) = queue_timelines(STRESS)
    assert timeline.series == "queue"
    assert timeline.elapsed_s == (1.0, 2.0, 3.0)
    assert timeline.throughput == (100.0, 200.0, 30.0)
    assert timeline.queue_depth == (40.0, 10.0, 0.0)
    assert timeline.events == {"burst": (1.5,), "worker killed": (0.8, 2.2)}
    assert timeline.completed == 330


def test_memory_timeline_draws_the_verdicts_slope() -> None:
    # GIVEN chunks whose RSS grows 2 KiB per task after one warm-up chunk
    tasks = np.arange(1, 6) * 1_000.0
    rss = 50e6 + 2_048 * tasks + np.array([5e5, 0, 3e3, -3e3, 0])
    rows = tuple((t, r, 1e6, t / 1_000) for t, r in zip(tasks, rss, strict=True))
    slope = float(np.polyfit(tasks[1:] / 1_000, rss[1:], 1)[0]) / 1024
    result = _result(
        workload="memory",
        params={"warmup_chunks": 1},
        metrics={"rss_growth_kib_per_1k_tasks": slope, "heap_growth_kib_per_1k_tasks": 0.0},
        series={"chunks": rows},
        series_columns={"chunks": ("tasks_done", "rss_bytes", "heap_bytes", "elapsed_s")},
    )
    timeline = memory_timeline(result)
    assert timeline is not None
    rss_line, heap_line = timeline.growth
    # THEN the line drawn is the least-squares fit of the chunks after the warm-up
    fitted = np.polyval(np.polyfit(tasks[1:], rss[1:], 1), tasks[1:])
    assert rss_line.fitted_bytes == pytest.approx(tuple(fitted))
    assert rss_line.elapsed_s == (2.0, 3.0, 4.0, 5.0)
    assert heap_line.fitted_bytes == pytest.approx((1e6,) * 4)
    assert timeline.rss_elapsed_s == ()  # no resources series: nothing sampled to draw


def test_worker_steps_are_the_widest_per_mode() -> None:
    def step(workers: int, mode: str) -> StepResult:
        shares = tuple(WorkerShare(f"w{i}", 1, 0.1) for i in range(workers))
        return StepResult(
            f"{workers} {mode}", {"workers": workers, "mode": mode}, {}, {}, {}, shares
        )

    steps = (step(1, "async"), step(5, "async"), step(2, "process"), step(4, "process"))
    assert [s.label for s in worker_steps(steps)] == ["5 async", "4 process"]
    assert worker_steps((StepResult("none", {}, {}),)) == ()


def _svgs(html: str) -> list[str]:
    return re.findall(r'<div class="plot">(<svg.*?</svg>)\s*</div>', html, re.S)


def test_report_cdf_legend_counts_the_calls_not_the_quantiles() -> None:
    # GIVEN 109 claims and 9,000 enqueues (the report used to say n=103 for both)
    rng = np.random.default_rng(3)
    latencies = (
        distribution("enqueue", "op-samples.npz", rng.lognormal(-2, 0.4, 9_000)),
        distribution("claim", "op-samples.npz", rng.lognormal(0, 0.4, 109)),
    )
    run = builders.run_analysis(latencies=latencies, trace_latencies=latencies)
    html = html_page.render(Analysis(runs=(run,)))
    # THEN one CDF (the trace's spans are not drawn a second time) with the true counts
    cdfs = [svg for svg in _svgs(html) if "latency (ms, log scale)" in texts(svg)]
    assert len(cdfs) == 1
    assert {"claim (n=109)", "enqueue (n=9,000)"} <= set(texts(cdfs[0]))
    assert html.count("<h3>Operation latency") == 1
    assert markdown.render(Analysis(runs=(run,))).count("### Operation latency") == 1


def test_report_draws_scaling_timeline_memory_and_workers() -> None:
    n = np.array([1, 2, 5, 10], dtype=np.float64)
    fit = fit_usl(
        [ScalingPoint(int(w), float(x)) for w, x in zip(n, usl(n, 5e3, 0.2, 0.01), strict=True)],
        "async",
    )
    shares = (WorkerShare("w0", 70, 0.5), WorkerShare("w1", 30, 0.2))
    step = StepResult("2 workers, async", {"workers": 2, "mode": "async"}, {}, {}, {}, shares)
    run = builders.run_analysis(
        workload="stress",
        steps=(step,),
        scaling=(fit,),
        timelines=queue_timelines(STRESS),
    )
    svgs = _svgs(html_page.render(Analysis(runs=(run,))))
    drawn = [set(texts(svg)) for svg in svgs]
    scaling, timeline, workers = svgs
    assert any(t.startswith("async: predicted peak") for t in drawn[0])
    assert {"burst (n=1)", "worker killed (n=2)", "elapsed (s)"} <= drawn[1]
    assert len(points(timeline, "throughput")) == 3
    assert {"w0", "w1", "tasks completed (total 100)"} <= drawn[2]
    assert len(points(scaling, "measured-async")) == 4
    assert "busy-1" in workers


def _hrefs(report: Path) -> list[str]:
    return re.findall(r'<a href="([^"]+)"', report.read_text(encoding="utf-8"))


def test_report_links_every_artifact_relative_to_itself(
    throughput_run: Path, tmp_path: Path
) -> None:
    # GIVEN reports written away from the run folder
    out = tmp_path / "elsewhere" / "reports"
    done = queueprof("analyze", throughput_run, "--out", out, "--format", "all")
    assert done.returncode == 0, done.stderr
    # THEN each artifact of the manifest is linked once, and each link opens a file
    listed = {
        a["path"] for a in orjson.loads((throughput_run / MANIFEST).read_bytes())["artifacts"]
    }
    for report in (out / "report.html", out / "report.md"):
        text = report.read_text(encoding="utf-8")
        links = _hrefs(report) if report.suffix == ".html" else re.findall(r"\]\(([^)]+)\)", text)
        assert links
        for link in links:
            assert (report.parent / unquote(link)).is_file(), link
        assert {Path(unquote(link)).name for link in links} >= {Path(p).name for p in listed}
        assert "how to open it" in text


def test_bundle_report_links_work_once_the_bundle_is_unzipped(
    throughput_run: Path, concurrency_run: Path, tmp_path: Path
) -> None:
    bundle = tmp_path / "made" / "proposal"
    done = queueprof("report", throughput_run, concurrency_run, "--bundle", bundle)
    assert done.returncode == 0, done.stderr
    moved = tmp_path / "unzipped"
    with zipfile.ZipFile(tmp_path / "made" / "proposal.zip") as archive:
        archive.extractall(moved)
    report = moved / "proposal" / "analysis" / "report.html"
    links = _hrefs(report)
    assert any(link.endswith("op-samples.npz") for link in links)
    for link in links:
        target = (report.parent / unquote(link)).resolve()
        assert target.is_file(), link
        assert target.is_relative_to(moved.resolve())  # the bundle's copies, not the originals
    # AND the bundle's plots include the per-worker strips and the scaling fit
    plots = moved / "proposal" / "concurrency-async" / "plots"
    assert (plots / "scaling.svg").is_file()
    assert "tasks completed (total" in " ".join(texts((plots / "workers-1.svg").read_text()))
