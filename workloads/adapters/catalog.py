"""The contenders the comparison workload can run, by name."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from taskqueue import QueueConfig

from .base import Contender
from .huey_adapter import huey_opener
from .persistqueue_adapter import persistqueue_opener
from .specs import HUEY, PERSIST_QUEUE, SQLITE3, TASKQUEUE
from .sqlite3_reference import open_sqlite3_reference
from .taskqueue_adapter import taskqueue_opener

REFERENCE = "sqlite3"
"""The contender every ratio is taken against; always run."""

ONE_AT_A_TIME = 1
"""Claim and ack batch of the named unbatched strategy row (one task per call, like the peers)."""

CONTENDER_NAMES = ("taskqueue", "taskqueue-1x1", "huey", "huey-fsync-off", "persist-queue")
"""What ``--param contenders=`` accepts (the sqlite3 reference always runs)."""


def contenders(config: QueueConfig) -> Mapping[str, Contender]:
    """Every contender, ours with ``config`` (the run's ``--queue`` over ``QueueConfig()``)."""
    single = dataclasses.replace(
        config, claim_batch=ONE_AT_A_TIME, ack_batch=ONE_AT_A_TIME, claim_budget_ms=0
    )
    return {
        REFERENCE: Contender(
            name=REFERENCE,
            spec=SQLITE3,
            settings="taskqueue's statements and pragmas (WAL, synchronous=NORMAL)",
            open=open_sqlite3_reference,
        ),
        "taskqueue": Contender(
            name="taskqueue",
            spec=TASKQUEUE,
            settings=f"the run's strategy (synchronous=NORMAL): {_strategy(config)}",
            open=taskqueue_opener(config),
            claim_batch=config.claim_batch,
            strategy=config.to_dict(),
        ),
        "taskqueue-1x1": Contender(
            name="taskqueue-1x1",
            spec=TASKQUEUE,
            settings="one task per claim and ack, like the peers' APIs (synchronous=NORMAL)",
            open=taskqueue_opener(single),
            claim_batch=ONE_AT_A_TIME,
            strategy=single.to_dict(),
        ),
        "huey": Contender(
            name="huey",
            spec=HUEY,
            settings="documented defaults: WAL, fsync unset (SQLite's synchronous=FULL)",
            open=huey_opener(),
            peer=True,
        ),
        "huey-fsync-off": Contender(
            name="huey-fsync-off",
            spec=HUEY,
            # huey's only durability knob is fsync: True is FULL, False is OFF. It has no
            # NORMAL, so OFF is the nearest setting to ours, and it is less durable (favours huey).
            settings="fsync=False (synchronous=OFF: huey offers no NORMAL; OFF is weaker)",
            open=huey_opener(fsync=False),
            peer=True,
        ),
        "persist-queue": Contender(
            name="persist-queue",
            spec=PERSIST_QUEUE,
            # SQLiteAckQueue sets journal_mode=WAL and exposes no synchronous setting.
            settings="documented defaults: WAL, SQLite's synchronous=FULL (not configurable)",
            open=persistqueue_opener(),
            peer=True,
        ),
    }


def _strategy(config: QueueConfig) -> str:
    default = QueueConfig()
    changed = [
        f"{f.name}={getattr(config, f.name)}"
        for f in dataclasses.fields(config)
        if f.name != "record_timings" and getattr(config, f.name) != getattr(default, f.name)
    ]
    return ", ".join(changed) if changed else "QueueConfig() defaults"
