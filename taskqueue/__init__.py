"""taskqueue: the task queue that queueprof measures, on SQLite (aiosqlite, the default) or
PostgreSQL (asyncpg: ``TaskQueue("postgresql://...")``).

Atomic claims, leases, retries with backoff, dead-lettering, and selectable strategies
(connection sharing, claim style, batch sizes, wake-up mode) so workloads can compare them.
"""

from .config import (
    SERVER_ENV,
    ClaimStyle,
    ConnectionMode,
    Dispatch,
    PgAcks,
    PgClaim,
    PgClaimCommit,
    QueueConfig,
    Wakeup,
    is_dsn,
    redact_dsn,
)
from .errors import (
    InvalidArgumentError,
    InvalidPayloadError,
    QueueBusyError,
    QueueClosedError,
    QueueDatabaseError,
    QueueOpenError,
    TaskQueueError,
)
from .models import NewTask, ReclaimResult, Task, TaskState, TaskStatus
from .observe import QueueObserver, observing
from .payload import JSONText, encode_json
from .pool import (
    EngineOptions,
    PoolResult,
    WorkerMode,
    WorkerProcesses,
    run_async_workers,
    run_process_workers,
)
from .queue import TaskQueue
from .stats import OPERATIONS, QueueStats, SqlSample
from .worker import EngineStats, WorkerEngine

__all__ = [
    "OPERATIONS",
    "SERVER_ENV",
    "ClaimStyle",
    "ConnectionMode",
    "Dispatch",
    "EngineOptions",
    "EngineStats",
    "InvalidArgumentError",
    "InvalidPayloadError",
    "JSONText",
    "NewTask",
    "PgAcks",
    "PgClaim",
    "PgClaimCommit",
    "PoolResult",
    "QueueBusyError",
    "QueueClosedError",
    "QueueConfig",
    "QueueDatabaseError",
    "QueueObserver",
    "QueueOpenError",
    "QueueStats",
    "ReclaimResult",
    "SqlSample",
    "Task",
    "TaskQueue",
    "TaskQueueError",
    "TaskState",
    "TaskStatus",
    "Wakeup",
    "WorkerEngine",
    "WorkerMode",
    "WorkerProcesses",
    "encode_json",
    "is_dsn",
    "observing",
    "redact_dsn",
    "run_async_workers",
    "run_process_workers",
]
