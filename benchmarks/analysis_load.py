"""How fast, and in how much memory, the analysis loads a large Chrome trace.

    python -m benchmarks.analysis_load [--mb 150] [--keep FILE]

Writes a synthetic trace shaped like the viztracer wrapper's (nested function slices on the
event loop, queue-operation spans on worker lanes, SQL slices on connection lanes, counters,
and a ``file_info`` block after the events), then loads it with
:func:`analysis.load.trace.load_trace` in a fresh child process and prints the load time and
the child's peak RSS, as a ratio to the file's size. The goal: 150 MB in at most 5 s with a
peak RSS at most twice the file. These are figures to read, not a pass/fail test.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import orjson

CHILD = """
import json, resource, sys, time
from pathlib import Path
sys.path.insert(0, {root!r})
import numpy  # imported before the baseline RSS is read: every analysis run has it loaded
from analysis.load.trace import load_trace
before_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
trace = load_trace(Path({path!r}))
seconds = time.perf_counter() - started
peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
slices = sum(len(s) for s in trace.call_lanes.values())
print(json.dumps({{"seconds": seconds, "before_kib": before_kib, "peak_kib": peak_kib,
                  "events": trace.events, "slices": slices}}))
"""

PID = 4242
LOOP_TID = 4242
WORKER_TID = 1_000_000_000
SQL_TID = 1_000_000_100
FUNCTIONS = [
    "WorkerEngine._loop (taskqueue/worker.py:111)",
    "TaskQueue.claim (taskqueue/queue.py:189)",
    "TaskQueue._call (taskqueue/queue.py:434)",
    "TaskQueue.complete_many (taskqueue/queue.py:239)",
    "TaskQueue.enqueue (taskqueue/queue.py:132)",
    "WorkerEngine._execute (taskqueue/worker.py:170)",
]


def write_trace(path: Path, target_bytes: int) -> int:
    """Write a synthetic trace of about ``target_bytes``; returns its number of events."""
    events = 0
    with path.open("wb") as out:
        out.write(b'{"traceEvents":[')
        header = [
            {
                "ph": "M",
                "pid": PID,
                "tid": LOOP_TID,
                "name": "process_name",
                "args": {"name": "bench"},
            },
            {
                "ph": "M",
                "pid": PID,
                "tid": LOOP_TID,
                "name": "thread_name",
                "args": {"name": "MainThread"},
            },
            {
                "ph": "M",
                "pid": PID,
                "tid": WORKER_TID,
                "name": "thread_name",
                "args": {"name": "worker w0 (queue ops)"},
            },
            {
                "ph": "M",
                "pid": PID,
                "tid": SQL_TID,
                "name": "thread_name",
                "args": {"name": "sqlite thread"},
            },
        ]
        out.write(b",".join(orjson.dumps(e) for e in header))
        events += len(header)
        ts = 1_000_000.0
        written = out.tell()
        while written < target_bytes:
            block = []
            for _ in range(1000):
                op = ("claim", "complete", "enqueue")[events % 3]
                block.append(
                    {
                        "pid": PID,
                        "tid": LOOP_TID,
                        "ts": ts,
                        "ph": "X",
                        "dur": 90.5,
                        "name": FUNCTIONS[0],
                        "cat": "FEE",
                    }
                )
                block.append(
                    {
                        "pid": PID,
                        "tid": LOOP_TID,
                        "ts": ts + 1,
                        "ph": "X",
                        "dur": 60.25,
                        "name": FUNCTIONS[1 + events % 5],
                        "cat": "FEE",
                    }
                )
                block.append(
                    {
                        "pid": PID,
                        "tid": LOOP_TID,
                        "ts": ts + 2,
                        "ph": "X",
                        "dur": 30.125,
                        "name": FUNCTIONS[2],
                        "cat": "FEE",
                    }
                )
                block.append(
                    {
                        "ph": "X",
                        "name": op,
                        "cat": "queue-op",
                        "pid": PID,
                        "tid": WORKER_TID,
                        "ts": ts,
                        "dur": 95.0,
                        "args": {"items": 1},
                    }
                )
                block.append(
                    {
                        "ph": "X",
                        "name": f"{op}: UPDATE tasks",
                        "cat": "sql",
                        "pid": PID,
                        "tid": SQL_TID,
                        "ts": ts + 3,
                        "dur": 40.0,
                        "args": {"op": op, "rows": 1, "statement": events % 4},
                    }
                )
                block.append(
                    {
                        "ph": "C",
                        "name": "queue",
                        "pid": PID,
                        "ts": ts,
                        "args": {"depth": events % 50},
                    }
                )
                events += 6
                ts += 100.0
            out.write(b"," + b",".join(orjson.dumps(e) for e in block))
            written = out.tell()
        out.write(b'],"displayTimeUnit":"ns","file_info":')
        out.write(
            orjson.dumps({"files": {"taskqueue/queue.py": ["x = {'a': 1},{'b': 2}\n" * 2000, 1]}})
        )
        out.write(b"}")
    return events


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--mb", type=float, default=150.0, help="size of the synthetic trace")
    parser.add_argument("--keep", type=Path, help="write the trace here and keep it")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="queueprof-load-") as scratch:
        path = args.keep or Path(scratch) / "synthetic.trace.json"
        events = write_trace(path, int(args.mb * 1e6))
        size = path.stat().st_size
        root = str(Path(__file__).resolve().parent.parent)
        done = subprocess.run(
            [sys.executable, "-c", CHILD.format(root=root, path=str(path))],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            print(done.stderr, file=sys.stderr)
            return 1
        figures = json.loads(done.stdout)
    peak = figures["peak_kib"] * 1024
    grown = (figures["peak_kib"] - figures["before_kib"]) * 1024
    print(
        f"trace: {size / 1e6:.1f} MB, {events:,} events "
        f"({figures['slices']:,} function slices kept)"
    )
    print(
        f"load:  {figures['seconds']:.2f} s "
        f"({size / 1e6 / figures['seconds']:.0f} MB/s; goal <= 5 s)"
    )
    print(
        f"RSS:   peak {peak / 1e6:.0f} MB = {peak / size:.2f}x the file (goal <= 2x); "
        f"grew {grown / 1e6:.0f} MB while loading ({grown / size:.2f}x)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
