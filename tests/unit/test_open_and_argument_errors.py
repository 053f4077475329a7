"""Errors that misled or leaked (issue 16, item 8): each is now a TaskQueueError that says
what is wrong and what to do, and nothing is written to a file that is not the queue's."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import subprocess
import threading
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from taskqueue import (
    InvalidArgumentError,
    NewTask,
    QueueOpenError,
    TaskQueue,
    TaskState,
    WorkerEngine,
)
from tests.helpers.db import task_rows

INT64_MAX = 2**63 - 1


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def _open_and_close(path: Path) -> None:
    async with TaskQueue(path):
        pass


# -- a read-only mount ---------------------------------------------------------------------


@pytest.fixture
def read_only_folder(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """(source, mount): ``mount`` shows ``source`` read-only (a bind mount; needs root)."""
    source, mount = tmp_path / "source", tmp_path / "mount"
    source.mkdir()
    mount.mkdir()
    done = subprocess.run(["mount", "--bind", str(source), str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {done.stderr.decode(errors='replace').strip()}")
    try:
        remount = ["mount", "-o", "remount,ro,bind", str(mount)]
        if subprocess.run(remount, capture_output=True).returncode != 0:
            pytest.skip("cannot remount read-only here")
        yield source, mount
    finally:
        subprocess.run(["umount", str(mount)], capture_output=True)


def test_a_queue_on_a_read_only_mount_is_not_called_damaged(
    read_only_folder: tuple[Path, Path],
) -> None:
    # GIVEN a valid queue database, closed cleanly, seen through a read-only mount
    source, mount = read_only_folder

    async def fill() -> None:
        async with TaskQueue(source / "queue.db") as queue:
            await queue.enqueue("noop", 1)

    asyncio.run(fill())
    before = _digest(source / "queue.db")
    # WHEN the queue opens it there
    with pytest.raises(QueueOpenError) as raised:
        asyncio.run(_open_and_close(mount / "queue.db"))
    # THEN the error says read-only and gives no advice to remove the file, which is intact
    message = str(raised.value)
    assert "read-only" in message
    assert "not a SQLite database" not in message
    assert "remove" not in message
    assert _digest(source / "queue.db") == before


def test_a_new_queue_on_a_read_only_mount_says_it_is_read_only(
    read_only_folder: tuple[Path, Path],
) -> None:
    _, mount = read_only_folder
    with pytest.raises(QueueOpenError, match="read-only"):
        asyncio.run(_open_and_close(mount / "new.db"))


# -- another application's database ---------------------------------------------------------


@pytest.mark.parametrize(
    "script",
    [
        pytest.param("PRAGMA user_version = 7; CREATE VIEW answer AS SELECT 42;", id="view"),
        pytest.param("PRAGMA user_version = 7;", id="user-version-only"),
        pytest.param("CREATE VIEW answer AS SELECT 42;", id="view-only"),
    ],
)
def test_a_database_of_another_application_without_tables_is_left_alone(
    db_path: Path, script: str
) -> None:
    # GIVEN a SQLite file of another application: a user_version and/or a view, no table
    with closing(sqlite3.connect(db_path)) as db:
        db.executescript(script)
    before = _digest(db_path)
    # WHEN the queue is pointed at it
    with pytest.raises(QueueOpenError, match="another application"):
        asyncio.run(_open_and_close(db_path))
    # THEN it is refused and not one byte changes
    assert _digest(db_path) == before
    assert not db_path.with_name(db_path.name + "-wal").exists()


# -- arguments SQLite cannot hold -----------------------------------------------------------


async def _with_queue(db_path: Path, call: Any) -> Any:
    async with TaskQueue(db_path) as queue:
        return await call(queue)


async def _claimed_one(queue: TaskQueue) -> Any:
    await queue.enqueue("noop", None)
    (task,) = await queue.claim("w0", 1)
    return task


ARGUMENTS_SQLITE_CANNOT_HOLD = {
    "type-lone-surrogate": lambda q: q.enqueue("no\ud800op", None),
    "batch-type-lone-surrogate": lambda q: q.enqueue_many([("no\ud800op", None)]),
    "newtask-type-lone-surrogate": lambda q: q.enqueue_many([NewTask("no\udfffop", None)]),
    "worker-lone-surrogate": lambda q: q.claim("w\ud800", 1),
    "priority-2**63": lambda q: q.enqueue("noop", None, priority=2**63),
    "max-attempts-2**63": lambda q: q.enqueue("noop", None, max_attempts=2**63),
    "batch-priority-2**63": lambda q: q.enqueue_many([NewTask("noop", None, priority=2**63)]),
    "batch-max-attempts-2**63": lambda q: q.enqueue_many(
        [NewTask("noop", None, max_attempts=2**63)]
    ),
    "claim-n-2**63": lambda q: q.claim("w0", 2**63),
    "status-2**70": lambda q: q.status(2**70),
    "status-minus-2**70": lambda q: q.status(-(2**70)),
    "status-text": lambda q: q.status("1"),
    "status-float": lambda q: q.status(1.0),
    "status-bool": lambda q: q.status(True),
    "poll-2**70": lambda q: q.poll(2**70, timeout=1),
}


@pytest.mark.parametrize(
    "call", ARGUMENTS_SQLITE_CANNOT_HOLD.values(), ids=ARGUMENTS_SQLITE_CANNOT_HOLD
)
def test_arguments_sqlite_cannot_hold_are_invalid_arguments(db_path: Path, call: Any) -> None:
    # GIVEN a value SQLite cannot store or compare (a lone surrogate has no UTF-8 form; an
    # INTEGER is 64 bits) WHEN it is passed THEN the queue refuses it as an invalid argument,
    # not with UnicodeEncodeError, OverflowError or TypeError
    with pytest.raises(InvalidArgumentError):
        asyncio.run(_with_queue(db_path, call))
    # AND nothing was stored
    assert task_rows(db_path) == []


def test_the_largest_priority_a_batch_can_store_stays_an_integer(db_path: Path) -> None:
    # GIVEN the largest 64-bit priority, through enqueue_many's JSON path
    async def scenario(queue: TaskQueue) -> None:
        await queue.enqueue_many([NewTask("noop", None, priority=INT64_MAX)])

    asyncio.run(_with_queue(db_path, scenario))
    # THEN it is stored exactly, as an INTEGER (2**63 was stored as the REAL 9.2e18)
    with closing(sqlite3.connect(db_path)) as db:
        assert db.execute("SELECT priority, typeof(priority) FROM tasks").fetchone() == (
            INT64_MAX,
            "integer",
        )


def test_a_failure_message_with_a_lone_surrogate_is_recorded_escaped(db_path: Path) -> None:
    # GIVEN a handler whose exception message holds a lone surrogate (any text can)
    def broken(task: Any) -> None:
        raise ValueError("bad byte \udcff in input")

    async def scenario(queue: TaskQueue) -> Any:
        await queue.enqueue("broken", None, max_attempts=1)
        return await WorkerEngine("w0", queue, {"broken": broken}).run_until_empty()

    # WHEN an engine runs it
    stats = asyncio.run(_with_queue(db_path, scenario))
    # THEN the failure is recorded (the task is dead-lettered), its text escaped, and the
    # engine carried on instead of dying with UnicodeEncodeError
    assert stats.dead == 1
    (row,) = task_rows(db_path)
    assert row.state == TaskState.DEAD.value
    assert row.error is not None
    assert "bad byte \\udcff in input" in row.error


# -- a failed open leaves nothing running ---------------------------------------------------


def test_a_failed_open_leaves_no_connection_thread_to_print_event_loop_is_closed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a path SQLite cannot open (longer than its 512-byte limit; the folders exist)
    folder = tmp_path.joinpath(*(["x" * 200] * 3))
    folder.mkdir(parents=True)
    unhandled: list[BaseException | None] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: unhandled.append(args.exc_value))
    # (threads of earlier tests in this process may end meanwhile: only new ones count)
    threads_before = set(threading.enumerate())
    for _ in range(10):
        # WHEN the queue fails to open it and the event loop closes right after
        with pytest.raises(QueueOpenError, match="cannot be opened"):
            asyncio.run(_open_and_close(folder / "queue.db"))
        # THEN aiosqlite's connection thread had already stopped: it cannot call back into a
        # closed loop ("RuntimeError: Event loop is closed", printed from the thread)
        assert set(threading.enumerate()) - threads_before == set()
    assert unhandled == []
