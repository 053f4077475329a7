"""Targets: the thresholds a workload's metrics are checked against.

The defaults ship in ``workloads/targets.toml`` (the seed's values). A user's file, passed with
``--targets FILE``, overrides individual keys. Which way a target goes (the comparator) and its
unit are fixed per key in :data:`TARGET_SPECS`; files only give values.
"""

from __future__ import annotations

import math
import operator
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from runs import Verdict

from .errors import TargetsError

COMPARATORS: Mapping[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
}
"""How a measured value is checked against its target: the targets here and the goal table
(``benchmarks.goals``, whose error counts must be exactly 0) share these."""


@dataclass(frozen=True, slots=True)
class TargetSpec:
    """How one target key is checked."""

    comparator: str
    unit: str
    description: str


TARGET_SPECS: Mapping[str, Mapping[str, TargetSpec]] = {
    "throughput": {
        "process_tasks_per_s_1_worker": TargetSpec(">", "tasks/s", "single worker"),
        "process_tasks_per_s_5_workers": TargetSpec(">", "tasks/s", "5 workers"),
        "process_tasks_per_s_10_workers": TargetSpec(">", "tasks/s", "10 workers"),
    },
    "latency": {
        "e2e_p50_ms": TargetSpec("<", "ms", "end to end, polled, p50"),
        "e2e_p95_ms": TargetSpec("<", "ms", "end to end, polled, p95"),
        "e2e_p99_ms": TargetSpec("<", "ms", "end to end, polled, p99"),
    },
    "dbops": {
        "enqueue_p99_ms": TargetSpec("<", "ms", "enqueue p99, worse phase"),
        "claim_p99_ms": TargetSpec("<", "ms", "claim p99, worse phase"),
        "status_p99_ms": TargetSpec("<", "ms", "status p99, worse phase"),
    },
    "concurrency": {
        "max_workers": TargetSpec(">=", "workers", "largest worker count with every task done"),
        "sqlite_busy_retries_below_10_workers": TargetSpec(
            "<=", "retries", "SQLITE_BUSY with fewer than 10 workers"
        ),
        "claim_conflict_pct": TargetSpec("<", "%", "claim conflicts, worst step"),
    },
    "stress": {
        "lost_tasks": TargetSpec("<=", "tasks", "tasks never completed"),
        "duplicated_tasks": TargetSpec("<=", "tasks", "tasks completed twice"),
    },
    "comparison": {
        "drain_x_best_peer": TargetSpec(
            ">=", "x", "our strategy's drain rate over the best peer's, same run"
        ),
    },
    "memory": {
        "heap_growth_kib_per_1k_tasks": TargetSpec("<", "KiB/1k tasks", "leak verdict"),
    },
}


@dataclass(frozen=True, slots=True)
class Targets:
    """Target values per workload, and the files they came from."""

    values: Mapping[str, Mapping[str, float]]
    sources: tuple[str, ...]

    def for_workload(self, workload: str) -> Mapping[str, float]:
        """The targets of one workload (empty if it has none)."""
        return self.values.get(workload, {})

    def evaluate(self, workload: str, metrics: Mapping[str, float]) -> list[Verdict]:
        """Check every target of ``workload`` whose metric was measured."""
        verdicts = []
        specs = TARGET_SPECS.get(workload, {})
        for key, target in self.for_workload(workload).items():
            if key not in metrics:
                continue  # not measured in this run (e.g. a worker count that was not run)
            spec = specs[key]
            measured = float(metrics[key])
            verdicts.append(
                Verdict(
                    metric=key,
                    measured=measured,
                    target=target,
                    comparator=spec.comparator,
                    unit=spec.unit,
                    passed=COMPARATORS[spec.comparator](measured, target),
                    description=spec.description,
                )
            )
        return verdicts


def default_targets() -> Targets:
    """The targets shipped with queueprof (``workloads/targets.toml``)."""
    source = resources.files(__package__).joinpath("targets.toml")
    text = source.read_text(encoding="utf-8")
    return Targets(_validated(_parse(text, "workloads/targets.toml"), "workloads/targets.toml"), ())


def load_targets(path: Path | None = None) -> Targets:
    """The default targets with the keys in ``path`` (if given) overriding them."""
    base = default_targets()
    if path is None:
        return base
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise TargetsError(
            f"targets file {str(path)!r} cannot be read ({error.strerror}); check the path"
        ) from None
    except UnicodeDecodeError as error:
        raise TargetsError(
            f"targets file {str(path)!r} is not UTF-8 text (byte {error.object[error.start]:#04x} "
            f"at offset {error.start}); save it as UTF-8 TOML"
        ) from None
    overrides = _validated(_parse(text, str(path)), str(path))
    merged = {name: dict(section) for name, section in base.values.items()}
    for name, section in overrides.items():
        merged[name].update(section)
    return Targets(merged, (str(path),))


def _parse(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise TargetsError(f"targets file {source!r} is not valid TOML: {error}") from None


def _validated(data: Mapping[str, Any], source: str) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for section, body in data.items():
        specs = TARGET_SPECS.get(section)
        if specs is None:
            raise TargetsError(
                f"targets file {source!r}: unknown section [{section}]; "
                f"valid sections: {', '.join(f'[{s}]' for s in TARGET_SPECS)}"
            )
        if not isinstance(body, dict):
            raise TargetsError(
                f"targets file {source!r}: {section!r} must be a table, e.g. [{section}]"
            )
        out[section] = {}
        for key, value in body.items():
            if key not in specs:
                raise TargetsError(
                    f"targets file {source!r}: unknown key {key!r} in [{section}]; "
                    f"valid keys: {', '.join(specs)}"
                )
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TargetsError(
                    f"targets file {source!r}: [{section}] {key} = {value!r} is not a number; "
                    f"write e.g. {key} = 10 (unit: {specs[key].unit})"
                )
            if not math.isfinite(value):
                raise TargetsError(
                    f"targets file {source!r}: [{section}] {key} = {value!r} must be finite"
                )
            out[section][key] = float(value)
    return out
