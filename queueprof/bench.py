"""The seed suite, run without a profiler: one run folder per workload, one combined file."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from workloads.environment import capture_environment
from workloads.results import SCHEMA_VERSION
from workloads.runfolder import now_iso, write_atomic
from workloads.runner import RunOutcome, RunPlan, plan_run

SEED_SUITE: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("throughput", ("worker_counts=1,5,10",)),
    ("latency", ()),
    ("dbops", ()),
    ("concurrency", ()),
)
"""(workload, --param overrides): the seed's benchmark suite."""


@dataclass(frozen=True)
class BenchPlan:
    """Every run of the suite, validated before any is started."""

    size: str
    runs: tuple[RunPlan, ...]


def plan_bench(
    *,
    size: str,
    queue: str,
    targets_file: Path | None,
    out_dir: Path,
    command: Sequence[str],
) -> BenchPlan:
    """Validate the whole suite; raises ``ParameterError``/``TargetsError`` before any run."""
    runs = tuple(
        plan_run(
            name,
            size=size,
            params=overrides,
            queue=queue,
            targets_file=targets_file,
            out_dir=out_dir,
            command=command,
        )
        for name, overrides in SEED_SUITE
    )
    return BenchPlan(size, runs)


def bench_document(size: str, outcomes: Sequence[RunOutcome]) -> dict[str, Any]:
    """The combined, schema-versioned bench file: environment once, then every result."""
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "bench",
        "size": size,
        "created_at": now_iso(),
        "environment": capture_environment(),
        "runs": [
            {
                "run_id": outcome.run_dir.name,
                "status": outcome.status.value,
                "result": {
                    k: v for k, v in outcome.result.to_dict().items() if k != "schema_version"
                },
            }
            for outcome in outcomes
        ],
    }


def save_bench(path: Path, document: dict[str, Any]) -> None:
    """Write the bench file atomically (creating its folder)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
