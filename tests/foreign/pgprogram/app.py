"""An order pipeline over jobqueue (PostgreSQL, asyncpg): batches of orders pushed, then
claimed and priced one at a time, with the queue's status checked every so often.

The database is the one named by ``PGPROGRAM_DSN`` (a scratch database the caller drops).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os

from jobqueue import PLANT, JobQueue

BATCH = 50


def handle(kind: str, body: dict) -> str:
    """Price the order: the real work of a job (about a third of a millisecond)."""
    digest = hashlib.sha256(kind.encode())
    for _ in range(40):
        for line in body["lines"]:
            digest.update(f"{line['sku']}:{line['qty']}".encode())
    return digest.hexdigest()


async def produce(queue: JobQueue, n: int) -> None:
    batch = []
    for i in range(n):
        lines = [{"sku": f"s{j}", "qty": j} for j in range(20)]
        batch.append(("order" if i % 2 else "refund", {"order": i, "lines": lines}, i % 5))
        if len(batch) == BATCH:
            await queue.push_batch(batch)
            batch = []
    if batch:
        await queue.push_batch(batch)


async def consume(queue: JobQueue, report_every: int) -> int:
    handled = 0
    while (job := await queue.claim()) is not None:
        job_id, kind, body = job
        handle(kind, body)
        await queue.done(job_id)
        handled += 1
        if handled % report_every == 0:
            await queue.status()
    return handled


async def main(jobs: int, rounds: int, report_every: int) -> None:
    queue = JobQueue()
    await queue.open(os.environ["PGPROGRAM_DSN"])
    total = 0
    for _ in range(rounds):
        await produce(queue, jobs)
        total += await consume(queue, report_every)
    await queue.close()
    print(f"{PLANT}: handled {total}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--report-every", type=int, default=100)
    parser.add_argument("--folder", default=None, help="unused: the queue is in PostgreSQL")
    args = parser.parse_args()
    asyncio.run(main(args.jobs, args.rounds, args.report_every))
