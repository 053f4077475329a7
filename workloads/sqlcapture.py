"""SQL capture for every ``sqlite3`` connection a process opens: adapters, peers, programs.

taskqueue reports its own statements through its observers (``capture_sql``); other code
talks to ``sqlite3`` directly. :class:`SqliteCapture` replaces ``sqlite3.connect`` while it
is installed, so each connection opened then is a :class:`TimedConnection`: every
``execute``/``executemany``/``executescript``, on the connection or its cursors, is timed
(prepare and first step: what a single-row claim or a sort-then-limit costs; rows fetched
later are not counted) and recorded with the operation running at that moment
(:func:`operation`, set by the comparison around each adapter call; else the innermost
function of a program's ``--ops`` or of the queue's own operations on the stack) and the
database it ran on. When a connection closes (or the capture ends) the database's schema is
read from ``sqlite_master``, so the analysis plans each statement on the schema it really ran
against.

Connections opened through aiosqlite by taskqueue (whose observers already report their
statements) are left alone; those another queue or program opens through ``aiosqlite.connect``
are timed like any other: each call's operation and calling function are taken on the event
loop, where the awaiting coroutines are on the stack, and travel with the call to aiosqlite's
thread, where the statement runs. Connections a library opened through a ``connect`` it
imported before the capture was installed are left alone. The samples land in a
:class:`~workloads.capture.RunCapture`, which writes them into ``sql-statements.json`` with
taskqueue's.
"""

from __future__ import annotations

import contextvars
import inspect
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import Any

from runs.adapters import UNATTRIBUTED_SQL, CodePath, SqlCaller
from taskqueue.observe import operation_functions

CURRENT_OPERATION: contextvars.ContextVar[str] = contextvars.ContextVar(
    "queueprof_operation", default=""
)
"""The operation in progress (``huey.claim``), for the statements it runs."""

UNATTRIBUTED = UNATTRIBUTED_SQL
"""The operation of a statement run outside every :func:`operation`."""

CALL_SITE: contextvars.ContextVar[tuple[str | None, SqlCaller | None] | None] = (
    contextvars.ContextVar("queueprof_call_site", default=None)
)
"""(operation, caller) of an aiosqlite call, taken on the event loop, for the statement that
runs it on aiosqlite's thread (whose own stack shows neither)."""


@contextmanager
def operation(name: str) -> Iterator[None]:
    """Statements run inside belong to operation ``name``."""
    token = CURRENT_OPERATION.set(name)
    try:
        yield
    finally:
        CURRENT_OPERATION.reset(token)


@dataclass(frozen=True, slots=True)
class Statement:
    """One timed statement."""

    op: str
    sql: str
    duration_ns: int
    database: str
    caller: SqlCaller | None = None
    """The program's function that ran it (None: no Python frame of the program's own)."""
    rows: int = 0
    """Rows it returned or changed, where the driver says (asyncpg's; sqlite3's are not
    counted)."""


class SqliteCapture:
    """Times every statement of every ``sqlite3`` connection opened while installed."""

    def __init__(self, code_paths: Sequence[CodePath] = ()) -> None:
        self.statements: list[Statement] = []
        self._by_function: dict[str, list[tuple[str, str]]] = {}
        """Function name -> (file suffix, operation): a program's ``--ops`` map and the
        queue's own functions, which name the operation of a statement run outside every
        :func:`operation`."""
        for path in code_paths:
            for name in path.functions:
                self._by_function.setdefault(name, []).append((path.file, path.op))
        # The queue's own operations too: a connection its code opens for itself (a
        # connection per call, a side table) runs its statements inside one of them.
        for file, op, name in operation_functions():
            self._by_function.setdefault(name, []).append((file, op))
        self.schemas: dict[str, str] = {}
        """Database (file path, or ``:memory:``) -> its schema as a script."""
        self._lock = threading.Lock()
        self._open: list[TimedConnection] = []
        self.caller_calls: dict[SqlCaller, int] = {}
        """The program's function -> its calls that ran a statement (see :meth:`call_of`)."""
        self._last_call: dict[SqlCaller, FrameType] = {}

    @contextmanager
    def installed(self) -> Iterator[SqliteCapture]:
        """Replace ``sqlite3.connect`` for the duration; schemas of connections still open
        at the end are read then."""
        original = sqlite3.connect

        def connect(database: Any, *args: Any, **kwargs: Any) -> sqlite3.Connection:
            # aiosqlite.connect, as _aiosqlite_timed wraps it, asks for TimedConnection for
            # the connections that are not taskqueue's.
            if _opened_by_aiosqlite() and kwargs.get("factory") is not TimedConnection:
                plain: sqlite3.Connection = original(database, *args, **kwargs)
                return plain
            base = kwargs.pop("factory", sqlite3.Connection)
            factory = (
                TimedConnection if base in (sqlite3.Connection, TimedConnection) else _timed(base)
            )
            connection = original(database, *args, factory=factory, **kwargs)
            assert isinstance(connection, TimedConnection)
            connection._queueprof_attach(self, str(database))
            return connection

        sqlite3.connect = connect  # type: ignore[assignment]
        try:
            with _aiosqlite_timed(self):
                yield self
        finally:
            sqlite3.connect = original
            for connection in list(self._open):
                self.snapshot(connection)
            self.release_frames()

    def record(self, sql: str, duration_ns: int, database: str) -> None:
        """One statement's time (any thread)."""
        site = CALL_SITE.get()
        if site is None:
            frame = sys._getframe(2)
            site = (self.operation_on_stack(frame), self.call_of(frame))
        op = CURRENT_OPERATION.get() or site[0] or UNATTRIBUTED
        self.add(Statement(op, sql, duration_ns, database, site[1]))

    def add(self, statement: Statement) -> None:
        """One statement timed by a driver's wrapper (any thread)."""
        with self._lock:
            self.statements.append(statement)

    def call_of(self, frame: FrameType | None) -> SqlCaller | None:
        """The function of :func:`caller_frame` of ``frame``, counting its calls: a statement
        run from another frame of the function than the last one is another call (the last
        frame is held, so its identity cannot pass to the next call; calls that interleave,
        as concurrent tasks do, are each counted again: more calls, never fewer)."""
        found = caller_frame(frame)
        if found is None:
            return None
        caller = _caller(found)
        with self._lock:
            if self._last_call.get(caller) is not found:
                self._last_call[caller] = found
                self.caller_calls[caller] = self.caller_calls.get(caller, 0) + 1
        return caller

    def release_frames(self) -> None:
        """Let the last frames go (their locals with them) once the program has run."""
        with self._lock:
            self._last_call.clear()

    def operation_on_stack(self, frame: FrameType | None) -> str | None:
        """The operation of the innermost mapped function from ``frame`` out: a program's
        (``--ops``) or the queue's own (:data:`taskqueue.observe.OPERATION_FUNCTIONS`)."""
        while frame is not None:
            for suffix, op in self._by_function.get(frame.f_code.co_name, ()):
                if frame.f_code.co_filename.replace("\\", "/").endswith(suffix):
                    return op
            frame = frame.f_back
        return None

    def opened(self, connection: TimedConnection) -> None:
        with self._lock:
            self._open.append(connection)

    def snapshot(self, connection: TimedConnection) -> None:
        """Keep the schema of ``connection``'s database (once per database)."""
        with self._lock:
            if connection in self._open:
                self._open.remove(connection)
            if connection._queueprof_database in self.schemas:
                return
        try:
            schema = database_schema(connection)
        except sqlite3.Error:
            return  # closed from another thread, or not a database any more: no plan for it
        with self._lock:
            self.schemas.setdefault(connection._queueprof_database, schema)


_NOT_CALLERS = ("/sqlite3/", "/aiosqlite/", "/asyncpg/", "workloads/sqlcapture.py")
"""Files whose frames run a statement for someone else: the driver and this capture."""


def _caller(frame: FrameType) -> SqlCaller:
    code = frame.f_code
    return SqlCaller(code.co_filename.replace("\\", "/"), code.co_name, code.co_qualname)


def caller_frame(frame: FrameType | None) -> FrameType | None:
    """The frame of the program's function that ran a statement, from the frame that called
    ``execute`` (None: no frame outside the driver): the innermost frame outside the driver,
    walked out through private helpers of the same file (``_execute`` called by ``pop`` is
    ``pop``'s statement) and comprehensions (a ``[await self._one(i) for i in ids]`` in
    ``states`` is ``states``'), so a store that funnels every statement through one helper
    still names the method that ran each; and through a context manager of the same file
    written as a generator (``@contextmanager def transaction``, whose ``BEGIN`` runs from
    ``contextlib``'s ``__enter__`` for the ``with`` in ``pop``: ``pop``'s statement)."""
    while frame is not None and _driver_frame(frame):
        frame = frame.f_back
    if frame is None:
        return None
    while (outer := _run_for(frame)) is not None:
        frame = outer
    return frame


_COMPREHENSIONS = ("<listcomp>", "<dictcomp>", "<setcomp>", "<genexpr>")
"""Code objects of a function's comprehensions (their own frames before Python 3.12)."""


_GENERATORS = inspect.CO_GENERATOR | inspect.CO_ASYNC_GENERATOR


def _run_for(frame: FrameType) -> FrameType | None:
    """The frame of the same file that ``frame``'s function works for (its caller when it is
    a private helper or a comprehension, the ``with`` that entered it when it is a generator
    context manager), or None when it works for itself."""
    code = frame.f_code
    caller = frame.f_back
    if (
        code.co_flags & _GENERATORS
        and caller is not None
        and caller.f_code.co_filename.replace("\\", "/").endswith("/contextlib.py")
    ):
        caller = caller.f_back
    elif not (
        (code.co_name.startswith("_") and not code.co_name.startswith("__"))
        or code.co_name in _COMPREHENSIONS
    ):
        return None
    if (
        caller is None
        or caller.f_code.co_filename != code.co_filename
        or caller.f_code.co_name == "<module>"
    ):
        return None
    return caller


def _driver_frame(frame: FrameType) -> bool:
    file = frame.f_code.co_filename.replace("\\", "/")
    return any(part in file for part in _NOT_CALLERS)


def database_schema(connection: sqlite3.Connection) -> str:
    """The schema of ``connection``'s main database as one script (tables, then indexes)."""
    # Through the base class: the capture's own read is not one of the program's statements.
    rows = sqlite3.Connection.execute(
        connection,
        "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' "
        "ORDER BY type = 'index', rowid",
    ).fetchall()
    return "".join(f"{row[0]};\n" for row in rows)


TASKQUEUE_FILES = "/taskqueue/"
"""taskqueue's own code: its aiosqlite connections report their statements themselves."""


@contextmanager
def _aiosqlite_timed(capture: SqliteCapture) -> Iterator[None]:
    """While installed: ``aiosqlite.connect`` called from anything but taskqueue opens a timed
    connection, and each call on one carries its operation and caller to aiosqlite's thread.
    Nothing happens when aiosqlite is not installed."""
    try:
        import aiosqlite
        import aiosqlite.core
    except ImportError:
        yield
        return
    original_connect = aiosqlite.connect
    original_execute: Any = aiosqlite.core.Connection._execute  # untyped in aiosqlite

    def connect(database: Any, *args: Any, **kwargs: Any) -> aiosqlite.Connection:
        opener = sys._getframe(1).f_code.co_filename.replace("\\", "/")
        if TASKQUEUE_FILES not in opener and "factory" not in kwargs:
            kwargs["factory"] = TimedConnection
        return original_connect(database, *args, **kwargs)

    def execute(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        # A plain function returning aiosqlite's coroutine: taskqueue's own calls (under
        # capture_sql) pay one isinstance, not a coroutine frame of ours.
        if not isinstance(getattr(self, "_connection", None), TimedConnection):
            return original_execute(self, fn, *args, **kwargs)
        frame = sys._getframe(1)
        token = CALL_SITE.set((capture.operation_on_stack(frame), capture.call_of(frame)))
        try:
            context = contextvars.copy_context()
        finally:
            CALL_SITE.reset(token)
        return original_execute(self, context.run, fn, *args, **kwargs)

    aiosqlite.connect = aiosqlite.core.connect = connect
    aiosqlite.core.Connection._execute = execute  # type: ignore[method-assign]
    try:
        yield
    finally:
        aiosqlite.connect = aiosqlite.core.connect = original_connect
        aiosqlite.core.Connection._execute = original_execute  # type: ignore[method-assign]


def _opened_by_aiosqlite() -> bool:
    frame = sys._getframe(2)
    while frame is not None:
        if "aiosqlite" in frame.f_code.co_filename:
            return True
        frame = frame.f_back  # type: ignore[assignment]
    return False


class TimedCursor(sqlite3.Cursor):
    """A cursor whose ``execute`` and ``executemany`` are timed."""

    def execute(self, sql: str, *args: Any) -> TimedCursor:
        start = time.perf_counter_ns()
        try:
            return super().execute(sql, *args)
        finally:
            _record(self.connection, sql, start)

    def executemany(self, sql: str, *args: Any) -> TimedCursor:
        start = time.perf_counter_ns()
        try:
            return super().executemany(sql, *args)
        finally:
            _record(self.connection, sql, start)


class TimedConnection(sqlite3.Connection):
    """A connection whose statements are timed into a :class:`SqliteCapture`."""

    _queueprof_capture: SqliteCapture | None = None
    _queueprof_database: str = ""

    def _queueprof_attach(self, capture: SqliteCapture, database: str) -> None:
        self._queueprof_capture = capture
        self._queueprof_database = database
        capture.opened(self)

    def cursor(self, factory: Any = TimedCursor) -> Any:
        return super().cursor(factory)

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        start = time.perf_counter_ns()
        try:
            return super().execute(sql, *args)
        finally:
            _record(self, sql, start)

    def executemany(self, sql: str, *args: Any) -> sqlite3.Cursor:
        start = time.perf_counter_ns()
        try:
            return super().executemany(sql, *args)
        finally:
            _record(self, sql, start)

    def executescript(self, script: str) -> sqlite3.Cursor:
        start = time.perf_counter_ns()
        try:
            return super().executescript(script)
        finally:
            _record(self, script, start)

    def close(self) -> None:
        if self._queueprof_capture is not None:
            self._queueprof_capture.snapshot(self)
        super().close()


def _record(connection: sqlite3.Connection, sql: str, start: int) -> None:
    if isinstance(connection, TimedConnection) and connection._queueprof_capture is not None:
        connection._queueprof_capture.record(
            " ".join(sql.split()), time.perf_counter_ns() - start, connection._queueprof_database
        )


def _timed(base: type[sqlite3.Connection]) -> type[TimedConnection]:
    """A timed subclass of a library's own connection factory."""
    return type(f"Timed{base.__name__}", (TimedConnection, base), {})
