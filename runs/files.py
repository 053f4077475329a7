"""The file names of a run folder and the one way files in it are written.

Every name a run folder may hold is declared here, so the side that writes a file and the side
that reads it cannot drift apart.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
from pathlib import Path, PurePosixPath

from .errors import OutputError, UnsafePathError

MANIFEST = "manifest.json"
"""What ran, where, how it ended, and the artifacts; written only by :class:`runs.RunFolder`."""
RESULTS = "results.json"
"""The workload's metrics and target verdicts (:class:`runs.WorkloadResult`)."""
BASELINE = "baseline"
"""Sub-folder of a profiled run holding the bare run measured for the overhead ratio."""
SCREENSHOTS = "screenshots"
"""Sub-folder of PNGs of the artifacts as their viewers showed them (``queueprof view-check``)."""

# What the run itself records, whatever the profiler.
OP_SAMPLES = "op-samples.npz"
SQL_STATEMENTS = "sql-statements.json"
SCHEMA_POSTGRES = "schema-postgres.json"
"""A PostgreSQL run's databases as it left them, with the plans of the queue's statements
(``workloads.pgschema``); the analysis takes a statement's plan from it."""
PG_ACTIVITY = "pg-activity.json"
"""A PostgreSQL run's sessions sampled from ``pg_stat_activity`` (state, wait event, the
queue's statement and operation), counted (``workloads.pgactivity``)."""
PG_STATEMENTS = "pg-statements.json"
"""``pg_stat_statements`` of a PostgreSQL run's databases, diffed over the run, or why the
server could not give it (``workloads.pgactivity``)."""
SCHEMA_SQL = "schema.sql"
"""A SQLite run's schema as its database ended the run: the one query plans are made against."""
SCHEMA_JSON = "schema.json"
"""Schema and ``sqlite_stat1`` of each of a SQLite run's databases."""
HEAP_GROWTH = "heap-growth.json"
"""The memory workload's heap growth over its steady-state window (``workloads.heapgrowth``)."""
ADAPTERS = "adapters.json"
"""The queue adapters' declarations (:class:`runs.adapters.AdapterSpec`) a run drove or used
to map frames to operations; the analysis attributes samples from them."""

# What each profiler writes.
PYINSTRUMENT_SPEEDSCOPE = "pyinstrument.speedscope.json"
PYINSTRUMENT_HTML = "pyinstrument.html"
PYSPY_SPEEDSCOPE = "py-spy.speedscope.json"
PYSPY_COLLAPSED = "py-spy.collapsed.txt"
VIZTRACER_TRACE = "viztracer.trace.json"
MEMRAY_CAPTURE = "memray.bin"
MEMRAY_FLAMEGRAPH = "memray-flamegraph.html"
MEMRAY_LEAKS = "memray-leaks.html"
MEMRAY_STATS = "memray-stats.json"

# What the instruction gate's callgrind run writes (queueprof.instructions).
CALLGRIND_PHASE = "callgrind.{phase}.out"
"""Callgrind's profile of one measured phase (format with ``phase=``): callgrind_annotate."""
CALLGRIND_SPEEDSCOPE = "callgrind.speedscope.json"
"""Self instructions by C function, one speedscope profile per phase."""
CALLGRIND_LOG = "callgrind.log"
"""Valgrind's own output of the run."""
INSTRUCTION_PHASES = "phases.json"
"""What each phase ran (calls, tasks), written by ``workloads.instructions``."""

# What the analysis writes next to the runs it read.
REPORT_MD = "report.md"
REPORT_HTML = "report.html"
FINDINGS_JSON = "findings.json"
COMPARISON_MD = "comparison.md"
COMPARISON_JSON = "comparison.json"
DIFF_FLAMEGRAPH = "diff-flamegraph.html"
REGRESS_REPORT = "regress.json"


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so readers see the old file or the new one, never half.

    The file gets the mode any other file the process creates gets (0666 less the umask),
    like the profiles beside it; ``tempfile.mkstemp`` would make every report 0600.
    """
    fd, temp = _create_temp(path)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except OSError as error:
        Path(temp).unlink(missing_ok=True)
        if error.filename is None:  # write() and fsync() name no file: say which one
            raise type(error)(error.errno, error.strerror, str(path)) from None
        raise
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _create_temp(path: Path) -> tuple[int, str]:
    """A new, exclusive temp file beside ``path``: (descriptor, name), mode 0666 less umask."""
    for _ in range(100):
        temp = str(path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666), temp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no unused temp file name", str(path.parent))


def output_error(path: Path, error: OSError, fix: str) -> OutputError:
    """The :class:`OutputError` for ``error`` raised while writing ``path``: names the file,
    the reason (read-only file system, no space left, not a directory...) and ``fix``."""
    return OutputError(f"cannot write {str(path)!r} ({error.strerror or error}); {fix}")


def check_relative_path(text: object, what: str) -> str:
    """``text`` if it is a path a run folder may name (relative, no ``..``), else ``ValueError``.

    Checked when a manifest is read, so no reader ever joins an absolute path or a ``..``
    onto a run folder.
    """
    if not isinstance(text, str) or not text or "\x00" in text or "\\" in text:
        raise ValueError(f"{what} {text!r} is not a relative file path")
    pure = PurePosixPath(text)
    if pure.is_absolute() or ".." in pure.parts:
        raise ValueError(f"{what} {text!r} leaves the run folder (absolute or with '..')")
    return text


def file_inside(folder: Path, relative: str) -> Path:
    """``folder / relative`` if it is a regular file inside ``folder`` once links are followed.

    A run folder may only reference its own files: an artifact that is a symlink to
    ``/etc/passwd``, or to another run, is refused (:class:`UnsafePathError`) before it is read
    or copied, and the message never shows the other file's content. Returns the path as
    named (not resolved), so messages keep the name the manifest uses.
    """
    try:
        check_relative_path(relative, "path")
    except ValueError as error:
        raise UnsafePathError(f"{folder}: {error}") from None
    candidate = folder / relative
    try:
        resolved = candidate.resolve(strict=True)
        root = folder.resolve(strict=True)
    except FileNotFoundError:
        raise
    except (OSError, RuntimeError) as error:  # RuntimeError: a symlink loop
        raise UnsafePathError(f"{candidate}: cannot be resolved ({error})") from None
    if not resolved.is_relative_to(root):
        raise UnsafePathError(
            f"{candidate}: links outside its run folder; a run folder may only reference its "
            "own files (replace the link with the file itself)"
        )
    if not resolved.is_file():
        raise UnsafePathError(
            f"{candidate}: is not a regular file (a folder, device or pipe); a run folder "
            "lists only regular files"
        )
    return candidate


def optional_file_inside(folder: Path, relative: str) -> Path | None:
    """:func:`file_inside` for a file a run folder may or may not hold (``adapters.json``,
    ``heap-growth.json``, ``schema.sql``): None when nothing of that name is there.

    Anything that is there must be a regular file inside the folder: a directory, a FIFO, a
    link out of the folder or a dangling link is :class:`UnsafePathError`, never skipped in
    silence and never read.
    """
    if not os.path.lexists(folder / relative):
        return None
    try:
        return file_inside(folder, relative)
    except FileNotFoundError:
        raise UnsafePathError(
            f"{folder / relative}: a link to a file that does not exist; replace the link with "
            "the file itself, or delete it"
        ) from None


def read_regular_file(path: Path, max_bytes: int) -> bytes:
    """At most ``max_bytes + 1`` bytes of ``path`` (the caller refuses a longer file).

    Opened without blocking, so a FIFO cannot hang the reader; a path that is not a regular
    file is :class:`UnsafePathError`; :class:`OSError` as the system raises it.
    """
    with open(os.open(path, os.O_RDONLY | os.O_NONBLOCK), "rb") as stream:
        if not stat.S_ISREG(os.fstat(stream.fileno()).st_mode):
            raise UnsafePathError(f"{path}: not a regular file")
        return stream.read(max_bytes + 1)
