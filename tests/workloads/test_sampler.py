"""The queue's tasks by state over time: sampled beside the writers (QueueDepthSampler), or
rebuilt from the tasks' own times after a run (queue_timeline)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from analysis.timelines import queue_timelines
from workloads.runner import execute, plan_run
from workloads.sampler import QUEUE_COLUMNS, QueueDepthSampler, queue_timeline


def test_depth_rows_follow_the_table_and_end_with_its_last_state(tmp_path: Path) -> None:
    # GIVEN a tasks table that changes while the sampler runs
    path = tmp_path / "q.db"
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE tasks (id INTEGER PRIMARY KEY, state TEXT)")
    db.executemany("INSERT INTO tasks (state) VALUES (?)", [("pending",)] * 5)
    db.commit()
    started = time.perf_counter()
    with QueueDepthSampler(path, started, interval_s=0.01) as sampler:
        time.sleep(0.05)
        db.execute("UPDATE tasks SET state = 'done' WHERE id <= 3")
        db.execute("UPDATE tasks SET state = 'running' WHERE id = 4")
        db.commit()
        time.sleep(0.05)
    db.close()
    # THEN rows are (elapsed, done, pending, running), in time order, the first before the
    # change and the last (taken as the sampler closed) after it
    assert QUEUE_COLUMNS == ("elapsed_s", "tasks_done", "tasks_pending", "tasks_running")
    rows = sampler.samples
    assert rows[0][1:] == (0.0, 5.0, 0.0)
    assert rows[-1][1:] == (3.0, 1.0, 1.0)
    times = [row[0] for row in rows]
    assert times == sorted(times)
    assert 0 <= times[0] < times[-1] <= time.perf_counter() - started


def test_a_database_without_the_table_leaves_gaps_not_rows(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    sqlite3.connect(path).close()
    with QueueDepthSampler(path, time.perf_counter(), interval_s=0.01) as sampler:
        time.sleep(0.03)
    assert sampler.samples == []


def test_a_timeline_rebuilt_from_task_times_counts_each_state_at_each_point() -> None:
    # GIVEN four tasks: created at 0-3 s, three started at 4-6 s, two finished at 5 and 8 s
    times = [(0.0, 4.0, 5.0), (1.0, 5.0, 8.0), (2.0, 6.0, None), (3.0, None, None)]
    # WHEN the timeline is rebuilt with one point a second
    rows = queue_timeline(times, points=9)
    # THEN each row is (elapsed, done, pending, running) at that second, from 0 to 8 s
    assert [row[0] for row in rows] == [float(t) for t in range(9)]
    assert rows[0] == (0.0, 0.0, 1.0, 0.0)
    assert rows[3] == (3.0, 0.0, 4.0, 0.0)
    assert rows[5] == (5.0, 1.0, 2.0, 1.0)
    assert rows[8] == (8.0, 2.0, 1.0, 1.0)
    # AND no tasks, or tasks that span no time, give no rows rather than a made-up line
    assert queue_timeline([]) == []
    assert queue_timeline([(1.0, None, None)]) == []


def test_each_throughput_step_carries_its_queue_over_time(tmp_path: Path) -> None:
    # GIVEN a smoke throughput run (three steps of 300 tasks)
    outcome = execute(plan_run("throughput", size="smoke", params=[], out_dir=tmp_path))
    result = outcome.result
    assert result is not None
    # WHEN its timelines are read as the report reads them
    timelines = queue_timelines(result)
    # THEN there is one per step, in the steps' order, each ending with every task done
    assert [t.series for t in timelines] == [
        f"queue, step {i + 1} ({step.label})" for i, step in enumerate(result.steps)
    ]
    for timeline in timelines:
        assert timeline.completed == 300
        assert timeline.queue_depth is not None
        assert timeline.queue_depth[-1] == 0.0
        assert max(timeline.throughput) > 0
