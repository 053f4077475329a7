"""The crossover workload: where its PostgreSQL server comes from, its parameters, and one
bounded run on the real server that every renderer can report."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from analysis.analyze import analyze
from analysis.crossover import METRICS
from analysis.render import RENDERERS, Format
from runs import RESULTS, RunStatus, WorkloadResult
from taskqueue import SERVER_ENV
from tests.helpers.db import fetch
from workloads.crossover import CrossoverParams
from workloads.errors import ParameterError
from workloads.runner import execute, plan_run


def test_without_a_server_the_error_names_both_ways_to_give_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(SERVER_ENV, raising=False)
    with pytest.raises(ParameterError) as caught:
        plan_run("crossover", size="smoke", out_dir=tmp_path)
    message = str(caught.value)
    assert "--queue backend=postgresql://" in message
    assert "QUEUEPROF_PG=postgresql://" in message
    assert caught.value.exit_code == 2
    assert not list(tmp_path.iterdir()), "a bad input writes nothing"


def test_the_server_comes_from_queueprof_pg_unless_the_queue_names_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(SERVER_ENV, "postgresql://someone@db.example:5433/postgres")
    plan = plan_run("crossover", size="smoke", out_dir=tmp_path)
    assert plan.queue_config.backend == "postgresql://someone@db.example:5433/postgres"
    named = plan_run(
        "crossover",
        size="smoke",
        out_dir=tmp_path,
        queue="backend=postgresql://other@127.0.0.1/test",
    )
    assert named.queue_config.backend == "postgresql://other@127.0.0.1/test"


def test_queueprof_pg_that_is_no_url_is_named_with_the_fix(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(SERVER_ENV, "host=127.0.0.1 user=postgres")
    with pytest.raises(ParameterError, match=r"QUEUEPROF_PG='host=127.0.0.1 user=postgres'.*URL"):
        plan_run("crossover", size="smoke", out_dir=tmp_path)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["worker_counts=5,5"], "at least two different worker counts"),
        (["worker_counts=1,20", "tasks=10"], "tasks=10: fewer tasks than the 20 workers"),
    ],
)
def test_params_that_cannot_show_a_crossover_are_refused(
    overrides: list[str], message: str
) -> None:
    with pytest.raises(ParameterError, match=message):
        CrossoverParams().with_overrides(overrides)


@pytest.mark.slow
def test_a_bounded_run_on_the_server_pairs_every_step_and_reports_the_crossover(
    pg_server: str, tmp_path: Path
) -> None:
    # GIVEN a smoke-size crossover with two worker counts; tasks that sleep 1 ms each, so
    # that no worker can drain the queue before the others claim (every worker works)
    plan = plan_run(
        "crossover",
        size="smoke",
        params=["worker_counts=1,2", "tasks=200", "task_type=sleep"],
        queue=f"backend={pg_server}",
        out_dir=tmp_path,
        run_id="crossover",
    )
    # WHEN it runs
    outcome = execute(plan)
    # THEN every (mode, workers) ran on both backends, lost nothing, and every worker worked
    assert outcome.status is RunStatus.COMPLETE, outcome.error
    folder = tmp_path / "crossover"
    result = WorkloadResult.from_dict(orjson.loads((folder / RESULTS).read_bytes()))
    settings = sorted(
        (s.settings["mode"], s.settings["workers"], s.settings["backend"]) for s in result.steps
    )
    assert settings == sorted(
        (mode, workers, backend)
        for mode in ("async", "process")
        for workers in (1, 2)
        for backend in ("sqlite", "postgresql")
    )
    for step in result.steps:
        assert step.counters["lost"] == 0
        assert step.counters["completed"] == 200
        assert len(step.workers) == step.settings["workers"]
        assert all(worker.completed > 0 for worker in step.workers), step.label
        assert {m.key for m in METRICS} <= set(step.metrics), step.label
        assert step.latencies["cycle"].count == 200
        assert step.latencies["claim"].count > 0
    assert result.counters["idle_workers"] == 0
    # AND its scratch databases are gone from the server
    names = [str(row[0]) for row in fetch(pg_server, "SELECT datname FROM pg_database")]
    assert not [n for n in names if n.startswith("qp_crossover_")]
    # AND the analysis pairs the backends in each mode and states the finding
    analysis = analyze([folder])
    report = analysis.runs[0].crossover
    assert report is not None
    assert report.modes == ("async", "process")
    assert {(c.mode, c.metric) for c in report.crossovers} == {
        (mode, metric) for mode in ("async", "process") for metric in METRICS
    }
    assert report.finding.startswith("On this machine ")
    # AND every renderer shows it (the HTML with a plot per metric)
    for fmt in (Format.HTML, Format.MARKDOWN, Format.TERMINAL):
        assert report.finding in " ".join(RENDERERS[fmt].render(analysis).split())
    html = RENDERERS[Format.HTML].render(analysis)
    assert html.count('id="sqlite-async"') == len(METRICS)
