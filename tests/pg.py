"""PostgreSQL for the tests: the one place that finds (or starts) a server.

A test that needs Postgres takes the ``pg_dsn`` fixture: a fresh database of its own on
the server, dropped after the test. The server is, in order: the URL in ``QUEUEPROF_PG``;
the one on 127.0.0.1:5432, then on the default socket (user from ``PGUSER`` or the login);
a throwaway cluster started once per session with ``initdb`` (``/usr/lib/postgresql/*/bin``
or PATH). With none of these the tests skip, saying what is missing; under ``CI=true`` they
fail instead, since CI machines have a server.
"""

from __future__ import annotations

import asyncio
import getpass
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

SERVER_ENV = "QUEUEPROF_PG"  # as taskqueue.pgadmin.SERVER_ENV (importable without asyncpg)
SOCKET_DIR = "/var/run/postgresql"


def _user() -> str:
    return os.environ.get("PGUSER") or getpass.getuser()


def candidate_servers() -> list[str]:
    """The server URLs to try, in order."""
    named = os.environ.get(SERVER_ENV)
    if named:
        return [named]
    user = _user()
    return [
        f"postgresql://{user}@127.0.0.1:5432/postgres",
        f"postgresql://{user}@/postgres?host={SOCKET_DIR}&port=5432",
    ]


def unavailable(reason: str) -> None:
    """Skip (or, under CI=true, fail) the test for want of a server, saying what is missing."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"PostgreSQL is required under CI=true: {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL tests skipped: {reason}")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """The URL of a server the tests may create databases on (see the module's doc)."""
    try:
        from taskqueue import pgadmin
    except ImportError as error:
        unavailable(f"asyncpg is not installed ({error}); pip install asyncpg")
        raise AssertionError("unreachable") from None
    tried = []
    for server in candidate_servers():
        problem = asyncio.run(pgadmin.server_answers(server))
        if problem is None:
            yield server
            return
        tried.append(f"{server}: {problem}")
    initdb = pgadmin.find_initdb()
    if initdb is None:
        unavailable(
            "no server answers (" + "; ".join(tried) + ") and no initdb was found on PATH or "
            "in /usr/lib/postgresql/*/bin to start one; install postgresql or set "
            f"{SERVER_ENV}=postgresql://USER@HOST/DB"
        )
    cluster = pgadmin.ThrowawayCluster(Path(str(initdb)).parent)
    try:
        cluster.start()
    except (pgadmin.QueueOpenError, OSError) as error:
        cluster.stop()
        unavailable(
            "no server answers (" + "; ".join(tried) + f") and {initdb} could not start a "
            f"throwaway cluster: {error}"
        )
    try:
        yield cluster.dsn
    finally:
        cluster.stop()


@pytest.fixture
def pg_dsn(pg_server: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh database for this test alone, dropped after it."""
    from taskqueue import pgadmin

    name = pgadmin.scratch_name("test")
    dsn = asyncio.run(pgadmin.create_database(pg_server, name))
    try:
        yield dsn
    finally:
        asyncio.run(pgadmin.drop_database(pg_server, name))


@pytest.fixture(params=["sqlite", "postgres"])
def queue_target(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """Where a test's queue lives, once per backend: a SQLite file path (not yet created)
    or the URL of a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return tmp_path / "queue.db"
    dsn: str = request.getfixturevalue("pg_dsn")
    return dsn
