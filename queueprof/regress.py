"""The regression gate's verdict: a gate measurement against the committed baseline.

:func:`load_baseline` reads the bench file (``queueprof bench --save``) and refuses, with the
command that fixes it, a file that is missing, not JSON, of another schema, without a gate
section, or measured with another suite, size or queue strategy (:func:`check_comparable`).
:func:`judge` sets each gated metric's cost (:mod:`queueprof.gate`) against the baseline's
with :func:`analysis.compare.band_comparison`, the comparison's own noise-band verdict; the
band of a metric is its declared band, widened to twice the larger spread of the two
measurements' rounds when they were noisier than that. A metric regresses when its cost grew
by more than its band; the gate fails when any gated metric regressed.

Beside those, the instruction gate (:mod:`queueprof.instructions`): each operation's
instructions per call or task under callgrind, stored in the baseline's gate section as
``instructions`` and judged with a tight band (:data:`~queueprof.instructions.INSTRUCTION_BAND`);
a baseline counted with another interpreter, SQLite, library or valgrind build is refused
(:func:`check_instructions_comparable`). A regressed operation comes with the C functions whose
self instructions grew the most (:func:`~queueprof.instructions.function_changes`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from analysis.compare import (
    ChangeVerdict,
    Direction,
    MetricComparison,
    Scope,
    band_comparison,
    differences,
    flatten,
)
from runs import SCHEMA_VERSION, UsageError
from workloads.calibration import Calibration
from workloads.params import Size

from .gate import GATE_SCHEMA_VERSION, GATED_BY_NAME, GateMeasurement, GatePlan
from .instructions import (
    CYCLE_METRIC,
    CYCLE_PHASES,
    INSTRUCTION_BAND,
    INSTRUCTION_METRICS,
    FunctionChange,
    InstructionMeasurement,
    InstructionPlan,
    function_changes,
)

REPORT_SCHEMA_VERSION = 1
"""Version of ``regress.json``. Bump on any change of :meth:`GateReport.to_dict`."""

SPREAD_FACTOR = 2.0
"""A band is at least this many times the noisier measurement's round spread."""

DEFAULT_BASELINES: Mapping[str, Path] = {
    Size.SMOKE.value: Path("results/baseline_smoke.json"),
    Size.DEFAULT.value: Path("results/baseline_results.json"),
    Size.FULL.value: Path("results/baseline_full.json"),
}
"""Where each size's baseline is committed (``--baseline`` overrides)."""


class BaselineError(UsageError):
    """The baseline file cannot be used: missing, malformed, or not comparable (exit 2)."""


def regenerate_command(size: str, path: Path) -> str:
    """The command that writes a fresh baseline of ``size`` to ``path``."""
    size_option = "" if size == Size.DEFAULT.value else f" --size {size}"
    return f"queueprof bench{size_option} --save {path}"


@dataclass(frozen=True, slots=True)
class Baseline:
    """A loaded baseline: its gate measurement and where it came from."""

    path: Path
    created_at: str
    environment: Mapping[str, Any]
    gate: GateMeasurement
    instructions: InstructionMeasurement | None = None
    """The instruction gate's counts (None in a baseline saved before it existed)."""


def load_baseline(path: Path, size: str) -> Baseline:
    """Read the bench file at ``path``; :class:`BaselineError` naming it and the fix if unusable."""
    fix = f"create it with `{regenerate_command(size, path)}`"
    if not path.exists():
        raise BaselineError(f"baseline {path} does not exist; {fix}")
    if path.is_dir():
        raise BaselineError(f"baseline {path} is a folder; name the bench JSON file inside it")
    try:
        data = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as error:
        raise BaselineError(f"baseline {path} is not JSON ({error}); {fix}") from None
    if not isinstance(data, dict) or data.get("kind") != "bench":
        raise BaselineError(
            f'baseline {path} is not a queueprof bench file (no "kind": "bench"); {fix}'
        )
    if data.get("schema_version") != SCHEMA_VERSION:
        raise BaselineError(
            f"baseline {path} has schema_version {data.get('schema_version')!r}, this "
            f"queueprof reads {SCHEMA_VERSION}; regenerate it with "
            f"`{regenerate_command(size, path)}`"
        )
    gate = data.get("gate")
    if not isinstance(gate, dict):
        raise BaselineError(
            f"baseline {path} has no gate section (it was saved before the regression gate "
            f"existed, or by a bench without --save); regenerate it with "
            f"`{regenerate_command(size, path)}`"
        )
    if gate.get("schema_version") != GATE_SCHEMA_VERSION:
        raise BaselineError(
            f"baseline {path}: gate schema_version {gate.get('schema_version')!r}, this "
            f"queueprof reads {GATE_SCHEMA_VERSION}; regenerate it with "
            f"`{regenerate_command(size, path)}`"
        )
    try:
        measurement = GateMeasurement.from_dict(gate)
        environment = dict(data.get("environment") or {})
        instructions = (
            InstructionMeasurement.from_dict(gate["instructions"])
            if gate.get("instructions") is not None
            else None
        )
    except (KeyError, TypeError, ValueError) as error:
        raise BaselineError(
            f"baseline {path}: its gate section is malformed ({type(error).__name__}: {error}); "
            f"regenerate it with `{regenerate_command(size, path)}`"
        ) from None
    return Baseline(path, str(data.get("created_at", "")), environment, measurement, instructions)


def check_comparable(
    baseline: Baseline, plan: GatePlan, instructions: InstructionPlan | None = None
) -> None:
    """Refuse a gate whose size, suite or queue strategy differs from the baseline's, and
    (with ``instructions``) a baseline whose instruction counts cannot be compared."""
    size = plan.suite.size.value
    gate = baseline.gate
    regenerate = f"regenerate the baseline with `{regenerate_command(size, baseline.path)}`"
    if gate.size != size:
        raise BaselineError(
            f"baseline {baseline.path} was measured at size {gate.size!r} and this gate runs "
            f"size {size!r}: the workloads differ; run `queueprof regress --size {gate.size}` "
            f"or give a {size} baseline (--baseline), or {regenerate}"
        )
    suite = _canonical(plan.description)
    if _canonical(gate.suite) != suite:
        raise BaselineError(
            f"baseline {baseline.path} ran another gate suite: "
            f"{_describe_differences(gate.suite, plan.description)}; the figures measure "
            f"different work, so {regenerate}"
        )
    if _canonical(gate.queue) != _canonical(plan.queue):
        raise BaselineError(
            f"baseline {baseline.path} ran another queue strategy: "
            f"{_describe_differences(gate.queue, plan.queue)}; a strategy is a change of what "
            f"is measured, not a regression: {regenerate} (with the same --queue)"
        )
    missing = sorted(
        name for name, m in GATED_BY_NAME.items() if m.band is not None and name not in gate.metrics
    )
    if missing:
        raise BaselineError(
            f"baseline {baseline.path} has no figures for gated metric(s) "
            f"{', '.join(missing)}; {regenerate}"
        )
    if instructions is not None:
        check_instructions_comparable(baseline, instructions)


def check_instructions_comparable(baseline: Baseline, plan: InstructionPlan) -> None:
    """Refuse a baseline without instruction counts, or of another size, suite, strategy or
    toolchain: instruction counts are a property of the code AND of the builds that run it
    (another interpreter build, SQLite, orjson or valgrind changes them with no change to
    the queue), so they are not compared across those."""
    regenerate = f"regenerate the baseline with `{regenerate_command(plan.size, baseline.path)}`"
    counted = baseline.instructions
    if counted is None:
        raise BaselineError(
            f"baseline {baseline.path} has no instruction counts (saved before the instruction "
            f"gate existed); {regenerate}, or judge the wall-clock gate alone with `--only wall`"
        )
    where = f"baseline {baseline.path}"
    if counted.size != plan.size or dict(counted.params) != plan.params.to_dict():
        raise BaselineError(
            f"{where} counted instructions of other phases (size {counted.size}, "
            f"{dict(counted.params)} -> size {plan.size}, {plan.params.to_dict()}): the "
            f"figures measure different work, so {regenerate}"
        )
    if _canonical(counted.queue) != _canonical(plan.queue.to_dict()):
        raise BaselineError(
            f"{where} counted instructions with another queue strategy: "
            f"{_describe_differences(counted.queue, plan.queue.to_dict())}; a strategy is a "
            f"change of what is measured, not a regression: {regenerate} (with the same --queue)"
        )
    changed = differences(flatten(counted.toolchain, ""), flatten(plan.toolchain, ""))
    if changed:
        raise BaselineError(
            f"{where} counted instructions with another toolchain: "
            + "; ".join(f"{d.field} {d.baseline!r} -> {d.candidate!r}" for d in changed)
            + ". Instruction counts change with the interpreter's build, SQLite's, the "
            "libraries' and valgrind's with no change to the queue, so they are not compared: "
            f"{regenerate} on this machine, or judge the wall-clock gate alone with `--only wall`"
        )


@dataclass(frozen=True, slots=True)
class GateRow:
    """One metric of the gate: the comparison and the band it was judged with."""

    comparison: MetricComparison
    band: float | None
    """The relative cost increase allowed; None for a metric that is reported, not gated."""
    baseline_measured: float
    candidate_measured: float
    measured_unit: str

    @property
    def gated(self) -> bool:
        """True when this metric can fail the gate."""
        return self.band is not None

    @property
    def regressed(self) -> bool:
        """True when a gated metric costs more than its band allows."""
        return self.gated and self.comparison.verdict.regressed

    @property
    def margin(self) -> float | None:
        """How far the change is from failing: band - relative change (negative = failed)."""
        change = self.comparison.relative_change
        if self.band is None or change is None:
            return None
        return self.band - change


@dataclass(frozen=True, slots=True)
class InstructionRow:
    """One instruction metric of the gate, and the functions behind its change."""

    comparison: MetricComparison
    band: float
    operation: str
    """The queue operation the metric counts (``enqueue``, ``claim``, ``complete``...)."""
    functions: tuple[FunctionChange, ...]
    """The C functions whose self instructions per unit grew the most (empty for the cycle)."""

    @property
    def regressed(self) -> bool:
        """True when the instructions grew by more than the band."""
        return self.comparison.verdict.regressed

    @property
    def margin(self) -> float | None:
        """band - relative change (negative = failed)."""
        change = self.comparison.relative_change
        return None if change is None else self.band - change

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``regress.json``)."""
        return {
            "name": self.comparison.name,
            "operation": self.operation,
            "unit": self.comparison.unit,
            "baseline": self.comparison.baseline,
            "candidate": self.comparison.candidate,
            "relative_change": self.comparison.relative_change,
            "band": self.band,
            "margin": self.margin,
            "verdict": self.comparison.verdict.value,
            "regressed": self.regressed,
            "functions": [f.to_dict() for f in self.functions],
        }


@dataclass(frozen=True, slots=True)
class GateReport:
    """The gate's verdict on every metric."""

    baseline_path: str
    baseline_created_at: str
    size: str
    baseline_calibration: Calibration | None
    """None when the wall-clock gate did not run (``--only instructions``)."""
    candidate_calibration: Calibration | None
    rows: tuple[GateRow, ...]
    environment_differences: tuple[str, ...] = ()
    instruction_rows: tuple[InstructionRow, ...] = ()
    instruction_folder: str = ""
    """The callgrind run folder (its speedscope file and per-phase profiles)."""

    @property
    def regressions(self) -> tuple[GateRow, ...]:
        """Gated wall-clock metrics that got significantly worse."""
        return tuple(row for row in self.rows if row.regressed)

    @property
    def instruction_regressions(self) -> tuple[InstructionRow, ...]:
        """Instruction metrics that grew beyond their band."""
        return tuple(row for row in self.instruction_rows if row.regressed)

    @property
    def regressed_names(self) -> tuple[str, ...]:
        """Every regressed metric of both gates, wall-clock first."""
        wall = tuple(row.comparison.name for row in self.regressions)
        return wall + tuple(row.comparison.name for row in self.instruction_regressions)

    @property
    def passed(self) -> bool:
        """True when no gated metric of either gate regressed."""
        return not self.regressed_names

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form (``regress.json``), with ``schema_version``."""
        return {
            "schema_version": REPORT_SCHEMA_VERSION,
            "baseline": self.baseline_path,
            "baseline_created_at": self.baseline_created_at,
            "size": self.size,
            "passed": self.passed,
            "calibration": {
                "baseline": _calibration_dict(self.baseline_calibration),
                "candidate": _calibration_dict(self.candidate_calibration),
            },
            "metrics": [
                {
                    "name": row.comparison.name,
                    "gated": row.gated,
                    "unit": row.comparison.unit,
                    "baseline_cost": row.comparison.baseline,
                    "candidate_cost": row.comparison.candidate,
                    "relative_change": row.comparison.relative_change,
                    "band": row.band,
                    "margin": row.margin,
                    "verdict": row.comparison.verdict.value,
                    "regressed": row.regressed,
                    "baseline_measured": row.baseline_measured,
                    "candidate_measured": row.candidate_measured,
                    "measured_unit": row.measured_unit,
                }
                for row in self.rows
            ],
            "regressions": list(self.regressed_names),
            "environment_differences": list(self.environment_differences),
            "instructions": [row.to_dict() for row in self.instruction_rows],
            "instruction_folder": self.instruction_folder,
        }

    def to_json(self) -> bytes:
        """Indented JSON with sorted keys."""
        return orjson.dumps(self.to_dict(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)


def check_band(band: float | None) -> None:
    """Raise :class:`UsageError` unless ``band`` (``--noise``) is None or in (0, 10]."""
    if band is not None and not (math.isfinite(band) and 0 < band <= 10):
        raise UsageError(
            f"--noise {band!r}: give the relative cost increase to allow, in (0, 10], "
            "e.g. --noise 1.0 to fail a metric that costs more than twice the baseline's"
        )


def _calibration_dict(calibration: Calibration | None) -> dict[str, Any] | None:
    return None if calibration is None else calibration.to_dict()


def judge(
    baseline: Baseline,
    candidate: GateMeasurement | None,
    *,
    band: float | None = None,
    environment: Mapping[str, Any] | None = None,
    instructions: InstructionMeasurement | None = None,
) -> GateReport:
    """Every metric of ``candidate`` against ``baseline``; ``band`` overrides every gated band.

    ``candidate`` is None when only the instruction gate ran; ``instructions`` is None when
    only the wall-clock gate ran.
    """
    check_band(band)
    instruction_rows = () if instructions is None else judge_instructions(baseline, instructions)
    folder = "" if instructions is None else instructions.run_folder
    if candidate is None:
        return GateReport(
            baseline_path=str(baseline.path),
            baseline_created_at=baseline.created_at,
            size=instructions.size if instructions is not None else baseline.gate.size,
            baseline_calibration=None,
            candidate_calibration=None,
            rows=(),
            instruction_rows=instruction_rows,
            instruction_folder=folder,
        )
    base_calibration = baseline.gate.calibration
    cand_calibration = candidate.calibration
    rows = []
    for name, declared in GATED_BY_NAME.items():
        b_rounds = baseline.gate.metrics.get(name)
        c_rounds = candidate.metrics.get(name)
        if b_rounds is None or c_rounds is None:
            continue  # reported-only metrics may be missing from an older baseline
        noise = max(b_rounds.spread(base_calibration), c_rounds.spread(cand_calibration))
        allowed = None
        if declared.band is not None:
            allowed = max(band if band is not None else declared.band, SPREAD_FACTOR * noise)
        comparison = band_comparison(
            name,
            Scope.METRIC,
            b_rounds.cost(base_calibration),
            c_rounds.cost(cand_calibration),
            Direction.LOWER_IS_BETTER,
            # A reported-only metric still gets a verdict, against the default band.
            allowed if allowed is not None else 1.0,
            unit=c_rounds.unit,
        )
        rows.append(
            GateRow(
                comparison,
                allowed,
                b_rounds.best,
                c_rounds.best,
                c_rounds.measured_unit,
            )
        )
    return GateReport(
        baseline_path=str(baseline.path),
        baseline_created_at=baseline.created_at,
        size=candidate.size,
        baseline_calibration=base_calibration,
        candidate_calibration=cand_calibration,
        rows=tuple(rows),
        environment_differences=tuple(
            _environment_differences(baseline.environment, environment or {})
        ),
        instruction_rows=instruction_rows,
        instruction_folder=folder,
    )


def judge_instructions(
    baseline: Baseline, candidate: InstructionMeasurement
) -> tuple[InstructionRow, ...]:
    """Every instruction metric against the baseline's (``check_instructions_comparable``
    has refused an incomparable one), with the functions behind each change."""
    counted = baseline.instructions
    if counted is None:
        raise BaselineError(
            f"baseline {baseline.path} has no instruction counts; regenerate it with "
            f"`{regenerate_command(candidate.size, baseline.path)}`"
        )
    base_metrics, cand_metrics = counted.metrics, candidate.metrics
    rows = []
    for metric in INSTRUCTION_METRICS:
        base_phase, cand_phase = counted.phases[metric.phase], candidate.phases[metric.phase]
        rows.append(
            InstructionRow(
                _instruction_comparison(metric.name, base_metrics, cand_metrics, metric.per),
                INSTRUCTION_BAND,
                cand_phase.operation,
                function_changes(base_phase, cand_phase, metric.per),
            )
        )
    rows.append(
        InstructionRow(
            _instruction_comparison(CYCLE_METRIC, base_metrics, cand_metrics, "task"),
            INSTRUCTION_BAND,
            "+".join(CYCLE_PHASES),
            (),
        )
    )
    return tuple(rows)


def _instruction_comparison(
    name: str, baseline: Mapping[str, float], candidate: Mapping[str, float], per: str
) -> MetricComparison:
    return band_comparison(
        name,
        Scope.METRIC,
        baseline[name],
        candidate[name],
        Direction.LOWER_IS_BETTER,
        INSTRUCTION_BAND,
        unit=f"instructions/{per}",
    )


_ENVIRONMENT_COMPARED = (
    ("cpu", "model"),
    ("cpu", "logical_cores"),
    ("python", "version"),
    ("sqlite", "version"),
)
"""What can change the queue's cost relative to sqlite3 beyond the calibration's reach."""


def _environment_differences(
    baseline: Mapping[str, Any], candidate: Mapping[str, Any]
) -> list[str]:
    found = []
    for section, key in _ENVIRONMENT_COMPARED:
        b = (baseline.get(section) or {}).get(key)
        c = (candidate.get(section) or {}).get(key)
        if b != c:
            found.append(f"{section}.{key}: {b} -> {c}")
    return found


def _canonical(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def _describe_differences(baseline: Mapping[str, Any], candidate: Mapping[str, Any]) -> str:
    changed = differences(flatten(baseline, ""), flatten(candidate, ""))
    return "; ".join(f"{d.field} {d.baseline} -> {d.candidate}" for d in changed) or (
        "(same values, different layout)"
    )


def verdict_text(row: GateRow) -> str:
    """What the table's last column says for ``row``."""
    if not row.gated:
        return "reported"
    if row.regressed:
        return "REGRESSED"
    if row.comparison.verdict is ChangeVerdict.NO_CHANGE:
        return "ok"
    return "ok (" + row.comparison.verdict.value + ")"
