"""An adapter whose library is not installed: a clear error naming the package and the extra."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from workloads.adapters.specs import HUEY, PERSIST_QUEUE
from workloads.errors import AdapterUnavailableError, UsageError
from workloads.runner import plan_run

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("spec", "package"), [(HUEY, "huey"), (PERSIST_QUEUE, "persist-queue")], ids=["huey", "pq"]
)
def test_loading_a_missing_library_names_the_pip_package_and_the_extra(
    spec: object, package: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from workloads.adapters.base import AdapterSpec

    assert isinstance(spec, AdapterSpec)
    # GIVEN the library cannot be imported (None in sys.modules makes import fail)
    monkeypatch.setitem(sys.modules, spec.module, None)
    # WHEN the adapter loads it THEN the error names the pip package and the extra
    with pytest.raises(AdapterUnavailableError) as raised:
        spec.load()
    message = str(raised.value)
    assert f"pip install {package}" in message
    assert "queueprof[peers]" in message
    assert isinstance(raised.value, UsageError)
    assert not spec.available()


def test_planning_a_comparison_without_huey_fails_before_anything_is_written(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # GIVEN huey is not installed
    monkeypatch.setitem(sys.modules, "huey", None)
    # WHEN a comparison that includes huey is planned THEN it is refused, naming huey
    with pytest.raises(AdapterUnavailableError, match="'huey' package"):
        plan_run("comparison", size="smoke", out_dir=tmp_path / "traces")
    assert not (tmp_path / "traces").exists()
    # ... and one that leaves the peers out is planned as usual
    plan = plan_run(
        "comparison",
        size="smoke",
        params=["contenders=taskqueue"],
        out_dir=tmp_path / "traces",
    )
    assert plan.params.to_dict()["contenders"] == ["taskqueue"]


def test_the_cli_exits_2_and_says_what_to_install(tmp_path: Path) -> None:
    # GIVEN a Python where persist-queue cannot be imported, running the real CLI module
    program = (
        "import runpy, sys; sys.modules['persistqueue'] = None; "
        "sys.argv = ['queueprof', 'run', 'comparison', '--size', 'smoke', '--out', 'traces']; "
        "runpy.run_module('queueprof', run_name='__main__')"
    )
    done = subprocess.run(
        [sys.executable, "-c", program],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(PROJECT_ROOT), "PATH": "/usr/bin:/bin", "COLUMNS": "200"},
    )
    # WHEN it runs the comparison THEN it exits 2 naming the package, and writes nothing
    assert done.returncode == 2, done.stderr
    assert "pip install persist-queue" in done.stderr
    assert "queueprof[peers]" in done.stderr
    assert not (tmp_path / "traces").exists()
