"""Operations of a program profiled without an ``--ops`` map, named after its own functions.

A program's statements that ran outside every known operation (no ``--ops`` function, none
of the queue's, no adapter call on the stack) were recorded by the SQL capture with the
function of the program that ran them (``JobStore.pop`` in ``jobstore.py``). Those functions
are the program's store API: each becomes an operation of that name, for its statements and,
through a code path over its file, for the profile's samples, so the findings say ``pop``
and ``jobstore.py`` instead of an anonymous ``sql`` that lumps every statement together.
"""

from __future__ import annotations

import dataclasses
import re
from collections import defaultdict
from collections.abc import Sequence

from runs.adapters import NOT_OPERATIONS, UNATTRIBUTED_SQL, AdapterSpec, CodePath

from .load.capture import SqlStatement

INFERRED_SPEC = "sql-callers"
"""The name of the map built here (beside a program's own ``--ops`` map, if any)."""


def operation_name(function: str) -> str | None:
    """The operation a function names (``pending_count``, ``JobStore._pop_next`` ->
    ``pop_next``); None for code that is no function (``<module>``, ``<lambda>``)."""
    function = function.rsplit(".", 1)[-1]
    if function.startswith("<"):
        return None
    name = re.sub(r"[^a-z0-9]+", "_", function.lower()).strip("_")[:64]
    if not name or not name[0].isalpha():
        return None
    # A function called ``wait`` or ``other`` is the program's, not time outside operations.
    return f"{name}_call" if name in (*NOT_OPERATIONS, UNATTRIBUTED_SQL) else name


def named_by_caller(
    statements: Sequence[SqlStatement],
) -> tuple[tuple[SqlStatement, ...], AdapterSpec | None]:
    """``statements`` with each unattributed one given its caller's operation, and the code
    paths that attribute the same functions' profile samples (None when none was named)."""
    functions: dict[tuple[str, str], set[str]] = defaultdict(set)
    named = []
    for statement in statements:
        op = (
            operation_name(statement.caller.function)
            if statement.op == UNATTRIBUTED_SQL and statement.caller is not None
            else None
        )
        if op is None or statement.caller is None:
            named.append(statement)
            continue
        named.append(dataclasses.replace(statement, op=op))
        functions[(op, statement.caller.file)].add(statement.caller.function)
    if not functions:
        return tuple(named), None
    spec = AdapterSpec(
        name=INFERRED_SPEC,
        module="__main__",
        package=None,
        exactly_once=False,
        guarantee="undeclared",
        delivery="a profiled program's functions that ran SQL, named by the SQL capture",
        code_paths=tuple(
            CodePath(op, file, tuple(sorted(names)))
            for (op, file), names in sorted(functions.items())
        ),
    )
    return tuple(named), spec
