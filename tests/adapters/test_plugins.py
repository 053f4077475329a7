"""Adapters from outside queueprof: an installed plugin found by its entry point, a module
named by ``--adapter module:attr``, the contract checker, and the spec kept in the run folder.

The plugin (``plugin_source/``) is a real distribution: the session fixture pip-installs it
into a temporary folder (``--target``) that the tests put on ``sys.path`` or ``PYTHONPATH``,
so the same tests pass in tox's editable install and with ``PYTHONPATH`` set to the checkout.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from analysis.operations import Category, OperationMap
from analysis.profile import Frame
from runs.adapters import AdapterSpec, CodePath, read_adapter_specs, write_adapter_specs
from runs.errors import ResultFormatError
from taskqueue import QueueConfig
from tests.diagnosis.harness import top_finding
from tests.helpers.index import PIP, pip_install
from workloads.adapters import plugins
from workloads.adapters.check import run_checks
from workloads.adapters.specs import HUEY
from workloads.comparison import ComparisonParams, compare_queues
from workloads.errors import AdapterContractError, AdapterReferenceError

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PLUGIN_SOURCE = Path(__file__).parent / "plugin_source"


@pytest.fixture(scope="session")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The jobtable plugin, built and pip-installed into a folder of its own."""
    source = tmp_path_factory.mktemp("plugin-src")
    for name in ("pyproject.toml", "jobtable_queueprof.py"):
        shutil.copy(PLUGIN_SOURCE / name, source / name)
    site = tmp_path_factory.mktemp("plugin-site")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(site),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert any(site.glob("jobtable_queueprof-*.dist-info/entry_points.txt"))
    return site


ROOMS = ("runs", "formats", "queueprof", "taskqueue", "workloads", "profilers", "analysis")
"""The packages queueprof's distribution installs (pyproject.toml)."""


@pytest.fixture(scope="session")
def newcomer_site(tmp_path_factory: pytest.TempPathFactory, plugin_site: Path) -> Path:
    """queueprof as a user installs it (its built distribution, not this checkout) and the
    jobtable plugin, in one folder: an install that leaves a sub-package out fails here,
    where tox's editable install and PYTHONPATH hide it."""
    source = tmp_path_factory.mktemp("queueprof-src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(PROJECT_ROOT / name, source / name)
    for room in ROOMS:
        shutil.copytree(
            PROJECT_ROOT / room, source / room, ignore=shutil.ignore_patterns("__pycache__")
        )
    site = tmp_path_factory.mktemp("newcomer-site")
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site)]
    done = _run([*pip, str(source)])
    assert done.returncode == 0, done.stderr
    shutil.copytree(plugin_site, site, dirs_exist_ok=True)
    return site


@pytest.fixture
def plugin_on_path(plugin_site: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The installed plugin importable in this process; the plugin scan forgotten around it."""
    monkeypatch.syspath_prepend(str(plugin_site))
    plugins._scan_plugins.cache_clear()
    yield plugin_site
    plugins._scan_plugins.cache_clear()


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)


def env_with(*paths: Path) -> dict[str, str]:
    parts = [*map(str, paths), str(PROJECT_ROOT)]
    parts += filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))
    return {**os.environ, "PYTHONPATH": os.pathsep.join(parts), "COLUMNS": "200"}


def module_outside_the_repo(tmp_path: Path) -> Path:
    """A folder holding the plugin's module, not installed: what --adapter names."""
    outside = tmp_path / "mine"
    outside.mkdir()
    shutil.copy(PLUGIN_SOURCE / "jobtable_queueprof.py", outside / "jobtable_queueprof.py")
    return outside


def queueprof(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "queueprof", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=cwd,
        check=False,
    )


def profiled_queues(run: Path) -> set[str]:
    """The queues an analysed run's findings.json splits the profile into."""
    findings = orjson.loads((run / "findings.json").read_bytes())
    return {
        entry["queue"]
        for entry_run in findings["runs"]
        for attribution in entry_run["attributions"]
        for role in attribution["roles"]
        for entry in role.get("queues", [])
    }


def test_an_installed_plugin_is_found_by_its_entry_point(plugin_on_path: Path) -> None:
    # GIVEN the jobtable distribution installed, declaring the queueprof.adapters entry point
    # WHEN queueprof scans its plugins THEN the contender is there, by its own name
    found = plugins.installed_plugins()
    assert "jobtable" in found
    assert found["jobtable"].spec.guarantee == "at-most-once"
    assert plugins.find_contenders("jobtable") == (found["jobtable"],)


def test_an_installed_plugin_is_checked_compared_and_analysed_with_queueprof_as_installed(
    newcomer_site: Path, tmp_path: Path
) -> None:
    # GIVEN queueprof's own distribution and the plugin installed (--target, on PYTHONPATH)
    # and nothing of the checkout on the path, in a folder of the user's own
    env = {**os.environ, "PYTHONPATH": str(newcomer_site), "COLUMNS": "200"}
    where = subprocess.run(
        [sys.executable, "-c", "import workloads.adapters; print(workloads.__file__)"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    assert where.stdout.startswith(str(newcomer_site)), where.stdout + where.stderr
    traces = tmp_path / "traces"
    # WHEN the README's steps run: check the plugin, compare it (named as a built-in one is
    # named) under a profiler, analyse the run
    checked = queueprof("adapter", "check", "jobtable", env=env, cwd=tmp_path)
    compared = queueprof(
        "run",
        "comparison",
        "--size",
        "smoke",
        "--param",
        "contenders=taskqueue,jobtable",
        "--param",
        "tasks=100",
        "--profiler",
        "pyinstrument",
        "--out",
        str(traces),
        "--run-id",
        "cmp",
        "--quiet",
        env=env,
        cwd=tmp_path,
    )
    analysed = queueprof("analyze", "--traces", str(traces), "cmp", env=env, cwd=tmp_path)
    # THEN the checker passes it
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "7 of 7 checks passed" in checked.stdout
    # AND it runs as a peer, loses nothing, and the run folder keeps its spec
    assert compared.returncode == 0, compared.stderr + compared.stdout
    run = traces / "cmp"
    results = orjson.loads((run / "results.json").read_bytes())
    rows = {step["settings"]["contender"]: step for step in results["steps"]}
    assert rows["jobtable"]["counters"]["lost"] == 0
    assert rows["jobtable"]["metrics"]["drain_tasks_per_s"] > 0
    stored = {spec.name: spec for spec in read_adapter_specs(run)}
    assert stored["jobtable"].code_paths[1] == CodePath("claim", "jobtable_queueprof.py", ("take",))
    manifest = orjson.loads((run / "manifest.json").read_bytes())
    assert "adapters.json" in [a["path"] for a in manifest["artifacts"]]
    # AND the analysis splits the profile into its queue
    assert analysed.returncode == 0, analysed.stdout + analysed.stderr
    assert "jobtable" in profiled_queues(run)


def test_adapter_from_a_module_outside_the_repo_is_profiled_and_analysed_without_it(
    tmp_path: Path,
) -> None:
    # GIVEN a module in a folder of its own, not installed
    outside = module_outside_the_repo(tmp_path)
    traces = tmp_path / "traces"
    # WHEN the comparison adds it with --adapter, under pyinstrument
    done = queueprof(
        "run",
        "comparison",
        "--size",
        "smoke",
        "--param",
        "contenders=taskqueue",
        "--adapter",
        "jobtable_queueprof:CONTENDERS",
        "--param",
        "tasks=400",
        "--profiler",
        "pyinstrument",
        "--no-baseline",
        "--out",
        str(traces),
        "--run-id",
        "ext",
        "--quiet",
        env=env_with(outside),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    # ... and the run is analysed where the module cannot be imported
    shutil.rmtree(outside)
    analysed = queueprof(
        "analyze", str(traces / "ext"), "--format", "json", env=env_with(), cwd=tmp_path
    )
    assert analysed.returncode == 0, analysed.stderr
    # THEN the profile's time is split into the module's queue, by the stored CodePaths
    queues = profiled_queues(traces / "ext")
    assert "jobtable" in queues, queues


def test_the_operation_map_comes_from_the_stored_specs(tmp_path: Path) -> None:
    # GIVEN a run folder holding a spec of a queue this machine does not have
    spec = AdapterSpec(
        name="faraway",
        module="faraway_queue",
        package="faraway-queue",
        exactly_once=False,
        guarantee="at-least-once",
        delivery="redelivered after a timeout",
        code_paths=(CodePath("claim", "faraway_queue/core.py", ("pop_next",)),),
    )
    write_adapter_specs(tmp_path, [spec, HUEY])
    # WHEN the analysis builds the run's operation map from the folder
    operations = OperationMap(read_adapter_specs(tmp_path))
    frame = Frame("Queue.pop_next", "/site-packages/faraway_queue/core.py")
    # THEN the queue's frames are that queue's claim; built-in specs still apply
    assert operations.category(frame) is Category.CLAIM
    assert operations.queue(frame) == "faraway"
    assert OperationMap().category(frame) is None
    assert operations.queue(Frame("Huey.dequeue", "/x/huey/api.py")) == "huey"


def test_an_adapters_file_of_an_unknown_version_is_refused(tmp_path: Path) -> None:
    (tmp_path / "adapters.json").write_bytes(orjson.dumps({"schema_version": 99, "adapters": []}))
    with pytest.raises(ResultFormatError, match="schema_version 99"):
        read_adapter_specs(tmp_path)


def test_the_checker_catches_a_wrong_status_word_and_a_wrong_code_path(
    plugin_on_path: Path,
) -> None:
    # GIVEN one adapter that answers DONE and one whose CodePath names 'taek'
    chosen = [
        *plugins.find_contenders("jobtable_queueprof:BROKEN_STATUS"),
        *plugins.find_contenders("jobtable_queueprof:BROKEN_CODE_PATH"),
        *plugins.find_contenders("jobtable"),
    ]
    # WHEN the contract suite runs against them
    results = asyncio.run(run_checks(chosen))
    failed = {(r.contender, r.name): r.detail for r in results if not r.passed}
    # THEN exactly those two promises fail, each saying the exact mismatch
    assert set(failed) == {
        ("jobtable-shouting", "status words"),
        ("jobtable-shouting", "handed out once"),
        ("jobtable-typo", "code paths"),
    }
    assert "'DONE'" in failed[("jobtable-shouting", "status words")]
    typo = failed[("jobtable-typo", "code paths")]
    assert "no function 'taek'" in typo
    assert "did you mean 'take'" in typo
    assert all(r.passed for r in results if r.contender == "jobtable")


def test_adapter_check_exits_1_and_names_the_failure(plugin_site: Path, tmp_path: Path) -> None:
    done = queueprof(
        "adapter",
        "check",
        "jobtable_queueprof:BROKEN_CODE_PATH",
        env=env_with(plugin_site),
        cwd=tmp_path,
    )
    assert done.returncode == 1
    assert "taek" in done.stdout
    assert "FAIL" in done.stdout
    ok = queueprof("adapter", "check", "jobtable", env=env_with(plugin_site), cwd=tmp_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "7 of 7 checks passed" in ok.stdout


def test_a_comparison_refuses_a_code_path_typo_and_a_status_word_loudly(
    plugin_on_path: Path, tmp_path: Path
) -> None:
    (typo,) = plugins.load_reference("jobtable_queueprof:BROKEN_CODE_PATH", verify=False)
    with pytest.raises(AdapterContractError, match="did you mean 'take'"):
        asyncio.run(compare_queues([typo], tmp_path / "a", tasks=5))
    (shouting,) = plugins.find_contenders("jobtable_queueprof:BROKEN_STATUS")
    with pytest.raises(AdapterContractError, match="status\\(\\) answered 'DONE'"):
        asyncio.run(compare_queues([shouting], tmp_path / "b", tasks=5))


def test_a_module_in_the_current_folder_is_found_as_the_queueprof_command_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the user's module in the folder they run queueprof from, which the queueprof
    # command (unlike python -m) leaves off sys.path
    folder = tmp_path / "mine"
    folder.mkdir()
    shutil.copy(PLUGIN_SOURCE / "jobtable_queueprof.py", folder / "jobtable_here.py")
    monkeypatch.chdir(folder)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(folder))])
    monkeypatch.delitem(sys.modules, "jobtable_here", raising=False)
    # WHEN --adapter names it THEN it is imported from there
    found = plugins.load_reference("jobtable_here:CONTENDERS", verify=False)
    assert [contender.name for contender in found] == ["jobtable"]
    assert sys.path[-1] == str(folder)
    # ... and a name that is nowhere still says what to do
    with pytest.raises(AdapterReferenceError, match="run from its folder or put that on"):
        plugins.load_reference("jobtable_nowhere:CONTENDERS")
    sys.modules.pop("jobtable_here", None)


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("no_colon_here", "neither module:attr nor an installed plugin"),
        ("not_a_module_anywhere:X", "cannot import 'not_a_module_anywhere'"),
        ("workloads.adapters.specs:NOTHING", "has no attribute 'NOTHING'"),
        ("workloads.adapters.specs:HUEY", "is a AdapterSpec, not an adapter"),
    ],
)
def test_a_bad_reference_says_what_to_write(reference: str, message: str) -> None:
    with pytest.raises(AdapterReferenceError, match=message):
        plugins.find_contenders(reference)


def test_a_spec_with_an_unknown_guarantee_or_a_bare_string_of_functions_is_refused() -> None:
    with pytest.raises(ValueError, match="guarantee 'once-ish'"):
        AdapterSpec("q", "q", None, False, "once-ish", "-")
    with pytest.raises(ValueError, match="exactly_once=True contradicts"):
        AdapterSpec("q", "q", None, True, "at-least-once", "-")
    with pytest.raises(ValueError, match="give a tuple of names"):
        CodePath("claim", "q/core.py", "pop")  # type: ignore[arg-type]


def test_backlog_growth_is_called_only_when_its_band_leaves_flat_behind() -> None:
    from workloads.comparison import fit_backlog

    sizes = (1000, 5000, 20000)

    def points(*rounds: tuple[float, float, float]) -> list[tuple[int, float]]:
        return [(size, cost) for costs in rounds for size, cost in zip(sizes, costs, strict=True)]

    # one size is no sweep
    assert fit_backlog([(1000, 1e-3), (1000, 2e-3)]) is None
    # a claim whose cost rises with the backlog, round after round, grows
    rising = fit_backlog(points((1e-3, 1.6e-3, 3.1e-3), (1.1e-3, 1.5e-3, 2.9e-3)))
    assert rising is not None
    assert rising.verdict == "grows"
    assert rising.low > 1.2
    assert rising.growth == pytest.approx(3.0, rel=0.2)
    assert rising.median_cost_s[20000] == pytest.approx(3.0e-3)
    # flat with noise of tens of percent either way is flat
    flat = fit_backlog(
        points((1e-3, 1.2e-3, 0.9e-3), (1.1e-3, 0.8e-3, 1.0e-3), (0.9e-3, 1e-3, 1.1e-3))
    )
    assert flat is not None
    assert flat.verdict == "flat"
    # a falling cost's band does not fall below nothing
    falling = fit_backlog(points((4e-3, 1e-3, 1e-4), (1e-3, 4e-3, 1e-4)))
    assert falling is not None
    assert falling.low >= 0
    assert falling.verdict != "grows"
    # one stalled probe (an fsync, a checkpoint) at the largest size does not make a trend
    stalled = fit_backlog(points((1e-3, 1e-3, 4e-3), (1e-3, 1.1e-3, 0.9e-3), (1e-3, 0.9e-3, 1e-3)))
    assert stalled is not None
    assert stalled.verdict != "grows"
    # one round that reads growth, the next that does not: not enough to call it
    torn = fit_backlog(points((1e-3, 2e-3, 4e-3), (1e-3, 0.9e-3, 1.0e-3)))
    assert torn is not None
    assert torn.verdict == "unclear"
    assert "band" in torn.describe()


def test_a_backlog_dependent_claim_is_flagged_by_the_sweep_and_the_diagnosis(
    tmp_path: Path,
) -> None:
    # GIVEN a queue whose claim sorts every waiting job, next to one whose claim does not
    outside = module_outside_the_repo(tmp_path)
    traces = tmp_path / "traces"
    # WHEN the comparison sweeps the backlog with the SQL captured
    done = queueprof(
        "run",
        "comparison",
        "--size",
        "smoke",
        "--param",
        "contenders=taskqueue",
        "--adapter",
        "jobtable_queueprof:SORTING_CONTENDER",
        "--adapter",
        "jobtable_queueprof:CONTENDERS",
        "--param",
        "tasks=50",
        "--param",
        "rounds=2",
        "--param",
        "backlogs=300,1000,4000",
        "--param",
        "backlog_probe=200",
        "--queue",
        "capture_sql=true",
        "--out",
        str(traces),
        "--run-id",
        "sweep",
        "--quiet",
        env=env_with(outside),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    results = orjson.loads((traces / "sweep" / "results.json").read_bytes())
    rows = {step["settings"]["contender"]: step["metrics"] for step in results["steps"]}
    verdicts = {
        step["settings"]["contender"]: step["counters"]["backlog_grows"]
        for step in results["steps"]
        if "backlog_grows" in step["counters"]
    }
    # THEN the sweep measures each size and flags the sorting claim's growth, and only it:
    # the same table claimed in id order, and our queue, are not called growing
    assert verdicts == {"jobtable-sorting": 1, "jobtable": 0, "taskqueue": 0, "sqlite3": 0}, [
        n for n in results["notes"] if n.startswith("backlog")
    ]
    sorting = rows["jobtable-sorting"]
    assert {"backlog_300_tasks_per_s", "backlog_4000_tasks_per_s"} <= set(sorting)
    assert sorting["backlog_cost_growth_low"] > 1.2
    assert sorting["backlog_4000_us_per_task"] > sorting["backlog_300_us_per_task"]
    assert any("jobtable-sorting's cost per task grows" in n for n in results["notes"])
    # ... and the analysis's SQL rules find the sort in its captured claim statement
    analysed = queueprof(
        "analyze", str(traces / "sweep"), "--format", "json", env=env_with(), cwd=tmp_path
    )
    assert analysed.returncode == 0, analysed.stderr
    document = orjson.loads((traces / "sweep" / "findings.json").read_bytes())
    findings = [*document["findings"], *document.get("insufficient_evidence", [])]
    assert any(
        f["op"] == "jobtable-sorting.claim" and f["cause"] in ("sql-sort", "sql-scan")
        for f in findings
    ), [(f["op"], f["cause"], f["title"]) for f in findings]
    # ... and the sweep's untimed fill is no N+1 of the scenarios' timed enqueues
    assert not [
        f["title"]
        for f in findings
        if f["cause"] == "n-plus-one" and str(f["op"]).startswith("jobtable")
    ]
    # ... and the diagnosis states the cost: the sweep's growth, from results.json
    assert any(
        f["cause"] == "backlog-growth"
        and f["title"].startswith("jobtable-sorting: cost per task grows")
        # ... naming the claim statement that reads or sorts the waiting rows
        and ("its claim sorts the waiting rows" in f["title"] or "its claim scans" in f["title"])
        and f["recommendation"].startswith("CREATE INDEX")
        for f in findings
    ), [f["title"] for f in findings]


def test_list_names_the_installed_plugins_and_adapter_is_refused_where_it_means_nothing(
    plugin_site: Path, tmp_path: Path
) -> None:
    listed = queueprof("list", "--out", str(tmp_path), env=env_with(plugin_site), cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "jobtable [at-most-once]" in listed.stdout
    refused = queueprof(
        "run",
        "throughput",
        "--adapter",
        "jobtable_queueprof:CONTENDERS",
        env=env_with(plugin_site),
        cwd=tmp_path,
    )
    assert refused.returncode == 2
    assert "drives no queue adapters; use it with comparison" in refused.stderr


@pytest.mark.slow
def test_the_gigq_example_plugin_installs_and_keeps_the_contract(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    # GIVEN examples/queueprof-gigq, the source users copy, built as a wheel from a copy
    # outside the repository (building in place wrote build/ and *.egg-info into examples/)
    # and installed with gigq from PyPI into a folder of its own, as a user's package is
    example = PROJECT_ROOT / "examples" / "queueprof-gigq"
    before = sorted(p.relative_to(example) for p in example.rglob("*"))
    source = tmp_path_factory.mktemp("gigq-source") / "queueprof-gigq"
    shutil.copytree(example, source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    wheels = tmp_path_factory.mktemp("gigq-wheel")
    site = tmp_path_factory.mktemp("gigq-site")
    pip = [sys.executable, "-m", "pip", "--quiet", "--disable-pip-version-check"]
    built = _run([*pip, "wheel", "--no-deps", "--wheel-dir", str(wheels), str(source)])
    if built.returncode != 0:
        pytest.skip(f"the gigq plugin's wheel could not be built here: {built.stderr[-300:]}")
    (wheel,) = wheels.glob("queueprof_gigq-*.whl")
    done = _run([*pip, "install", "--target", str(site), str(wheel)])
    if done.returncode != 0:
        pytest.skip(f"gigq could not be installed here: {done.stderr.strip()[-300:]}")
    assert sorted(p.relative_to(example) for p in example.rglob("*")) == before
    # AND the plugin imports from where it was installed, and no code of queueprof names it
    # (it is found by its entry point only)
    where = subprocess.run(
        [sys.executable, "-c", "import queueprof_gigq; print(queueprof_gigq.__file__)"],
        capture_output=True, text=True, env=env_with(site), cwd=tmp_path, check=False,
    )  # fmt: skip
    assert Path(where.stdout.strip()).is_relative_to(site), where.stdout + where.stderr
    naming = [
        path
        for room in ("runs", "formats", "taskqueue", "workloads", "profilers", "analysis",
                     "queueprof", "benchmarks")
        for path in (PROJECT_ROOT / room).rglob("*.py")
        if "queueprof_gigq" in path.read_text(encoding="utf-8")
    ]  # fmt: skip
    assert naming == []
    # WHEN queueprof checks it by its entry point name
    checked = queueprof("adapter", "check", "gigq", env=env_with(site), cwd=tmp_path)
    # THEN it is found and keeps every promise
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "7 of 7 checks passed" in checked.stdout


@pytest.fixture(scope="session")
def litequeue_plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """examples/queueprof-litequeue built as a wheel from a copy outside the repository and
    installed with litequeue from the package index into a folder of its own (skipped where
    the index cannot be reached, failed under CI=true)."""
    example = PROJECT_ROOT / "examples" / "queueprof-litequeue"
    source = tmp_path_factory.mktemp("litequeue-source") / "queueprof-litequeue"
    shutil.copytree(example, source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    wheels = tmp_path_factory.mktemp("litequeue-wheel")
    built = _run([*PIP, "wheel", "--no-deps", "--wheel-dir", str(wheels), str(source)])
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = wheels.glob("queueprof_litequeue-*.whl")
    return pip_install(tmp_path_factory.mktemp("litequeue-site"), str(wheel))


@pytest.mark.slow
def test_the_litequeue_example_plugin_keeps_the_contract(
    litequeue_plugin_site: Path, tmp_path: Path
) -> None:
    # GIVEN examples/queueprof-litequeue and litequeue from the package index, installed
    # WHEN queueprof checks both of its contenders by their entry point's names
    env = env_with(litequeue_plugin_site)
    for name in ("litequeue", "litequeue-indexed"):
        checked = queueprof("adapter", "check", name, env=env, cwd=tmp_path)
        # THEN each is found and keeps every promise
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert "7 of 7 checks passed" in checked.stdout


@pytest.mark.slow
def test_a_comparison_names_litequeue_s_claim_growing_with_the_backlog(
    litequeue_plugin_site: Path, tmp_path: Path
) -> None:
    # GIVEN a default comparison (no SQL capture, no backlog sweep) of taskqueue, litequeue
    # (whose pop sorts every ready message) and litequeue with the index pop needs
    env = env_with(litequeue_plugin_site)
    contenders = "contenders=taskqueue,litequeue,litequeue-indexed"
    run = queueprof(
        "run", "comparison", "--param", contenders, "--out", str(tmp_path), "--run-id", "lq",
        env=env, cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    # WHEN it is analysed
    analysed = queueprof("analyze", str(tmp_path / "lq"), "--format", "json", env=env, cwd=tmp_path)
    assert analysed.returncode == 0, analysed.stderr[-3000:]
    document = orjson.loads((tmp_path / "lq" / "findings.json").read_bytes())
    # THEN the #1 is litequeue's claim, whose cost grows with the waiting messages (before:
    # only "litequeue.claim p99 is 11x its median", information), and the indexed litequeue
    # has no such finding
    top = top_finding(document)
    assert top is not None
    assert (top["op"], top["cause"], top["standing"]) == (
        "litequeue.claim",
        "backlog-growth",
        "cause",
    ), top["title"]
    growing = [f["op"] for f in document["findings"] if f["cause"] == "backlog-growth"]
    assert growing == ["litequeue.claim"]


def test_an_adapter_s_contender_may_also_be_named_in_contenders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the user's module, named by --adapter, whose contender they also name in
    # --param contenders= (as the "unknown contender" error suggests)
    monkeypatch.syspath_prepend(str(module_outside_the_repo(tmp_path)))
    params = ComparisonParams(contenders=("jobtable",), adapters=("jobtable_queueprof:CONTENDERS",))
    # THEN it is known, and runs once, after the reference
    chosen = params.chosen(QueueConfig())
    assert [c.name for c in chosen] == ["sqlite3", "jobtable"]
    sys.modules.pop("jobtable_queueprof", None)
