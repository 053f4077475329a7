"""A user's queue and its queueprof adapter, as a plugin package ships them.

The tests copy this file into a temporary package and pip-install it; it imports only
queueprof's public adapter API. ``CONTENDERS`` is what the entry point names; the two
``BROKEN_*`` contenders break one contract each, for the checker.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from workloads.adapters import AdapterSpec, CodePath, Contender, QueueAdapter

HERE = "jobtable_queueprof.py"


class JobTable:
    """One table; a job is taken by marking it, done by deleting it."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        # No fsync per commit: the tests measure claims, not the disk.
        self.db.execute("PRAGMA synchronous=OFF")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS jobs (id INTEGER PRIMARY KEY, body TEXT, taken INT)"
        )

    def push(self, body: str) -> int:
        cursor = self.db.execute("INSERT INTO jobs (body, taken) VALUES (?, 0)", (body,))
        return int(cursor.lastrowid or 0)

    order = "id"
    """The claim's order: by the primary key, an index search."""

    def take(self) -> tuple[int, str] | None:
        return self.db.execute(
            "UPDATE jobs SET taken = 1 WHERE id = (SELECT id FROM jobs WHERE taken = 0 "
            f"ORDER BY {self.order} LIMIT 1) RETURNING id, body"
        ).fetchone()

    def finish(self, job_id: int) -> None:
        self.db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))

    def state(self, job_id: int) -> str:
        row = self.db.execute("SELECT taken FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return "done" if row is None else ("running" if row[0] else "pending")


def spec(name: str, *, take: str = "take") -> AdapterSpec:
    return AdapterSpec(
        name=name,
        module="jobtable_queueprof",
        package="jobtable-queueprof",
        exactly_once=False,
        guarantee="at-most-once",
        delivery="a job taken by a worker that dies stays taken forever",
        code_paths=(
            CodePath("enqueue", HERE, ("push",)),
            CodePath("claim", HERE, (take,)),
            CodePath("complete", HERE, ("finish",)),
            CodePath("status", HERE, ("state",)),
        ),
    )


class JobTableAdapter:
    def __init__(self, jobs: JobTable, spec: AdapterSpec, done_word: str = "done") -> None:
        self.jobs = jobs
        self.spec = spec
        self.done_word = done_word

    async def enqueue(self, payload: Mapping[str, Any]) -> object:
        return self.jobs.push(repr(dict(payload)))

    async def claim(self, n: int) -> Sequence[object]:
        taken = []
        while len(taken) < n and (job := self.jobs.take()) is not None:
            taken.append(job)
        return taken

    async def complete(self, claimed: Sequence[object]) -> None:
        for job in claimed:
            assert isinstance(job, tuple)
            self.jobs.finish(job[0])

    async def status(self, ref: object) -> str | None:
        assert isinstance(ref, int)
        word = self.jobs.state(ref)
        return self.done_word if word == "done" else word

    async def close(self) -> None:
        self.jobs.db.close()


class SortingJobTable(JobTable):
    """The planted backlog-dependent claim: ordered by the body, which no index covers, so
    every claim reads and sorts all waiting jobs."""

    order = "body"


def opener(spec: AdapterSpec, done_word: str = "done", table: type[JobTable] = JobTable) -> Any:
    async def open_jobtable(folder: Path) -> QueueAdapter:
        return JobTableAdapter(table(folder / "jobs.db"), spec, done_word)

    return open_jobtable


JOBTABLE = spec("jobtable")
CONTENDERS = (
    Contender("jobtable", JOBTABLE, "WAL, default synchronous", opener(JOBTABLE), peer=True),
)

SHOUTING = spec("jobtable-shouting")
BROKEN_STATUS = Contender("jobtable-shouting", SHOUTING, "answers DONE", opener(SHOUTING, "DONE"))
"""Answers ``DONE`` for a completed job: the status words are lower case."""

TYPO = spec("jobtable-typo", take="taek")
BROKEN_CODE_PATH = Contender("jobtable-typo", TYPO, "a CodePath typo", opener(TYPO))
"""Declares ``taek`` for the claim: no such function."""

SORTING = spec("jobtable-sorting")
SORTING_CONTENDER = Contender(
    "jobtable-sorting", SORTING, "claims in body order", opener(SORTING, table=SortingJobTable)
)
"""Claims cost more the more jobs wait: what the backlog sweep and the diagnosis flag."""
