"""QueueDepthSampler: the queue's tasks by state over time, read beside the writers."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from workloads.sampler import QUEUE_COLUMNS, QueueDepthSampler


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
