"""benchmarks/profiler_overhead.py: its JSON document and its input errors (not its timings)."""

from __future__ import annotations

import statistics
from pathlib import Path

import orjson
import pytest

from benchmarks import profiler_overhead


def test_json_has_every_round_of_every_profiler_with_wall_and_cpu(tmp_path: Path) -> None:
    # GIVEN two rounds of a tiny drain under pyinstrument with batched claims
    out = tmp_path / "overhead.json"
    # WHEN the benchmark runs with --json
    profiler_overhead.main(
        [
            "--tasks=60",
            "--workers=2",
            "--rounds=2",
            "--profilers=pyinstrument",
            "--queue=claim_batch=10,ack_batch=10",
            f"--json={out}",
        ]
    )
    # THEN the document names the run and holds each round's own figures
    document = orjson.loads(out.read_bytes())
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
    assert entry["passed"] is (entry["overhead"] <= entry["goal"])
    assert entry["summary"]["thread_sessions"] == 1
    assert document["viztracer_trace"] is None


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
