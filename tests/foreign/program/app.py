"""An order pipeline over jobstore: a producer pushes orders, a consumer pops and prices them."""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import time

from jobstore import PLANT, JobStore

finished: list[dict] = []


def produce(store: JobStore, n: int) -> None:
    for i in range(n):
        lines = [{"sku": f"s{j}", "qty": j} for j in range(20)]
        store.push(
            "order" if i % 2 else "refund", {"order": i, "lines": lines, "note": "x" * 200}, i % 5
        )


def handle(kind: str, body: dict) -> str:
    """Price the order: the real work of a job (about a third of a millisecond)."""
    digest = hashlib.sha256(kind.encode())
    for _ in range(40):
        for line in body["lines"]:
            digest.update(f"{line['sku']}:{line['qty']}".encode())
    return digest.hexdigest()


def consume(store: JobStore, report_every: int, log_path: str) -> int:
    handled = 0
    with open(log_path, "a") as log:
        while (job := store.pop()) is not None:
            job_id, kind, body = job
            if PLANT == "kindscan":
                store.backlog_of(kind)
            handle(kind, body)
            if PLANT == "sleep":
                time.sleep(0.002)  # a pause "to be nice to the database"
            if PLANT == "fsync":
                log.write(f"{job_id} done\n")
                log.flush()
                os.fsync(log.fileno())  # every job's line on disk before the next
            if PLANT == "retain":
                finished.append({"id": job_id, "body": body, "trace": "y" * 2000})
            store.done(job_id)
            handled += 1
            if handled % report_every == 0:
                store.pending_count()
    return handled


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--report-every", type=int, default=100)
    parser.add_argument(
        "--folder", default=None, help="where the database goes (default: a temporary one)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.folder) as folder:
        store = JobStore(os.path.join(folder, "orders.db"))
        total = 0
        for _ in range(args.rounds):
            produce(store, args.jobs)
            total += consume(store, args.report_every, os.path.join(folder, "done.log"))
        store.close()
    print(f"{PLANT}: handled {total}")


if __name__ == "__main__":
    main()
