"""The built-in adapters' declarations: plain data, importable without any queue library.

``analysis/operations.py`` reads :data:`SPECS` to map the libraries' frames to operations, so
one declaration serves the workload (what to install, delivery guarantee) and the analysis.
"""

from __future__ import annotations

from .base import AdapterSpec, CodePath, adapter_methods

_ADAPTERS = "workloads/adapters/"


def _adapter_methods(module: str, *, handler: tuple[str, ...] = ()) -> tuple[CodePath, ...]:
    """The built-in adapter ``module``'s own methods, one per operation."""
    return adapter_methods(f"{_ADAPTERS}{module}.py", handler=handler)


TASKQUEUE = AdapterSpec(
    guarantee="exactly-once",
    name="taskqueue",
    module="taskqueue",
    package=None,
    exactly_once=True,
    delivery=(
        "exactly-once completion: a killed worker's claim expires and is reclaimed, and an "
        "ack from the expired claim changes nothing"
    ),
    # taskqueue's own frames are in analysis/operations.py already.
    code_paths=_adapter_methods("taskqueue_adapter"),
)

SQLITE3 = AdapterSpec(
    guarantee="reference",
    name="sqlite3",
    module="sqlite3",
    package=None,
    exactly_once=False,
    delivery=(
        "reference, not a queue: taskqueue's own statements on a plain sqlite3 connection; "
        "leases are written but nothing reclaims them"
    ),
    code_paths=_adapter_methods("sqlite3_reference"),
)

HUEY = AdapterSpec(
    guarantee="at-most-once",
    name="huey",
    module="huey",
    package="huey",
    exactly_once=False,
    delivery=(
        "at-most-once: dequeue deletes the task's row, so a worker killed after dequeue and "
        "before it finishes loses the task"
    ),
    code_paths=(
        *_adapter_methods("huey_adapter", handler=("huey_noop",)),
        # Huey (api.py) and its SQLite storage (storage.py): the consumer's path is
        # dequeue -> execute (runs the task, then stores its result).
        CodePath("enqueue", "huey/api.py", ("enqueue", "serialize_task")),
        CodePath("enqueue", "huey/storage.py", ("enqueue",)),
        CodePath("claim", "huey/api.py", ("dequeue", "deserialize_task")),
        CodePath("claim", "huey/storage.py", ("dequeue",)),
        CodePath("complete", "huey/api.py", ("execute", "_execute", "put_result", "delete")),
        CodePath("complete", "huey/storage.py", ("put_data", "delete_data")),
        # Not Huey.get or storage.peek_*: execute's revoke check reads through them too.
        CodePath("status", "huey/api.py", ("result", "get_raw_result", "_get")),
    ),
)

PERSIST_QUEUE = AdapterSpec(
    guarantee="at-least-once",
    name="persist-queue",
    module="persistqueue",
    package="persist-queue",
    exactly_once=False,
    delivery=(
        "at-least-once: a killed consumer's task stays 'unack' until a queue object is opened "
        "again with auto_resume (the default), which puts every unacked task back, including "
        "those of consumers still running"
    ),
    code_paths=(
        *_adapter_methods("persistqueue_adapter"),
        CodePath("enqueue", "persistqueue/sqlackqueue.py", ("put",)),
        CodePath("enqueue", "persistqueue/sqlbase.py", ("_insert_into",)),
        CodePath("claim", "persistqueue/sqlackqueue.py", ("get", "_pop")),
        CodePath("claim", "persistqueue/sqlbase.py", ("_select",)),
        CodePath("complete", "persistqueue/sqlackqueue.py", ("ack", "clear_acked_data")),
        CodePath(
            "status",
            "persistqueue/sqlackqueue.py",
            ("ready_count", "unack_count", "acked_count", "ack_failed_count"),
        ),
    ),
    has_status=False,
)

SPECS: tuple[AdapterSpec, ...] = (TASKQUEUE, SQLITE3, HUEY, PERSIST_QUEUE)
"""Every built-in adapter's declaration."""
