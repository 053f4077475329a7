"""Samples inside huey and persist-queue are attributed to enqueue, claim, complete, status.

Hand-built stacks as the profilers record them (site-packages paths, class-qualified names);
the map comes from the adapters' declarations, so these also check that the declarations
reach the analysis.
"""

from __future__ import annotations

import pytest

from analysis.operations import Category, Classifier, Operation, OperationMap, op_category
from analysis.profile import Frame
from runs.adapters import AdapterSpec, CodePath

SITE = "/venv/lib/python3.11/site-packages"
LOOP = [Frame("Runner.run", "/usr/lib/python3.11/asyncio/runners.py")]
DRIVER = Frame("run_drain", "/src/workloads/comparison.py")
TIMED = Frame("Recorder.timed", "/src/workloads/comparison.py")


def adapter(cls: str, method: str, module: str) -> Frame:
    return Frame(f"{cls}.{method}", f"/src/workloads/adapters/{module}.py")


def lib(name: str, path: str) -> Frame:
    return Frame(name, f"{SITE}/{path}")


SQL_HELPER = lib("BaseSqlStorage.sql", "huey/storage.py")
EXECUTE = lib("Connection.execute", "<built-in>")

CASES = [
    (
        "huey enqueue down to SQLite",
        [
            adapter("HueyAdapter", "enqueue", "huey_adapter"),
            lib("TaskWrapper.__call__", "huey/api.py"),
            lib("Huey.enqueue", "huey/api.py"),
            lib("SqliteStorage.enqueue", "huey/storage.py"),
            SQL_HELPER,
            EXECUTE,
        ],
        Category.ENQUEUE,
    ),
    (
        "huey dequeue's delete",
        [
            adapter("HueyAdapter", "claim", "huey_adapter"),
            lib("Huey.dequeue", "huey/api.py"),
            lib("SqliteStorage.dequeue", "huey/storage.py"),
            EXECUTE,
        ],
        Category.CLAIM,
    ),
    (
        "huey execute storing the result",
        [
            adapter("HueyAdapter", "complete", "huey_adapter"),
            lib("Huey.execute", "huey/api.py"),
            lib("Huey._execute", "huey/api.py"),
            lib("Huey.put_result", "huey/api.py"),
            lib("SqliteStorage.put_data", "huey/storage.py"),
            SQL_HELPER,
        ],
        Category.COMPLETE,
    ),
    (
        "huey's revoke check inside execute is the completion's, not a status",
        [
            adapter("HueyAdapter", "complete", "huey_adapter"),
            lib("Huey.execute", "huey/api.py"),
            lib("Huey.is_revoked", "huey/api.py"),
            lib("SqliteStorage.peek_many", "huey/storage.py"),
        ],
        Category.COMPLETE,
    ),
    (
        "the task huey runs is the handler",
        [
            adapter("HueyAdapter", "complete", "huey_adapter"),
            lib("Huey.execute", "huey/api.py"),
            lib("Huey._execute", "huey/api.py"),
            lib("Task.execute", "huey/api.py"),
            Frame("huey_noop", "/src/workloads/adapters/huey_adapter.py"),
        ],
        Category.HANDLER,
    ),
    (
        "huey result lookup",
        [
            adapter("HueyAdapter", "status", "huey_adapter"),
            lib("Huey.result", "huey/api.py"),
            lib("Result.get", "huey/api.py"),
            lib("Result.get_raw_result", "huey/api.py"),
            lib("Result._get", "huey/api.py"),
            lib("SqliteStorage.peek_data", "huey/storage.py"),
        ],
        Category.STATUS,
    ),
    (
        "persist-queue put",
        [
            adapter("PersistQueueAdapter", "enqueue", "persistqueue_adapter"),
            lib("SQLiteAckQueue.put", "persistqueue/sqlackqueue.py"),
            lib("_execute", "persistqueue/sqlbase.py"),
            lib("SQLiteBase._insert_into", "persistqueue/sqlbase.py"),
        ],
        Category.ENQUEUE,
    ),
    (
        "persist-queue get marks the row unacked",
        [
            adapter("PersistQueueAdapter", "claim", "persistqueue_adapter"),
            lib("SQLiteAckQueue.get", "persistqueue/sqlackqueue.py"),
            lib("SQLiteAckQueue._pop", "persistqueue/sqlackqueue.py"),
            lib("_execute", "persistqueue/sqlbase.py"),
            lib("SQLiteAckQueue._mark_ack_status", "persistqueue/sqlackqueue.py"),
        ],
        Category.CLAIM,
    ),
    (
        "persist-queue ack",
        [
            adapter("PersistQueueAdapter", "complete", "persistqueue_adapter"),
            lib("SQLiteAckQueue.ack", "persistqueue/sqlackqueue.py"),
            lib("_execute", "persistqueue/sqlbase.py"),
            lib("SQLiteAckQueue._mark_ack_status", "persistqueue/sqlackqueue.py"),
            lib("Connection.commit", "<built-in>"),
        ],
        Category.COMPLETE,
    ),
    (
        "the sqlite3 reference's status",
        [adapter("Sqlite3Reference", "status", "sqlite3_reference"), EXECUTE],
        Category.STATUS,
    ),
    (
        "the driver outside any operation",
        [DRIVER, lib("Huey.__init__", "huey/api.py")],
        Category.OTHER,
    ),
]


@pytest.mark.parametrize(("stack", "category"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_sample_in_a_foreign_queue_goes_to_its_operation(
    stack: list[Frame], category: Category
) -> None:
    # GIVEN a sample's stack from the event loop down into a peer library
    frames = [*LOOP, DRIVER, TIMED, *stack]
    # WHEN it is classified THEN its innermost mapped frame decides the operation
    found, _ = Classifier(frames).category(list(range(len(frames))))
    assert found is category


@pytest.mark.parametrize(
    ("op", "category"),
    [
        ("huey.claim", Category.CLAIM),
        ("persist-queue.complete", Category.COMPLETE),
        ("taskqueue-1x1.status", Category.STATUS),
        ("claim", Category.CLAIM),
        ("huey.vacuum", Category.OTHER),
    ],
)
def test_recorded_operation_names_qualified_by_queue_keep_their_category(
    op: str, category: Category
) -> None:
    # GIVEN an op-samples / trace-span name WHEN categorised THEN the queue prefix is ignored
    assert op_category(op) is category


def test_a_programs_map_may_name_its_own_operations_a_queues_may_not() -> None:
    # GIVEN a profiled program's map (guarantee undeclared) with an operation of its own
    render = CodePath("render", "app.py", ("render_page",))
    program = AdapterSpec(
        "app", "app", None, False, "undeclared", "the program app.py", code_paths=(render,)
    )
    # THEN a frame of that function is that operation, by its own name
    frame = Frame("render_page", "/srv/app.py", 3)
    assert OperationMap([program]).category(frame) == Operation("render")
    # AND a queue adapter naming an operation the queue has not is a typo, refused
    with pytest.raises(ValueError, match="use one of enqueue, claim, complete, status"):
        AdapterSpec("q", "q", None, False, "at-most-once", "lost on a crash", code_paths=(render,))
    # AND names that mean "no operation", or are not names, are refused for everyone
    for bad in ("other", "idle", "Render", "fetch-page", ""):
        with pytest.raises(ValueError, match="operation"):
            CodePath(bad, "app.py", ("f",))


def test_a_plugin_sharing_a_built_in_peers_library_file_owns_its_samples() -> None:
    # GIVEN a plugin over persist-queue's plain SQLiteQueue, whose claim runs in
    # persistqueue/sqlbase.py, a file the built-in persist-queue adapter maps too
    plugin = AdapterSpec(
        "pqfifo",
        "persistqueue",
        "persist-queue",
        False,
        "at-most-once",
        "get deletes the row",
        code_paths=(
            CodePath("enqueue", "persistqueue/sqlqueue.py", ("put",)),
            CodePath("claim", "persistqueue/sqlbase.py", ("_pop",)),
        ),
        has_status=False,
    )
    plugin_adapter = Frame("PqFifoAdapter.claim", "/tmp/pqfifo_queueprof/__init__.py")
    claim = [
        *LOOP,
        DRIVER,
        plugin_adapter,
        lib("SQLiteQueue.get", "persistqueue/sqlbase.py"),
        lib("SQLiteQueue._pop", "persistqueue/sqlbase.py"),
        lib("SQLiteQueue._select", "persistqueue/sqlbase.py"),
        EXECUTE,
    ]
    # WHEN a run that stored only the plugin's spec classifies a sample of its claim
    classify = Classifier(claim, operations=OperationMap([plugin]))
    stack = list(range(len(claim)))
    # THEN the sample is the plugin's claim, not the built-in peer's (which did not run)
    assert classify.queue(stack) == "pqfifo"
    assert classify.category(stack)[0] is Category.CLAIM
    # AND without the plugin's spec the built-in adapter still maps that file
    assert Classifier(claim).queue(stack) == "persist-queue"


def test_importing_taskqueue_is_not_running_it() -> None:
    # GIVEN a profiled program's start, where queueprof's SQL capture imports taskqueue
    importing = [
        Frame("<module>", "/src/queueprof/program_child.py"),
        Frame("_find_and_load", "<frozen importlib._bootstrap>"),
        Frame("<module>", "/src/taskqueue/models.py"),
        Frame("_create_fn", "/usr/lib/python3.11/dataclasses.py"),
    ]
    # WHEN it is classified THEN no queue owns it
    assert Classifier(importing).queue(list(range(len(importing)))) is None
    # AND a frame of taskqueue's code that runs is still taskqueue's
    running = [*importing[:2], Frame("TaskQueue.counts", "/src/taskqueue/queue.py")]
    assert Classifier(running).queue(list(range(len(running)))) == "taskqueue"
