"""Findings and recommendations: each computed from a run's data, each citing its numbers.

Every rule here reads the typed results of the other analyses (never the files) and returns
a finding only when its evidence is present: no op-samples, no round-trip finding; no SQL
capture, no batching prediction. Recommendations name a setting only when the run's own
configuration and numbers point to it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from runs import MANIFEST, RESULTS
from runs.files import OP_SAMPLES, SQL_STATEMENTS

from .attribution import Attribution, FunctionTime, RoleAttribution
from .model import Evidence, Finding, RunAgreement, RunAnalysis, Severity
from .operations import OPERATION_CATEGORIES, Category, is_store_frame
from .profile import Frame, ThreadRole

OVERHEAD_GOALS: Mapping[str, float] = {
    "pyinstrument": 1.3,
    "memray": 1.3,
    "viztracer": 1.5,
    "py-spy": 1.05,
}
"""The project's overhead goal per profiler (profiled / bare run time)."""

BATCH_SIZES = (10, 100)
BATCH_LEVERS: Mapping[str, str] = {
    "claim": "claim_batch",
    "complete": "ack_batch",
    "enqueue": "enqueue_many",
}
"""Operations whose calls can carry many tasks, and the setting that makes them."""

COVERED_TARGETS = frozenset({"heap_growth_kib_per_1k_tasks"})
"""Targets another rule reports with more detail (:func:`memory_growth`)."""

TAIL_RATIO = 10.0
MIN_TAIL_SAMPLES = 100


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _ms(x: float) -> str:
    return f"{x:.3g} ms"


def _s(x: float) -> str:
    return f"{x:.3g} s"


# -- rules -------------------------------------------------------------------------------


def missed_targets(run: RunAnalysis) -> Iterable[Finding]:
    """Each target the run did not meet."""
    for verdict in run.targets:
        if verdict.passed or verdict.metric in COVERED_TARGETS:
            continue
        yield Finding(
            key=f"target-{verdict.metric}",
            severity=Severity.HIGH,
            title=f"target missed: {verdict.metric}",
            detail=(
                f"{verdict.metric} measured {verdict.measured:.4g} {verdict.unit}; the target is "
                f"{verdict.comparator} {verdict.target:g} {verdict.unit}"
                + (f" ({verdict.description})" if verdict.description else "")
                + "."
            ),
            evidence=(Evidence(verdict.metric, verdict.measured, verdict.unit, RESULTS),),
            impact=1.0,
        )


def batching(run: RunAnalysis) -> Iterable[Finding]:
    """Round trips per task, and what batching would save by the measured per-call cost."""
    trips = run.round_trips
    if trips is None or trips.tasks == 0:
        return
    latency = {d.op: d for d in run.latencies}
    sql_ms: dict[str, float] = {}
    for hotspot in run.sql:
        sql_ms[hotspot.op] = sql_ms.get(hotspot.op, 0.0) + hotspot.total_ms
    calls_text = ", ".join(
        f"{op} {n:,}" for op, n in sorted(trips.calls.items(), key=lambda i: -i[1])
    )
    evidence = [
        Evidence("operation calls per completed task", trips.per_task, "calls/task", OP_SAMPLES),
        Evidence("completed tasks", trips.tasks, "tasks", RESULTS),
    ]
    detail = (
        f"Each completed task cost {trips.per_task:.2f} operation calls ({calls_text} calls "
        f"for {trips.tasks:,} tasks), "
        + (
            "each one trip to the aiosqlite connection thread."
            if not trips.inline
            else "all of them run inline on the event loop (dispatch), with no trip to the "
            "aiosqlite connection thread."
            if trips.inline_share >= 0.995
            else f"{_pct(trips.inline_share)} of them run inline on the event loop (dispatch), "
            "the rest one trip each to the aiosqlite connection thread."
        )
    )
    levers = []
    for op, setting in BATCH_LEVERS.items():
        if op not in latency or op not in sql_ms or op not in trips.calls:
            continue
        calls = trips.calls[op]
        mean_ms = latency[op].mean_ms
        sql_per_call = sql_ms[op] / calls
        overhead = mean_ms - sql_per_call
        if overhead <= 0:
            continue
        current = _current_batch(run, op, calls, trips.tasks)
        levers.append((op, setting, calls / trips.tasks, mean_ms, sql_per_call, overhead, current))
        evidence += [
            Evidence(f"{op} mean call latency", mean_ms, "ms", OP_SAMPLES),
            Evidence(f"{op} SQL time per call", sql_per_call, "ms", SQL_STATEMENTS),
        ]
    if not levers:
        yield Finding(
            key="round-trips",
            severity=Severity.INFO,
            title=f"{trips.per_task:.2f} operation calls per task",
            detail=detail
            + " Without a SQL capture (capture_sql) the per-call overhead cannot be told "
            "apart from SQL time, so no batching gain is predicted.",
            evidence=tuple(evidence),
            run_id=run.run_id,
        )
        return
    now = sum(per_task * mean for _, _, per_task, mean, _, _, _ in levers)
    parts = [
        f"{op}: {mean:.3g} ms per call of which {sql:.3g} ms SQL, so {over:.3g} ms "
        f"({_pct(over / mean)}) is per-call overhead"
        for op, _, _, mean, sql, over, _ in levers
    ]
    predictions = []
    best_gain = 0.0
    for size in BATCH_SIZES:
        predicted = sum(
            per_task * sql + per_task * over * min(current / size, 1.0)
            for _, _, per_task, _, sql, over, current in levers
        )
        gain = 1 - predicted / now if now else 0.0
        if gain <= 0:
            continue
        best_gain = max(best_gain, gain)
        settings = ", ".join(
            _lever(run, setting, size) for _, setting, _, _, _, _, c in levers if c < size
        )
        predictions.append(
            f"{settings}: {predicted:.3g} ms of call latency per task instead of {now:.3g} ms "
            f"({_pct(gain)} less)"
        )
        evidence.append(
            Evidence(f"predicted gain with batches of {size}", gain, "fraction", OP_SAMPLES)
        )
    severity = (
        Severity.HIGH if best_gain >= 0.3 else Severity.MEDIUM if best_gain >= 0.1 else Severity.LOW
    )
    recommendation = None
    if predictions:
        recommendation = (
            "Batch the calls that carry one task each. By the measured per-call overhead, "
            "keeping each task's SQL time as it is (batched SQL is cheaper still, so this is "
            "conservative): " + "; ".join(predictions) + "."
        )
    yield Finding(
        key="batching",
        severity=severity if predictions else Severity.INFO,
        title=f"{trips.per_task:.2f} operation calls per task; per-call overhead dominates "
        + ", ".join(op for op, *_ in levers),
        detail=detail
        + " Per-call overhead = mean call latency - SQL time per call: the queue's own Python, "
        "the hand-off to the connection thread and back for calls that make the trip, and "
        "any queueing behind other workers' calls. " + "; ".join(parts) + ".",
        evidence=tuple(evidence),
        recommendation=recommendation,
        impact=best_gain,
    )


def _lever(run: RunAnalysis, setting: str, size: int) -> str:
    """How a person sets the batch: a queue option, or the workload's enqueue batch."""
    if setting != "enqueue_many":
        return f"{setting}={size}"
    if "enqueue_batch" in run.params:
        return f"--param enqueue_batch={size}"
    return f"enqueue_many with {size} tasks per call"


def _current_batch(run: RunAnalysis, op: str, calls: int, tasks: int) -> float:
    setting = {"claim": "claim_batch", "complete": "ack_batch"}.get(op)
    if setting is not None and isinstance(run.queue.get(setting), int | float):
        return float(run.queue[setting])
    return max(tasks / calls, 1.0) if calls else 1.0


def waiting_operations(run: RunAnalysis) -> Iterable[Finding]:
    """Operations whose event-loop time is mostly waiting for the connection thread."""
    for attribution in run.attributions:
        loop = attribution.role(ThreadRole.EVENT_LOOP)
        if loop is None or not loop.waits_known or loop.total <= 0:
            continue
        thread = attribution.role(ThreadRole.SQLITE_THREAD)
        rows = []
        evidence = []
        waited_total = 0.0
        for category in OPERATION_CATEGORIES:
            entry = loop.get(category)
            if entry is None or entry.wait is None or entry.share < 0.05 or entry.wall <= 0:
                continue
            fraction = entry.wait / entry.wall
            if fraction < 0.5:
                continue
            waited_total += entry.wait
            busy = thread.get(category) if thread is not None else None
            text = f"{category} waited {_pct(fraction)} of its {_s(entry.wall)}"
            if busy is not None and entry.wait > 0:
                text += (
                    f" ({_s(entry.wait)}), while the connection thread ran {category}'s code for "
                    f"{_s(busy.wall)} ({_pct(busy.wall / entry.wait)} of that wait)"
                )
                evidence.append(
                    Evidence(
                        f"{category} time on the connection threads",
                        busy.wall,
                        loop.unit,
                        attribution.source,
                    )
                )
            rows.append(text)
            evidence.append(
                Evidence(
                    f"{category} wait share on the event loop",
                    fraction,
                    "fraction",
                    attribution.source,
                )
            )
        if not rows:
            continue
        share = waited_total / loop.total
        yield Finding(
            key=f"waiting-{attribution.profiler}",
            severity=Severity.MEDIUM if share >= 0.2 else Severity.LOW,
            title=f"operations spend most of their event-loop time waiting for the connection "
            f"thread ({_pct(share)} of the loop's time)",
            detail=f"{attribution.profiler} ({attribution.source}): " + "; ".join(rows) + ". "
            "The part of a wait the thread did not spend on the operation is the trip there and "
            "back and time queued behind other calls.",
            evidence=tuple(evidence),
            recommendation=(
                "Fewer calls, not faster SQL, shortens these waits (see the round-trip finding)."
                if run.round_trips is not None and run.round_trips.per_task > 1
                else None
            ),
            impact=share,
        )


def handoff(run: RunAnalysis) -> Iterable[Finding]:
    """Connection-thread time spent handing results back to the event loop."""
    for attribution in run.attributions:
        thread = attribution.role(ThreadRole.SQLITE_THREAD)
        if thread is None:
            continue
        other = thread.get(Category.OTHER)
        if other is None:
            continue
        handing = max(
            (f.total_time for f in other.top_total if f.function.endswith("call_soon_threadsafe")),
            default=0.0,
        )
        ops = sum(c.wall for c in thread.categories if c.category in OPERATION_CATEGORIES)
        if handing <= 0 or ops <= 0 or handing < 0.25 * ops:
            continue
        yield Finding(
            key=f"handoff-{attribution.profiler}",
            severity=Severity.MEDIUM if handing >= 0.5 * ops else Severity.LOW,
            title=f"the connection thread spends {_pct(handing / (handing + ops))} of its busy "
            "time handing results back to the event loop",
            detail=f"{attribution.profiler} ({attribution.source}): call_soon_threadsafe took "
            f"{_s(handing)} on the aiosqlite threads against {_s(ops)} running the operations "
            "themselves. Every operation call pays this once.",
            evidence=(
                Evidence(
                    "call_soon_threadsafe on the connection threads",
                    handing,
                    thread.unit,
                    attribution.source,
                ),
                Evidence(
                    "operations on the connection threads", ops, thread.unit, attribution.source
                ),
            ),
            recommendation=(
                "Batching (claim_batch, ack_batch) divides this cost by the batch size."
                if any(run.queue.get(k) == 1 for k in ("claim_batch", "ack_batch"))
                else None
            ),
            impact=handing / (handing + ops),
        )


def busy_retries(run: RunAnalysis) -> Iterable[Finding]:
    """SQLITE_BUSY retries the queue absorbed."""
    total = int(run.counters.get("sqlite_busy_retries", 0))
    if total <= 0:
        return
    per_step = [
        (step.label, int(step.counters.get("sqlite_busy_retries", 0)), step.settings.get("workers"))
        for step in run.steps
        if step.counters.get("sqlite_busy_retries", 0)
    ]
    under_ten = any(isinstance(w, int) and w < 10 for _, _, w in per_step)
    fixes = []
    if run.queue.get("connection") == "per-worker":
        fixes.append(
            "connection=shared (one writer per process: no lock waits between its workers)"
        )
    if run.queue.get("claim_style") == "deferred":
        fixes.append("claim_style=returning (the claim as one statement, no read-then-write race)")
    tasks = int(run.counters.get("completed", 0))
    yield Finding(
        key="sqlite-busy",
        severity=Severity.HIGH if under_ten else Severity.MEDIUM,
        title=f"{total:,} SQLITE_BUSY retries"
        + (f" ({1000 * total / tasks:.1f} per 1k tasks)" if tasks else ""),
        detail="Retries by step: "
        + (", ".join(f"{label}: {n:,}" for label, n, _ in per_step) or "not split by step")
        + f". Queue: connection={run.queue.get('connection')}, "
        f"claim_style={run.queue.get('claim_style')}.",
        evidence=(Evidence("sqlite_busy_retries", total, "retries", RESULTS),),
        recommendation=("Try " + "; ".join(fixes) + ".") if fixes else None,
        impact=min(total / tasks, 1.0) if tasks else 0.5,
    )


def claim_conflicts(run: RunAnalysis) -> Iterable[Finding]:
    """Tasks a two-step claim selected that another connection took first."""
    conflicts = int(run.counters.get("claim_conflicts", 0))
    tasks = int(run.counters.get("completed", 0))
    if conflicts <= 0:
        return
    pct = conflicts / tasks if tasks else 0.0
    yield Finding(
        key="claim-conflicts",
        severity=Severity.HIGH if pct >= 0.01 else Severity.LOW,
        title=f"{conflicts:,} claim conflicts ({_pct(pct)} of completed tasks)",
        detail=f"claim_style={run.queue.get('claim_style')}: a task selected by one claim was "
        "taken by another connection before the update.",
        evidence=(Evidence("claim_conflicts", conflicts, "tasks", RESULTS),),
        recommendation=(
            "claim_style=returning selects and updates in one statement, so no other claim can "
            "take the task in between."
            if run.queue.get("claim_style") != "returning"
            else None
        ),
        impact=pct,
    )


def sql_plans(run: RunAnalysis) -> Iterable[Finding]:
    """Statements whose plan scans a table or builds a temporary B-tree."""
    for hotspot in run.sql:
        plan = hotspot.plan
        if not plan.flagged:
            continue
        what = []
        if plan.full_scans:
            what.append("reads the whole table (" + "; ".join(plan.full_scans) + ")")
        if plan.temp_btrees:
            what.append("sorts or groups on every call (" + "; ".join(plan.temp_btrees) + ")")
        yield Finding(
            key=f"sql-plan-{hotspot.index}",
            severity=Severity.MEDIUM
            if hotspot.share_of_op_sql >= 0.1 or hotspot.count >= 100
            else Severity.LOW,
            title=f"{hotspot.op} statement {hotspot.label!r} "
            + " and ".join(w.split(" (")[0] for w in what),
            detail=f"{hotspot.sql}\nPlan on the schema it ran against: "
            + " | ".join(plan.lines)
            + f". It ran {hotspot.count:,} times for {_ms(hotspot.total_ms)} "
            f"({_pct(hotspot.share_of_op_sql)} of {hotspot.op}'s SQL time), p99 "
            f"{hotspot.p99_us:.3g} us; its cost grows with the table.",
            evidence=(
                Evidence(
                    f"statement {hotspot.index} calls", hotspot.count, "calls", SQL_STATEMENTS
                ),
                Evidence(
                    f"statement {hotspot.index} total", hotspot.total_ms, "ms", SQL_STATEMENTS
                ),
                Evidence(
                    f"statement {hotspot.index} share of {hotspot.op} SQL",
                    hotspot.share_of_op_sql,
                    "fraction",
                    SQL_STATEMENTS,
                ),
            ),
            recommendation="An index whose leading columns match the statement's WHERE and "
            "ORDER BY/GROUP BY turns the SCAN into a SEARCH and drops the temporary B-tree; "
            "check the new plan with EXPLAIN QUERY PLAN.",
            impact=hotspot.share_of_op_sql,
        )


def backlog_growth(run: RunAnalysis) -> Iterable[Finding]:
    """Queues of a comparison whose cost per task grew with the backlog (the sweep's verdict,
    ``backlog_grows``, made by the workload against its noise band)."""
    for step in run.steps:
        if not step.counters.get("backlog_grows"):
            continue
        growth = step.metrics.get("backlog_cost_growth", 0.0)
        sweep = sorted(
            (int(name.split("_")[1]), value)
            for name, value in step.metrics.items()
            if name.startswith("backlog_") and name.endswith("_tasks_per_s")
        )
        if growth <= 1 or len(sweep) < 2:
            continue
        (small, small_rate), (large, large_rate) = sweep[0], sweep[-1]
        queue = str(step.settings.get("contender", step.label))
        yield Finding(
            key=f"backlog-{queue}",
            severity=Severity.MEDIUM,
            title=f"{queue}'s cost per task grows {growth:.1f}x with the backlog "
            f"({small:,} to {large:,} waiting tasks)",
            detail=f"Claiming and completing at {small:,} waiting tasks ran at "
            f"{small_rate:,.0f}/s, at {large:,} at {large_rate:,.0f}/s: at that backlog "
            f"{_pct(1 - 1 / growth)} of each task's time is the backlog's. "
            + ", ".join(f"{size:,}: {rate:,.0f}/s" for size, rate in sweep),
            evidence=tuple(
                Evidence(f"{queue} backlog_{size}_tasks_per_s", rate, "tasks/s", RESULTS)
                for size, rate in sweep
            ),
            recommendation="Its claim reads or sorts the waiting rows: see its claim "
            "statement's plan among the SQL hotspots (run with --queue capture_sql=true); an "
            "index whose leading columns match the claim's WHERE and ORDER BY keeps it an "
            "index search whatever the backlog.",
            impact=1 - 1 / growth,
        )


_LEVERS: Mapping[str, Callable[[Mapping[str, Any]], str | None]] = {
    # pyinstrument has no option lever: its cost is the profile hook on the event loop (on
    # Python 3.11 a hook deoptimises every bytecode of its thread, and pyinstrument's callback
    # runs on each of ~200 call events per task at claim_batch=1), not the sampling; the
    # SQLite threads are sampled from outside (benchmarks/profiler_overhead.py). Interval and
    # timing thread trim a few percent, so the honest advice is a cross-check.
    "viztracer": lambda o: (
        "--profiler-option min_duration_us=50 (records fewer short calls)"
        if float(o.get("min_duration_us", 100)) < 50
        else None
    ),
    "py-spy": lambda o: "--profiler-option rate=50" if int(o.get("rate", 0)) > 50 else None,
    "memray": lambda o: "--profiler-option native=false" if o.get("native") else None,
}


def profiler_overhead(run: RunAnalysis) -> Iterable[Finding]:
    """A profiler that slowed the run more than its goal."""
    overhead = run.overhead
    if overhead is None or overhead.goal is None or overhead.ratio <= overhead.goal:
        return
    lever = _LEVERS.get(overhead.profiler)
    suggestion = lever(run.profiler_options) if lever is not None else None
    yield Finding(
        key="profiler-overhead",
        severity=Severity.MEDIUM,
        title=f"{overhead.profiler} slowed the run {overhead.ratio:.3f}x "
        f"(goal <= {overhead.goal:g}x)",
        detail=f"Rates under {overhead.profiler} against the bare run in "
        f"{overhead.baseline or 'the baseline'}: {overhead.ratio:.2f}x slower (geometric mean "
        "of the rate ratios)"
        + (f", wall time {overhead.wall_ratio:.2f}x" if overhead.wall_ratio else "")
        + ". Absolute times in this profile are inflated and shares lean toward the code the "
        "profiler slows most; compare with a lower-overhead profiler's run before acting.",
        evidence=(Evidence("overhead ratio", overhead.ratio, "x", MANIFEST),),
        recommendation=f"Re-run with {suggestion}."
        if suggestion
        else "Check the ranking against a run under a lower-overhead profiler (py-spy samples "
        "from outside the process) before acting on absolute times.",
        impact=(overhead.ratio - overhead.goal) / overhead.ratio,
    )


def memory_growth(run: RunAnalysis) -> Iterable[Finding]:
    """Heap and RSS growth per 1,000 tasks (the memory workload)."""
    heap = run.metrics.get("heap_growth_kib_per_1k_tasks")
    if heap is None:
        return
    rss = run.metrics.get("rss_growth_kib_per_1k_tasks")
    verdict = next((v for v in run.targets if v.metric == "heap_growth_kib_per_1k_tasks"), None)
    evidence = [Evidence("heap growth per 1k tasks", heap, "KiB", RESULTS)]
    detail = f"The Python heap grew {heap:.1f} KiB per 1,000 tasks after warm-up (linear fit)"
    if rss is not None:
        detail += f"; RSS grew {rss:.1f} KiB per 1,000 tasks"
        evidence.append(Evidence("RSS growth per 1k tasks", rss, "KiB", RESULTS))
    detail += "."
    allocations = run.allocations
    if allocations is not None:
        leaked = [c for c in allocations.leaked.categories if c.bytes > 0][:3]
        if leaked:
            detail += (
                " Still allocated when tracking stopped, by operation: "
                + "; ".join(
                    f"{c.category} {c.bytes / 1024:.1f} KiB"
                    + (f" (mostly {c.top_sites[0].function})" if c.top_sites else "")
                    for c in leaked
                )
                + f" ({_pct(allocations.leaked.coverage)} of the leaked bytes are in the "
                "listed stacks)."
            )
            evidence.append(
                Evidence(
                    "leaked bytes in listed stacks",
                    allocations.leaked.listed_bytes,
                    "bytes",
                    allocations.source,
                )
            )
    if run.notes:
        detail += " Run notes: " + " ".join(n for n in run.notes if "record_timings" in n)
    failed = verdict is not None and not verdict.passed
    yield Finding(
        key="memory-growth",
        severity=Severity.HIGH if failed else Severity.INFO,
        title=f"heap grows {heap:.1f} KiB per 1,000 tasks"
        + (f" (target < {verdict.target:g})" if verdict is not None else ""),
        detail=detail,
        evidence=tuple(evidence),
        impact=1.0 if failed else 0.0,
    )


def peak_memory(run: RunAnalysis) -> Iterable[Finding]:
    """Which operation's stacks held the most memory at the peak."""
    allocations = run.allocations
    if allocations is None:
        return
    ops = [
        c for c in allocations.peak.categories if c.category in OPERATION_CATEGORIES and c.bytes > 0
    ]
    if not ops:
        return
    top = ops[0]
    site = top.top_sites[0] if top.top_sites else None
    yield Finding(
        key="peak-memory",
        severity=Severity.INFO,
        title=f"at the memory peak ({allocations.peak_memory_bytes / 2**20:.1f} MiB), "
        f"{top.category} held {top.bytes / 1024:.0f} KiB ({_pct(top.share)} of the listed stacks)",
        detail="By operation at the peak: "
        + "; ".join(
            f"{c.category} {c.bytes / 1024:.0f} KiB in {c.allocations:,} allocations" for c in ops
        )
        + (
            f". {top.category}'s largest allocation site: {site.function} ({site.file})"
            if site
            else ""
        )
        + f". The listed stacks cover {_pct(allocations.peak.coverage)} of the peak.",
        evidence=(
            Evidence("peak memory", allocations.peak_memory_bytes, "bytes", MANIFEST),
            Evidence(f"{top.category} bytes at peak", top.bytes, "bytes", allocations.source),
        ),
        impact=top.share,
    )


def latency_tails(run: RunAnalysis) -> Iterable[Finding]:
    """Operations whose p99 is far above their median."""
    for dist in run.latencies:
        if dist.op == "handler" or dist.count < MIN_TAIL_SAMPLES or dist.p50_ms <= 0:
            continue
        ratio = dist.p99_ms / dist.p50_ms
        if ratio < TAIL_RATIO:
            continue
        yield Finding(
            key=f"tail-{dist.op}",
            severity=Severity.LOW,
            title=f"{dist.op} p99 is {ratio:.0f}x its median",
            detail=f"{dist.op}: p50 {_ms(dist.p50_ms)}, p99 {_ms(dist.p99_ms)}, p99.9 "
            f"{_ms(dist.p999_ms)}, max {_ms(dist.max_ms)} over {dist.count:,} calls.",
            evidence=(
                Evidence(f"{dist.op} p50", dist.p50_ms, "ms", dist.source),
                Evidence(f"{dist.op} p99", dist.p99_ms, "ms", dist.source),
            ),
            impact=min(ratio / 100, 1.0),
        )


def where_time_goes(run: RunAnalysis) -> Iterable[Finding]:
    """The event loop's largest operation, whether the loop was mostly idle, and the
    operation whose SQL code (the store's) took the most time, wherever it ran."""
    for attribution in run.attributions:
        loop = attribution.role(ThreadRole.EVENT_LOOP)
        if loop is not None and loop.total > 0:
            yield from _largest(run, attribution, loop)
        yield from _busiest(attribution)


_ROLE_PLACES = {
    ThreadRole.SQLITE_THREAD: "on the connection threads",
    ThreadRole.EVENT_LOOP: "inline on the event loop",
    ThreadRole.OTHER_THREAD: "on other threads",
}


def _busiest(attribution: Attribution) -> Iterable[Finding]:
    store = attribution.store_time()
    totals = {category: sum(roles.values()) for category, roles in store.items()}
    busy = sum(totals.values())
    if busy <= 0:
        return
    ranked_ops = sorted(totals, key=lambda c: -totals[c])
    top = ranked_ops[0]
    where = ", ".join(
        f"{_s(seconds)} {_ROLE_PLACES[role]}"
        for role, seconds in sorted(store[top].items(), key=lambda item: -item[1])
    )
    functions = ", ".join(
        f"{f.function} {_pct(f.self_time / totals[top])}"
        for f in _store_functions(attribution, top)[:3]
    )
    unit = next((r.unit for r in attribution.roles if r.role in store[top]), "seconds")
    yield Finding(
        key=f"busiest-{attribution.profiler}",
        severity=Severity.INFO,
        title=f"{top} takes the most of the store's SQL time: {_pct(totals[top] / busy)} "
        f"({attribution.profiler})",
        detail=f"{attribution.source}, time in the store's code (taskqueue/store.py, where "
        "every statement runs) by operation: "
        + ", ".join(f"{c} {_pct(totals[c] / busy)}" for c in ranked_ops)
        + f". {top} ran {where}"
        + (f"; inside it, by self time: {functions}." if functions else "."),
        evidence=tuple(
            Evidence(f"{top} store time {_ROLE_PLACES[role]}", seconds, unit, attribution.source)
            for role, seconds in store[top].items()
        ),
        impact=totals[top] / busy,
    )


def _store_functions(attribution: Attribution, category: Category) -> list[FunctionTime]:
    """The functions with the most self time inside ``category``'s store code: every one of
    the connection threads' (they run nothing else for it), the store's own elsewhere."""
    merged: dict[tuple[str, str | None], FunctionTime] = {}
    for role in attribution.roles:
        entry = role.get(category)
        if entry is None or entry.store <= 0:
            continue
        for f in entry.top_self:
            if role.role is not ThreadRole.SQLITE_THREAD and not is_store_frame(
                Frame(f.function, f.file)
            ):
                continue
            key = (f.function, f.file)
            seen = merged.get(key)
            self_time = f.self_time + (seen.self_time if seen else 0.0)
            total = f.total_time + (seen.total_time if seen else 0.0)
            merged[key] = FunctionTime(f.function, f.file, self_time, total)
    return sorted(merged.values(), key=lambda f: -f.self_time)


def _largest(
    run: RunAnalysis, attribution: Attribution, loop: RoleAttribution
) -> Iterable[Finding]:
    ops = sorted(
        (c for c in loop.categories if c.category in OPERATION_CATEGORIES),
        key=lambda c: -c.wall,
    )
    idle = loop.get(Category.IDLE)
    measure = "wall" if attribution.measure == "wall" else "traced running"
    if ops:
        top = ops[0]
        functions = ", ".join(
            f"{f.function} {_pct(f.self_time / top.wall)}" for f in top.top_self[:3] if top.wall > 0
        )
        yield Finding(
            key=f"largest-{attribution.profiler}",
            severity=Severity.INFO,
            title=f"{top.category} takes the most event-loop {measure} time: {_pct(top.share)} "
            f"({attribution.profiler})",
            detail=f"{attribution.source}: "
            + ", ".join(f"{c.category} {_pct(c.share)}" for c in ops)
            + (f", idle/wait {_pct(idle.share)}" if idle is not None else "")
            + f". Inside {top.category}, by self time: {functions}.",
            evidence=(
                Evidence(
                    f"{top.category} share of event-loop time",
                    top.share,
                    "fraction",
                    attribution.source,
                ),
            ),
            impact=top.share,
        )
    if idle is not None and idle.share >= 0.5:
        yield Finding(
            key=f"idle-{attribution.profiler}",
            severity=Severity.INFO,
            title=f"the event loop was idle {_pct(idle.share)} of the time "
            f"({attribution.profiler})",
            detail="Waiting for work or timers outside every queue operation: the queue was not "
            "what limited this run for that share of the time.",
            evidence=(
                Evidence(
                    "idle share of event-loop time", idle.share, "fraction", attribution.source
                ),
            ),
            impact=0.0,
        )


RULES: tuple[Callable[[RunAnalysis], Iterable[Finding]], ...] = (
    missed_targets,
    batching,
    waiting_operations,
    handoff,
    busy_retries,
    claim_conflicts,
    sql_plans,
    backlog_growth,
    profiler_overhead,
    memory_growth,
    peak_memory,
    latency_tails,
    where_time_goes,
)


def run_findings(run: RunAnalysis) -> tuple[Finding, ...]:
    """Every rule's findings for ``run``, tagged with its run id."""
    return tuple(
        dataclasses.replace(finding, run_id=run.run_id) for rule in RULES for finding in rule(run)
    )


def agreement_findings(
    agreements: Iterable[RunAgreement], runs: Mapping[str, RunAnalysis]
) -> tuple[Finding, ...]:
    """One finding per compared pair: the profilers agree on the ranking, or where not."""
    found = []
    for pair in agreements:
        a = pair.agreement
        if not a.comparable:
            found.append(
                Finding(
                    key=f"agree-{pair.run_a}-{pair.run_b}-{a.role}",
                    severity=Severity.INFO,
                    title=f"too few samples to compare {a.source_a.split(':')[0]} and "
                    f"{a.source_b.split(':')[0]} on the {a.role}",
                    detail=f"Sampling noise ({_pct(a.tolerance)} of the operations' time) is "
                    f"larger than the differences between operations (runs {pair.run_a} and "
                    f"{pair.run_b}); run a larger size (e.g. --size default) to compare them.",
                    evidence=(),
                )
            )
            continue
        if a.agree:
            found.append(
                Finding(
                    key=f"agree-{pair.run_a}-{pair.run_b}-{a.role}",
                    severity=Severity.INFO,
                    title=f"{a.source_a.split(':')[0]} and {a.source_b.split(':')[0]} rank the "
                    f"operations alike on the {a.role}",
                    detail=f"Ranking by running time: {' > '.join(a.ranking_a)} "
                    f"(runs {pair.run_a} and {pair.run_b}; differences under "
                    f"{_pct(a.tolerance)} count as noise).",
                    evidence=tuple(
                        Evidence(f"{op} share ({side})", share, "fraction", source)
                        for side, source, shares in (
                            ("a", a.source_a, a.shares_a),
                            ("b", a.source_b, a.shares_b),
                        )
                        for op, share in shares
                    ),
                )
            )
            continue
        worst = max(
            a.disagreements,
            key=lambda d: abs(d.shares_a[0] - d.shares_a[1]) + abs(d.shares_b[0] - d.shares_b[1]),
        )
        overheads = {
            run.profiler: run.overhead.ratio
            for run in (runs.get(pair.run_a), runs.get(pair.run_b))
            if run is not None and run.overhead is not None
        }
        cheaper = min(overheads, key=lambda p: overheads[p]) if len(overheads) == 2 else None
        found.append(
            Finding(
                key=f"disagree-{pair.run_a}-{pair.run_b}-{a.role}",
                severity=Severity.MEDIUM,
                title=f"profilers disagree on the {a.role}: {worst.first} vs {worst.second}",
                detail=f"{a.source_a}: {worst.first} {_pct(worst.shares_a[0])}, {worst.second} "
                f"{_pct(worst.shares_a[1])}; {a.source_b}: {worst.first} "
                f"{_pct(worst.shares_b[0])}, "
                f"{worst.second} {_pct(worst.shares_b[1])} (shares of the operations' running "
                f"time; noise tolerance {_pct(a.tolerance)}). Rankings: "
                f"{' > '.join(a.ranking_a)} vs {' > '.join(a.ranking_b)}.",
                evidence=(
                    Evidence(f"{worst.first} share (a)", worst.shares_a[0], "fraction", a.source_a),
                    Evidence(f"{worst.first} share (b)", worst.shares_b[0], "fraction", a.source_b),
                ),
                recommendation=(
                    f"Weigh {cheaper}'s ranking higher: its overhead was {overheads[cheaper]:.2f}x "
                    f"against {max(overheads.values()):.2f}x."
                    if cheaper
                    else None
                ),
                impact=abs(worst.shares_a[0] - worst.shares_b[0]),
            )
        )
    return tuple(found)
