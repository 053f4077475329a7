"""The README's adapter example runs as written and its queue passes the adapter contract."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SECTION = "## Profiling your own queue: adapters"


def readme_example() -> str:
    text = (PROJECT_ROOT / "README.md").read_text()
    section = text[text.index(SECTION) :]
    section = section[: section.index("\n## ", len(SECTION))]
    (code,) = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    return code


def test_the_readme_adapter_example_runs_and_prints_its_row(tmp_path: Path) -> None:
    # GIVEN the README section's Python example, saved as the user would save it
    script = tmp_path / "jobs.py"
    script.write_text(readme_example())
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


def test_the_readme_adapter_passes_the_contract(tmp_path: Path) -> None:
    # GIVEN the example's adapter, imported without running its main()
    namespace: dict[str, object] = {"__name__": "readme_example"}
    exec(compile(readme_example().replace("asyncio.run(main())", ""), "jobs.py", "exec"), namespace)
    from workloads.adapters.base import Contender

    from .test_contract import claim_all, run

    contender = Contender("jobtable", namespace["JOBTABLE"], "", namespace["open_jobtable"])  # type: ignore[arg-type]

    async def body(adapter):  # type: ignore[no-untyped-def]
        refs = [await adapter.enqueue({"seq": seq}) for seq in range(5)]
        claimed = await claim_all(adapter, 2)
        held = await adapter.claim(2)
        await adapter.complete(claimed)
        return len(claimed), held, [await adapter.status(r) for r in refs]

    # WHEN driven like every built-in adapter THEN every job is handed out once and completes
    assert run(body, contender, tmp_path) == (5, [], ["done"] * 5)
