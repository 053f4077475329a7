"""The real `queueprof compare` and `queueprof report --bundle`, through sys.executable."""

from __future__ import annotations

import os
import shutil
import stat
import zipfile
from pathlib import Path

import orjson
import pytest

from analysis.compare import SCHEMA_VERSION
from queueprof.cli import bundle_folder
from runs import UsageError

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


def test_a_bundle_named_by_a_bare_name_goes_beside_the_run_and_says_where(
    throughput_run: Path, tmp_path: Path
) -> None:
    # GIVEN a run in a traces folder, and a working tree that must stay clean
    run = Path(shutil.copytree(throughput_run, tmp_path / "traces" / "r1"))
    # WHEN a bundle is asked for by a bare name
    done = queueprof("report", run, "--bundle", "proposal")
    # THEN it is written beside the run, in traces/, and the output names both files
    assert done.returncode == 0, done.stderr
    bundle = tmp_path / "traces" / "proposal"
    assert (bundle / "index.md").is_file()
    assert (tmp_path / "traces" / "proposal.zip").is_file()
    assert f"files in {bundle}\n" in done.stdout
    assert f"the same as one zip: {bundle}.zip\n" in done.stdout
    assert f"open: {bundle / 'index.md'}" in done.stdout
    assert not Path("proposal").exists()
    assert not Path("proposal.zip").exists()


def test_reports_get_the_same_mode_as_the_profiles_beside_them(
    throughput_run: Path, tmp_path: Path
) -> None:
    # GIVEN a run folder WHEN it is analysed (report.md/html, findings.json) and bundled
    run = Path(shutil.copytree(throughput_run, tmp_path / "r1"))
    assert queueprof("analyze", run).returncode == 0
    assert queueprof("report", run, "--bundle", tmp_path / "b").returncode == 0
    # THEN every file written has the mode the umask gives a new file, like op-samples.npz
    umask = os.umask(0)
    os.umask(umask)
    expected = 0o666 & ~umask
    written = [run / "report.md", run / "report.html", run / "findings.json"]
    written += [p for p in (tmp_path / "b").rglob("*") if p.is_file()]
    modes = {str(p): stat.S_IMODE(p.stat().st_mode) for p in written}
    assert modes == dict.fromkeys(modes, expected)
    assert stat.S_IMODE((run / "op-samples.npz").stat().st_mode) == expected


@pytest.mark.parametrize(
    ("argument", "expected"),
    [("proposal", "traces/proposal"), ("./proposal", "proposal"), ("/tmp/p", "/tmp/p")],
)
def test_bundle_folder_puts_a_bare_name_beside_the_run(argument: str, expected: str) -> None:
    assert bundle_folder(argument, Path("traces/r1")) == Path(expected)


@pytest.mark.parametrize("argument", ["", ".", ".."])
def test_bundle_folder_refuses_a_name_that_is_no_new_folder(argument: str) -> None:
    with pytest.raises(UsageError, match="name a new folder"):
        bundle_folder(argument, Path("traces/r1"))
