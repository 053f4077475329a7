"""The child of ``queueprof profile``: runs a script in an in-process profiler's session, or,
with ``--profiler none``, bare under py-spy (which samples it from outside), for the SQL
capture.

``python -m queueprof.program_child --profiler NAME --run-dir DIR [--option K=V]... --
app.py ARGS`` runs ``app.py`` as ``__main__`` (``sys.argv`` and ``sys.path[0]`` as Python
sets them for a script) inside the profiler's session, lets the profiler write its artifacts
into the run folder and lists them there, with the statements of every ``sqlite3``
connection the program opened and every statement it sent through asyncpg
(``sql-statements.json``), then exits with the program's
status. The parent
(:mod:`queueprof.program`) finishes the folder.
"""

from __future__ import annotations

import argparse
import runpy
import sys
from collections.abc import Sequence
from pathlib import Path

from profilers import ProfilerError, get_profiler
from runs import RunFolder
from runs.adapters import read_adapter_specs
from workloads.capture import RunCapture
from workloads.pgcapture import asyncpg_timed, snapshot_plans
from workloads.sqlcapture import SqliteCapture

INTERRUPTED = 130


def main(argv: Sequence[str] | None = None) -> int:
    """Run the script under the profiler; returns the script's exit status."""
    parser = argparse.ArgumentParser(prog="queueprof.program_child")
    parser.add_argument("--profiler", required=True)
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--option", action="append", default=[])
    parser.add_argument("script")
    parser.add_argument("args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    cls = get_profiler(args.profiler)
    profiler = cls(cls.options_type.parse(args.option), args.run_dir)
    script = Path(args.script)
    sys.argv = [str(script), *args.args]
    sys.path[0] = str(script.resolve().parent)
    status = 0
    interrupted = False
    pg_targets: dict[str, dict[str, object]] = {}
    # The --ops map (stored by the parent before the start) names each statement's operation.
    sqlite = SqliteCapture(
        [path for spec in read_adapter_specs(args.run_dir) for path in spec.code_paths]
    )
    try:
        with sqlite.installed(), asyncpg_timed(sqlite) as pg_targets, profiler.session():
            runpy.run_path(str(script), run_name="__main__")
    except SystemExit as exit_:
        status = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    except KeyboardInterrupt:
        interrupted, status = True, INTERRUPTED
    except BaseException:  # noqa: BLE001 - the program's crash: report it as Python would
        import traceback

        traceback.print_exc()
        status = 1
    capture = RunCapture()
    capture.add_sqlite(sqlite)
    artifacts = capture.write(args.run_dir)
    # The plans of its PostgreSQL statements, on its databases as it left them.
    artifacts += snapshot_plans(sqlite, pg_targets, args.run_dir)
    try:
        artifacts += profiler.finish(interrupted=interrupted)
    except ProfilerError as error:
        print(f"queueprof profile: {error}", file=sys.stderr)
        status = status or 1
    # Under a launcher (py-spy runs this child with ``--profiler none`` for the SQL capture)
    # the folder's profiler entry is the launcher's, and stays.
    entry = None if cls.name == "none" else profiler.manifest()
    RunFolder(args.run_dir).add_artifacts(artifacts, profiler=entry)
    return status


if __name__ == "__main__":
    sys.exit(main())
