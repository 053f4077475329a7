"""Run one plant through the real ``queueprof run`` and ``queueprof analyze``, judge its #1.

What a finding must say, in ``findings.json`` (schema 3, written by ``queueprof analyze``):
``op`` (the operation: ``enqueue``, ``claim``, ``complete``, ``status``, ``handler``... or
null when it concerns no one operation) and ``cause`` (``sql-scan``, ``n-plus-one``...).
The #1 finding is the first of ``findings`` whose ``sufficient`` is not false: a finding
below its evidence floor never leads.

A plant's #1 is OK when its ``op`` and its ``cause`` are among the plant's expected ones.
The clean control's #1 is OK when it is not a false alarm: there is no sufficient finding,
or it is reported as information (``standing``), or it does not claim a defect (its cause
is none of :data:`DEFECT_CAUSES`), or the defect it claims costs under
:data:`FALSE_ALARM_SHARE` of the run.
"""

from __future__ import annotations

import configparser
import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import orjson

from .plants import Plant

ROOT = Path(__file__).resolve().parents[2]
SITE = Path(__file__).resolve().parent / "site"
RUN_TIMEOUT_S = 300
JOB_TIMEOUT_S = 1200
"""A default-job command's limit: the default size under memray took 190 s on the loaded
machine, and over 300 s with the suite running beside it."""
TOX_INI = ROOT / "tox.ini"
DEFAULT_JOB_SIZE = "default"
"""The size of the default-job mode: ``default`` adds nothing to the tox env's commands (what
a user gets); another size is appended as ``{posargs}`` (``--size smoke``)."""
DEFAULT_JOBS = {"pyinstrument": "profile-cpu", "py-spy": "profile-cpu", "memray": "profile-mem"}
"""The tox env a user runs for a plant of each profiler: the one whose #1 counts."""

DEFECT_CAUSES = frozenset(
    {
        "sql-scan",
        "sql-sort",
        "n-plus-one",
        "hot-subtree",
        "contention",
        "memory-growth",
        "worker-imbalance",
        "loop-hold",
        "round-trips",
        "polling",
    }
)
"""Causes that say "this is wrong with the queue" (the families the plants exercise)."""
FALSE_ALARM_SHARE = 0.05
"""A defect finding on the clean control costing less than this share of the run is noise
reported as such, not a false alarm."""


@dataclass(frozen=True)
class PlantOutcome:
    """One plant run and analysed, and the verdict on its #1 finding."""

    plant: Plant
    run_dir: Path
    top: dict[str, Any] | None
    ok: bool
    reason: str
    seconds: float
    processes: int = 0
    """Processes the plant was applied in (the run, its launcher, worker processes)."""
    job: str = ""
    """The tox env whose commands ran (default-job mode); empty for the plant's own run."""
    attempt: int = 0

    @property
    def top_text(self) -> str:
        """The #1 finding as the report prints it: its title (and op / cause)."""
        if self.top is None:
            return "(no sufficient finding)"
        top = self.top
        return f"{top.get('title', '?')}  [op={top.get('op')}, cause={top.get('cause')}]"

    @property
    def expected_text(self) -> str:
        """What the plant expects, for the table."""
        if self.plant.control:
            return "no false alarm"
        if getattr(self.plant, "negligible", None):
            ops = "/".join(sorted(str(op) for op in self.plant.expected_ops))
            causes = "/".join(sorted(self.plant.expected_causes))
            return f"no false alarm; op {ops}, cause {causes} reported below the floors"
        ops = "/".join(sorted(str(op) for op in self.plant.expected_ops))
        causes = "/".join(sorted(self.plant.expected_causes))
        return f"op {ops}, cause {causes}"


def run_plant(plant: Plant, out_dir: Path, *, attempt: int = 0) -> PlantOutcome:
    """Run ``plant`` into ``out_dir`` (run id ``<name>-<attempt>``), analyse it, judge it."""
    started = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    run_id = f"{plant.name}-{attempt}"
    log = out_dir / f"{run_id}.plant-log"
    log.unlink(missing_ok=True)
    shutil.rmtree(out_dir / run_id, ignore_errors=True)  # an earlier run of the same plant
    command = [
        sys.executable,
        "-m",
        "queueprof",
        "run",
        plant.workload,
        "--size",
        plant.size,
        "--profiler",
        plant.profiler,
        "--out",
        str(out_dir),
        "--run-id",
        run_id,
        "--quiet",
    ]
    for param in plant.params:
        command += ["--param", param]
    queue = ",".join(filter(None, [plant.queue, postgres_backend() if plant.postgres else ""]))
    if queue:
        command += ["--queue", queue]
    if not plant.baseline:
        command.append("--no-baseline")
    env = _env(plant_name=plant.name, log=log)
    done = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S
    )
    run_dir = out_dir / run_id
    if done.returncode != 0:
        raise RuntimeError(
            f"plant {plant.name}: `queueprof run` exited {done.returncode}:\n"
            f"{done.stderr[-3000:]}\n{done.stdout[-2000:]}"
        )
    if not plant.control and not log.exists():
        raise RuntimeError(f"plant {plant.name}: sitecustomize never applied it (no {log})")
    # The analysis runs with no plant: it must find the bottleneck in the run folder alone.
    analysed = subprocess.run(
        [sys.executable, "-m", "queueprof", "analyze", str(run_dir), "--format", "json"],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )
    if analysed.returncode != 0:
        raise RuntimeError(
            f"plant {plant.name}: `queueprof analyze` exited {analysed.returncode}:\n"
            f"{analysed.stderr[-3000:]}"
        )
    top, ok, reason = verdict(plant, orjson.loads((run_dir / "findings.json").read_bytes()))
    processes = len(log.read_text().splitlines()) if log.exists() else 0
    seconds = time.perf_counter() - started
    return PlantOutcome(plant, run_dir, top, ok, reason, seconds, processes, attempt=attempt)


def default_job_commands(env: str, posargs: list[str], out_dir: Path) -> list[list[str]]:
    """The ``commands`` of tox env ``env``, read from ``tox.ini`` so they cannot drift: each
    ``queueprof`` becomes this interpreter's ``-m queueprof``, ``{posargs}`` becomes
    ``posargs``, and every command reads and writes run folders in ``out_dir``."""
    config = configparser.ConfigParser(interpolation=None)
    config.read(TOX_INI, encoding="utf-8")
    section = f"testenv:{env}"
    if not config.has_option(section, "commands"):
        raise RuntimeError(f"{TOX_INI}: no [{section}] with commands")
    commands = []
    for line in config.get(section, "commands").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        words: list[str] = []
        for word in shlex.split(line):
            words += posargs if word == "{posargs}" else [word]
        if words[0] != "queueprof" or len(words) < 2:
            raise RuntimeError(f"{TOX_INI} [{section}]: not a queueprof command: {line}")
        where = "--traces" if words[1] == "analyze" else "--out"
        # Right after the subcommand: analyze's --run-args takes every word after it.
        commands.append([sys.executable, "-m", *words[:2], where, str(out_dir), *words[2:]])
    return commands


def run_default_job(
    plant: Plant, out_dir: Path, *, attempt: int = 0, size: str = DEFAULT_JOB_SIZE
) -> PlantOutcome:
    """Run ``plant`` through the tox env a user runs for it (:data:`DEFAULT_JOBS`): every run
    command with the plant applied, at ``size``, and the env's ``analyze`` without it; judge
    the combined report's #1. The plant's own params, queue strategy and profiler are not
    used: the default job is what counts."""
    started = time.perf_counter()
    env_name = DEFAULT_JOBS[plant.profiler]
    folder = out_dir / f"{plant.name}-job-{attempt}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    log = folder / "plant-log"
    posargs = ["--quiet"] if size == DEFAULT_JOB_SIZE else ["--size", size, "--quiet"]
    commands = default_job_commands(env_name, posargs, folder)
    for command in commands:
        analysing = command[3] == "analyze"
        env = _env() if analysing else _env(plant_name=plant.name, log=log)
        done = subprocess.run(
            command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=JOB_TIMEOUT_S
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"plant {plant.name} ({env_name}): `{shlex.join(command[2:])}` exited "
                f"{done.returncode}:\n{done.stderr[-3000:]}\n{done.stdout[-2000:]}"
            )
    if not plant.control and not log.exists():
        raise RuntimeError(f"plant {plant.name}: sitecustomize never applied it (no {log})")
    combined = sorted(folder.glob("analysis-*/findings.json"))
    runs = [f for f in folder.glob("*/findings.json") if not f.parent.name.startswith("analysis-")]
    found = combined[-1] if combined else (runs[0] if len(runs) == 1 else None)
    if found is None:
        raise RuntimeError(f"plant {plant.name}: no combined findings.json in {folder}")
    top, ok, reason = verdict(plant, orjson.loads(found.read_bytes()))
    processes = len(log.read_text().splitlines()) if log.exists() else 0
    seconds = time.perf_counter() - started
    return PlantOutcome(plant, found.parent, top, ok, reason, seconds, processes, env_name, attempt)


def reanalyse(plant: Plant, out_dir: Path, *, attempt: int = 0, job: bool = False) -> PlantOutcome:
    """Judge again the run folders an earlier :func:`run_plant` (or, ``job``,
    :func:`run_default_job`) left in ``out_dir``, analysed afresh by this checkout: what the
    current rules say of the same runs, with no new run (the analysis needs the folder only)."""
    started = time.perf_counter()
    if job:
        folder = out_dir / f"{plant.name}-job-{attempt}"
        runs = [m.parent for m in folder.glob("*/manifest.json")]
        runs = [r for r in runs if not r.name.startswith("analysis-")]
        env_name = DEFAULT_JOBS[plant.profiler]
        command = ["analyze", "--latest", str(len(runs)), "--traces", str(folder)]
    else:
        folder = out_dir / f"{plant.name}-{attempt}"
        runs = [folder]
        env_name = ""
        command = ["analyze", str(folder)]
    if not runs or not all((r / "manifest.json").is_file() for r in runs):
        raise RuntimeError(f"plant {plant.name}: no run folder to reanalyse in {folder}")
    analysed = subprocess.run(
        [sys.executable, "-m", "queueprof", *command, "--format", "json"],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )
    if analysed.returncode != 0:
        raise RuntimeError(f"plant {plant.name}: `queueprof analyze` failed:\n{analysed.stderr}")
    combined = sorted(folder.glob("analysis-*/findings.json"))
    found = combined[-1] if combined and len(runs) > 1 else runs[0] / "findings.json"
    top, ok, reason = verdict(plant, orjson.loads(found.read_bytes()))
    log = folder / "plant-log" if job else out_dir / f"{plant.name}-{attempt}.plant-log"
    processes = len(log.read_text().splitlines()) if log.exists() else 0
    seconds = time.perf_counter() - started
    return PlantOutcome(plant, found.parent, top, ok, reason, seconds, processes, env_name, attempt)


def top_finding(document: dict[str, Any]) -> dict[str, Any] | None:
    """The #1 finding: ``leading`` (schema 3), else the first sufficient one in rank order."""
    if "leading" in document:
        leading = document["leading"]
        return dict(leading) if isinstance(leading, dict) else None
    for finding in document.get("findings", ()):
        if finding.get("sufficient", True) is not False:
            return dict(finding)
    return None


class Expectation(Protocol):
    """What a plant expects of its #1 finding: a taskqueue :class:`Plant`, or a plant in a
    program queueprof has never seen (``tests/foreign``)."""

    @property
    def control(self) -> bool: ...

    @property
    def expected_ops(self) -> frozenset[str | None]: ...

    @property
    def expected_causes(self) -> frozenset[str]: ...


def verdict(plant: Plant, document: dict[str, Any]) -> tuple[dict[str, Any] | None, bool, str]:
    """(#1 finding, OK?, why) for ``plant``'s ``findings.json``: :func:`judge` of its #1, and
    for a plant whose cost is not real (``negligible``) no false alarm and its own finding
    present below the floors."""
    top = top_finding(document)
    if plant.negligible is None:
        return (top, *judge(plant, top))
    ok, reason = _no_false_alarm(top)
    own = [
        f
        for f in document.get("findings", ())
        if f.get("op") in plant.expected_ops and f.get("cause") in plant.expected_causes
    ]
    if not own:
        return top, False, f"{reason}, but the plant's own finding is not reported"
    if any(f.get("standing") == "cause" for f in own):
        return top, False, f"the plant's {own[0].get('cause')} finding stands as a cause"
    return top, ok, f"{reason}; its own finding reported as {own[0].get('standing')}"


def _no_false_alarm(top: dict[str, Any] | None) -> tuple[bool, str]:
    """(OK?, why) for a #1 finding that must claim no defect of the queue."""
    if top is None:
        return True, "no sufficient finding"
    cause = top.get("cause")
    if top.get("standing") == "information":
        return True, f"#1 is information, not a cause (cause {cause})"
    if cause not in DEFECT_CAUSES:
        return True, f"#1 claims no defect (cause {cause})"
    share = _share(top)
    if share is not None and share < FALSE_ALARM_SHARE:
        return True, f"#1 claims {cause} at {share:.1%} of the run, under the floor"
    return False, f"false alarm: #1 claims {cause} on the clean queue (share {share})"


def judge(plant: Expectation, top: dict[str, Any] | None) -> tuple[bool, str]:
    """(OK?, why) for ``plant``'s #1 finding."""
    if plant.control:
        return _no_false_alarm(top)
    if top is None:
        return False, "no sufficient finding"
    op, cause = top.get("op"), top.get("cause")
    problems = []
    if op not in plant.expected_ops:
        problems.append(f"op {op!r} not in {sorted(map(str, plant.expected_ops))}")
    if cause not in plant.expected_causes:
        problems.append(f"cause {cause!r} not in {sorted(plant.expected_causes)}")
    return (not problems), "; ".join(problems) or "op and cause named"


def _share(finding: dict[str, Any]) -> float | None:
    cost = finding.get("cost")
    if isinstance(cost, dict) and isinstance(cost.get("share"), int | float):
        return float(cost["share"])
    return None


def postgres_backend() -> str:
    """``backend=<server>`` for a plant on PostgreSQL: ``QUEUEPROF_PG`` (the test suite sets
    it to the server tests/pg.py found), else the local server."""
    from tests.pg import SERVER_ENV, candidate_servers

    return f"backend={os.environ.get(SERVER_ENV) or candidate_servers()[0]}"


def _env(*, plant_name: str | None = None, log: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUEUEPROF_PLANT")}
    paths = [str(ROOT), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    if plant_name is not None:
        paths.insert(0, str(SITE))
        env["QUEUEPROF_PLANT"] = plant_name
        if log is not None:
            env["QUEUEPROF_PLANT_LOG"] = str(log)
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    return env
