"""Scratch databases and throwaway clusters for the PostgreSQL backend.

Workloads and tests put every queue in a database of its own: :func:`create_database` makes
one on a server (named by a URL of any database there) and :func:`drop_database` removes it,
closing whatever connections a killed worker left. :class:`ThrowawayCluster` starts a private
server with ``initdb``/``pg_ctl`` in a temporary folder, for machines with no server running.
"""

from __future__ import annotations

import asyncio
import getpass
import glob
import os
import pwd
import secrets
import shutil
import stat
import subprocess
import tempfile
import threading
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from .config import SERVER_ENV, redact_dsn
from .errors import QueueOpenError

T = TypeVar("T")
ADMIN_TIMEOUT_S = 10.0


def default_server() -> str:
    """``QUEUEPROF_PG``, else the local server on 127.0.0.1:5432 as ``PGUSER`` or the login."""
    return os.environ.get(SERVER_ENV) or (
        f"postgresql://{os.environ.get('PGUSER') or _login()}@127.0.0.1:5432/postgres"
    )


def with_database(dsn: str, name: str) -> str:
    """``dsn`` with its database part replaced by ``name``."""
    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def scratch_name(label: str) -> str:
    """A fresh database name: ``qp_<label>_<random>``, lower case, at most 63 bytes."""
    clean = "".join(c if c.isalnum() else "_" for c in label.lower())[:40]
    return f"qp_{clean}_{secrets.token_hex(6)}"


async def create_database(server: str, name: str) -> str:
    """Create database ``name`` on the server ``server`` names; returns its URL.

    Raises :class:`QueueOpenError` naming the server and the fix when it cannot."""
    try:
        conn = await asyncpg.connect(server, timeout=ADMIN_TIMEOUT_S)
    except asyncpg.PostgresError as error:
        # The server answered and refused: a wrong user, password or database, not a server
        # that is down (starting it again would not help).
        raise QueueOpenError(
            f"PostgreSQL server {redact_dsn(server)} refused the connection ({error}); fix "
            "the user, password or database in the URL (postgresql://USER:PASSWORD@HOST:PORT/"
            "DATABASE; any existing database will do)"
        ) from None
    except (OSError, asyncpg.InterfaceError, TimeoutError) as error:
        raise QueueOpenError(
            f"PostgreSQL server {redact_dsn(server)} cannot be reached ({error}); start it, or "
            "fix the URL (postgresql://USER@HOST:PORT/DATABASE; any existing database will do)"
        ) from None
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    except asyncpg.PostgresError as error:
        raise QueueOpenError(
            f"cannot create scratch database {name!r} on {redact_dsn(server)} ({error}); the "
            "user needs the CREATEDB privilege"
        ) from None
    finally:
        await conn.close()
    return with_database(server, name)


async def drop_database(server: str, name: str) -> None:
    """Drop database ``name`` (if it exists), ending any session still connected to it."""
    conn = await asyncpg.connect(server, timeout=ADMIN_TIMEOUT_S)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def create_database_now(server: str, name: str) -> str:
    """:func:`create_database` from any code, also inside a running event loop (on a
    thread of its own: set-up code that must return the URL before its first await)."""
    return run_now(create_database(server, name))


def drop_database_now(server: str, name: str) -> None:
    """:func:`drop_database` from any code (a cleanup, a signal's aftermath)."""
    run_now(drop_database(server, name))


def run_now(work: Coroutine[Any, Any, T]) -> T:
    """Run ``work`` to its end on an event loop of its own, on a thread of its own."""
    out: list[T] = []
    failed: list[BaseException] = []

    def run() -> None:
        try:
            out.append(asyncio.run(work))
        except BaseException as error:  # noqa: BLE001 - re-raised on the caller's thread
            failed.append(error)

    thread = threading.Thread(target=run, name="queueprof-pgadmin")
    thread.start()
    thread.join()
    if failed:
        raise failed[0]
    return out[0]


async def server_answers(server: str) -> str | None:
    """None when ``server`` accepts a connection, else why not."""
    try:
        conn = await asyncpg.connect(server, timeout=3)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as error:
        return f"{type(error).__name__}: {error}"
    await conn.close()
    return None


def find_initdb() -> Path | None:
    """``initdb`` on PATH, else the newest Debian one (/usr/lib/postgresql/*/bin)."""
    found = shutil.which("initdb")
    if found:
        return Path(found)
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: (
            int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0
        ),
    )
    return Path(candidates[-1]) if candidates else None


@dataclass
class ThrowawayCluster:
    """A private PostgreSQL server in a temporary folder, listening on its own socket, and on
    TCP at ``listen_address`` when one is given.

    ``start()`` runs ``initdb`` (trust auth for the current user) and ``pg_ctl start``;
    ``stop()`` stops it and deletes the folder. ``dsn`` names its ``postgres`` database
    (over TCP at ``listen_address`` when given, else over the socket).
    """

    bin_dir: Path
    folder: Path | None = None
    port: int = 0
    listen_address: str | None = None
    """An IP address of this machine to accept TCP connections on (None: the socket only)."""
    trusted_network: str | None = None
    """A CIDR block (``10.213.7.0/24``) whose clients may connect without a password; a
    private network of the run's own (initdb trusts only the local addresses)."""
    max_connections: int = 100
    folder_prefix: str = "queueprof-pg-"
    """The name of its temporary folder starts so (a caller's mark, to find it again)."""
    settings: dict[str, str] = field(default_factory=dict)
    """More server settings (``-c name=value``), e.g. a long ``wal_writer_delay`` for a test
    that crashes the server with asynchronous commits still unwritten."""
    _as: list[str] = field(default_factory=list)
    """The command prefix that runs the server's tools as its owner (``runuser`` for root)."""

    @property
    def dsn(self) -> str:
        assert self.folder is not None
        user = os.environ.get("PGUSER") or _login()
        if self.listen_address is not None:
            return f"postgresql://{user}@{self.listen_address}:{self.port}/postgres"
        return f"postgresql://{user}@/postgres?host={self.folder}&port={self.port}"

    def start(self) -> ThrowawayCluster:
        """Create and start the cluster; raises :class:`QueueOpenError` saying why not."""
        self.folder = Path(tempfile.mkdtemp(prefix=self.folder_prefix, dir=cluster_base_dir()))
        data = self.folder / "data"
        self.port = 20000 + secrets.randbelow(20000)
        user = os.environ.get("PGUSER") or _login()
        if os.geteuid() == 0:
            # initdb refuses to run as root: the server runs as the `postgres` account,
            # with a superuser named after the caller so that the URL works unchanged.
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                raise QueueOpenError(
                    "a throwaway PostgreSQL cluster cannot run as root and there is no "
                    "'postgres' account to run it as; create one (adduser --system postgres)"
                ) from None
            os.chown(self.folder, owner.pw_uid, owner.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]
        self._run("initdb", "-D", str(data), "-U", user, "--auth=trust", "--no-sync", "-E", "UTF8")
        if self.trusted_network is not None:
            with open(data / "pg_hba.conf", "a", encoding="utf-8") as hba:
                hba.write(f"host all all {self.trusted_network} trust\n")
        self._pg_ctl_start()
        return self

    def _pg_ctl_start(self) -> None:
        assert self.folder is not None
        extra = "".join(f" -c {name}={value}" for name, value in self.settings.items())
        options = (
            f"-k {self.folder} -p {self.port} -c listen_addresses='{self.listen_address or ''}' "
            f"-c max_connections={self.max_connections} -c fsync=off "
            f"-c shared_preload_libraries=pg_stat_statements{extra}"
        )
        data = str(self.folder / "data")
        self._run(
            "pg_ctl", "-D", data, "-o", options, "-l", str(self.folder / "log"), "-w", "start"
        )

    def crash_and_restart(self) -> None:
        """Stop the server as a crash does (``pg_ctl stop -m immediate``: no checkpoint, the
        WAL not yet written is lost), then start it again on the same data, which it
        recovers from the WAL on disk. Connections to it are cut."""
        assert self.folder is not None, "start() the cluster first"
        self._run("pg_ctl", "-D", str(self.folder / "data"), "-m", "immediate", "-w", "stop")
        self._pg_ctl_start()

    def stop(self) -> None:
        """Stop the server (at once) and delete its folder; also for a cluster of ``folder``
        that another process started and left."""
        if self.folder is None:
            return
        data = self.folder / "data"
        if data.exists():
            owner_prefix = self._as or (
                ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
            )
            subprocess.run(
                [
                    *owner_prefix,
                    str(self.bin_dir / "pg_ctl"),
                    "-D",
                    str(data),
                    "-m",
                    "immediate",
                    "stop",
                ],
                capture_output=True,
                check=False,
                cwd=self.folder,
            )
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder = None

    def _run(self, tool: str, *args: str) -> None:
        # In the cluster's folder: the tools start by changing to the caller's directory,
        # which the `postgres` account may not be allowed into.
        done = subprocess.run(
            [*self._as, str(self.bin_dir / tool), *args],
            capture_output=True,
            text=True,
            check=False,
            cwd=self.folder,
        )
        if done.returncode != 0:
            raise QueueOpenError(
                f"{tool} failed (exit {done.returncode}): {done.stderr.strip() or done.stdout}"
            )


def cluster_base_dir() -> str:
    """Where throwaway clusters put their folders: the temporary directory, unless the run
    is root's and a folder on the way to it is closed to other accounts (a ``mktemp -d``
    parent, mode 0700): the server runs as ``postgres``, which must reach its data, so then
    ``/tmp``."""
    base = Path(tempfile.gettempdir())
    if os.geteuid() != 0 or _open_to_others(base):
        return str(base)
    if _open_to_others(Path("/tmp")):
        return "/tmp"
    raise QueueOpenError(
        f"a throwaway PostgreSQL cluster runs as the 'postgres' account, which cannot reach "
        f"{base} or /tmp; set TMPDIR to a directory every account can enter"
    )


def _open_to_others(folder: Path) -> bool:
    """True when every folder from the root down to ``folder`` lets other accounts in."""
    try:
        return all(os.stat(p).st_mode & stat.S_IXOTH for p in (folder, *folder.parents))
    except OSError:
        return False


def _login() -> str:
    return getpass.getuser()
