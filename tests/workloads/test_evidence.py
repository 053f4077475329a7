"""Evidence the analysis needs from a run: the schema snapshot, steady-state heap growth,
contention and per-worker counters."""

from __future__ import annotations

import asyncio
import gc
import sqlite3
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from runs import MANIFEST, Manifest
from taskqueue import QueueConfig, TaskQueue
from workloads import heapgrowth
from workloads.runner import execute, plan_run
from workloads.schema import SCHEMA_JSON, SCHEMA_SQL, snapshot_schemas
from workloads.tasks import error_counters
from workloads.workers import Workers


def _database(path: Path, statements: str, rows: int) -> None:
    with sqlite3.connect(path) as db:
        db.executescript(statements)
        db.executemany("INSERT INTO tasks (state) VALUES (?)", [("pending",)] * rows)
    db.close()


def test_the_schema_snapshot_is_the_largest_databases_and_replays(tmp_path: Path) -> None:
    # GIVEN two databases in a run's scratch folder: a small one with the claim's index,
    # and the main one without it but with planner statistics
    scratch, run_dir = tmp_path / "scratch", tmp_path / "run"
    scratch.mkdir()
    run_dir.mkdir()
    table = "CREATE TABLE tasks (id INTEGER PRIMARY KEY, state TEXT);"
    _database(scratch / "small-0.db", table + "CREATE INDEX by_state ON tasks (state);", 2)
    _database(scratch / "main-1.db", table, 50)
    with sqlite3.connect(scratch / "main-1.db") as db:
        db.execute("""CREATE INDEX "it's" ON tasks (id, state)""")  # a quote to escape
        db.execute("ANALYZE")
    db.close()
    # WHEN the runner snapshots them
    artifacts = snapshot_schemas(scratch, run_dir)
    # THEN schema.sql is the main database's, replays on an empty database with its stats,
    # and both files are listed as artifacts
    assert [a.path for a in artifacts] == [SCHEMA_SQL, SCHEMA_JSON]
    script = (run_dir / SCHEMA_SQL).read_text()
    assert "by_state" not in script
    assert "ANALYZE sqlite_schema;" in script
    replay = sqlite3.connect(":memory:")
    replay.executescript(script)
    stats = replay.execute("SELECT tbl, idx, stat FROM sqlite_stat1").fetchall()
    assert ("tasks", "it's", "50 1 1") in stats
    plan = replay.execute("EXPLAIN QUERY PLAN SELECT * FROM tasks WHERE state = 'x'").fetchall()
    assert "SCAN tasks" in plan[0][3]
    document = orjson.loads((run_dir / SCHEMA_JSON).read_bytes())
    assert document["chosen"] == "main-1.db"
    assert {d["name"]: d["tasks_rows"] for d in document["databases"]} == {
        "main-1.db": 50,
        "small-0.db": 2,
    }


def test_no_database_no_snapshot(tmp_path: Path) -> None:
    (tmp_path / "not-a-db.db").write_bytes(b"plain text, not SQLite")
    assert snapshot_schemas(tmp_path, tmp_path) == []


def test_every_run_folder_holds_the_schema_it_ran_with(tmp_path: Path) -> None:
    # GIVEN a real (tiny) dbops run
    plan = plan_run("dbops", size="smoke", params=("tasks=20", "workers=2"), out_dir=tmp_path)
    # WHEN it runs
    outcome = execute(plan)
    # THEN its manifest lists schema.sql, which has the queue's claim index
    manifest = Manifest.from_json((outcome.run_dir / MANIFEST).read_bytes())
    assert SCHEMA_SQL in [a["path"] for a in manifest.artifacts]
    assert "CREATE INDEX tasks_ready" in (outcome.run_dir / SCHEMA_SQL).read_text()
    # AND each step counts what each worker did
    step = outcome.result.steps[-1]
    assert sum(v for k, v in step.counters.items() if k.startswith("worker_tasks.")) == 40
    assert {"worker_busy_us.w0", "worker_claims.w1", "lock_wait_us"} <= step.counters.keys()


@pytest.fixture
def tracing() -> Iterator[None]:
    tracemalloc.start(heapgrowth.HEAP_FRAMES)
    try:
        yield
    finally:
        tracemalloc.stop()


_KEPT: list[bytes] = []


def _keep_blocks(count: int) -> None:
    _KEPT.extend(bytes(1000) + bytes([i % 256]) for i in range(count))


def test_heap_growth_names_the_site_that_kept_memory_during_the_window(tracing: None) -> None:
    # GIVEN a snapshot after a warm-up, then a function that keeps 1 KB per "task"
    gc.collect()
    start = heapgrowth.mark(tasks_done=100, elapsed_s=1.0)
    _keep_blocks(500)
    gc.collect()
    end = heapgrowth.mark(tasks_done=600, elapsed_s=2.0)
    assert start is not None
    assert end is not None
    tracemalloc.stop()
    try:
        # WHEN the window is diffed
        document = heapgrowth.growth_document(start, end)
    finally:
        _KEPT.clear()
    # THEN the top site is that function, innermost frame first, per 1,000 tasks
    top = document["stacks"][0]
    assert top["stack"][0][0] in ("_keep_blocks", "<genexpr>")
    assert any(frame[0] == "_keep_blocks" for frame in top["stack"][:3])
    assert top["stack"][0][1] == __file__
    assert document["window"] == {
        "start_tasks": 100,
        "end_tasks": 600,
        "tasks": 500,
        "seconds": 1.0,
    }
    assert top["bytes_per_1k_tasks"] == pytest.approx(top["bytes"] * 2)
    assert 500_000 <= document["total_bytes"] < 1_000_000


def test_contention_is_counted_per_operation_with_its_wait(tmp_path: Path) -> None:
    # GIVEN ten workers claiming read-then-write on connections of their own
    config = QueueConfig(claim_style="deferred", connection="per-worker", record_timings=True)

    async def drain() -> dict[str, int]:
        async with TaskQueue(tmp_path / "q.db", config) as queue:
            await queue.enqueue_many([("noop", {"seq": i}) for i in range(300)])
            async with Workers(queue, 10, "async", until_empty=True) as pool:
                result = await pool.wait()
            return error_counters(queue.stats, result)

    # WHEN they drain the queue
    counters = asyncio.run(drain())
    # THEN retries and lock waits are per operation and add up, and every worker is listed
    retries = {k: v for k, v in counters.items() if k.startswith("sqlite_busy_retries.")}
    waits = {k: v for k, v in counters.items() if k.startswith("lock_wait_us.")}
    assert sum(retries.values()) == counters["sqlite_busy_retries"]
    assert sum(waits.values()) <= counters["lock_wait_us"] + len(waits)
    assert sum(counters[f"worker_tasks.w{i}"] for i in range(10)) == 300
    assert counters["pool_wall_us"] > 0


def test_heap_growth_leaves_out_the_run_samplers_own_memory(tracing: None) -> None:
    # GIVEN an RSS sampler's rows kept during the window beside the queue's own growth
    from workloads.sampler import ResourceSampler

    gc.collect()
    start = heapgrowth.mark(tasks_done=0, elapsed_s=0.0)
    rows = ResourceSampler(interval_s=1.0)
    for _ in range(300):
        rows.tick()
    _keep_blocks(100)
    gc.collect()
    end = heapgrowth.mark(tasks_done=100, elapsed_s=1.0)
    assert start is not None
    assert end is not None
    tracemalloc.stop()
    try:
        document = heapgrowth.growth_document(start, end)
    finally:
        _KEPT.clear()
    # THEN no stack of the sampler's is counted, and the queue's growth leads
    files = {frame[1] for stack in document["stacks"] for frame in stack["stack"]}
    assert not any(name.endswith("workloads/sampler.py") for name in files)
    assert any(frame[0] == "_keep_blocks" for frame in document["stacks"][0]["stack"][:3])
    assert len(rows.samples) == 300
