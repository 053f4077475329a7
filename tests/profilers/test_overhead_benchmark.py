"""benchmarks/profiler_overhead.py: its JSON document and its input errors (not its timings)."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import orjson
import pytest

from benchmarks import profiler_overhead


def _json_of(tmp_path: Path, *argv: str) -> dict[str, Any]:
    """The benchmark's ``--json`` document for a run with ``argv``."""
    out = tmp_path / "overhead.json"
    profiler_overhead.main([*argv, f"--json={out}"])
    document: dict[str, Any] = orjson.loads(out.read_bytes())
    return document


def test_json_has_every_round_of_every_profiler_with_wall_and_cpu(tmp_path: Path) -> None:
    # GIVEN two rounds of a tiny drain under pyinstrument with batched claims
    # WHEN the benchmark runs with --json
    document = _json_of(
        tmp_path,
        "--tasks=60",
        "--workers=2",
        "--rounds=2",
        "--profilers=pyinstrument",
        "--queue=claim_batch=10,ack_batch=10",
    )
    # THEN the document names the run and holds each round's own figures
    assert document["schema_version"] == profiler_overhead.JSON_SCHEMA_VERSION
    assert (document["tasks"], document["workers"], document["rounds"]) == (60, 2, 2)
    assert document["queue"] == "claim_batch=10,ack_batch=10"
    entry = document["profilers"]["pyinstrument"]
    assert entry["goal"] == profiler_overhead.GOALS["pyinstrument"]
    assert len(entry["rounds"]) == 2
    for pair in entry["rounds"]:
        assert min(pair["bare_s"], pair["profiled_s"], pair["bare_cpu_s"]) > 0
        assert pair["ratio"] == pytest.approx(pair["profiled_s"] / pair["bare_s"])
    assert entry["overhead"] == pytest.approx(
        statistics.median(p["ratio"] for p in entry["rounds"])
    )
    low, high = entry["overhead_band"]
    assert low <= entry["overhead"] <= high
    assert entry["passed"] is (entry["overhead"] <= entry["goal"])
    assert entry["summary"]["thread_sessions"] == 1
    assert document["viztracer_trace"] is None


def test_pyspy_pairs_attach_to_one_drain_child(tmp_path: Path) -> None:
    # GIVEN py-spy, whose pairs run in a child process it attaches to for each profiled drain
    # WHEN two rounds of a small drain run, sampled often enough to be sure of samples
    document = _json_of(
        tmp_path,
        "--tasks=1000",
        "--workers=2",
        "--rounds=2",
        "--profilers=py-spy",
        "--option=py-spy:rate=2000",
    )
    # THEN each pair has both sides' drain times, and py-spy sampled the child (it wrote its
    # profile, which finish read)
    entry = document["profilers"]["py-spy"]
    assert len(entry["rounds"]) == 2
    assert entry["summary"]["samples"] >= 1
    for pair in entry["rounds"]:
        assert min(pair["bare_s"], pair["profiled_s"], pair["bare_cpu_s"]) > 0


def test_overhead_band_is_the_spread_of_resampled_medians() -> None:
    # GIVEN rounds whose ratios are 1.0 but for one outlier
    rounds = [profiler_overhead.Round(1.0, r, 1.0, r, 0.0) for r in [1.0] * 8 + [2.0]]
    # WHEN their overhead is taken
    overhead = profiler_overhead.Overhead.of(rounds)
    # THEN the median ignores the outlier, and so does most of the band
    assert overhead.ratio == 1.0
    assert overhead.low == 1.0
    assert overhead.high == 1.0
    assert overhead.band == "1.00-1.00"


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--queue=claim_batch=0"], "--queue 'claim_batch=0'"),
        (["--queue=nope=1"], "unknown queue option 'nope'"),
        (["--rounds=0"], "--rounds: 0 must be at least 1"),
        (["--profilers=pyinstrumnt"], "'pyinstrumnt' is not a profiler"),
        (["--option=memray:native=true"], "NAME in ['pyinstrument'"),
    ],
)
def test_bad_input_names_the_input(
    argv: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        profiler_overhead.main(["--profilers=pyinstrument", *argv])
    assert stopped.value.code == 2
    assert named in capsys.readouterr().err
