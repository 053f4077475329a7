"""Time by queue operation from a Chrome trace (viztracer with the queue's own lanes).

A trace records calls, not samples: on the event loop, each function slice's self time (its
duration less its children's) goes to the innermost enclosing operation frame, as in
:mod:`analysis.attribution`; untraced time (filtered out, or the loop idle) is not seen, so
the result measures running time only (``waits`` unknown). On the aiosqlite threads, the SQL
slices carry the operation that issued them: their time is the thread's time on behalf of
each operation.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from formats.timeline import is_inline_sql_lane

from .attribution import TOP_FUNCTIONS, Attribution, CategoryTime, FunctionTime, RoleAttribution
from .load.collapsed import parse_label
from .load.trace import CallSlices, TraceData
from .operations import BUILTIN, Category, Op, OperationMap, in_order, op_category
from .profile import Frame, ThreadRole, guess_role

US = 1e-6
_OVERLAP = re.compile(r" \(overlap \d+\)$")


def attribute_trace(
    trace: TraceData, source: str, operations: OperationMap = BUILTIN
) -> Attribution:
    """The :class:`~analysis.attribution.Attribution` of ``trace`` (times in seconds)."""
    frames = [parse_label(name) for name in trace.names]
    categories = [operations.category(f) for f in frames]
    by_role: dict[ThreadRole, list[tuple[CallSlices, str]]] = defaultdict(list)
    for lane, slices in trace.call_lanes.items():
        name = trace.thread_names.get(lane, f"thread {lane[1]}")
        role = guess_role(name, [], [])
        if role is ThreadRole.OTHER_THREAD:
            role = ThreadRole.EVENT_LOOP if lane[0] == lane[1] else ThreadRole.OTHER_THREAD
        by_role[role].append((slices, name))
    roles = [
        _calls_role(role, [s for s, _ in lanes], frames, categories)
        for role, lanes in sorted(by_role.items(), key=lambda item: list(ThreadRole).index(item[0]))
    ]
    sql = _sql_role(trace)
    if sql is not None:
        roles = [r for r in roles if r.role is not ThreadRole.SQLITE_THREAD] + [sql]
    return Attribution("viztracer", source, tuple(roles), measure="cpu")


def _calls_role(
    role: ThreadRole,
    lanes: Sequence[CallSlices],
    frames: Sequence[Frame],
    categories: Sequence[Op | None],
) -> RoleAttribution:
    wall: dict[Op, float] = defaultdict(float)
    count: dict[Op, int] = defaultdict(int)
    self_time: dict[Op, dict[int, float]] = defaultdict(lambda: defaultdict(float))
    total_time: dict[Op, dict[int, float]] = defaultdict(lambda: defaultdict(float))
    for slices in lanes:
        starts = np.frombuffer(slices.starts, dtype=np.float64)
        durations = np.frombuffer(slices.durations, dtype=np.float64)
        names = np.frombuffer(slices.names, dtype=np.int32).tolist()
        order = np.lexsort((-durations, starts))
        ends = starts + durations
        remaining = durations.copy()
        owner: list[Op] = [Category.OTHER] * len(starts)
        # A function's inclusive time counts only its outermost slices: a recursive call,
        # or a coroutine resumed inside its own earlier slice, is time already counted
        # (summing every slice gave the workload's step 708% of its category).
        outermost = [False] * len(starts)
        on_stack: dict[int, int] = defaultdict(int)
        stack: list[int] = []
        for index in order.tolist():
            start = starts[index]
            while stack and ends[stack[-1]] <= start:
                on_stack[names[stack.pop()]] -= 1
            parent = stack[-1] if stack else None
            name_id = names[index]
            outermost[index] = on_stack[name_id] == 0
            on_stack[name_id] += 1
            own = categories[name_id]
            owner[index] = (
                own
                if own is not None
                else (owner[parent] if parent is not None else Category.OTHER)
            )
            if parent is not None:
                remaining[parent] -= min(ends[index], ends[parent]) - start
            stack.append(index)
        for index in range(len(starts)):
            category = owner[index]
            name = names[index]
            own_time = max(float(remaining[index]), 0.0) * US
            wall[category] += own_time
            count[category] += 1
            self_time[category][name] += own_time
            if outermost[index]:
                total_time[category][name] += float(durations[index]) * US
    total = sum(wall.values())
    entries = tuple(
        CategoryTime(
            category=category,
            wall=wall[category],
            wait=None,
            share=wall[category] / total if total else 0.0,
            samples=count[category],
            top_self=_top(self_time[category], total_time[category], frames, by_self=True),
            top_total=_top(self_time[category], total_time[category], frames, by_self=False),
        )
        for category in in_order(count)
        if count[category]
    )
    return RoleAttribution(
        role=role,
        threads=len(lanes),
        unit="seconds",
        total=total,
        samples=sum(count.values()),
        categories=entries,
    )


def _top(
    self_time: dict[int, float],
    total_time: dict[int, float],
    frames: Sequence[Frame],
    *,
    by_self: bool,
) -> tuple[FunctionTime, ...]:
    ranking = self_time if by_self else total_time
    best = sorted(ranking.items(), key=lambda item: -item[1])[:TOP_FUNCTIONS]
    return tuple(
        FunctionTime(frames[i].name, frames[i].file, self_time.get(i, 0.0), total_time[i])
        for i, value in best
        if value > 0
    )


def _sql_role(trace: TraceData) -> RoleAttribution | None:
    """The connection threads' time by operation, from the SQL slices on their lanes.

    SQL that ran inline on the event loop is left out: it ran inside the loop's own traced
    calls, which the event loop's role already counts, and no connection thread ran it.
    """
    on_threads = {
        lane: ops
        for lane, ops in trace.sql_by_lane.items()
        if not is_inline_sql_lane(trace.thread_names.get(lane, ""))
    }
    if not on_threads:
        return None
    wall: dict[Op, float] = defaultdict(float)
    count: dict[Op, int] = defaultdict(int)
    for ops in on_threads.values():
        for op, totals in ops.items():
            category = op_category(op)
            wall[category] += totals.total_us * US
            count[category] += totals.count
    total = sum(wall.values())
    # Overlapping statements of one thread go to extra lanes ("..., overlap 2"): one thread.
    threads = {_OVERLAP.sub("", trace.thread_names.get(lane, str(lane))) for lane in on_threads}
    return RoleAttribution(
        role=ThreadRole.SQLITE_THREAD,
        threads=len(threads),
        unit="seconds",
        total=total,
        samples=sum(count.values()),
        categories=tuple(
            CategoryTime(c, wall[c], None, wall[c] / total if total else 0.0, count[c])
            for c in in_order(count)
            if count[c]
        ),
    )
