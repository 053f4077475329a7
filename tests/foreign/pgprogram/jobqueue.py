"""A job queue of its own on PostgreSQL through asyncpg: push_batch / claim / done / status.

Not queueprof's code and not taskqueue's: the foreign PostgreSQL queue the tests profile.
``JOBSTORE_PLANT`` plants one bottleneck: ``nplus1`` makes status read each job's state with
a statement of its own; ``insertloop`` makes push_batch insert a batch one INSERT at a time
in a transaction, ``insertauto`` one INSERT at a time, each committed on its own;
``noindex`` leaves the claim with no index that fits it.
"""

from __future__ import annotations

import json
import os

import asyncpg

PLANT = os.environ.get("JOBSTORE_PLANT", "clean")


class JobQueue:
    async def open(self, dsn: str) -> None:
        self.pool = await asyncpg.create_pool(dsn, min_size=2, max_size=2)
        await self.pool.execute(
            "CREATE TABLE IF NOT EXISTS jobs (id bigserial PRIMARY KEY, kind text NOT NULL, "
            "payload text NOT NULL, priority int NOT NULL DEFAULT 0, "
            "state text NOT NULL DEFAULT 'ready')"
        )
        if PLANT != "noindex":
            await self.pool.execute(
                "CREATE INDEX IF NOT EXISTS jobs_ready ON jobs (priority DESC, id) "
                "WHERE state = 'ready'"
            )

    async def push_batch(self, jobs: list[tuple[str, dict, int]]) -> None:
        rows = [(kind, json.dumps(body), priority) for kind, body, priority in jobs]
        insert = "INSERT INTO jobs (kind, payload, priority) VALUES ($1, $2, $3)"
        async with self.pool.acquire() as con:
            if PLANT == "insertloop":
                async with con.transaction():
                    for row in rows:
                        await con.execute(insert, *row)
            elif PLANT == "insertauto":
                for row in rows:  # each INSERT its own transaction, committed on its own
                    await con.execute(insert, *row)
            else:
                await con.executemany(insert, rows)

    async def claim(self) -> tuple[int, str, dict] | None:
        row = await self.pool.fetchrow(
            "UPDATE jobs SET state = 'taken' WHERE id = (SELECT id FROM jobs "
            "WHERE state = 'ready' ORDER BY priority DESC, id LIMIT 1 FOR UPDATE SKIP LOCKED) "
            "RETURNING id, kind, payload"
        )
        return None if row is None else (row["id"], row["kind"], json.loads(row["payload"]))

    async def done(self, job_id: int) -> None:
        await self.pool.execute("UPDATE jobs SET state = 'done' WHERE id = $1", job_id)

    async def status(self) -> dict[str, int]:
        if PLANT == "nplus1":
            counts: dict[str, int] = {}
            async with self.pool.acquire() as con:
                for record in await con.fetch("SELECT id FROM jobs"):
                    state = await con.fetchval("SELECT state FROM jobs WHERE id = $1", record["id"])
                    counts[state] = counts.get(state, 0) + 1
            return counts
        rows = await self.pool.fetch("SELECT state, count(*) AS n FROM jobs GROUP BY state")
        return {row["state"]: row["n"] for row in rows}

    async def close(self) -> None:
        await self.pool.close()
