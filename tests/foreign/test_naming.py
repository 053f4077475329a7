"""A program profiled without --ops: its statements and samples are named after its functions."""

from __future__ import annotations

import pytest

from analysis.attribution import blocking_call
from analysis.callers import INFERRED_SPEC, named_by_caller, operation_name
from analysis.load.capture import SqlStatement
from analysis.profile import Frame, SampledProfile, ThreadRole, program_main_thread
from runs.adapters import UNATTRIBUTED_SQL, SqlCaller


@pytest.mark.parametrize(
    ("function", "op"),
    [
        ("pop", "pop"),
        ("JobStore.pending_count", "pending_count"),
        ("_pop_next", "pop_next"),
        ("getNext", "getnext"),
        ("wait", "wait_call"),
        ("sql", "sql_call"),
        ("<module>", None),
        ("<lambda>", None),
        ("__9", None),
    ],
)
def test_operation_name(function: str, op: str | None) -> None:
    assert operation_name(function) == op


def _statement(index: int, op: str, caller: SqlCaller | None) -> SqlStatement:
    return SqlStatement(
        index, op, f"SELECT {index}", 1, 1.0, 1.0, 1.0, 1.0, 1.0, 0, "db", None, caller
    )


def test_unattributed_statements_take_their_callers_operation() -> None:
    pop = SqlCaller("/app/store.py", "pop", "Store.pop")
    module = SqlCaller("/app/app.py", "<module>", "<module>")
    # GIVEN statements outside every operation, one already mapped by --ops, one without caller
    statements = (
        _statement(0, UNATTRIBUTED_SQL, pop),
        _statement(1, "claim", SqlCaller("/app/store.py", "take", "Store.take")),
        _statement(2, UNATTRIBUTED_SQL, module),
        _statement(3, UNATTRIBUTED_SQL, None),
    )
    named, spec = named_by_caller(statements)
    # THEN only the unattributed one with a function is renamed, and its code path is kept
    assert [s.op for s in named] == ["pop", "claim", UNATTRIBUTED_SQL, UNATTRIBUTED_SQL]
    assert spec is not None
    assert spec.name == INFERRED_SPEC
    assert [(p.op, p.file, p.functions) for p in spec.code_paths] == [
        ("pop", "/app/store.py", ("pop",))
    ]


def test_nothing_to_name_gives_no_spec() -> None:
    named, spec = named_by_caller((_statement(0, "claim", None),))
    assert spec is None
    assert named[0].op == "claim"


def _profile(name: str, role: ThreadRole, samples: int) -> SampledProfile:
    return SampledProfile(
        name, role, [Frame("main", "app.py")], [(0,)] * samples, [1.0] * samples, "samples", True
    )


def test_a_synchronous_program_s_main_thread_takes_the_event_loop_s_role() -> None:
    # GIVEN py-spy's threads of a program with no event loop: the main one (tid == pid) is
    # not the most sampled
    main = _profile('Process 7 Thread 7 ""', ThreadRole.OTHER_THREAD, 3)
    helper = _profile('Process 7 Thread 9 ""', ThreadRole.OTHER_THREAD, 5)
    roles = program_main_thread([helper, main])
    # THEN the main thread is the event loop's role, over all its samples
    assert [(p.name, p.role, p.whole_process) for p in roles] == [
        (helper.name, ThreadRole.OTHER_THREAD, True),
        (main.name, ThreadRole.EVENT_LOOP, False),
    ]
    # ... and a program that has an event loop keeps it
    loop = _profile("event loop", ThreadRole.EVENT_LOOP, 1)
    assert program_main_thread([loop, main]) == [loop, main]


def _stack(*frames: Frame) -> tuple[list[Frame], tuple[int, ...]]:
    return list(frames), tuple(range(len(frames)))


CONSUME = Frame("consume", "/app/app.py")


def test_a_blocking_built_in_is_named_with_its_caller() -> None:
    frames, stack = _stack(Frame("main", "/app/app.py"), CONSUME, Frame("sleep", "<built-in>"))
    assert blocking_call(frames, stack) == (frames[2], CONSUME)


def test_native_frames_of_a_sleep_are_named_with_the_python_frame_above_them() -> None:
    # GIVEN py-spy --native: the sleep's C frames below the Python caller
    frames, stack = _stack(
        CONSUME,
        Frame("time_sleep", "/usr/lib/libpython3.11.so.1.0"),
        Frame("clock_nanosleep", "/usr/lib/libc.so.6"),
    )
    assert blocking_call(frames, stack) == (frames[1], CONSUME)


def test_sqlite_s_own_fsync_is_the_statement_s_not_a_blocking_call() -> None:
    frames, stack = _stack(
        Frame("done", "/app/jobstore.py"),
        Frame("pysqlite_connection_execute", "_sqlite/connection.c"),
        Frame("0x7f00", "/usr/lib/libsqlite3.so.0.8.6"),
        Frame("fdatasync", "/usr/lib/libc.so.6"),
    )
    assert blocking_call(frames, stack) is None


def test_work_is_no_blocking_call() -> None:
    frames, stack = _stack(CONSUME, Frame("handle", "/app/app.py"))
    assert blocking_call(frames, stack) is None
