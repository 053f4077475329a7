"""Packages of other people's queues fetched from the package index at test time.

``pip install --target`` into a folder of the test's own, never into the environment that
runs the tests. Where the index cannot be reached the test skips, naming what is missing;
under ``CI=true``, where the index is reachable, it fails instead.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PIP = (sys.executable, "-m", "pip", "--quiet", "--disable-pip-version-check")


def unavailable(reason: str) -> None:
    """Skip (or, under CI=true, fail) the test for want of a package, saying which."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"the package index is required under CI=true: {reason}", pytrace=False)
    pytest.skip(reason)


def pip_install(target: Path, *requirements: str) -> Path:
    """``requirements`` (names or wheel files) with their dependencies, into ``target``."""
    done = subprocess.run(
        [*PIP, "install", "--target", str(target), *requirements],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        unavailable(
            f"{' '.join(requirements)} could not be installed from the package index: "
            f"{done.stderr.strip()[-300:]}"
        )
    return target
