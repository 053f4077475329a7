"""A scratch PostgreSQL database per adapter folder, for peers that keep their queue on a server.

An adapter is opened on a fresh folder (:data:`~workloads.adapters.base.Opener`); a queue that
lives in PostgreSQL gets a database of its own for that folder instead: created on the server
named by ``QUEUEPROF_PG`` (a libpq URI or ``key=value`` string; empty or unset: libpq's
defaults, i.e. ``PGHOST``/``PGUSER``/... or the local socket as the current user, database
``postgres``), with a unique name, and recorded in the folder. Opening the same folder again
finds the same database, so a queue's tasks survive its ``close()`` as they do in a file.

A scratch database is dropped when the folder it belongs to is gone or the process that made it
has ended: at this process's exit (also after a failed run) and, for a process that was killed,
by the next :func:`scratch_database` on the same host. A caller done with a folder drops its
database at once with :func:`release_scratch_database` (the comparison does, after each
scenario). An adapter whose open fails half-way
drops the database it made at once with :meth:`ScratchDatabase.abandon`. asyncpg is imported
here only when a scratch database is asked for; a plugin that uses this declares asyncpg in its
own dependencies.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import contextvars
import json
import os
import re
import socket
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import psutil

from runs.adapters import AdapterUnavailableError

DSN_VARIABLE = "QUEUEPROF_PG"
"""The environment variable naming the server (and the database to connect to for CREATE)."""

DEFAULT_ADMIN_DATABASE = "postgres"
"""Where CREATE DATABASE is issued when the DSN names no database."""

PREFIX = "queueprof_scratch_"
"""Every scratch database's name starts with this (the sweep touches nothing else)."""

MARKER = "postgres-database.json"
"""The file in an adapter's folder that names its scratch database."""

CONNECT_TIMEOUT_S = 10.0
"""How long a server gets to answer before the adapter is reported unavailable."""

_made_here: dict[str, str] = {}
"""Scratch databases this process made and has not dropped yet: name -> DSN."""
_made_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class ScratchDatabase:
    """One scratch database: the server's DSN as given and the database's name on it."""

    dsn: str
    """The DSN as given in ``QUEUEPROF_PG`` (empty: libpq's defaults)."""
    name: str
    fresh: bool = False
    """True when this call made it (empty); False when the folder already had it."""

    def url(self) -> str:
        """A ``postgresql://`` URL of this database (what :class:`taskqueue.TaskQueue` opens);
        raises :class:`AdapterUnavailableError` when the server was named by a ``key=value``
        string, which has no URL form here."""
        if not self.dsn:  # libpq's defaults: PGHOST/PGUSER or the local socket
            return f"postgresql:///{quote(self.name)}"
        parts = urlsplit(self.dsn)
        if parts.scheme not in ("postgresql", "postgres"):
            raise AdapterUnavailableError(
                f"{DSN_VARIABLE} names the server by a key=value string (not shown: it may "
                "hold a password); a queue opened by URL needs the server as a URL: set it "
                "to postgresql://USER@HOST:PORT/postgres"
            )
        return urlunsplit((parts.scheme, parts.netloc, "/" + self.name, parts.query, ""))

    def asyncpg_arguments(self) -> dict[str, Any]:
        """``asyncpg.connect`` keyword arguments that reach this database."""
        return {"dsn": self.dsn or None, "database": self.name, "timeout": CONNECT_TIMEOUT_S}

    async def drop(self) -> None:
        """Drop the database now, closing any connection still on it."""
        await _drop(self.dsn, self.name)

    async def abandon(self) -> None:
        """After a failed open: drop the database if that open made it (a reopened folder
        keeps its tasks)."""
        if self.fresh:
            await self.drop()


_server: contextvars.ContextVar[str | None] = contextvars.ContextVar("scratch_server", default=None)
"""The server :func:`on_server` chose for the code running inside it (None: the variable)."""


def server_dsn() -> str:
    """The DSN the scratch databases are made with: the one :func:`on_server` set for the
    code running now, else ``QUEUEPROF_PG``, else empty (libpq's defaults)."""
    chosen = _server.get()
    return chosen if chosen is not None else os.environ.get(DSN_VARIABLE, "").strip()


@contextlib.contextmanager
def on_server(dsn: str) -> Iterator[None]:
    """Make every scratch database opened inside (in this task and the tasks it awaits) on
    the server ``dsn`` names, whatever ``QUEUEPROF_PG`` says: a comparison run with
    ``--queue backend=postgresql://...`` puts the peers on the server our queue runs on."""
    token = _server.set(dsn)
    try:
        yield
    finally:
        _server.reset(token)


async def scratch_database(folder: Path, owner: str) -> ScratchDatabase:
    """The scratch database of ``folder``: the one recorded there, or a new one named after
    ``owner`` (the queue's name); raises :class:`AdapterUnavailableError` when no server
    answers or this user may not create a database."""
    marker = folder / MARKER
    if marker.is_file():
        return await _recorded(marker)
    dsn = server_dsn()
    slug = re.sub(r"[^a-z0-9]+", "_", owner.lower()).strip("_")[:20]
    name = f"{PREFIX}{slug}_{os.getpid()}_{uuid.uuid4().hex[:12]}"
    owner_note = {"folder": str(folder.resolve()), "pid": os.getpid(), "host": socket.gethostname()}
    asyncpg = _asyncpg()
    admin = await _admin(dsn)
    try:
        await _sweep(admin)
        # Names are generated here from [a-z0-9_], so quoting them is enough.
        await admin.execute(f'CREATE DATABASE "{name}"')
        with _made_lock:
            _made_here[name] = dsn
        comment = json.dumps(owner_note).replace("'", "''")
        await admin.execute(f"COMMENT ON DATABASE \"{name}\" IS '{comment}'")
    except asyncpg.PostgresError as error:
        raise AdapterUnavailableError(
            f"the PostgreSQL server at {_where(dsn)} refused to create a scratch database "
            f"({type(error).__name__}: {error}); connect as a user allowed to CREATE "
            f"DATABASE (set {DSN_VARIABLE}=postgresql://USER@HOST:PORT/postgres)"
        ) from None
    finally:
        await admin.close()
    marker.write_text(json.dumps({"dsn": dsn, "name": name}), encoding="utf-8")
    return ScratchDatabase(dsn=dsn, name=name, fresh=True)


async def release_scratch_database(folder: Path) -> None:
    """Drop ``folder``'s scratch database now, if it has one (none for a queue on files): the
    caller is done with the folder, whose adapter is closed. Reopening the folder then says
    its database is gone.

    Until then a finished scenario's database holds its rows and, in the server's shared
    buffers, its dirty pages: a comparison that kept every round's databases to the end had
    the later scenarios' commits wait behind the server writing the earlier ones' pages out
    (our cycle at the defaults ran 893-1,220 tasks/s over nine rounds, 1,106-1,235/s with each
    scenario's database dropped after it). A DROP DATABASE makes the server checkpoint, so
    every scenario starts from written-out buffers.
    """
    marker = folder / MARKER
    if marker.is_file():
        await _named_by(marker).drop()


def _named_by(marker: Path) -> ScratchDatabase:
    """The database ``marker`` names (whether or not it is still on the server)."""
    recorded = json.loads(marker.read_text(encoding="utf-8"))
    return ScratchDatabase(dsn=str(recorded["dsn"]), name=str(recorded["name"]))


async def _recorded(marker: Path) -> ScratchDatabase:
    """The database ``marker`` names, if it is still on the server."""
    database = _named_by(marker)
    admin = await _admin(database.dsn)
    try:
        there = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database.name)
    finally:
        await admin.close()
    if there is None:
        raise AdapterUnavailableError(
            f"{marker} names the scratch database {database.name!r}, which is no longer on the "
            "server (dropped when the process that made it ended, or its folder was gone): "
            "open the adapter on a fresh folder"
        )
    return database


def _asyncpg() -> Any:
    try:
        import asyncpg
    except ImportError:
        raise AdapterUnavailableError(
            "a PostgreSQL peer needs the 'asyncpg' package to make its scratch database; "
            "install it with `pip install asyncpg` (the peer's package declares it)"
        ) from None
    return asyncpg


async def _admin(dsn: str) -> Any:
    asyncpg = _asyncpg()
    arguments: dict[str, Any] = {"dsn": dsn or None, "timeout": CONNECT_TIMEOUT_S}
    if not dsn:
        arguments["database"] = DEFAULT_ADMIN_DATABASE
    try:
        return await asyncpg.connect(**arguments)
    except (TimeoutError, OSError, asyncpg.PostgresError) as error:
        raise AdapterUnavailableError(
            f"no PostgreSQL server answers at {_where(dsn)} ({type(error).__name__}: {error}); "
            f"start one, or set {DSN_VARIABLE} to a server's DSN, e.g. "
            "postgresql://USER@127.0.0.1:5432/postgres"
        ) from None


def _where(dsn: str) -> str:
    if not dsn:
        return f"libpq's defaults ({DSN_VARIABLE} unset: PGHOST or the local socket)"
    return f"{DSN_VARIABLE}={re.sub(r':[^:@/]*@', ':***@', dsn)!r}"


async def _sweep(admin: Any) -> None:
    """Drop the scratch databases on this host whose process ended or whose folder is gone."""
    rows = await admin.fetch(
        "SELECT datname, shobj_description(oid, 'pg_database') AS note FROM pg_database "
        "WHERE datname LIKE $1",
        PREFIX + "%",
    )
    host = socket.gethostname()
    for row in rows:
        try:
            note = json.loads(row["note"] or "")
        except ValueError:
            continue  # being created right now (no comment yet), or not ours to judge
        if not isinstance(note, dict) or note.get("host") != host:
            continue
        pid = int(note.get("pid", 0))
        ours = pid == os.getpid()
        gone = not psutil.pid_exists(pid) or (ours and not Path(note["folder"]).exists())
        if gone:
            await admin.execute(f'DROP DATABASE IF EXISTS "{row["datname"]}" WITH (FORCE)')
            with _made_lock:
                _made_here.pop(row["datname"], None)


async def _drop(dsn: str, name: str) -> None:
    admin = await _admin(dsn)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
    with _made_lock:
        _made_here.pop(name, None)


def _drop_all_made_here() -> None:
    """At exit: drop every scratch database this process made and did not drop yet."""
    with _made_lock:
        made = dict(_made_here)
    if not made:
        return

    async def drop_them() -> None:
        for name, dsn in made.items():
            await _drop(dsn, name)

    # Its own thread and loop: the exit may come while the main thread's loop is still set.
    worker = threading.Thread(target=asyncio.run, args=(drop_them(),))
    worker.start()
    worker.join(timeout=60)


atexit.register(_drop_all_made_here)

__all__ = [
    "DSN_VARIABLE",
    "MARKER",
    "ScratchDatabase",
    "on_server",
    "release_scratch_database",
    "scratch_database",
    "server_dsn",
]
