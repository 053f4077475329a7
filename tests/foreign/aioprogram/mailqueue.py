"""An asyncio mail queue of its own on aiosqlite: put / get / ack.

Not queueprof's code and not taskqueue's: the foreign async queue the tests profile.
``JOBSTORE_PLANT=noindex`` leaves get's ORDER BY without a fitting index.
"""

from __future__ import annotations

import json
import os
import time

import aiosqlite

PLANT = os.environ.get("JOBSTORE_PLANT", "clean")


class MailQueue:
    async def open(self, path: str) -> None:
        self.db = await aiosqlite.connect(path, isolation_level=None)
        await self.db.execute("PRAGMA journal_mode=WAL")
        await self.db.execute(
            "CREATE TABLE IF NOT EXISTS mails (id INTEGER PRIMARY KEY, rcpt TEXT, data TEXT, "
            "status INTEGER NOT NULL DEFAULT 0, priority INTEGER, added REAL)"
        )
        if PLANT == "noindex":
            await self.db.execute("CREATE INDEX IF NOT EXISTS mails_status ON mails (status)")
        else:
            await self.db.execute(
                "CREATE INDEX IF NOT EXISTS mails_next ON mails (status, priority DESC, added)"
            )

    async def put(self, rcpt: str, data: dict, priority: int) -> None:
        await self.db.execute(
            "INSERT INTO mails (rcpt, data, priority, added) VALUES (?, ?, ?, ?)",
            (rcpt, json.dumps(data), priority, time.time()),
        )

    async def get(self) -> tuple[int, str] | None:
        async with self.db.execute(
            "UPDATE mails SET status = 1 WHERE id = (SELECT id FROM mails WHERE status = 0 "
            "ORDER BY priority DESC, added LIMIT 1) RETURNING id, data"
        ) as cursor:
            row = await cursor.fetchone()
        return None if row is None else (row[0], row[1])

    async def ack(self, mail_id: int) -> None:
        await self.db.execute("UPDATE mails SET status = 2 WHERE id = ?", (mail_id,))

    async def close(self) -> None:
        await self.db.close()
