"""Fixtures shared by unit and integration tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import handlers
from tests.helpers.clock import FakeClock
from tests.pg import pg_dsn, pg_server, queue_target

__all__ = ["pg_dsn", "pg_server", "queue_target"]  # fixtures, shared by every test folder

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def clock() -> FakeClock:
    """A clock that stands still until the test advances it."""
    return FakeClock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Where the test's queue lives (the file does not exist yet)."""
    return tmp_path / "queue.db"


@pytest.fixture
def executed() -> Iterator[list[tuple[int, int, str]]]:
    """The in-process execution record of :mod:`tests.helpers.handlers`, emptied around a test."""
    handlers.EXECUTED.clear()
    yield handlers.EXECUTED
    handlers.EXECUTED.clear()


@pytest.fixture
def importable_tests(monkeypatch: pytest.MonkeyPatch) -> str:
    """Make ``tests.helpers.handlers`` importable in spawned worker processes.

    ``spawn`` children copy the parent's ``sys.path``, which holds the project root when
    pytest runs from it; PYTHONPATH covers other ways of starting the suite.
    """
    parts = [str(PROJECT_ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(parts))
    return handlers.SPEC
