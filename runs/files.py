"""The file names of a run folder and the one way files in it are written.

Every name a run folder may hold is declared here, so the side that writes a file and the side
that reads it cannot drift apart.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

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
    """Write ``data`` to ``path`` so readers see the old file or the new one, never half."""
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
