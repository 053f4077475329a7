"""The real `queueprof compare` and `queueprof report --bundle`, through sys.executable."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import orjson

from analysis.compare import SCHEMA_VERSION

from .conftest import queueprof
from .test_compare import plant_slowdown


def test_compare_prints_a_table_and_writes_its_files(throughput_run: Path, tmp_path: Path) -> None:
    candidate = Path(shutil.copytree(throughput_run, tmp_path / "slow"))
    plant_slowdown(candidate)
    out = tmp_path / "out"
    done = queueprof("compare", throughput_run, candidate, "--noise", "0.2", "--out", out)
    assert done.returncode == 0, done.stderr
    assert "slower" in done.stdout
    assert "Mann-Whitney" in done.stdout
    assert "band ±20%" in done.stdout
    document = orjson.loads((out / "comparison.json").read_bytes())
    assert document["schema_version"] == SCHEMA_VERSION
    assert document["options"]["noise"] == 0.2
    assert document["summary"]["regressions"]
    markdown = (out / "comparison.md").read_text()
    assert markdown.startswith("# throughput-slow vs throughput-bare")
    assert "no speedscope profile" in done.stdout  # bare runs: no flame graph, and why
    assert not (out / "diff-flamegraph.html").exists()


def test_compare_writes_into_the_candidate_by_default_with_a_flame_graph(
    profiled_runs: tuple[Path, Path], tmp_path: Path
) -> None:
    base = profiled_runs[0]
    candidate = Path(shutil.copytree(profiled_runs[1], tmp_path / profiled_runs[1].name))
    done = queueprof("compare", base, candidate)
    assert done.returncode == 0, done.stderr
    assert "queue.claim_batch" in done.stdout  # what the candidate changed
    page = (candidate / "diff-flamegraph.html").read_text()
    assert "<svg" in page
    assert "src=" not in page
    assert (candidate / "comparison.md").is_file()


def test_compare_refuses_bad_input_with_exit_2(
    throughput_run: Path, latency_run: Path, tmp_path: Path
) -> None:
    missing = queueprof("compare", throughput_run, tmp_path / "nope")
    assert missing.returncode == 2
    assert "nope" in missing.stderr
    assert "queueprof list" in missing.stderr
    different = queueprof("compare", throughput_run, latency_run, "--out", tmp_path)
    assert different.returncode == 2
    assert "different workloads" in different.stderr
    noisy = queueprof("compare", throughput_run, throughput_run, "--noise", "1.5")
    assert noisy.returncode == 2
    assert "--noise" in noisy.stderr


def test_report_bundles_runs_plots_and_the_comparison(
    throughput_run: Path, concurrency_run: Path, tmp_path: Path
) -> None:
    candidate = Path(shutil.copytree(throughput_run, tmp_path / "slow"))
    plant_slowdown(candidate)
    bundle = tmp_path / "proposal"
    done = queueprof("report", throughput_run, candidate, concurrency_run, "--bundle", bundle)
    assert done.returncode == 0, done.stderr
    for run_id in ("throughput-bare", "throughput-slow", "concurrency-async"):
        assert (bundle / run_id / "manifest.json").is_file()
        assert (bundle / run_id / "results.json").is_file()
        assert (bundle / run_id / "op-samples.npz").is_file()
        assert (bundle / run_id / "plots" / "latency-cdf.svg").is_file()
    assert (bundle / "concurrency-async" / "plots" / "scaling.svg").is_file()
    assert "sigma=" in (bundle / "concurrency-async" / "scaling.md").read_text()
    assert (bundle / "comparison-throughput-slow" / "comparison.json").is_file()
    assert (bundle / "comparison-throughput-slow" / "latency-cdf.svg").is_file()
    assert (bundle / "analysis" / "report.md").is_file()
    assert (bundle / "analysis" / "report.html").is_file()
    index = (bundle / "index.md").read_text()
    listed = {line.split("`")[1] for line in index.splitlines() if line.startswith("- `")}
    on_disk = {str(p.relative_to(bundle)) for p in bundle.rglob("*") if p.is_file()}
    assert listed == on_disk  # every file, one line each, and nothing else
    assert "not compared" in index  # the concurrency run is a different workload: said why
    with zipfile.ZipFile(tmp_path / "proposal.zip") as archive:
        assert "proposal/index.md" in archive.namelist()


def test_report_never_overwrites(throughput_run: Path, tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("mine")
    done = queueprof("report", throughput_run, "--bundle", tmp_path / "taken")
    assert done.returncode == 2
    assert "not an empty folder" in done.stderr
