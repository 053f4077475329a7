"""Load one artifact in this process and print what it cost: ``python -m tests.hardening.measure
LOADER PATH`` prints one JSON line (outcome, seconds, growth of the peak RSS in MiB).

Run in a fresh subprocess so the peak RSS (``ru_maxrss``, which only grows) measures this
load alone, after the imports.
"""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from analysis.errors import ArtifactError
from analysis.hotspots import sql_hotspots
from analysis.load.capture import load_op_samples, load_sql_statements
from analysis.load.collapsed import load_collapsed
from analysis.load.speedscope import load_speedscope
from analysis.load.trace import load_trace


def _sql_analysis(path: Path) -> Any:
    return sql_hotspots(load_sql_statements(path), {}, {})


LOADERS: dict[str, Callable[[Path], Any]] = {
    "speedscope": load_speedscope,
    "npz": load_op_samples,
    "trace": load_trace,
    "collapsed": load_collapsed,
    "sql": _sql_analysis,
}


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def main(loader: str, path: str) -> None:
    before = peak_rss_mib()
    start = time.perf_counter()
    try:
        LOADERS[loader](Path(path))
        outcome = "loaded"
    except ArtifactError as error:
        outcome = f"ArtifactError: {error}"
    seconds = time.perf_counter() - start
    growth = peak_rss_mib() - before
    print(orjson.dumps({"outcome": outcome, "seconds": seconds, "rss_growth_mib": growth}).decode())


if __name__ == "__main__":
    main(*sys.argv[1:])
