"""Issue 14's proof: for each planted bottleneck, the #1 finding names the operation and the
cause; the clean control's #1 is no false alarm; twice each, so the ranking is stable.

Every plant runs through the real ``queueprof run`` (its profiler, its bare baseline) and
``queueprof analyze`` in child processes: see :mod:`tests.diagnosis.harness`. The whole
table: ``python -m tests.diagnosis.run_all``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.pg import SERVER_ENV

from .harness import PlantOutcome, run_plant
from .plants import PLANTS, Plant

REPEATS = int(os.environ.get("QUEUEPROF_DIAG_REPEATS", "2"))
"""Runs per plant; every one must be OK and lead with the same (op, cause)."""


def _cases() -> list[object]:
    return [pytest.param(plant, id=name, marks=_marks(plant)) for name, plant in PLANTS.items()]


def _marks(plant: Plant) -> list[pytest.MarkDecorator]:
    # Every plant is a multi-process, multi-second run ("slow" in pyproject's sense; still
    # run by default, `-m "not slow"` leaves them out); Plant.slow only flags the longest.
    marks = [pytest.mark.slow]
    if plant.known_miss:
        # Kept visible: the table reports it as MISS, and it starts passing when fixed.
        marks.append(pytest.mark.xfail(reason=plant.known_miss, strict=False))
    return marks


@pytest.mark.parametrize("plant", _cases())
def test_top_finding_names_operation_and_cause(
    plant: Plant,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if plant.postgres:  # the server tests/pg.py finds (or starts), or a skip saying why not
        monkeypatch.setenv(SERVER_ENV, request.getfixturevalue("pg_server"))
    # GIVEN the queue with one bottleneck planted (or none, for the control)
    out: Path = tmp_path_factory.mktemp(f"plant-{plant.name}")
    # WHEN the run and its analysis are repeated
    repeats = 1 if plant.known_miss else REPEATS  # run_all --repeat shows their stability
    outcomes: list[PlantOutcome] = [run_plant(plant, out, attempt=i) for i in range(repeats)]
    # THEN every run's #1 finding is right, and they all lead with the same diagnosis
    if "mode=process" in plant.params:  # the plant reached the worker processes too
        assert all(o.processes >= 3 for o in outcomes), [o.processes for o in outcomes]
    for outcome in outcomes:
        assert outcome.ok, (
            f"{plant.name} run {outcome.run_dir}: {outcome.reason}; #1 was {outcome.top_text}"
        )
    if not plant.control and not plant.negligible:  # a negligible plant leads with anything
        leads = (
            {(o.top or {}).get("op") for o in outcomes},
            {(o.top or {}).get("cause") for o in outcomes},
        )
        assert all(len(values) == 1 for values in leads), f"{plant.name}: unstable #1: {leads}"


def test_every_family_of_the_issue_has_a_plant() -> None:
    # Issue 14's families, and at least nine plants plus the control.
    causes = set().union(*(p.expected_causes for p in PLANTS.values()))
    for family in (
        "sql-scan",
        "n-plus-one",
        "hot-subtree",
        "contention",
        "memory-growth",
        "worker-imbalance",
        "loop-hold",
        "round-trips",
    ):
        assert family in causes, family
    assert sum(not p.control for p in PLANTS.values()) >= 9
    assert sum(p.control for p in PLANTS.values()) >= 1
