"""How a #1 finding is judged (no runs): what "names the operation and the cause" and
"no false alarm" mean, on hand-made findings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .harness import default_job_commands, judge, top_finding, verdict
from .plants import PLANTS


def finding(
    op: str | None, cause: str, standing: str = "cause", share: float = 0.4
) -> dict[str, Any]:
    return {"op": op, "cause": cause, "standing": standing, "cost": {"share": share}}


def test_leading_is_the_number_one_and_an_insufficient_finding_never_is() -> None:
    first = finding("claim", "sql-scan")
    assert top_finding({"leading": first, "findings": [finding("status", "n-plus-one")]}) == first
    assert top_finding({"leading": None, "findings": [first]}) is None
    older = {"findings": [dict(first, sufficient=False), finding("status", "n-plus-one")]}
    assert top_finding(older) == finding("status", "n-plus-one")


def test_a_plant_needs_both_its_operation_and_its_cause() -> None:
    plant = PLANTS["status-n-plus-one"]
    assert judge(plant, finding("status", "n-plus-one"))[0]
    assert not judge(plant, finding("claim", "n-plus-one"))[0]
    assert not judge(plant, finding("status", "hot-subtree"))[0]
    assert not judge(plant, None)[0]


@pytest.mark.parametrize(
    ("top", "ok"),
    [
        (None, True),
        (finding("enqueue", "profile", standing="information"), True),
        (finding("claim", "sql-scan", standing="information", share=0.5), True),
        (finding(None, "overhead"), True),
        (finding("claim", "contention", share=0.01), True),
        (finding("claim", "sql-scan", share=0.3), False),
        (finding("claim", "memory-growth", share=0.06), False),
    ],
)
def test_the_controls_false_alarm(top: dict[str, Any] | None, ok: bool) -> None:
    assert judge(PLANTS["control"], top)[0] is ok


def test_a_plant_whose_cost_is_not_real_is_reported_but_never_leads() -> None:
    plant = PLANTS["drained-reads-all-states"]
    assert plant.negligible
    leading = finding("enqueue", "profile", standing="information")
    own = finding("status", "sql-scan", standing="insufficient evidence", share=0.01)
    # its own finding below the floors, no false alarm at #1: OK
    assert verdict(plant, {"leading": leading, "findings": [leading, own]})[1]
    # not reported at all: the rule stopped seeing it
    assert not verdict(plant, {"leading": leading, "findings": [leading]})[1]
    # standing as a cause, or leading: a 1% cost blown up
    as_cause = dict(own, standing="cause")
    assert not verdict(plant, {"leading": leading, "findings": [leading, as_cause]})[1]
    assert not verdict(plant, {"leading": as_cause, "findings": [as_cause]})[1]


def test_the_default_jobs_analyze_reads_the_plants_folder(tmp_path: Path) -> None:
    """GIVEN the tox env's analyze command, whose --run-args takes every word after it,
    WHEN the harness points it at the plant's folder, THEN --traces comes before --run-args
    (after it, argparse hands it to the runs' arguments and analyze reads traces/)."""
    commands = default_job_commands("profile-cpu", ["--quiet"], tmp_path)
    analyze = next(c for c in commands if c[3] == "analyze")
    assert analyze[4:6] == ["--traces", str(tmp_path)]
    assert analyze.index("--run-args") > analyze.index("--traces")
    for run in (c for c in commands if c[3] == "run"):
        assert run[4:6] == ["--out", str(tmp_path)]
