"""Bad input fails with an error that names the problem, and writes nothing."""

from __future__ import annotations

import asyncio
import dataclasses
import math
import os
import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from taskqueue import (
    InvalidArgumentError,
    InvalidPayloadError,
    NewTask,
    QueueOpenError,
    TaskQueue,
    TaskState,
    sql,
)
from tests.helpers.db import row_count, task_row


@dataclasses.dataclass
class Reading:
    value: float


NOT_JSON = [
    pytest.param(object(), "object", id="object"),
    pytest.param({1, 2}, "set", id="set"),
    pytest.param(b"raw", "bytes", id="bytes"),
    pytest.param({1: "int key"}, "key", id="int-key"),
    pytest.param(2**70, "64-bit", id="huge-int"),
    pytest.param(math.nan, "NaN", id="nan"),
    pytest.param(-math.inf, "Infinity", id="infinity"),
    pytest.param({"reading": math.nan}, "NaN", id="nan-in-dict"),
    pytest.param([1, [2, math.inf]], "Infinity", id="inf-in-list"),
    pytest.param(("ok", math.nan), "NaN", id="nan-in-tuple"),
    pytest.param(Reading(math.nan), "NaN", id="nan-in-dataclass"),
    pytest.param({"rows": [Reading(1.0), Reading(math.inf)]}, "Infinity", id="inf-deep"),
]


@pytest.mark.parametrize(("payload", "named"), NOT_JSON)
def test_a_payload_that_is_not_json_is_refused(db_path: Path, payload: object, named: str) -> None:
    async def scenario() -> None:
        async with TaskQueue(db_path) as queue:
            before = await queue.enqueue("noop", "a valid task")
            with pytest.raises(InvalidPayloadError, match=named) as caught:
                await queue.enqueue("noop", payload)
            assert "payload" in str(caught.value)
            assert "'noop'" in str(caught.value)
            with pytest.raises(InvalidPayloadError, match="item 1") as caught:
                await queue.enqueue_many([("noop", 1), ("noop", payload), ("noop", 3)])
            assert named in str(caught.value)
            assert await queue.counts() == {**dict.fromkeys(TaskState, 0), TaskState.PENDING: 1}
            assert before == 1

    asyncio.run(scenario())
    assert row_count(db_path) == 1


def test_a_nan_beside_nulls_in_a_batch_is_refused_naming_its_item(db_path: Path) -> None:
    # GIVEN a batch whose JSON holds nulls anyway (None payloads, a None value) and a NaN
    batch = [("noop", None), ("noop", {"x": None, "y": math.nan}), ("noop", None)]

    async def scenario() -> None:
        async with TaskQueue(db_path) as queue:
            # WHEN it is enqueued THEN the NaN's item is named and nothing is written
            with pytest.raises(InvalidPayloadError, match="item 1: payload: contains NaN"):
                await queue.enqueue_many(batch)

    asyncio.run(scenario())
    assert row_count(db_path) == 0


def test_types_orjson_writes_natively_are_stored_with_or_without_nulls(db_path: Path) -> None:
    """Whether a payload is accepted must not depend on whether its JSON holds a null."""

    async def scenario() -> None:
        async with TaskQueue(db_path) as queue:
            for payload in (Reading(1.5), {"reading": Reading(2.5), "note": None}):
                await queue.enqueue("noop", payload)
            tasks = await queue.claim("w", 2)
            assert [t.payload for t in tasks] == [
                {"value": 1.5},
                {"reading": {"value": 2.5}, "note": None},
            ]

    asyncio.run(scenario())


def test_a_result_that_is_not_json_is_refused_and_the_task_stays_claimed(
    db_path: Path,
) -> None:
    async def scenario() -> None:
        async with TaskQueue(db_path) as queue:
            task_id = await queue.enqueue("noop")
            (task,) = await queue.claim("w")
            with pytest.raises(InvalidPayloadError, match=f"result of task {task_id}"):
                await queue.complete(task, {"x": math.nan})
            with pytest.raises(InvalidPayloadError, match="set"):
                await queue.complete_many([(task, {1})])
            assert queue.stats.stale_acks == 0

    asyncio.run(scenario())
    assert task_row(db_path, 1).state == "running"


BAD_ARGUMENTS: list[Any] = [
    pytest.param(lambda q: q.enqueue("noop", priority=-1), "priority=-1", id="negative-priority"),
    pytest.param(lambda q: q.enqueue("noop", priority=1.5), "priority=1.5", id="float-priority"),
    pytest.param(lambda q: q.enqueue("noop", priority=True), "priority=True", id="bool-priority"),
    pytest.param(lambda q: q.enqueue("noop", delay=-0.5), "delay=-0.5", id="negative-delay"),
    pytest.param(lambda q: q.enqueue("noop", delay=math.nan), "delay=nan", id="nan-delay"),
    pytest.param(lambda q: q.enqueue("noop", delay=math.inf), "delay=inf", id="inf-delay"),
    pytest.param(lambda q: q.enqueue("noop", max_attempts=0), "max_attempts=0", id="no-attempts"),
    pytest.param(lambda q: q.enqueue("", None), "task type ''", id="empty-type"),
    pytest.param(lambda q: q.enqueue(7, None), "task type 7", id="int-type"),
    pytest.param(
        lambda q: q.enqueue_many([NewTask("noop"), NewTask("noop", delay=-1.0)]),
        "item 1: delay=-1.0",
        id="many-negative-delay",
    ),
    pytest.param(
        lambda q: q.enqueue_many([("noop", 1), "noop"]),
        "item 1: 'noop' is neither a NewTask nor a (type, payload) pair",
        id="many-not-a-pair",
    ),
    # Batches take a fast path with no call per item; each of these must leave it for the
    # checks that name the item.
    pytest.param(
        lambda q: q.enqueue_many([("noop", None), ("noop", None, 1)]),
        "item 1: ('noop', None, 1) is neither a NewTask nor a (type, payload) pair",
        id="many-triple",
    ),
    pytest.param(
        lambda q: q.enqueue_many([NewTask("noop"), NewTask("noop", priority=True)]),
        "item 1: priority=True",
        id="many-bool-priority",
    ),
    pytest.param(
        lambda q: q.enqueue_many([NewTask("noop"), NewTask("noop", max_attempts=0)]),
        "item 1: max_attempts=0",
        id="many-no-attempts",
    ),
    pytest.param(
        lambda q: q.enqueue_many([("noop", None), ("", None)]),
        "item 1: task type ''",
        id="many-empty-type",
    ),
    pytest.param(
        lambda q: q.enqueue_many(iter([("noop", None), ("noop", None), (7, None)])),
        "item 2: task type 7",
        id="many-from-an-iterator",
    ),
    pytest.param(lambda q: q.claim("w", 1, lease=-1.0), "lease=-1.0", id="negative-lease"),
    pytest.param(lambda q: q.claim("w", 1, lease=0), "lease=0", id="zero-lease"),
    pytest.param(lambda q: q.claim("w", 0), "n=0", id="claim-zero"),
    pytest.param(lambda q: q.claim("", 1), "worker=''", id="claim-no-worker"),
    pytest.param(lambda q: q.poll(1, interval=-1.0), "interval=-1.0", id="poll-interval"),
]


@pytest.mark.parametrize(("call", "named"), BAD_ARGUMENTS)
def test_a_bad_argument_is_refused_naming_it(
    db_path: Path, call: Callable[[TaskQueue], Any], named: str
) -> None:
    async def scenario() -> None:
        async with TaskQueue(db_path) as queue:
            with pytest.raises(InvalidArgumentError) as caught:
                await call(queue)
            assert named in str(caught.value)
            assert not isinstance(caught.value, InvalidPayloadError)

    asyncio.run(scenario())
    assert row_count(db_path) == 0


def test_poll_of_an_unknown_task_names_it(db_path: Path) -> None:
    async def scenario() -> None:
        async with TaskQueue(db_path) as queue:
            with pytest.raises(InvalidArgumentError, match="poll task 99: no such task"):
                await queue.poll(99)

    asyncio.run(scenario())


# -- opening a file that is not a queue ------------------------------------------------------


def _open(path: Path) -> None:
    async def scenario() -> None:
        async with TaskQueue(path):
            pass

    asyncio.run(scenario())


def test_a_database_in_a_missing_folder_is_refused_and_nothing_is_created(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "no" / "such" / "folder"
    with pytest.raises(QueueOpenError, match="does not exist") as caught:
        _open(missing / "queue.db")
    assert str(missing) in str(caught.value)
    assert not (tmp_path / "no").exists()
    assert os.listdir(tmp_path) == []


def test_a_folder_as_database_path_is_refused(tmp_path: Path) -> None:
    with pytest.raises(QueueOpenError, match="is a folder"):
        _open(tmp_path)


def test_an_in_memory_database_is_refused(tmp_path: Path) -> None:
    with pytest.raises(QueueOpenError, match="needs a file"):
        _open(Path(":memory:"))


@pytest.mark.parametrize(
    "garbage",
    [
        pytest.param(b"hello", id="short-text"),
        pytest.param(bytes(range(256)) * 16, id="binary"),
        pytest.param(b"SQLite format 3\x00" + b"\xff" * 84, id="bad-header"),
    ],
)
def test_a_file_that_is_not_sqlite_is_refused_and_left_unchanged(
    tmp_path: Path, garbage: bytes
) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(garbage)
    with pytest.raises(QueueOpenError, match="is not a SQLite database") as caught:
        _open(path)
    assert str(path) in str(caught.value)
    assert path.read_bytes() == garbage
    assert os.listdir(tmp_path) == ["notes.db"]


def _other_application(path: Path, *statements: str) -> bytes:
    with closing(sqlite3.connect(path)) as db:
        for statement in statements:
            db.execute(statement)
        db.commit()
    return path.read_bytes()


@pytest.mark.parametrize(
    ("statements", "named"),
    [
        pytest.param(
            ("CREATE TABLE users (id INTEGER, name TEXT)", "INSERT INTO users VALUES (1, 'a')"),
            "another application (tables: users)",
            id="other-tables",
        ),
        pytest.param(
            ("PRAGMA application_id = 42", "CREATE TABLE t (x)"),
            "another application (application_id 0x2a)",
            id="other-application-id",
        ),
        pytest.param(
            (f"PRAGMA application_id = {sql.APPLICATION_ID}", "PRAGMA user_version = 99"),
            "schema version 99",
            id="future-schema",
        ),
    ],
)
def test_a_database_of_another_application_is_refused_and_left_unchanged(
    tmp_path: Path, statements: tuple[str, ...], named: str
) -> None:
    path = tmp_path / "app.db"
    before = _other_application(path, *statements)
    with pytest.raises(QueueOpenError) as caught:
        _open(path)
    assert named in str(caught.value)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["app.db"]


def test_an_empty_sqlite_file_becomes_a_queue_and_reopens(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    path.write_bytes(b"")

    async def scenario() -> int:
        async with TaskQueue(path) as queue:
            return await queue.enqueue("noop")

    task_id = asyncio.run(scenario())
    _open(path)  # the queue's own file opens again
    assert task_row(path, task_id).state == "pending"


def test_a_payload_over_the_size_limit_is_refused_naming_it(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a limit of 1,000 bytes per value and documents of 500 characters (the real
    # ones: 512 MiB, 64 Mi)
    monkeypatch.setattr(sql, "VALUE_BYTES_MOST", 1000)
    monkeypatch.setattr(sql, "DOCUMENT_CHARS_MOST", 500)
    big = {"blob": "x" * 2000}

    async def scenario() -> None:
        async with TaskQueue(db_path) as queue:
            # WHEN one task, or one item of a batch, is over it
            with pytest.raises(InvalidPayloadError, match="over the queue's limit of 1,000"):
                await queue.enqueue("noop", big)
            with pytest.raises(InvalidPayloadError, match="item 2: payload: 2,0") as caught:
                await queue.enqueue_many([("noop", 1), ("noop", 2), ("noop", big)])
            # THEN the error says where large data goes, and nothing was written
            assert "path or key" in str(caught.value)
            assert await queue.counts() == dict.fromkeys(TaskState, 0)

    asyncio.run(scenario())
    assert row_count(db_path) == 0


def test_a_result_over_the_size_limit_fails_its_task_with_the_reason(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sql, "VALUE_BYTES_MOST", 1000)

    async def scenario() -> None:
        async with TaskQueue(db_path) as queue:
            task_id = await queue.enqueue("noop")
            (task,) = await queue.claim("w")
            with pytest.raises(InvalidPayloadError, match=f"result of task {task_id}: 2,0"):
                await queue.complete(task, "y" * 2000)

    asyncio.run(scenario())
    assert task_row(db_path, 1).state == "running"


def test_a_batch_of_large_payloads_is_split_into_smaller_documents_and_kept_whole(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN documents of at most 5,000 characters and 300 payloads of about 200 bytes
    monkeypatch.setattr(sql, "DOCUMENT_CHARS_MOST", 5000)
    payloads = [{"i": i, "text": f"{i:04d}" * 50} for i in range(300)]
    rows = [["noop", p, 0, 0.0, 3] for p in payloads]
    documents = sql.insert_documents(rows)
    assert len(documents) > 300 * 200 // 5000
    assert all(len(d) <= 5000 for d in documents)

    async def scenario() -> None:
        async with TaskQueue(db_path) as queue:
            # WHEN they are enqueued as one batch THEN every one is stored, in order
            ids = await queue.enqueue_many([("noop", p) for p in payloads])
            assert ids == sorted(ids)
            assert len(ids) == 300
            tasks = await queue.claim("w", 300)
            assert sorted((t.payload for t in tasks), key=lambda p: p["i"]) == payloads

    asyncio.run(scenario())
