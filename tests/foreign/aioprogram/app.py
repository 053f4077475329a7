"""A mailer over mailqueue: queue a batch of mails, then send them one at a time."""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile

from mailqueue import PLANT, MailQueue


async def main(jobs: int, rounds: int, folder: str | None) -> None:
    with tempfile.TemporaryDirectory(dir=folder) as scratch:
        queue = MailQueue()
        await queue.open(os.path.join(scratch, "mails.db"))
        sent = 0
        for _ in range(rounds):
            for i in range(jobs):
                await queue.put(f"u{i}@example.org", {"subject": "hi", "body": "x" * 300}, i % 7)
            while (mail := await queue.get()) is not None:
                await queue.ack(mail[0])
                sent += 1
        await queue.close()
    print(f"{PLANT}: handled {sent}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--folder", default=None)
    args = parser.parse_args()
    asyncio.run(main(args.jobs, args.rounds, args.folder))
