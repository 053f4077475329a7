"""The machine's floor for a PostgreSQL round trip under the ``pg_processes_20`` row's shape.

``pg_processes_20`` holds the queue's claim p99 to 20 ms with 20 engines over 4 processes.
On a shared machine no claim can be faster than a bare round trip from the same number of
clients, so this measures that floor beside the row's runs: ``processes`` worker processes
of ``clients`` connections each, every connection sending one statement every
``interval_ms`` (jittered, so they do not march in step) for ``duration_s``:

- ``select``: ``SELECT 1``, a round trip with nothing to write;
- ``update``: a one-row ``UPDATE`` of the client's own row, whose commit waits for the WAL
  flush (``synchronous_commit=on``), as an ack does.

Each statement's time is taken on the client's event loop, as the queue's claim timings are.
Run ``python -m benchmarks.pg_floor [--server URL]``; the server defaults to ``QUEUEPROF_PG``
or the local one. It prints p50, p99 and max per kind, with the load average before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import random
import sys
import time
from dataclasses import dataclass

import asyncpg
import numpy as np

from taskqueue import TaskQueueError, pgadmin, redact_dsn

KINDS = ("select", "update")
_TABLE = "floor_rows"


@dataclass(frozen=True)
class FloorShape:
    """How many clients send what, how often, for how long."""

    processes: int = 4
    clients: int = 5
    """Connections per process (the row's engines per process)."""
    interval_ms: float = 80.0
    duration_s: float = 5.0


async def _client(dsn: str, kind: str, row: int, shape: FloorShape, out: list[int]) -> None:
    conn = await asyncpg.connect(dsn, server_settings={"synchronous_commit": "on"})
    try:
        statement = (
            "SELECT 1" if kind == "select" else f"UPDATE {_TABLE} SET n = n + 1 WHERE id = $1"
        )
        args = () if kind == "select" else (row,)
        end = time.perf_counter() + shape.duration_s
        await asyncio.sleep(random.uniform(0, shape.interval_ms / 1000))
        while time.perf_counter() < end:
            start = time.perf_counter_ns()
            await conn.execute(statement, *args)
            out.append(time.perf_counter_ns() - start)
            await asyncio.sleep(shape.interval_ms / 1000 * random.uniform(0.5, 1.5))
    finally:
        await conn.close()


def _process(dsn: str, kind: str, first_row: int, shape: FloorShape) -> list[int]:
    async def main() -> list[int]:
        out: list[int] = []
        await asyncio.gather(
            *(_client(dsn, kind, first_row + i, shape, out) for i in range(shape.clients))
        )
        return out

    return asyncio.run(main())


async def prepare(dsn: str, rows: int) -> None:
    """Make the floor's table in ``dsn`` with ``rows`` rows, one per client."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"CREATE TABLE {_TABLE} (id INTEGER PRIMARY KEY, n BIGINT NOT NULL)")
        await conn.execute(
            f"INSERT INTO {_TABLE} SELECT i, 0 FROM generate_series(0, $1::int - 1) AS i", rows
        )
    finally:
        await conn.close()


def measure(dsn: str, kind: str, shape: FloorShape) -> np.ndarray:
    """Every statement's time (ns) of one ``kind`` over the shape's processes and clients;
    ``dsn`` must hold the floor's table (:func:`prepare`)."""
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r}: choose one of {', '.join(KINDS)}")
    context = multiprocessing.get_context("spawn")
    with context.Pool(shape.processes) as pool:
        parts = pool.starmap(
            _process, [(dsn, kind, p * shape.clients, shape) for p in range(shape.processes)]
        )
    return np.array([x for part in parts for x in part], dtype=np.int64)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", help="a postgresql:// URL (default: QUEUEPROF_PG or local)")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each kind, interleaved")
    args = parser.parse_args(argv)
    server = args.server or pgadmin.default_server()
    shape = FloorShape()

    async def scratch() -> tuple[str, str]:
        name = pgadmin.scratch_name("floor")
        return name, await pgadmin.create_database(server, name)

    try:
        name, dsn = asyncio.run(scratch())
    except TaskQueueError as error:
        print(f"pg_floor: {error}", file=sys.stderr)
        return 2
    try:
        asyncio.run(prepare(dsn, shape.processes * shape.clients))
        print(
            f"{shape.processes} processes x {shape.clients} connections, one statement every "
            f"{shape.interval_ms:g} ms each, {shape.duration_s:g} s, on {redact_dsn(server)}"
        )
        for _ in range(args.repeats):
            for kind in KINDS:
                before = os.getloadavg()[0]
                ms = measure(dsn, kind, shape) / 1e6
                after = os.getloadavg()[0]
                p50, p99 = np.percentile(ms, [50, 99])
                print(
                    f"{kind:6s} p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  max {ms.max():7.2f} ms  "
                    f"({len(ms):,} statements, load {before:.1f} -> {after:.1f})",
                    flush=True,
                )
    finally:
        asyncio.run(pgadmin.drop_database(server, name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
