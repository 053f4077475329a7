"""Our queue as a contender: what it records is filed under the contender's name."""

from __future__ import annotations

import asyncio
from pathlib import Path

from taskqueue import QueueConfig
from taskqueue.observe import observing
from workloads.adapters.catalog import contenders
from workloads.capture import RunCapture


def test_its_statements_are_filed_under_the_contender_as_its_calls_are(tmp_path: Path) -> None:
    # GIVEN two contenders on our queue in one comparison, the SQL capture on
    both = contenders(QueueConfig(capture_sql=True))
    capture = RunCapture()

    async def scenario() -> None:
        for name in ("taskqueue", "taskqueue-1x1"):
            folder = tmp_path / name
            folder.mkdir()
            adapter = await both[name].open(folder)
            # WHEN each runs a task through the adapter and closes
            await adapter.enqueue({"seq": 1})
            await adapter.complete(await adapter.claim(1))
            await adapter.close()

    with observing(capture):
        asyncio.run(scenario())
    # THEN every statement is filed under <contender>.<op>, the comparison's own timings'
    # names: none under a bare queue operation that no timing holds, none shared
    ops = {op for op, _, _ in capture.sql}
    assert ops >= {"taskqueue.enqueue", "taskqueue.claim", "taskqueue-1x1.enqueue"}, ops
    assert all(op.split(".")[0] in ("taskqueue", "taskqueue-1x1") for op in ops), ops
