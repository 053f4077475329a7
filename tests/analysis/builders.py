"""Hand-built artifacts with known weights, written the way the profilers write them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from analysis.model import RunAnalysis
from formats.speedscope import SCHEMA_URL

LOOP = ("Runner.run", "asyncio/runners.py")
RUN_FOREVER = ("BaseEventLoop.run_forever", "asyncio/base_events.py")
WORKER = ("WorkerEngine._loop", "taskqueue/worker.py")
CLAIM = ("TaskQueue.claim", "taskqueue/queue.py")
ENQUEUE = ("TaskQueue.enqueue", "taskqueue/queue.py")
COMPLETE = ("TaskQueue.complete_many", "taskqueue/queue.py")
STATUS = ("TaskQueue.status", "taskqueue/queue.py")
CALL = ("TaskQueue._call", "taskqueue/queue.py")
AWAIT = ("[await]", None)
SELECT = ("EpollSelector.select", "selectors.py")
THREAD = ("_connection_worker_thread", "aiosqlite/core.py")
GET = ("SimpleQueue.get", "<built-in>")
INSERT = ("Store.insert", "taskqueue/store.py")
CLAIM_RETURNING = ("Store.claim_returning", "taskqueue/store.py")
COMPLETE_AND_CLAIM = ("Store.complete_and_claim", "taskqueue/store.py")
COMPLETE_ACKS = ("Store.complete_acks", "taskqueue/store.py")
EXECUTE = ("Connection.execute", "<built-in>")
HANDOFF = ("BaseEventLoop.call_soon_threadsafe", "asyncio/base_events.py")

Frame = tuple[str, str | None]

# Event loop: 4 s claim (3 of them waiting), 2 s enqueue, 1 s complete, 2 s idle, 1 s other.
LOOP_SAMPLES: list[tuple[list[Frame], float]] = [
    ([LOOP, RUN_FOREVER, WORKER, CLAIM, CALL, AWAIT], 3.0),
    ([LOOP, RUN_FOREVER, WORKER, CLAIM], 1.0),
    ([LOOP, RUN_FOREVER, ENQUEUE, CALL], 2.0),
    ([LOOP, RUN_FOREVER, WORKER, COMPLETE], 1.0),
    ([LOOP, RUN_FOREVER, SELECT], 2.0),
    ([LOOP, RUN_FOREVER, WORKER], 1.0),
]
# Connection thread: 3 s claim, 1 s complete inside complete_and_claim, 2 s insert,
# 1 s hand-off, 3 s waiting for the next job.
THREAD_SAMPLES: list[tuple[list[Frame], float]] = [
    ([THREAD, CLAIM_RETURNING, EXECUTE], 3.0),
    ([THREAD, COMPLETE_AND_CLAIM, COMPLETE_ACKS, EXECUTE], 1.0),
    ([THREAD, INSERT, EXECUTE], 2.0),
    ([THREAD, HANDOFF], 1.0),
    ([THREAD, GET], 3.0),
]


def speedscope(profiles: Sequence[tuple[str, list[tuple[list[Frame], float]]]]) -> dict[str, Any]:
    """A speedscope document with one sampled profile per (name, samples)."""
    frames: list[Frame] = []
    index: dict[Frame, int] = {}
    written = []
    for name, samples in profiles:
        stacks = []
        for stack, _ in samples:
            ids = []
            for frame in stack:
                if frame not in index:
                    index[frame] = len(frames)
                    frames.append(frame)
                ids.append(index[frame])
            stacks.append(ids)
        weights = [w for _, w in samples]
        written.append(
            {
                "type": "sampled",
                "name": name,
                "unit": "seconds",
                "startValue": 0,
                "endValue": sum(weights),
                "samples": stacks,
                "weights": weights,
            }
        )
    return {
        "$schema": SCHEMA_URL,
        "shared": {"frames": [{"name": n, **({"file": f} if f else {})} for n, f in frames]},
        "profiles": written,
    }


def write_json(path: Path, document: Any) -> Path:
    path.write_bytes(orjson.dumps(document))
    return path


def collapsed(profiles: Sequence[tuple[str, list[tuple[list[Frame], float]]]]) -> str:
    """Collapsed stacks as py-spy's wrapper writes them (counts, ``name (file:line)``)."""
    lines = []
    for thread, samples in profiles:
        for stack, weight in samples:
            labels = [f"{n} ({f}:1)" if f else n for n, f in stack]
            lines.append(f"{';'.join([thread, *labels])} {int(weight)}\n")
    return "".join(lines)


def session(samples: list[tuple[list[Frame], float]]) -> dict[str, Any]:
    """A pyinstrument session document.

    Frame identifiers are ``func\x00file\x00line`` plus ``\x01c<Class>``.
    """
    records = []
    for stack, seconds in samples:
        identifiers = ["MainThread\x00<thread>\x001"]
        for name, file in stack:
            if file is None:
                identifiers.append(name)
                continue
            owner, _, function = name.rpartition(".")
            identifier = f"{function}\x00{file}\x001"
            if owner:
                identifier += f"\x01c{owner}"
            identifiers.append(identifier)
        records.append((identifiers, seconds))
    return {
        "frame_records": records,
        "start_time": 0.0,
        "duration": sum(s for _, s in samples),
        "min_interval": 0.001,
        "max_interval": 0.001,
        "sample_count": len(samples),
        "start_call_stack": ["MainThread\x00<thread>\x001"],
        "target_description": "hand-built",
        "cpu_time": 0.0,
        "sys_path": [],
        "sys_prefixes": [],
    }


def run_analysis(**changes: Any) -> RunAnalysis:
    """A complete smoke throughput run under pyinstrument with nothing measured, with
    ``changes`` (any ``RunAnalysis`` field) on top."""
    fields: dict[str, Any] = {
        "run_id": "r1",
        "folder": "r1",
        "workload": "throughput",
        "size": "smoke",
        "profiler": "pyinstrument",
        "profiler_options": {},
        "status": "complete",
        "started_at": "",
        "duration_s": 1.0,
        "params": {},
        "queue": {},
        "metrics": {},
        "counters": {},
        "steps": (),
        "targets": (),
    }
    return RunAnalysis(**{**fields, **changes})
