"""An order pipeline on litequeue (a SQLite queue from PyPI): a producer fills a backlog,
a consumer pops each message, handles it and marks it done.

``--index`` adds the index litequeue's pop needs (status, message_id): the control.
"""

import argparse
import json
import os

from litequeue import LiteQueue


def produce(q: LiteQueue, n: int) -> None:
    for i in range(n):
        q.put(json.dumps({"order": i, "sku": f"sku-{i % 97}", "qty": 1 + i % 5}))


def handle(body: str) -> int:
    order = json.loads(body)
    return sum(ord(c) for c in order["sku"]) * order["qty"]


def consume(q: LiteQueue) -> int:
    handled = 0
    while (message := q.pop()) is not None:
        handle(message.data)
        q.done(message.message_id)
        handled += 1
        if handled % 1000 == 0:
            print("waiting:", q.qsize())
    return handled


def open_queue(path: str, index: bool) -> LiteQueue:
    if os.path.exists(path):
        os.remove(path)
    q = LiteQueue(path)
    if index:
        q.conn.execute("CREATE INDEX IF NOT EXISTS ready_order ON Queue (status, message_id)")
    return q


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--db", default="orders.db")
    parser.add_argument("--index", action="store_true", help="add the index pop needs")
    args = parser.parse_args()
    q = open_queue(args.db, args.index)
    produce(q, args.messages)
    handled = consume(q)
    q.prune()
    print(f"handled {handled}")
    q.close()


if __name__ == "__main__":
    main()
