"""The adapter example of docs/adapters.md runs as written and its queue passes the contract."""

from __future__ import annotations

import asyncio
import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

from workloads.adapters.base import Contender
from workloads.adapters.check import run_checks

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ADAPTERS_PAGE = PROJECT_ROOT / "docs" / "adapters.md"


def docs_example() -> str:
    """The one Python example of the adapters page (docs/adapters.md, linked from README.md)."""
    (code,) = re.findall(r"```python\n(.*?)```", ADAPTERS_PAGE.read_text(), flags=re.DOTALL)
    return code


def test_the_docs_adapter_example_runs_and_prints_its_row(tmp_path: Path) -> None:
    # GIVEN the adapters page's Python example, saved as the user would save it
    script = tmp_path / "jobs.py"
    script.write_text(docs_example())
    # WHEN it runs
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PYTHONPATH": str(PROJECT_ROOT), "PATH": "/usr/bin:/bin"},
    )
    # THEN it prints the reference, our queue and the user's queue, none of them losing a task
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["sqlite3", "taskqueue", "jobtable"]
    assert lines[2].startswith("jobtable [at-most-once]")
    assert all(line.endswith("lost 0") for line in lines)


def test_the_docs_adapter_passes_the_contract_suite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the example saved as jobs.py and importable (its main() does not run on import)
    (tmp_path / "jobs.py").write_text(docs_example())
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "jobs", raising=False)
    jobs = importlib.import_module("jobs")
    contender = Contender("jobtable", jobs.JOBTABLE, "", jobs.open_jobtable)
    # WHEN `queueprof adapter check` runs its suite on it
    results = asyncio.run(run_checks([contender]))
    # THEN every promise holds, its CodePaths included
    assert [r.name for r in results if not r.passed] == []
    assert len(results) == 7
