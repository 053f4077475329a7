"""The seed suite, run without a profiler: one run folder per workload, one combined file.

With ``--save`` the bench also measures the regression gate (:mod:`queueprof.gate`) in the
same invocation, so the saved file is a baseline ``queueprof regress`` can judge against:
the seed suite's results, the environment, and the gate's calibrated figures with the queue
strategy they ran with.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from runs import SCHEMA_VERSION, now_iso, write_atomic
from runs.files import output_error
from workloads.environment import capture_environment
from workloads.runner import RunOutcome, RunPlan, plan_run

from .gate import GateMeasurement, GatePlan, gate_suite, plan_gate
from .instructions import InstructionMeasurement, InstructionPlan, plan_instructions

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
    gate: GatePlan | None = None
    """The regression gate's runs, when the file is saved (a baseline)."""
    instructions: InstructionPlan | None = None
    """The instruction gate's callgrind run, when the file is saved."""


def plan_bench(
    *,
    size: str,
    queue: str,
    targets_file: Path | None,
    out_dir: Path,
    command: Sequence[str],
    gate_dir: Path | None = None,
) -> BenchPlan:
    """Validate the whole suite; raises ``ParameterError``/``TargetsError`` before any run.

    With ``gate_dir`` the regression gate of the same size is planned too, into that folder.
    """
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
    gate = instructions = None
    if gate_dir is not None:
        gate = plan_gate(gate_suite(size), queue=queue, out_dir=gate_dir, command=command)
        instructions = plan_instructions(
            gate.suite.size, queue=queue, run_dir=gate_dir / "instructions", command=command
        )
    return BenchPlan(size, runs, gate, instructions)


def bench_document(
    size: str,
    outcomes: Sequence[RunOutcome],
    gate: GateMeasurement | None = None,
    instructions: InstructionMeasurement | None = None,
) -> dict[str, Any]:
    """The combined, schema-versioned bench file: environment once, then every result, and
    the gate's measurement (with its own ``schema_version``) when there is one, holding the
    instruction gate's counts as ``instructions`` (their own ``schema_version`` too)."""
    document: dict[str, Any] = {
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
    if gate is not None:
        document["gate"] = gate.to_dict()
        if instructions is not None:
            document["gate"]["instructions"] = instructions.to_dict()
    return document


def save_bench(path: Path, document: dict[str, Any]) -> None:
    """Write the bench file atomically (creating its folder)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(
            path, orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
        )
    except OSError as error:  # after minutes of measuring: say where else to put them
        raise output_error(path, error, "name a writable file (--save / --baseline)") from None
