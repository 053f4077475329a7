"""The instruction-count workload: each queue operation in a measured phase of its own.

Run by the instruction gate (``queueprof.instructions``) as
``valgrind --tool=callgrind --dump-before=getppid python -m workloads.instructions ...``.
Callgrind sees the interpreter's C functions, not Python functions, so an operation's
instructions cannot be picked out of one profile of a mixed run. Instead this program runs
each operation on its own, many calls in a row, and calls ``os.getppid()`` at every phase
boundary: ``--dump-before=getppid`` makes callgrind write the counts gathered since the last
dump to a new part file, so part ``k + 2`` holds exactly phase ``k`` (part 1 is start-up,
imports and warm-up; the last part is shutdown). Nothing else in the program calls getppid;
the gate checks the number of parts.

Determinism, so an unchanged tree counts the same instructions every time:
- a fixed clock (each call 1 ms later), fixed payloads, and ``PYTHONHASHSEED`` pinned by the
  gate; the database is a new file at a fixed path length;
- every statement runs once before the first phase (SQLite compiles it into sqlite3's
  statement cache then, not inside a phase);
- no automatic garbage collection inside the phases (collected and frozen after the warm-up,
  then off): where a collection lands depends on every allocation before it, so a change in
  one operation moved a whole collection's traversal into another's count (a plant in the
  claim read as +4.7% in complete, all of it in ``subtype_traverse``);
- the SQL runs on the event loop's own thread (``dispatch=inline``): aiosqlite's connection
  threads only open and close connections, before and after the phases. Callgrind counts
  every thread anyway (one serialised CPU), so if a thread did run inside a phase its
  instructions would be counted, not lost; but a hand-off would wake the checkpoint task on
  wall-clock time, which a CPU simulator stretches 50x. So each phase is driven as ONE step
  of its coroutine: a phase that would suspend (wait for a thread, a lock, a sleep) stops
  the workload with an error instead of counting scheduling noise. What instructions cannot
  see (hand-offs, lock waits, I/O) is the wall-clock gate's job.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import itertools
import os
import tempfile
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from taskqueue import QueueConfig, TaskQueue
from taskqueue.config import Dispatch
from taskqueue.models import Task

PHASES_SCHEMA_VERSION = 1
"""Version of the phases file this program writes."""


@dataclass(frozen=True, slots=True)
class InstructionParams:
    """How much work each phase does. Figures are per call or per task, so bigger phases
    change the figure only by what SQLite's growing table costs (a deeper index)."""

    enqueue_calls: int = 200
    """Single-task ``enqueue`` calls (a producer's path)."""
    batches: int = 10
    """``enqueue_many``, ``claim`` and ``complete_many`` calls, each of ``batch`` tasks."""
    batch: int = 100
    """Tasks per batched call: the default strategy's claim and ack batch."""
    status_calls: int = 200
    """``status`` reads of tasks that exist."""

    def to_dict(self) -> dict[str, int]:
        """JSON-ready form (the gate's suite description)."""
        return dataclasses.asdict(self)


@dataclass(frozen=True, slots=True)
class Phase:
    """One measured phase: which operation, how many calls and tasks it ran."""

    name: str
    """The metric's stem: ``enqueue``, ``enqueue_many``, ``claim``, ``complete``, ``status``."""
    operation: str
    """The queue operation (``analysis.operations.OP_NAMES`` key) the phase's calls are."""
    method: str
    """The ``TaskQueue`` method the phase calls (the operation map knows each one)."""
    calls: int
    tasks: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return dataclasses.asdict(self)


class PhaseSuspended(RuntimeError):
    """A phase waited on the event loop: its instructions would include scheduling noise."""


def measured_config(queue: QueueConfig) -> QueueConfig:
    """``queue`` with its SQL on the event loop's thread (see the module docstring), never
    giving the loop away: a turn ends by wall time, which under callgrind runs ~50x slower,
    and a give-way would suspend the phase. Nothing else waits for this loop."""
    return dataclasses.replace(queue, dispatch=Dispatch.INLINE, turn_ms=0.0)


def mark() -> None:
    """A phase boundary: callgrind (``--dump-before=getppid``) writes a part file here."""
    os.getppid()


def run_in_one_step(coroutine: Coroutine[Any, Any, Any], phase: str) -> Any:
    """Run ``coroutine`` to its end in one step; :class:`PhaseSuspended` if it would wait."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    coroutine.close()
    raise PhaseSuspended(
        f"phase {phase!r} waited on the event loop (a thread hand-off, a lock or a sleep): "
        "its instruction count would depend on scheduling. The instruction workload needs "
        "every call to run inline (dispatch=inline, claim_style returning or immediate, "
        "busy_timeout_ms=0)"
    )


class FixedClock:
    """A clock that moves 1 ms per reading: the same timestamps in every run."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._ticks = itertools.count()
        self._start = start

    def __call__(self) -> float:
        return self._start + next(self._ticks) * 0.001


async def measure(path: Path, params: InstructionParams, queue: QueueConfig) -> list[Phase]:
    """Open a queue at ``path``, warm every statement up, run the phases; their records."""
    config = measured_config(queue)
    p = params
    batch_payloads = [
        [("noop", {"n": b * p.batch + i}) for i in range(p.batch)] for b in range(p.batches)
    ]
    async with TaskQueue(path, config, clock=FixedClock()) as q:
        # Warm-up: every statement of every phase once (compiled into the statement cache).
        warm_id = await q.enqueue("noop", {"n": -1})
        await q.enqueue_many([("noop", {"n": -2}), ("noop", {"n": -3})])
        warm = await q.claim("warm", 3)
        await q.complete_many([(t, None) for t in warm])
        await q.status(warm_id)

        ids: list[int] = []
        claimed: list[list[Task]] = []
        gc.collect()
        gc.freeze()
        gc.disable()

        async def enqueue() -> None:
            for i in range(p.enqueue_calls):
                ids.append(await q.enqueue("noop", {"n": i}))

        async def enqueue_many() -> None:
            for payloads in batch_payloads:
                ids.extend(await q.enqueue_many(payloads))

        async def claim() -> None:
            for _ in range(p.batches):
                claimed.append(await q.claim("w0", p.batch))

        async def complete() -> None:
            for tasks in claimed:
                await q.complete_many([(t, None) for t in tasks])

        async def status() -> None:
            for task_id in ids[: p.status_calls]:
                await q.status(task_id)

        phases: Sequence[tuple[Phase, Callable[[], Awaitable[None]]]] = (
            (Phase("enqueue", "enqueue", "enqueue", p.enqueue_calls, p.enqueue_calls), enqueue),
            (
                Phase("enqueue_many", "enqueue", "enqueue_many", p.batches, p.batches * p.batch),
                enqueue_many,
            ),
            (Phase("claim", "claim", "claim", p.batches, p.batches * p.batch), claim),
            (
                Phase("complete", "complete", "complete_many", p.batches, p.batches * p.batch),
                complete,
            ),
            (Phase("status", "status", "status", p.status_calls, p.status_calls), status),
        )
        try:
            for phase, body in phases:
                mark()
                run_in_one_step(body(), phase.name)  # type: ignore[arg-type]
            mark()
        finally:
            gc.enable()
            gc.unfreeze()
        claimed_tasks = sum(len(tasks) for tasks in claimed)
        if claimed_tasks != p.batches * p.batch:
            raise RuntimeError(
                f"the claim phase took {claimed_tasks} tasks, expected {p.batches * p.batch}: "
                "the workload no longer measures what its phases say"
            )
    return [phase for phase, _ in phases]


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m workloads.instructions --out PHASES.json [--queue ...] [--param k=v]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="where the phases JSON goes")
    parser.add_argument("--queue", default="", help="queue strategy (dispatch becomes inline)")
    parser.add_argument("--params", default="{}", help="InstructionParams as a JSON object")
    args = parser.parse_args(argv)
    params = InstructionParams(**orjson.loads(args.params))
    queue = QueueConfig.parse(args.queue)
    # A fixed path length: the path is copied and compared inside SQLite.
    with tempfile.TemporaryDirectory(prefix="qp-instr-") as folder:
        phases = asyncio.run(measure(Path(folder) / "queue.db", params, queue))
    document = {
        "schema_version": PHASES_SCHEMA_VERSION,
        "params": params.to_dict(),
        "queue": measured_config(queue).to_dict(),
        "phases": [phase.to_dict() for phase in phases],
    }
    args.out.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
