"""Which queue operation a stack frame works for: the map from the queue's code to operations.

The queue's public methods (``TaskQueue``, on the event loop) and its per-operation functions
(``Store``, on the aiosqlite connection thread) each belong to one operation. A stack belongs
to the operation of its innermost such frame, so ``Store.complete_and_claim`` (a claim) that
calls ``Store.complete_acks`` (a completion) is counted as a completion while it completes.
A sample whose innermost frame is a known wait (``[await]``, the selector, the connection
thread waiting for its next job) is wait time: inside an operation it is that operation's
wait, outside every operation it is idle time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum

from runs.adapters import AdapterSpec
from taskqueue.observe import operation_functions
from workloads.adapters.specs import SPECS as BUILTIN_SPECS

from .profile import Frame, Stack


class Category(StrEnum):
    """Where time or memory goes, from the queue's point of view."""

    ENQUEUE = "enqueue"
    CLAIM = "claim"
    COMPLETE = "complete"
    STATUS = "status"
    FAIL = "fail"
    RECLAIM = "reclaim"
    HANDLER = "handler"
    IDLE = "idle/wait"
    OTHER = "other"


OPERATION_CATEGORIES = (
    Category.ENQUEUE,
    Category.CLAIM,
    Category.COMPLETE,
    Category.STATUS,
    Category.FAIL,
    Category.RECLAIM,
    Category.HANDLER,
)
"""The categories that are the queue's own work (ranked when profilers are compared)."""


class Operation(str):
    """An operation a profiled program's ``--ops`` map names for itself (``render``,
    ``fetch_page``): the analysis splits time by it and names it in findings like the
    queue's own operations."""

    __slots__ = ()


Op = Category | Operation
"""Where time or memory goes: one of the queue's categories or a program's own operation."""


def operation_named(name: str) -> Op:
    """The category of an operation name as a code path gives it: the queue's own
    (``claim``) or a program's (``render``)."""
    try:
        return Category(name)
    except ValueError:
        return Operation(name)


def is_operation(category: Op) -> bool:
    """True for work: the queue's operations and a program's own, not idle time or "other"."""
    return isinstance(category, Operation) or category in OPERATION_CATEGORIES


def in_order(categories: Iterable[Op]) -> list[Op]:
    """``categories`` with the queue's in their usual order, then a program's by name."""
    found = set(categories)
    own = sorted(c for c in found if isinstance(c, Operation))
    return [c for c in Category if c in found] + own


OP_NAMES: Mapping[str, Category] = {
    "enqueue": Category.ENQUEUE,
    "claim": Category.CLAIM,
    "complete": Category.COMPLETE,
    "status": Category.STATUS,
    "counts": Category.STATUS,
    "fail": Category.FAIL,
    "reclaim": Category.RECLAIM,
    "handler": Category.HANDLER,
}
"""Operation names as the queue records them (op-samples, SQL capture, trace spans)."""


def op_category(op: str) -> Category:
    """The category of a recorded operation name, bare (``claim``) or qualified by the queue
    the comparison workload ran it on (``huey.claim``); OTHER for names of no operation."""
    return OP_NAMES.get(op.rpartition(".")[2], Category.OTHER)


# (file the function is defined in, bare function name) -> category: taskqueue's own code.
_OWN_FUNCTIONS: Mapping[tuple[str, str], Category] = {
    **{(file, name): Category(op) for file, op, name in operation_functions()},
    ("taskqueue/queue.py", "wait_for_work"): Category.IDLE,
    # The PostgreSQL queue's, which opens its LISTEN connection on the first wait.
    ("taskqueue/pgqueue.py", "wait_for_work"): Category.IDLE,
    ("taskqueue/worker.py", "_execute"): Category.HANDLER,
    # Plain (non-async) handlers run here, called from _execute's fast path: their
    # allocations and time are the handler's.
    ("taskqueue/worker.py", "_run_plain"): Category.HANDLER,
    ("taskqueue/worker.py", "_idle"): Category.IDLE,
}

_HANDLER_FILE = "taskqueue/handlers.py"


class OperationMap:
    """Which operation and which queue a frame belongs to: taskqueue's own functions plus
    the code paths of adapter specs (other people's queues, a profiled app's ``--ops``).

    A run's map is built from the specs stored in its folder (``adapters.json``) over the
    built-in adapters' specs, so a run attributes its samples the same way on a machine
    without the adapters' packages; a stored spec replaces a built-in one of the same name,
    and a file that a stored spec maps is that spec's alone: a built-in spec's CodePaths in
    it are dropped (a plugin over persist-queue's ``SQLiteQueue`` shares
    ``persistqueue/sqlbase.py`` with the built-in adapter over its ``SQLiteAckQueue``; the
    run ran the plugin).
    """

    def __init__(self, specs: Sequence[AdapterSpec] = ()) -> None:
        stored = {spec.name: spec for spec in specs}
        owned = {path.file for spec in stored.values() for path in spec.code_paths}
        self.specs: tuple[AdapterSpec, ...] = (
            *(spec for spec in BUILTIN_SPECS if spec.name not in stored),
            *stored.values(),
        )
        paths = [
            (spec.name, path)
            for spec in self.specs
            for path in spec.code_paths
            if spec.name in stored or path.file not in owned
        ]
        self._by_function: dict[tuple[str, str], Op] = dict(_OWN_FUNCTIONS)
        self._queue_by_function: dict[tuple[str, str], str] = {}
        for queue, path in paths:
            for name in path.functions:
                self._by_function[(path.file, name)] = operation_named(path.op)
                self._queue_by_function[(path.file, name)] = queue
        self._queue_files: tuple[tuple[str, str], ...] = (
            *sorted({(path.file, queue) for queue, path in paths}),
            ("taskqueue/", "taskqueue"),
        )

    def category(self, frame: Frame) -> Op | None:
        """The category ``frame`` marks (None for frames that belong to no operation)."""
        file = _normalised(frame.file)
        function = frame.function
        if file.endswith(_HANDLER_FILE):
            return Category.HANDLER
        # A frame without a file (hand-written or stripped) matches by its name only when the
        # name says the class: ``TaskQueue.claim``, ``Store.insert``. So does a method of the
        # queue's classes defined in another file (a patch or a wrapper set on the class, which
        # the profiler names ``TaskQueue._acks_landed``): it replaces the method of that name,
        # so its work is that method's operation, whatever it calls.
        by_name = not file or (_is_foreign_method(frame) and self.queue(frame) is None)
        for (suffix, name), category in self._by_function.items():
            if function == name and (
                file.endswith(suffix)
                or (by_name and suffix in _OWNER and frame.name.startswith(_OWNER[suffix]))
            ):
                return category
        return None

    def code_path_queue(self, frame: Frame) -> str | None:
        """The queue one of whose CodePaths names ``frame``'s function in its file (None if
        none): it decides a stack's queue before any file does, so two queues sharing a
        library's file (``persistqueue/sqlbase.py``) are told apart by their own functions."""
        file = _normalised(frame.file)
        if not file:
            return None
        for (suffix, name), queue in self._queue_by_function.items():
            if frame.function == name and file.endswith(suffix):
                return queue
        return None

    def queue(self, frame: Frame) -> str | None:
        """The queue whose code ``frame`` runs (``huey``, ``taskqueue``...), None for other
        code: a comparison run's samples are split by queue first, then by operation."""
        file = _normalised(frame.file)
        if not file:
            return None
        if (named := self.code_path_queue(frame)) is not None:
            return named
        for suffix, queue in self._queue_files:
            if file.endswith(suffix) or (suffix.endswith("/") and f"/{suffix}" in file):
                # Importing taskqueue (queueprof's SQL capture does, in a profiled program
                # that never uses it) runs no queue: its module bodies only define.
                return None if queue == "taskqueue" and frame.function == "<module>" else queue
        return None


BUILTIN = OperationMap()
"""taskqueue's functions and the built-in adapters' code paths (runs that stored no specs)."""


def frame_queue(frame: Frame, operations: OperationMap = BUILTIN) -> str | None:
    """The queue whose code ``frame`` runs (see :meth:`OperationMap.queue`)."""
    return operations.queue(frame)


WAIT_LEAVES = frozenset(
    {
        "[await]",
        "epoll.poll",
        "poll.poll",
        "kqueue.control",
        "select.select",
        "EpollSelector.select",
        "PollSelector.select",
        "SelectSelector.select",
        "KqueueSelector.select",
        "DevpollSelector.select",
        "SimpleQueue.get",
        "Queue.get",
        "lock.acquire",
        "Condition.wait",
        # py-spy shows no C frames by default: an aiosqlite thread blocked in
        # SimpleQueue.get has its own loop function as the innermost frame.
        "_connection_worker_thread",
    }
)
"""Innermost frames that mean the thread is waiting, not computing."""

THREAD_WAIT_LEAVES = frozenset({"lock.acquire", "SimpleQueue.get", "Queue.get", "Condition.wait"})
"""Of :data:`WAIT_LEAVES`, those that park the thread until another thread lets it go (a
lock, a thread-safe queue, a ``concurrent.futures`` result): on the event loop's thread they
hold the loop, which runs nothing else meanwhile; asyncio's own primitives of those names
(``asyncio/locks.py``, ``asyncio/queues.py``) suspend a coroutine instead, and are not these."""


SYNC_PRIMITIVES = frozenset(
    {"Lock", "Semaphore", "BoundedSemaphore", "Condition", "Event", "Barrier"}
)
"""asyncio's synchronisation primitives (``asyncio/locks.py``): a coroutine suspended on one
waits for another task of its event loop to let it on, not for I/O or a timer."""


def sync_primitive(frame: Frame) -> str | None:
    """The primitive (``Lock``) whose method ``frame`` runs (``Lock.acquire``, ``Lock.release``,
    ``Condition.wait``...), None for any other frame."""
    if not _normalised(frame.file).endswith("asyncio/locks.py"):
        return None
    owner = frame.name.rpartition(".")[0]
    return owner if owner in SYNC_PRIMITIVES else None


def _normalised(file: str | None) -> str:
    return (file or "").replace("\\", "/")


def is_event_loop_io(frame: Frame) -> bool:
    """Whether ``frame`` is asyncio's own (a transport's ``sock.send`` is called from it): the
    loop writes and reads only sockets that are ready, so a call it makes never waits; what it
    costs is the system call and the wake-up of the other end, the price of a round trip."""
    return "/asyncio/" in _normalised(frame.file)


STORE_FILE = "taskqueue/store.py"
"""The queue's SQL side: every statement runs in a function of this file, on a connection
thread or, for operations dispatched inline, on the event loop."""


def is_store_frame(frame: Frame) -> bool:
    """True when ``frame`` is one of the store's functions (the queue's SQL code)."""
    return _normalised(frame.file).endswith(STORE_FILE)


CAPTURE_FILE = "workloads/sqlcapture.py"
"""The SQL capture's timed connections (``TimedConnection.execute``...): a statement of a
connection that code other than the queue's opened, run and timed; profilers without native
frames (py-spy) show the statement's time there."""


def is_capture_frame(frame: Frame) -> bool:
    """True for the SQLite capture's own frames: below them a statement runs (SQL) or the
    capture records it (measurement), never the operation's own work."""
    return _normalised(frame.file).endswith(CAPTURE_FILE)


PG_CAPTURE_FILE = "workloads/pgcapture.py"
"""The SQL capture's wrappers of asyncpg's methods: the timing and recording of a program's
PostgreSQL statement, measurement."""

DATABASE_CLIENT_FILES = ("/asyncpg/",)
"""A PostgreSQL driver's own code: encoding a statement, decoding its rows (its Cython is
shown as the Python frame that called it). A sample whose innermost frame is there is the
statement's time on the client; the socket sends below it stay the round trip's."""


PLUMBING = (
    "asyncio/",
    "aiosqlite/",
    "concurrent/",
    "threading.py",
    "selectors.py",
    "queue.py",
    "contextlib.py",
    "taskqueue/_bridge.py",
    # Engines sharing a connection send their claims to it together: the trip, not work.
    "taskqueue/claimgroup.py",
    # The SQL capture's timing and recording of another connection's statement: measurement.
    CAPTURE_FILE,
    PG_CAPTURE_FILE,
)
"""Files whose frames carry a call to SQLite and back (the round trip), not its work: left out
when looking for what inside an operation costs time. (``queue.py`` is the standard library's
module; the queue's own ``taskqueue/queue.py`` is told apart by its folder.)"""


PLUMBING_CALLS = frozenset(
    {
        "SimpleQueue.put",
        "SimpleQueue.put_nowait",
        "Queue.put",
        "Queue.put_nowait",
        "Future.set_result",
        "Future.__init__",
        "BaseEventLoop.create_future",
        "BaseEventLoop.call_soon_threadsafe",
        "BaseEventLoop.call_soon",
        "Event.set",
        "Condition.notify",
        "lock.release",
    }
)
"""Built-in calls that hand a job to the connection thread and its result back (they have no
file to tell them by): the trip's cost, not work inside the operation."""


SQL_CALLS = frozenset(
    {
        "execute",
        "executemany",
        "executescript",
        "fetchall",
        "fetchone",
        "fetchmany",
        "commit",
        "rollback",
        "step",
    }
)
"""sqlite3's methods: a sample whose innermost frame is one of them is SQLite's time."""


NATIVE_SQLITE_FILES = ("libsqlite3", "_sqlite/", "sqlite3.c")
"""Native frames of SQLite and of CPython's ``_sqlite`` module (py-spy ``--native``)."""


def is_sql_call(frame: Frame) -> bool:
    """True for sqlite3's own methods (``Connection.execute``, ``Cursor.fetchall``...), also
    as the SQL capture's timed connections wrap them, for SQLite's native frames, and for
    asyncpg's own code (a PostgreSQL statement's client side: encoding, decoding)."""
    file = _normalised(frame.file)
    if any(part in file for part in (*NATIVE_SQLITE_FILES, *DATABASE_CLIENT_FILES)):
        return True
    return frame.function in SQL_CALLS and (
        not file or file.startswith("<") or "sqlite3" in file or file.endswith(CAPTURE_FILE)
    )


def is_plumbing_frame(frame: Frame) -> bool:
    """True for the event loop's, aiosqlite's and the threads' own frames, the hand-off
    built-ins, and waits."""
    file = _normalised(frame.file)
    if frame.name in WAIT_LEAVES or frame.name in PLUMBING_CALLS:
        return True
    if file.endswith("taskqueue/queue.py"):
        return False
    # A file entry names the file itself: "queue.py" is the standard library's module, not
    # taskqueue/pgqueue.py or a user's myqueue.py (whose functions are work, not hand-offs).
    return any(
        file == p
        or file.endswith(f"/{p}")
        or (p.endswith("/") and (f"/{p}" in file or file.startswith(p)))
        for p in PLUMBING
    )


def frame_category(frame: Frame, operations: OperationMap = BUILTIN) -> Op | None:
    """The category ``frame`` marks (see :meth:`OperationMap.category`)."""
    return operations.category(frame)


_OWNER = {
    "taskqueue/queue.py": "TaskQueue.",
    "taskqueue/store.py": "Store.",
    "taskqueue/worker.py": "WorkerEngine.",
}


def _is_foreign_method(frame: Frame) -> bool:
    """A method of the queue's classes whose code is not in the queue's files."""
    file = _normalised(frame.file)
    return (
        any(frame.name.startswith(owner) for owner in _OWNER.values())
        and bool(file)
        and not any(file.endswith(suffix) for suffix in _OWNER)
        and "/taskqueue/" not in f"/{file}"
    )


def is_wait(frame: Frame) -> bool:
    """True when ``frame``, as the innermost frame of a sample, means waiting."""
    return frame.name in WAIT_LEAVES


def parks_thread(frame: Frame) -> bool:
    """True when ``frame``, as the innermost frame of a sample, parks its thread on another
    thread (:data:`THREAD_WAIT_LEAVES`): a wait, except on the event loop, which it holds."""
    return frame.name in THREAD_WAIT_LEAVES and "/asyncio/" not in _normalised(frame.file)


class Classifier:
    """Classifies stacks over one frame table, caching each frame's category."""

    def __init__(
        self,
        frames: Sequence[Frame],
        stacks: Sequence[Stack] = (),
        operations: OperationMap = BUILTIN,
    ) -> None:
        self.frames = frames
        self._categories: list[Op | None] = [operations.category(f) for f in frames]
        self._waits: list[bool] = [is_wait(f) for f in frames]
        self._queues: list[str | None] = [operations.queue(f) for f in frames]
        self._named_queues: list[str | None] = [operations.code_path_queue(f) for f in frames]
        self._adopt_wrappers(stacks)

    def _adopt_wrappers(self, stacks: Sequence[Stack]) -> None:
        """A method set on the queue's classes from another file (a decorator, a patch: the
        profiler names it ``TaskQueue.limited``) that calls exactly one operation is that
        operation: what it does before and after is the operation's cost to its caller."""
        found: dict[int, set[Op]] = {}
        for stack in stacks:
            for position in range(len(stack) - 1):
                index = stack[position]
                if self._categories[index] is not None or not _is_foreign_method(
                    self.frames[index]
                ):
                    continue
                child = self._categories[stack[position + 1]]
                if child is not None:
                    found.setdefault(index, set()).add(child)
        for index, categories in found.items():
            if len(categories) == 1:
                self._categories[index] = next(iter(categories))

    def queue(self, stack: Stack) -> str | None:
        """The queue of the stack's innermost frame that a queue's CodePath names, else of
        its innermost frame in some queue's files (None if none)."""
        for index in reversed(stack):
            named = self._named_queues[index]
            if named is not None:
                return named
        for index in reversed(stack):
            found = self._queues[index]
            if found is not None:
                return found
        return None

    def category(self, stack: Stack) -> tuple[Op, bool]:
        """The stack's category and whether its innermost frame waits."""
        waiting = bool(stack) and self._waits[stack[-1]]
        for index in reversed(stack):
            found = self._categories[index]
            if found is not None:
                return found, waiting
        return (Category.IDLE if waiting else Category.OTHER), waiting

    def op_frame_position(self, stack: Stack) -> int | None:
        """Position in ``stack`` of its innermost operation frame (None if it has none): the
        frames after it are the operation's own work (hot subtrees)."""
        for position in range(len(stack) - 1, -1, -1):
            if self._categories[stack[position]] is not None:
                return position
        return None
