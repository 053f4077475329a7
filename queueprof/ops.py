"""``--ops FILE``: a profiled program's own functions mapped to queue operations (TOML).

::

    # operation = ["file suffix:function", ...]; a bare function is in the program's file
    enqueue = ["app.py:submit_order"]
    claim = ["jobs/store.py:take_next", "jobs/store.py:lease"]
    complete = ["finish"]
    render = ["render_page"]          # an operation of the program's own
    fetch_page = ["http.py:fetch"]

Operations are the queue's (enqueue, claim, complete, status, handler) or the program's own
names. The map becomes an :class:`~runs.adapters.AdapterSpec` named after the program, kept in
the run folder like an adapter's, so ``analyze`` splits the program's time by these operations
(and by taskqueue's and the built-in adapters' code paths where the program uses them).
Every function is checked against its file before the program starts.
"""

from __future__ import annotations

import tomllib
from collections import defaultdict
from pathlib import Path

from runs import UsageError
from runs.adapters import ADAPTER_OPERATIONS, AdapterSpec, CodePath, check_operation_name
from workloads.adapters.plugins import code_path_problems


class OpsFileError(UsageError):
    """The ``--ops`` file cannot be read or names an unknown operation or function."""


def load_ops(path: Path, program: Path) -> AdapterSpec:
    """The spec of ``program`` (a script) from the ``--ops`` file at ``path``."""
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise OpsFileError(f"--ops {str(path)!r}: cannot read it as TOML ({error})") from None
    functions: dict[tuple[str, str], list[str]] = defaultdict(list)
    for op, entries in table.items():
        try:
            check_operation_name(op)
        except ValueError as error:
            raise OpsFileError(
                f"--ops {str(path)!r}: {error}; the queue's own are {', '.join(ADAPTER_OPERATIONS)}"
            ) from None
        if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
            raise OpsFileError(
                f'--ops {str(path)!r}: {op} must be a list of "file:function" strings'
            )
        for entry in entries:
            file, colon, function = entry.rpartition(":")
            functions[(op, file if colon else program.name)].append(function)
    if not functions:
        raise OpsFileError(f"--ops {str(path)!r} maps no function; see `queueprof profile -h`")
    spec = AdapterSpec(
        name=program.stem,
        module=program.stem,
        package=None,
        exactly_once=False,
        guarantee="undeclared",
        delivery=f"the program {program.name}, profiled; operations from {path.name}",
        code_paths=tuple(
            CodePath(op, file, tuple(names)) for (op, file), names in functions.items()
        ),
    )
    problems = code_path_problems(spec, roots=(program.resolve().parent, Path.cwd()))
    if problems:
        raise OpsFileError(
            f"--ops {str(path)!r} names functions that do not exist:\n  " + "\n  ".join(problems)
        )
    return spec
