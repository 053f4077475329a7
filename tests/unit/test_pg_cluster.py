"""A throwaway PostgreSQL cluster: what the tests (and users) get when no server runs."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.pg import unavailable


@pytest.mark.slow
def test_a_throwaway_cluster_serves_a_queue_and_leaves_nothing() -> None:
    pgadmin = pytest.importorskip("taskqueue.pgadmin")
    from taskqueue import TaskQueue, TaskState

    initdb = pgadmin.find_initdb()
    if initdb is None:
        unavailable("no initdb on PATH or in /usr/lib/postgresql/*/bin")
    # GIVEN a cluster of its own, started in a temporary folder
    cluster = pgadmin.ThrowawayCluster(Path(str(initdb)).parent).start()
    folder = cluster.folder
    assert folder is not None
    try:
        dsn = asyncio.run(pgadmin.create_database(cluster.dsn, "qp_cluster_test"))

        # WHEN a queue runs on it
        async def scenario() -> dict[TaskState, int]:
            async with TaskQueue(dsn) as queue:
                await queue.enqueue_many([("noop", {}) for _ in range(5)])
                tasks = await queue.claim("w", 5)
                await queue.complete_many([(task, None) for task in tasks])
                return await queue.counts()

        # THEN it works as on any server, with pg_stat_statements preloaded for the analysis
        assert asyncio.run(scenario())[TaskState.DONE] == 5
        from tests.helpers.db import fetch

        (preloaded,) = fetch(dsn, "SELECT current_setting('shared_preload_libraries')")[0]
        assert "pg_stat_statements" in preloaded
    finally:
        cluster.stop()
    # AND stopping it removed its folder
    assert not folder.exists()


@pytest.mark.slow
@pytest.mark.parametrize("claim_commit", ["async", "session"])
def test_a_claim_a_crash_forgot_cannot_be_acked(claim_commit: str) -> None:
    """A claim committed without waiting for the WAL flush (``pg_claim_commit=async``) is
    lost when the server crashes before the WAL writer writes it; the task is then claimed
    again with the same ``attempts``, and the first worker's ack must not complete it."""
    pgadmin = pytest.importorskip("taskqueue.pgadmin")
    from taskqueue import QueueConfig, Task, TaskQueue, TaskState, TaskStatus

    initdb = pgadmin.find_initdb()
    if initdb is None:
        unavailable("no initdb on PATH or in /usr/lib/postgresql/*/bin")
    # GIVEN a cluster whose WAL writer waits 10 s (the longest it can) between writes, so
    # an asynchronous commit stays in memory for the test's duration; no autovacuum, whose
    # commits would write it out
    settings = {"wal_writer_delay": "10000ms", "autovacuum": "off"}
    cluster = pgadmin.ThrowawayCluster(Path(str(initdb)).parent, settings=settings).start()
    try:
        dsn = asyncio.run(pgadmin.create_database(cluster.dsn, "qp_claim_crash"))
        config = QueueConfig(pg_claim_commit=claim_commit, wakeup="poll:50")

        async def scenario() -> tuple[Task, int, int, list[Task], TaskStatus | None]:
            async with TaskQueue(dsn, config) as first:
                await first.enqueue("noop", {"n": 1})  # waits for the WAL flush
                (task,) = await first.claim("w1", 1, lease=60)
                # WHEN the server crashes right after the claim, and comes back
                await asyncio.to_thread(cluster.crash_and_restart)
                async with TaskQueue(dsn, config) as second:
                    again = await second.claim("w2", 1, lease=60)
                    # w1 acks over a new connection (the crash cut the old ones)
                    stale = await first.complete_many([(task, "from w1")])
                    fresh = await second.complete_many([(t, "from w2") for t in again])
                    return task, stale, fresh, again, await second.status(task.id)

        task, stale, fresh, again, status = asyncio.run(scenario())
        assert status is not None
        assert status.attempts == task.attempts == 1
        if claim_commit == "async":
            # THEN the crash forgot the claim: w2 claims the task with the same attempts (an
            # ack matching on attempts would complete w2's claim) ...
            assert [(t.id, t.attempts) for t in again] == [(task.id, task.attempts)]
            # ... and w1's ack is refused: the task is done once, by w2
            assert (stale, fresh) == (0, 1)
            assert (status.state, status.result, status.worker) == (TaskState.DONE, "from w2", "w2")
        else:
            # THEN (the control) a claim that waited for the flush survives the same crash:
            # nothing for w2, and w1's ack applies
            assert again == []
            assert (stale, fresh) == (1, 0)
            assert (status.state, status.result) == (TaskState.DONE, "from w1")
        from tests.helpers.db import fetch

        assert fetch(dsn, "SELECT count(*) FROM tasks WHERE state = 'done'") == [(1,)]
    finally:
        cluster.stop()
