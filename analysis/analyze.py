"""From run folders to an :class:`~analysis.model.Analysis`: load each artifact, analyse it.

The only module that knows which artifact feeds which analysis; every step it calls is a
pure function of loaded data.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from itertools import combinations
from pathlib import Path
from typing import Any

from runs.files import (
    HEAP_GROWTH,
    MEMRAY_STATS,
    OP_SAMPLES,
    PG_ACTIVITY,
    PG_STATEMENTS,
    SQL_STATEMENTS,
)
from runs.manifest import PROGRAM_WORKLOAD
from workloads.goals import goal_verdicts

from .attribution import Attribution, attribute, compare_attributions
from .callers import named_by_caller
from .crossover import crossover_report
from .errors import ScalingError
from .findings import OVERHEAD_GOALS, agreement_findings, consolidate, run_findings
from .hotspots import SqlHotspot, sql_hotspots
from .latency import LatencyDistribution, from_microseconds, from_nanoseconds
from .load.capture import load_op_samples, load_sql_statements
from .load.collapsed import load_collapsed
from .load.heap_growth import FIX as HEAP_GROWTH_FIX
from .load.heap_growth import load_heap_growth
from .load.memray_stats import load_memray_stats
from .load.pgserver import load_server_activity, load_server_statements
from .load.pyinstrument_session import load_session
from .load.runfolder import LoadedRun, load_run
from .load.screenshots import load_screenshots
from .load.speedscope import load_speedscope
from .load.trace import load_trace
from .memory import AllocationAttribution, RetainedGrowth, attribute_growth, attribute_memory
from .model import (
    Analysis,
    ArtifactLink,
    BareRun,
    Overhead,
    RoundTrips,
    RunAgreement,
    RunAnalysis,
    ranked,
)
from .operations import OP_NAMES, OperationMap
from .pgplan import load_pg_plans
from .pgserver import DatabaseSide, database_side
from .profile import SampledProfile, ThreadRole, program_main_thread
from .scaling import MIN_POINTS, UslFit, scaling_fits
from .sqlplan import load_schema
from .timelines import memory_timeline, queue_timelines
from .trace_attribution import attribute_trace

PYINSTRUMENT_SESSION = "pyinstrument.pyisession"
PYINSTRUMENT_THREADS = "pyinstrument-sqlite-threads.pyisession"
COMPARED_ROLES = (ThreadRole.EVENT_LOOP, ThreadRole.SQLITE_THREAD)


def analyze(folders: Sequence[Path]) -> Analysis:
    """Analyse every run folder, compare profilers across runs, rank every finding."""
    runs = tuple(analyze_run(load_run(folder)) for folder in folders)
    agreements = profiler_agreement(runs)
    by_id = {run.run_id: run for run in runs}
    findings = consolidate([f for run in runs for f in run.findings], by_id)
    findings += agreement_findings(agreements, by_id)
    return Analysis(runs=runs, agreements=agreements, findings=ranked(findings))


def analyze_run(run: LoadedRun) -> RunAnalysis:
    """Everything about one loaded run; its findings come last, from the rest."""
    notes: list[str] = []
    if run.manifest.status.value != "complete":
        notes.append(
            f"the run is {run.manifest.status.value}: results are partial"
            + (
                f" ({run.manifest.error.type}: {run.manifest.error.message})"
                if run.manifest.error
                else ""
            )
        )
    notes += [f"{run.profiler}: {p}" for p in run.manifest.profiler.get("problems", ())]
    notes += list(run.result.notes)

    sql_path = run.artifact(fmt="json", path=SQL_STATEMENTS)
    statements = load_sql_statements(sql_path) if sql_path is not None else ()
    specs = run.adapter_specs
    if run.manifest.workload == PROGRAM_WORKLOAD:
        # A program's SQL run outside its --ops map (or with none) is named after the
        # function that ran it, and that function's samples are attributed to it too.
        statements, inferred = named_by_caller(statements)
        if inferred is not None:
            specs = (*specs, inferred)
            notes.append(
                "operations named after the program's functions that ran SQL outside every "
                "mapped operation ("
                + ", ".join(f"{p.op} in {_short_file(p.file)}" for p in inferred.code_paths)
                + "); map them yourself with --ops"
            )
    operations = OperationMap(specs)

    attributions: list[Attribution] = []
    profile = _profile_attribution(run, operations)
    if profile is not None:
        attributions.append(profile)
    trace_latencies: tuple[LatencyDistribution, ...] = ()
    trace_path = run.artifact(fmt="chrome-trace")
    if trace_path is not None:
        trace = load_trace(trace_path)
        source = _relative(run, trace_path)
        attributions.append(attribute_trace(trace, source, operations))
        trace_latencies = from_microseconds(trace.op_durations_us, source)
        if trace.skipped:
            notes.append(
                f"{source}: {trace.skipped:,} malformed event(s) skipped, e.g. {trace.problems[0]}"
            )
        overflow = trace.metadata.get("viztracer_metadata", {})
        if isinstance(overflow, dict) and overflow.get("overflow"):
            notes.append(f"{source}: viztracer's buffer overflowed; the earliest calls are missing")

    allocations: AllocationAttribution | None = None
    stats_path = run.artifact(fmt="json", path=MEMRAY_STATS)
    if stats_path is not None:
        allocations = attribute_memory(load_memray_stats(stats_path), MEMRAY_STATS, operations)

    retained: RetainedGrowth | None = None
    growth_path = run.optional_file(HEAP_GROWTH, HEAP_GROWTH_FIX)
    if growth_path is not None:
        retained = attribute_growth(load_heap_growth(growth_path), HEAP_GROWTH, operations)

    latencies: tuple[LatencyDistribution, ...] = ()
    round_trips: RoundTrips | None = None
    samples_path = run.artifact(fmt="npz", path=OP_SAMPLES)
    if samples_path is not None:
        samples = load_op_samples(samples_path)
        latencies = from_nanoseconds(samples.ops, OP_SAMPLES)
        completed = int(run.result.counters.get("completed", 0))
        if not completed and "handler" in samples.ops:
            # Workloads that count no completions (dbops) ran the handler once per task.
            completed = int(samples.ops["handler"].size)
        calls = {op: int(v.size) for op, v in samples.ops.items() if op != "handler" and v.size}
        # Claims of engines sharing a connection travel together: count trips, not calls.
        claim_trips = int(run.result.counters.get("claim_trips", 0))
        if claim_trips and "claim" in calls:
            calls["claim"] = min(calls["claim"], claim_trips)
        if completed and calls:
            inline = int(run.result.counters.get("inline_calls", 0))
            round_trips = RoundTrips(calls, completed, inline)

    hotspots: tuple[SqlHotspot, ...] = ()
    if sql_path is not None:
        schema = load_schema(run.folder)
        pg = load_pg_plans(run.folder)
        run_plans = pg.plans
        notes.extend(problem for problem in (schema.problem, pg.problem) if problem)
        if not schema.snapshot and not run_plans and not (schema.problem or pg.problem):
            notes.append(
                "no schema.sql in the run folder: query plans are of the analysing checkout's "
                "schema, which may not be the one the run used"
            )
        hotspots = sql_hotspots(
            statements,
            {d.op: d.total_ms for d in latencies},
            _store_time_by_op(attributions),
            schema,
            run_plans,
        )

    analysis = RunAnalysis(
        run_id=run.run_id,
        folder=str(run.folder),
        workload=run.manifest.workload,
        size=run.manifest.size,
        profiler=run.profiler,
        profiler_options=dict(run.manifest.profiler.get("options", {})),
        status=run.manifest.status.value,
        started_at=run.manifest.started_at,
        duration_s=run.result.duration_s,
        params=dict(run.manifest.params),
        queue=dict(run.manifest.queue),
        metrics=dict(run.result.metrics),
        counters=dict(run.result.counters),
        steps=run.result.steps,
        targets=run.result.verdicts,
        attributions=tuple(attributions),
        allocations=allocations,
        retained=retained,
        latencies=latencies,
        trace_latencies=trace_latencies,
        sql=hotspots,
        database=_database(run),
        round_trips=round_trips,
        overhead=_overhead(run),
        bare=_bare(run),
        screenshots=load_screenshots(run),
        notes=tuple(notes),
        scaling=_scaling(run, notes),
        timelines=queue_timelines(run.result),
        memory_timeline=memory_timeline(run.result),
        goals=goal_verdicts(run.manifest.workload, run.result.metrics),
        crossover=crossover_report(run.result.steps),
        artifacts=tuple(
            ArtifactLink(
                path=entry["path"],
                kind=entry["kind"],
                format=entry["format"],
                description=entry.get("description") or entry["kind"],
                viewer=entry["viewer"],
            )
            for entry in run.manifest.artifacts
            if (run.folder / entry["path"]).is_file()
        ),
    )
    analysis = dataclasses.replace(analysis, notes=tuple(notes))
    return dataclasses.replace(analysis, findings=ranked(run_findings(analysis)))


def _database(run: LoadedRun) -> DatabaseSide | None:
    """The server side of a PostgreSQL run, from the files its manifest lists."""
    activity = run.artifact(fmt="json", path=PG_ACTIVITY)
    statements = run.artifact(fmt="json", path=PG_STATEMENTS)
    return database_side(
        load_server_activity(activity) if activity is not None else None,
        PG_ACTIVITY,
        load_server_statements(statements) if statements is not None else None,
        PG_STATEMENTS if statements is not None else None,
        load_pg_plans(run.folder).plans,
    )


def _scaling(run: LoadedRun, notes: list[str]) -> tuple[UslFit, ...]:
    """The fit per worker mode when the steps vary the worker count (three counts or more)."""
    counts = {step.settings.get("workers") for step in run.result.steps} - {None}
    if len(counts) < MIN_POINTS:
        return ()
    try:
        fits = scaling_fits(run.result)
    except ScalingError as error:
        notes.append(f"no scalability fit: {error}")
        return ()
    return tuple(fits[mode] for mode in sorted(fits))


def _short_file(file: str) -> str:
    return Path(file).name


def _profile_attribution(run: LoadedRun, operations: OperationMap) -> Attribution | None:
    """The sampled profile's attribution: speedscope, else sessions, else collapsed stacks."""
    profiles: list[SampledProfile] = []
    whole_process = run.profiler == "py-spy"
    speedscope = run.artifact(fmt="speedscope")
    if speedscope is not None:
        profiles = load_speedscope(speedscope, whole_process=whole_process)
        source = speedscope
    else:
        main = run.artifact(fmt="pyinstrument-session", path=PYINSTRUMENT_SESSION)
        collapsed = run.artifact(fmt="collapsed")
        if main is not None:
            profiles = [load_session(main, role=ThreadRole.EVENT_LOOP)]
            threads = run.artifact(fmt="pyinstrument-session", path=PYINSTRUMENT_THREADS)
            if threads is not None:
                profiles.append(load_session(threads, role=ThreadRole.SQLITE_THREAD))
            source = main
        elif collapsed is not None:
            profiles = load_collapsed(collapsed, whole_process=whole_process)
            source = collapsed
        else:
            return None
    if run.manifest.workload == PROGRAM_WORKLOAD:
        profiles = program_main_thread(profiles)
    return attribute(
        profiles,
        profiler=run.profiler,
        source=_relative(run, source),
        operations=operations,
    )


def _store_time_by_op(attributions: Sequence[Attribution]) -> dict[str, float]:
    """Each operation name's time in the store's SQL code (on the connection threads, and on
    the event loop when it ran inline), from the first profile in seconds with any."""
    for attribution in attributions:
        if any(role.unit != "seconds" for role in attribution.roles):
            continue
        by_category = {c: sum(roles.values()) for c, roles in attribution.store_time().items()}
        if by_category:
            return {op: by_category[c] for op, c in OP_NAMES.items() if c in by_category}
    return {}


BASELINE = "baseline"
"""Where ``queueprof run`` keeps the bare run of a profiled invocation."""


def _bare(run: LoadedRun) -> BareRun | None:
    """The bare run's call timings and SQL time by operation, when it kept them."""
    folder = run.folder / BASELINE
    if not (folder / OP_SAMPLES).is_file():
        return None
    bare = load_run(folder)
    samples_path = bare.artifact(fmt="npz", path=OP_SAMPLES)
    if samples_path is None:
        return None
    latencies = from_nanoseconds(load_op_samples(samples_path).ops, f"{BASELINE}/{OP_SAMPLES}")
    sql_ms: dict[str, float] = {}
    sql_path = bare.artifact(fmt="json", path=SQL_STATEMENTS)
    if sql_path is not None:
        for statement in load_sql_statements(sql_path):
            sql_ms[statement.op] = sql_ms.get(statement.op, 0.0) + statement.total_ms
    return BareRun(bare.result.duration_s, latencies, sql_ms)


def _overhead(run: LoadedRun) -> Overhead | None:
    entry: Mapping[str, Any] = run.manifest.profiler.get("overhead") or {}
    ratio = entry.get("ratio")
    if not isinstance(ratio, int | float):
        return None
    wall = entry.get("wall_ratio")
    return Overhead(
        profiler=run.profiler,
        ratio=float(ratio),
        wall_ratio=float(wall) if isinstance(wall, int | float) else None,
        goal=OVERHEAD_GOALS.get(run.profiler),
        baseline=str(entry["baseline"]) if entry.get("baseline") else None,
    )


def _relative(run: LoadedRun, path: Path) -> str:
    try:
        return str(path.relative_to(run.folder))
    except ValueError:
        return str(path)


def profiler_agreement(runs: Sequence[RunAnalysis]) -> tuple[RunAgreement, ...]:
    """Compare the attributions of every two runs of the same workload, size and parameters
    under different profilers, on the event loop and on the connection threads."""
    found = []
    for a, b in combinations(runs, 2):
        if (a.workload, a.size, _key(a.params)) != (b.workload, b.size, _key(b.params)):
            continue
        if a.profiler == b.profiler or not a.attributions or not b.attributions:
            continue
        for role in COMPARED_ROLES:
            agreement = compare_attributions(a.attributions[0], b.attributions[0], role)
            if agreement is not None:
                found.append(RunAgreement(a.run_id, b.run_id, agreement))
    return tuple(found)


def _key(params: Mapping[str, Any]) -> str:
    return repr(sorted((k, repr(v)) for k, v in params.items()))


__all__ = ["analyze", "analyze_run", "profiler_agreement"]
