"""Environment metadata, captured once per run and stored in the manifest."""

from __future__ import annotations

import os
import platform
import sqlite3
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil

PACKAGES = (
    "queueprof",
    "aiosqlite",
    "asyncpg",
    "orjson",
    "rich",
    "psutil",
    "numpy",
    "pyinstrument",
    "memray",
    "viztracer",
    "py-spy",
)
"""Distributions whose versions a run records (None when not installed)."""

_SOURCE_ROOT = Path(__file__).resolve().parent.parent


def capture_environment() -> dict[str, Any]:
    """Python, SQLite, CPU, platform, package versions and the git revision."""
    return {
        "python": {
            "version": platform.python_version(),
            "implementation": platform.python_implementation(),
            "executable": sys.executable,
        },
        "sqlite": {"version": sqlite3.sqlite_version},
        "cpu": {
            "model": cpu_model(),
            "logical_cores": os.cpu_count(),
            "physical_cores": psutil.cpu_count(logical=False),
        },
        "memory_total_bytes": psutil.virtual_memory().total,
        "platform": platform.platform(),
        "packages": {name: package_version(name) for name in PACKAGES},
        "git": git_revision(_SOURCE_ROOT),
    }


def package_version(name: str) -> str | None:
    """The installed version of distribution ``name``, or None if it is not installed."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def cpu_model() -> str:
    """The CPU model name (from /proc/cpuinfo on Linux), else what the platform reports."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                return value.strip()
    return platform.processor() or platform.machine()


def git_revision(root: Path) -> dict[str, Any] | None:
    """``{"commit", "dirty"}`` of the checkout at ``root``, or None outside a git checkout."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        )
        if commit.returncode != 0:
            return None
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None  # no git binary, or it hung: the revision is unknown, which null says
    return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip())}


POSTGRES_SETTINGS = (
    "server_version",
    "synchronous_commit",
    "fsync",
    "wal_level",
    "max_connections",
    "shared_buffers",
    "shared_preload_libraries",
)
"""The server settings a PostgreSQL run records: what its figures depend on besides the
queue (a commit waits for the WAL flush unless synchronous_commit or fsync is off)."""


def postgres_environment(server: str) -> dict[str, Any]:
    """The server a PostgreSQL run uses: its URL (password masked) and
    :data:`POSTGRES_SETTINGS`; an ``error`` instead of settings when it cannot be asked."""
    from taskqueue import redact_dsn

    found: dict[str, Any] = {"server": redact_dsn(server)}
    try:
        import asyncpg

        from taskqueue.pgadmin import run_now

        async def read() -> dict[str, str]:
            conn = await asyncpg.connect(server, timeout=10)
            try:
                rows = await conn.fetch(
                    "SELECT name, setting FROM pg_settings WHERE name = ANY($1::text[])",
                    list(POSTGRES_SETTINGS),
                )
                return {str(name): str(value) for name, value in rows}
            finally:
                await conn.close()

        found["settings"] = run_now(read())
    except (ImportError, OSError, TimeoutError) as error:
        found["error"] = f"{type(error).__name__}: {error}"
    except Exception as error:  # noqa: BLE001 - asyncpg's own errors: recorded, the run says more
        found["error"] = f"{type(error).__name__}: {error}"
    return found
