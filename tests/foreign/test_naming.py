"""A program profiled without --ops: its statements and samples are named after its functions."""

from __future__ import annotations

import pytest

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
