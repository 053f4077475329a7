"""Query plans of a PostgreSQL run, as the run itself made them.

A PostgreSQL run's statements cannot be planned on a SQLite schema; the run planned them on
its own database before dropping it (``schema-postgres.json``, written by the workloads'
runner: the generic plan of each statement the queue may send). Here those plans become
:class:`~analysis.sqlplan.QueryPlan` values, keyed by statement text, so the hotspots carry
them and the scan and sort rules read them as they read SQLite's: the snapshot's ``Seq Scan
on tasks`` nodes are full scans, its ``Sort`` nodes sorts the statement pays on every call.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from runs.errors import UnsafePathError
from runs.files import SCHEMA_POSTGRES, read_regular_file

from .load.runfolder import optional_run_file
from .sqlplan import PLAN_FILE_FIX, QueryPlan

SOURCE = f"the run's own PostgreSQL database ({SCHEMA_POSTGRES})"
"""Where such a plan came from, as a hotspot names it."""
MAX_BYTES = 16 * 2**20
"""A snapshot bigger than this is not read: the queue's is a few tens of kilobytes."""


def load_pg_plans(folder: Path) -> dict[str, QueryPlan]:
    """Statement text (on one line) -> its plan on the run's main PostgreSQL database; empty
    when the run has no snapshot, or one that does not read as the runner writes it."""
    path = optional_run_file(folder, SCHEMA_POSTGRES, PLAN_FILE_FIX)
    if path is None:
        return {}
    try:
        data = read_regular_file(path, MAX_BYTES)
        document = orjson.loads(data) if len(data) <= MAX_BYTES else None
    except (OSError, UnsafePathError, orjson.JSONDecodeError):
        return {}
    return _plans(document)


def _plans(document: Any) -> dict[str, QueryPlan]:
    if not isinstance(document, Mapping):
        return {}
    chosen = document.get("chosen")
    databases = document.get("databases")
    if not isinstance(databases, list):
        return {}
    for database in databases:
        if isinstance(database, Mapping) and database.get("name") == chosen:
            plans = database.get("plans")
            if not isinstance(plans, Mapping):
                return {}
            found: dict[str, QueryPlan] = {}
            for entry in plans.values():
                plan = _plan(entry)
                if plan is not None:
                    found[" ".join(str(entry["sql"]).split())] = plan
            return found
    return {}


def _plan(entry: Any) -> QueryPlan | None:
    if not isinstance(entry, Mapping) or not isinstance(entry.get("sql"), str):
        return None
    lines, scans, sorts = (_texts(entry.get(key)) for key in ("plan", "seq_scans", "sorts"))
    if lines is None or scans is None or sorts is None:
        return None
    return QueryPlan(lines=lines, full_scans=scans, temp_btrees=sorts)


def _texts(value: Any) -> tuple[str, ...] | None:
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    return None
