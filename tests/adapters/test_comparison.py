"""The comparison workload at smoke size, through the real CLI: its table, samples and analysis."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import orjson
import pytest

from analysis.analyze import analyze
from analysis.attribution import attribute
from analysis.operations import Category
from analysis.profile import Frame, SampledProfile, ThreadRole
from runs import WorkloadResult
from tests.cli.test_cli import queueprof
from workloads.adapters.catalog import CONTENDER_NAMES, REFERENCE


@pytest.mark.slow
def test_a_smoke_comparison_prints_the_side_by_side_table_and_the_verdict(
    tmp_path: Path,
) -> None:
    # GIVEN the comparison at smoke size, small enough for a test
    done = queueprof(
        "run",
        "comparison",
        "--size",
        "smoke",
        "--param",
        "tasks=60",
        "--run-id",
        "cmp",
        cwd=tmp_path,
    )
    # WHEN it has run (a missed goal is exit 0 too: targets are verdicts, not failures)
    assert done.returncode == 0, done.stderr
    run_dir = tmp_path / "traces" / "cmp"
    result = WorkloadResult.from_json((run_dir / "results.json").read_bytes())
    # THEN every contender is a row with its rates, its ratio to sqlite3 and its guarantee
    rows = {s.settings["contender"]: s for s in result.steps}
    assert list(rows) == [REFERENCE, *CONTENDER_NAMES]
    for name, step in rows.items():
        assert step.metrics["drain_tasks_per_s"] > 0
        assert step.metrics["cycle_x_sqlite3"] > 0
        assert step.counters["completed"] == 120  # 60 drained + 60 cycled, none lost
        assert step.counters["lost"] == 0
        assert {"enqueue", "claim", "complete"} <= set(step.latencies)
        assert step.label.startswith(name + " [")
    assert rows[REFERENCE].metrics["drain_x_sqlite3"] == pytest.approx(1.0)
    assert "status" not in rows["persist-queue"].latencies  # it has no status query
    assert rows["huey"].label == "huey [at-most-once]"
    assert rows["huey"].settings["exactly_once"] is False
    assert rows["taskqueue"].settings["exactly_once"] is True
    # ... the goal is a verdict, taken against the best peer
    (verdict,) = [v for v in result.verdicts if v.metric == "drain_x_best_peer"]
    best_peer = max(
        rows[n].metrics["drain_tasks_per_s"] for n in ("huey", "huey-fsync-off", "persist-queue")
    )
    assert verdict.measured == pytest.approx(
        rows["taskqueue"].metrics["drain_tasks_per_s"] / best_peer
    )
    batched = rows["taskqueue-1x1"].metrics["drain_tasks_per_s"] / best_peer
    assert result.metrics["drain_x_best_peer_taskqueue_1x1"] == pytest.approx(batched)
    assert "huey [at-most-once]" in done.stdout
    assert "drain_x_best_peer" in done.stdout
    # ... and each queue's operations are samples of their own in op-samples.npz
    with np.load(run_dir / "op-samples.npz") as samples:
        keys = set(samples.files)
        assert samples["op/huey.claim"].size == 61 + 60  # a final empty claim ends the drain
    assert {"op/persist-queue.complete", "op/sqlite3.status", "op/taskqueue.enqueue"} <= keys
    # ... which the analysis reads like any run's
    analysis = analyze([run_dir])
    ops = {d.op for d in analysis.runs[0].latencies}
    assert {"huey.enqueue", "taskqueue-1x1.claim", "persist-queue.claim"} <= ops


def test_time_is_split_by_queue_then_operation_when_several_queues_ran() -> None:
    # GIVEN event-loop samples inside huey's dequeue and our queue's claim, and one elsewhere
    frames = [
        Frame("run_drain", "/src/workloads/comparison.py"),
        Frame("HueyAdapter.claim", "/src/workloads/adapters/huey_adapter.py"),
        Frame("SqliteStorage.dequeue", "/venv/site-packages/huey/storage.py"),
        Frame("Connection.commit", "<built-in>"),
        Frame("TaskQueueAdapter.claim", "/src/workloads/adapters/taskqueue_adapter.py"),
        Frame("TaskQueue.claim", "/src/taskqueue/queue.py"),
        Frame("[await]"),
    ]
    profile = SampledProfile(
        name="loop",
        role=ThreadRole.EVENT_LOOP,
        unit="seconds",
        frames=tuple(frames),
        stacks=((0, 1, 2, 3), (0, 4, 5, 6), (0,)),
        weights=(3.0, 1.0, 0.5),
    )
    # WHEN attributed
    (role,) = attribute([profile], profiler="pyinstrument", source="p").roles
    by_queue = {(q.queue, q.category): q for q in role.queues}
    # THEN each queue's claim time is its own, with its own top function
    assert by_queue[("huey", Category.CLAIM)].wall == 3.0
    assert by_queue[("huey", Category.CLAIM)].top_self[0].function == "Connection.commit"
    assert by_queue[("taskqueue", Category.CLAIM)].wall == 1.0
    assert set(by_queue) == {("huey", Category.CLAIM), ("taskqueue", Category.CLAIM)}


def test_a_run_of_one_queue_has_no_queue_split() -> None:
    # GIVEN samples in our queue only WHEN attributed THEN there is nothing to split by queue
    frames = (Frame("TaskQueue.claim", "/src/taskqueue/queue.py"), Frame("[await]"))
    profile = SampledProfile(
        name="loop",
        role=ThreadRole.EVENT_LOOP,
        unit="seconds",
        frames=frames,
        stacks=((0, 1),),
        weights=(1.0,),
    )
    (role,) = attribute([profile], profiler="pyinstrument", source="p").roles
    assert role.queues == ()


@pytest.mark.slow
def test_analyze_splits_a_profiled_comparison_by_queue_and_operation(tmp_path: Path) -> None:
    # GIVEN a comparison of our queue and huey, run under pyinstrument
    ran = queueprof(
        "run", "comparison", "--size", "smoke", "--profiler", "pyinstrument", "--run-id", "pyi",
        "--param", "tasks=150", "--param", "contenders=taskqueue,huey",
        cwd=tmp_path,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    # WHEN the real analyze command reads it
    done = queueprof("analyze", "traces/pyi", "--format", "all", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    # THEN time inside huey's code is huey's enqueue, claim and complete, apart from ours
    document = orjson.loads((tmp_path / "traces" / "pyi" / "findings.json").read_bytes())
    (loop,) = [
        r for r in document["runs"][0]["attributions"][0]["roles"] if r["role"] == "event loop"
    ]
    found = {(q["queue"], q["category"]) for q in loop["queues"]}
    assert {("huey", "enqueue"), ("huey", "claim"), ("huey", "complete")} <= found
    assert ("taskqueue", "claim") in found
    huey_claim = next(q for q in loop["queues"] if (q["queue"], q["category"]) == ("huey", "claim"))
    assert huey_claim["wall"] > 0
    report = (tmp_path / "traces" / "pyi" / "report.md").read_text()
    assert "By queue (event loop)" in report
    assert "| huey | claim |" in report
    assert "time by queue and operation" in done.stdout


def test_drain_and_cycle_latencies_are_reported_apart(tmp_path: Path) -> None:
    from workloads.comparison import compare_queues

    rows = asyncio.run(compare_queues([], tmp_path, tasks=20))
    for row in rows:
        assert {"drain.claim", "cycle.claim", "drain.enqueue", "cycle.complete"} <= set(
            row.latencies
        )
        both = row.latencies["claim"].count
        assert both == row.latencies["drain.claim"].count + row.latencies["cycle.claim"].count


class _SlowQueue:
    """An in-memory queue whose every call takes 5 ms (as one fsync per call does)."""

    def __init__(self) -> None:
        from workloads.adapters.specs import TASKQUEUE

        self.spec = TASKQUEUE
        self.waiting: list[int] = []
        self.done: set[int] = set()

    async def enqueue(self, body: object) -> int:
        await asyncio.sleep(0.005)
        self.waiting.append(len(self.waiting) + len(self.done))
        return self.waiting[-1]

    async def claim(self, n: int) -> list[int]:
        await asyncio.sleep(0.005)
        taken, self.waiting = self.waiting[:n], self.waiting[n:]
        return taken

    async def complete(self, claimed: list[int]) -> None:
        await asyncio.sleep(0.005)
        self.done.update(claimed)

    async def status(self, ref: int) -> str:
        return "done" if ref in self.done else "pending"


def test_a_scenario_stops_at_its_budget_and_counts_what_it_ran() -> None:
    from workloads.comparison import Recorder, run_cycle, run_drain

    bodies = [{"n": i} for i in range(1_000)]
    # GIVEN a queue whose calls take 5 ms, 1,000 tasks and a budget of 0.3 s per scenario
    recorder = Recorder("slow")
    # WHEN both scenarios run
    asyncio.run(run_drain(_SlowQueue(), recorder, bodies, 1, budget_s=0.3))  # type: ignore[arg-type]
    asyncio.run(run_cycle(_SlowQueue(), recorder, bodies, budget_s=0.3))  # type: ignore[arg-type]
    # THEN each ran a part of the tasks (5 ms a call: about 20 enqueues in a third of the
    # budget), every task it enqueued was completed, nothing is counted lost, and the rates
    # are over the tasks run
    drained, cycled = recorder.tasks_run["drain"], recorder.tasks_run["cycle"]
    assert 0 < drained[0] < 100
    assert 0 < cycled[0] < 100
    assert recorder.counters["completed"] == drained[0] + cycled[0]
    assert recorder.counters["lost"] == 0
    assert recorder.rates["drain_tasks_per_s"][0] < 1_000
    # AND with no budget every task runs
    whole = Recorder("slow")
    asyncio.run(run_cycle(_SlowQueue(), whole, bodies[:30], budget_s=0.0))  # type: ignore[arg-type]
    assert whole.tasks_run["cycle"] == [30]


@pytest.mark.slow
def test_the_default_comparison_names_the_contenders_its_budget_cut(tmp_path: Path) -> None:
    # GIVEN a comparison with a budget far below what 2,000 durable huey calls take
    done = queueprof(
        "run", "comparison", "--param", "contenders=huey", "--param", "tasks=2000",
        "--param", "rounds=1", "--param", "budget_s=0.2", "--run-id", "b", "--quiet",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = WorkloadResult.from_json((tmp_path / "traces" / "b" / "results.json").read_bytes())
    (huey,) = [s for s in result.steps if s.settings["contender"] == "huey"]
    # THEN huey's row says how many tasks it ran, and a note says the budget cut them
    assert huey.metrics["drain_tasks"] < 2_000
    assert huey.counters["lost"] == 0
    assert any(note.startswith("huey: the 0.2 s budget per scenario cut") for note in result.notes)
