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
