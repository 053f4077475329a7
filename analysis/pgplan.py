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
from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True)
class RunPlans:
    """The plans a PostgreSQL run made, by statement text (on one line)."""

    plans: Mapping[str, QueryPlan]
    problem: str | None = None
    """Why the run's snapshot gave no plans although the folder has one."""


def load_pg_plans(folder: Path) -> RunPlans:
    """The plans of the run's main PostgreSQL database; none when the run has no snapshot,
    and none with the reason when it has one that does not read as the runner writes it."""
    path = optional_run_file(folder, SCHEMA_POSTGRES, PLAN_FILE_FIX)
    if path is None:
        return RunPlans({})
    try:
        data = read_regular_file(path, MAX_BYTES)
        if len(data) > MAX_BYTES:
            return _unused(f"it is over {MAX_BYTES >> 20} MiB")
        document = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        return _unused(f"it is not JSON ({error})")
    except (OSError, UnsafePathError) as error:
        return _unused(f"it cannot be read ({error})")
    read = _plans(document)
    if read is None:
        return _unused("it does not hold the chosen database's plans as the runner writes them")
    plans, damaged = read
    if damaged:
        return RunPlans(
            plans,
            f"{SCHEMA_POSTGRES}: {damaged} of {damaged + len(plans)} plans do not read as the "
            f"runner writes them; their statements carry no plan ({PLAN_FILE_FIX})",
        )
    return RunPlans(plans)


def _unused(why: str) -> RunPlans:
    return RunPlans(
        {},
        f"{SCHEMA_POSTGRES} in the run folder was not used: {why}; PostgreSQL statements carry "
        f"no plan and the scan and sort rules cannot judge them ({PLAN_FILE_FIX})",
    )


def _plans(document: Any) -> tuple[dict[str, QueryPlan], int] | None:
    """(plans by statement, how many entries did not read), or None for no plans at all."""
    if not isinstance(document, Mapping):
        return None
    chosen = document.get("chosen")
    databases = document.get("databases")
    if not isinstance(databases, list):
        return None
    for database in databases:
        if isinstance(database, Mapping) and database.get("name") == chosen:
            plans = database.get("plans")
            if not isinstance(plans, Mapping):
                return None
            found: dict[str, QueryPlan] = {}
            damaged = 0
            for entry in plans.values():
                plan = _plan(entry)
                if plan is None:
                    damaged += 1
                else:
                    found[" ".join(str(entry["sql"]).split())] = plan
            return found, damaged
    return None


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
