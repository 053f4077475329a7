"""The contenders the comparison workload can run, by name."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from taskqueue import QueueConfig, redact_dsn

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
"""The default ``--param contenders=`` (the sqlite3 reference always runs)."""

POSTGRES_NAMES = ("taskqueue-pg", "taskqueue-pg-commit-off")
"""Our queue on PostgreSQL, by name (not run by default: they need a server), beside the
PostgreSQL peers on the server their scratch databases are made on."""

COMMIT_OFF = "off"
"""``synchronous_commit`` of the ``taskqueue-pg-commit-off`` row: the peers' best-settings
rows run with it, so the like-for-like row of ours does too."""


def contenders(config: QueueConfig) -> Mapping[str, Contender]:
    """Every contender, ours with ``config`` (the run's ``--queue`` over ``QueueConfig()``)."""
    single = dataclasses.replace(
        config, claim_batch=ONE_AT_A_TIME, ack_batch=ONE_AT_A_TIME, claim_budget_ms=0
    )
    commit_off = dataclasses.replace(config, pg_synchronous_commit=COMMIT_OFF)
    where = "on the run's PostgreSQL server" if config.backend != "sqlite" else "synchronous=NORMAL"
    return {
        REFERENCE: Contender(
            name=REFERENCE,
            spec=SQLITE3,
            settings="taskqueue's statements and pragmas (WAL, synchronous=NORMAL)",
            open=open_sqlite3_reference,
        ),
        "taskqueue": _ours(
            "taskqueue", f"the run's strategy ({where}): {_strategy(config)}", config
        ),
        "taskqueue-1x1": _ours(
            "taskqueue-1x1", f"one task per claim and ack, like the peers' APIs ({where})", single
        ),
        "taskqueue-pg": _ours(
            "taskqueue-pg",
            "on PostgreSQL, in a scratch database beside the PostgreSQL peers': the run's "
            f"strategy, synchronous_commit={config.pg_synchronous_commit}: {_strategy(config)}",
            config,
            postgres=True,
        ),
        "taskqueue-pg-commit-off": _ours(
            "taskqueue-pg-commit-off",
            "on PostgreSQL as taskqueue-pg, with synchronous_commit=off for its sessions, as the "
            "peers' best-settings rows have it (a server crash may lose the last commits, a "
            "process crash none)",
            commit_off,
            postgres=True,
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


def _ours(name: str, settings: str, config: QueueConfig, *, postgres: bool = False) -> Contender:
    """Our queue with ``config`` as contender ``name`` (its statements filed under it)."""
    return Contender(
        name=name,
        spec=TASKQUEUE,
        settings=settings,
        open=taskqueue_opener(config, name, postgres=postgres),
        claim_batch=config.claim_batch,
        strategy=_on_postgres(config) if postgres else config.to_dict(),
    )


def _on_postgres(config: QueueConfig) -> dict[str, object]:
    """``config``'s strategy with its PostgreSQL fields, which a SQLite strategy leaves out."""
    return {
        **config.to_dict(),
        "pg_claim": str(config.pg_claim),
        "pg_claim_commit": str(config.pg_claim_commit),
        "pg_acks": str(config.pg_acks),
        "pg_pool": config.pg_pool,
        "pg_synchronous_commit": config.pg_synchronous_commit,
    }


def _strategy(config: QueueConfig) -> str:
    default = QueueConfig()
    changed = [
        f"{f.name}={redact_dsn(value) if f.name == 'backend' else value}"
        for f in dataclasses.fields(config)
        if f.name != "record_timings"
        and (value := getattr(config, f.name)) != getattr(default, f.name)
    ]
    return ", ".join(changed) if changed else "QueueConfig() defaults"
