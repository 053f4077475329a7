"""Every profiler's overhead on the same queue work, measured side by side in one run.

    python -m benchmarks.profiler_overhead [--tasks N] [--workers W] [--rounds R]
        [--profilers pyinstrument,memray,viztracer,py-spy] [--option NAME:key=value ...]
        [--queue key=value,...] [--json PATH|-]

Each round is one back-to-back pair of drains for each profiler, one bare and one profiled,
which goes first alternating between rounds. A drain: open a queue (``capture_sql`` and
``record_timings`` on both sides, so only the profiler differs; other strategy keys from
``--queue``), enqueue ``--tasks`` noop tasks in one batch, drain them with ``--workers``
async engines (with ``--queue backend=postgresql://...``, on a fresh database of that server
per drain, made and dropped outside the timing, so the profiler-overhead goals are checked on
PostgreSQL too). In-process profilers wrap their drain in a session of its own inside the
event loop, as ``queueprof run`` does, in this process, with the bare drain next to it.
py-spy's pairs run in one long-lived child process (:class:`DrainChild`): for the profiled
drain py-spy attaches to it and the drain starts once py-spy says it is sampling, so its
start-up (reading the interpreter's symbols) is not timed, and it is stopped after. Attaching
needs ptrace permission over a process that is not py-spy's own child (root, or
``kernel.yama.ptrace_scope=0``); without it the run stops with py-spy's error and that fix.
Writing reports (``finish``) is timed apart.

The overhead is the median of the pairs' wall-time ratios, with a 95% bootstrap band. The
reference VM's own speed drifts: a fixed pure-Python loop takes 0.067-0.093 s from one
second to the next and a bare 10,000-task drain 0.11-0.18 s, process CPU time moving with
wall time (so CPU time, reported next to wall time, is no steadier). Drains next to each
other run at about the same speed, so each pair is its own control, and many short pairs
beat a few long runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from profilers import REGISTRY, Profiler, PySpyProfiler, get_profiler
from taskqueue import InvalidArgumentError, QueueConfig, TaskQueue, run_async_workers

GOALS = {"pyinstrument": 1.3, "memray": 1.3, "viztracer": 1.5, "py-spy": 1.05}
VIZTRACER_SIZE_GOAL_MB = 20.0
JSON_SCHEMA_VERSION = 1

CHILD = """
import asyncio, shutil, sys
from pathlib import Path
sys.path.insert(0, {root!r})
from benchmarks.profiler_overhead import timed_drain
print("ready", flush=True)
for number, _ in enumerate(sys.stdin):
    folder = Path({folder!r}) / f"drain-{{number}}"
    folder.mkdir()
    wall, cpu = asyncio.run(timed_drain(folder, {tasks}, {workers}, {queue!r}))
    shutil.rmtree(folder)
    print("drain-seconds", repr(wall), repr(cpu), flush=True)
"""
PYSPY_READY = "Sampling process"
"""What py-spy prints once attached, before its first sample."""
PYSPY_WAIT_S = 60.0
BOOTSTRAP_RESAMPLES = 2000


def queue_config(options: str = "") -> QueueConfig:
    """The queue both sides run: ``options`` (``key=value,...``) with timings and SQL capture
    on, as every profiled run has them (``queueprof run`` forces timings; the profilers that
    attribute SQL ask for the capture), so only the profiler differs."""
    return QueueConfig.parse(options, base=QueueConfig(capture_sql=True, record_timings=True))


async def timed_drain(
    folder: Path, tasks: int, workers: int, queue_options: str = ""
) -> tuple[float, float]:
    """(wall s, process CPU s) to enqueue ``tasks`` noop tasks and drain them.

    With ``backend=postgresql://...`` in ``queue_options`` the queue is a fresh database on
    that server, made before the clock starts and dropped after it stops."""
    config = queue_config(queue_options)
    async with _queue_location(folder, config, "overhead") as where:
        started, cpu_started = time.perf_counter(), time.process_time()
        async with TaskQueue(where, config) as queue:
            await queue.enqueue_many([("noop", None)] * tasks)
            await run_async_workers(queue, workers)
        return time.perf_counter() - started, time.process_time() - cpu_started


@contextlib.asynccontextmanager
async def _queue_location(folder: Path, config: QueueConfig, label: str) -> AsyncIterator[str]:
    """Where a drain's queue goes: a file in ``folder``, or a scratch database on the
    ``backend`` server (asyncpg is imported only then)."""
    if config.backend == "sqlite":
        yield str(folder / "queue.db")
        return
    from taskqueue import pgadmin

    name = pgadmin.scratch_name(label)
    try:
        yield await pgadmin.create_database(config.backend, name)
    finally:
        await pgadmin.drop_database(config.backend, name)


async def drain(folder: Path, tasks: int, workers: int, queue_options: str = "") -> float:
    """Seconds to enqueue ``tasks`` noop tasks and drain them with ``workers`` engines."""
    wall, _ = await timed_drain(folder, tasks, workers, queue_options)
    return wall


async def _in_session(
    profiler: Profiler, tasks: int, workers: int, queue_options: str
) -> tuple[float, float]:
    with profiler.session():
        return await timed_drain(profiler.run_dir, tasks, workers, queue_options)


class DrainChild:
    """A Python process that runs one timed drain (:func:`timed_drain`) per line it reads,
    for py-spy to attach to; its folder is removed on :meth:`close`."""

    def __init__(self, tasks: int, workers: int, queue_options: str = "") -> None:
        self._scratch = tempfile.TemporaryDirectory(prefix="queueprof-overhead-")
        script = CHILD.format(
            root=str(Path(__file__).resolve().parents[1]),
            folder=self._scratch.name,
            tasks=tasks,
            workers=workers,
            queue=queue_options,
        )
        self.process = subprocess.Popen(
            [sys.executable, "-c", script],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._expect("ready")

    @property
    def pid(self) -> int:
        return self.process.pid

    def drain(self) -> tuple[float, float]:
        """(wall s, process CPU s) of one drain in the child."""
        assert self.process.stdin is not None
        self.process.stdin.write("drain\n")
        self.process.stdin.flush()
        _, wall, cpu = self._expect("drain-seconds").split()
        return float(wall), float(cpu)

    def _expect(self, word: str) -> str:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith(word):
            self.process.kill()
            _, stderr = self.process.communicate()
            raise SystemExit(
                f"the drain child failed (exit {self.process.returncode}, expected "
                f"{word!r}, got {line.strip()[:200]!r}): {stderr.strip()[-600:]}"
            )
        return line

    def close(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._scratch.cleanup()


def _drain_under_pyspy(profiler: Profiler, child: DrainChild) -> tuple[float, float]:
    """One drain in ``child`` with py-spy attached: started, sampling, then stopped."""
    assert isinstance(profiler, PySpyProfiler)
    spy = subprocess.Popen(
        profiler.attach_command(child.pid),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert spy.stdout is not None
    for line in spy.stdout:
        if PYSPY_READY in line:
            break
    else:
        _, stderr = spy.communicate()
        raise SystemExit(profiler.explain(stderr))
    try:
        timing = child.drain()
    finally:
        spy.send_signal(signal.SIGINT)
        try:
            spy.communicate(timeout=PYSPY_WAIT_S)
        except subprocess.TimeoutExpired:
            spy.kill()
            spy.communicate()
            raise SystemExit(f"py-spy did not stop within {PYSPY_WAIT_S:.0f} s of SIGINT") from None
    return timing


class PairRunner:
    """Back-to-back bare/profiled pairs of drains under one profiler (see the module doc).

    A context manager: a launcher profiler's :class:`DrainChild` lives from the first pair
    to the exit."""

    def __init__(
        self, name: str, options: list[str], tasks: int, workers: int, queue_options: str = ""
    ) -> None:
        self.cls = get_profiler(name)
        self.options = self.cls.options_type.parse(options)
        self.tasks, self.workers, self.queue_options = tasks, workers, queue_options
        self._child: DrainChild | None = None

    def __enter__(self) -> PairRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._child is not None:
            self._child.close()
            self._child = None

    def pair(self, swap: bool) -> tuple[Round, dict[str, object]]:
        """One pair, the profiled drain first when ``swap``; and the profiler's summary (for
        viztracer with its trace's size, ``trace_mb``)."""
        timings: dict[str, tuple[float, float]] = {}
        finish_s = 0.0
        summary: dict[str, object] = {}
        for kind in ("profiled", "bare") if swap else ("bare", "profiled"):
            with tempfile.TemporaryDirectory(prefix="queueprof-overhead-") as scratch:
                folder = Path(scratch)
                if kind == "bare":
                    timings[kind] = self._bare(folder)
                    continue
                profiler = self.cls(self.options, folder)
                timings[kind] = self._profiled(profiler)
                started = time.perf_counter()
                profiler.finish()
                finish_s = time.perf_counter() - started
                summary = dict(profiler.manifest().get("summary", {}))
                trace = folder / "viztracer.trace.json"
                if trace.exists():
                    summary["trace_mb"] = trace.stat().st_size / 1e6
        bare, profiled = timings["bare"], timings["profiled"]
        return Round(bare[0], profiled[0], bare[1], profiled[1], finish_s), summary

    def _bare(self, folder: Path) -> tuple[float, float]:
        if self.cls.launcher:
            return self._drain_child().drain()
        return asyncio.run(timed_drain(folder, self.tasks, self.workers, self.queue_options))

    def _profiled(self, profiler: Profiler) -> tuple[float, float]:
        if self.cls.launcher:
            return _drain_under_pyspy(profiler, self._drain_child())
        return asyncio.run(_in_session(profiler, self.tasks, self.workers, self.queue_options))

    def _drain_child(self) -> DrainChild:
        if self._child is None:
            self._child = DrainChild(self.tasks, self.workers, self.queue_options)
        return self._child


@dataclass(frozen=True)
class Round:
    """One back-to-back pair of runs."""

    bare_s: float
    profiled_s: float
    bare_cpu_s: float
    profiled_cpu_s: float
    finish_s: float

    @property
    def ratio(self) -> float:
        """Wall time, profiled / bare."""
        return self.profiled_s / self.bare_s

    @property
    def cpu_ratio(self) -> float:
        """Process CPU time, profiled / bare."""
        return self.profiled_cpu_s / self.bare_cpu_s if self.bare_cpu_s > 0 else float("nan")

    def to_dict(self) -> dict[str, float]:
        return {
            "bare_s": self.bare_s,
            "profiled_s": self.profiled_s,
            "ratio": self.ratio,
            "bare_cpu_s": self.bare_cpu_s,
            "profiled_cpu_s": self.profiled_cpu_s,
            "cpu_ratio": self.cpu_ratio,
            "finish_s": self.finish_s,
        }


def interleaved_pairs(
    options: Mapping[str, list[str]],
    tasks: int,
    workers: int,
    rounds: int,
    queue_options: str = "",
) -> Iterator[tuple[int, str, Round, dict[str, object]]]:
    """(round number, profiler, pair, summary) for ``rounds`` rounds of one pair under each
    profiler named in ``options`` (its options), which goes first flipping between rounds;
    py-spy's drain child lives until the last pair (or until the caller stops early)."""
    with ExitStack() as stack:
        runners = {
            name: stack.enter_context(PairRunner(name, opts, tasks, workers, queue_options))
            for name, opts in options.items()
        }
        for round_no in range(rounds):
            for name, runner in runners.items():
                pair, summary = runner.pair(swap=round_no % 2 == 1)
                yield round_no, name, pair, summary


@dataclass(frozen=True)
class Overhead:
    """A profiler's overhead over its rounds: the median pair ratio, with a 95% bootstrap
    band (the 2.5th and 97.5th percentiles of the medians of resampled rounds)."""

    ratio: float
    low: float
    high: float
    cpu_ratio: float

    @classmethod
    def of(cls, rounds: Sequence[Round], resamples: int = BOOTSTRAP_RESAMPLES) -> Overhead:
        ratios = [r.ratio for r in rounds]
        pick = random.Random(0).choices  # seeded: the same rounds give the same band
        medians = sorted(statistics.median(pick(ratios, k=len(ratios))) for _ in range(resamples))
        return cls(
            ratio=statistics.median(ratios),
            low=medians[int(0.025 * (resamples - 1))],
            high=medians[int(0.975 * (resamples - 1))],
            cpu_ratio=statistics.median(r.cpu_ratio for r in rounds),
        )

    @property
    def band(self) -> str:
        return f"{self.low:.2f}-{self.high:.2f}"


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--tasks", type=_positive, default=10_000)
    parser.add_argument("--workers", type=_positive, default=5)
    parser.add_argument("--rounds", type=_positive, default=3)
    parser.add_argument("--profilers", default=",".join(GOALS))
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="NAME:KEY=VALUE",
        help="a profiler option, e.g. pyinstrument:interval=0.01",
    )
    parser.add_argument(
        "--queue",
        default="",
        metavar="KEY=VALUE,...",
        help="queue strategy on both sides, e.g. claim_batch=100,ack_batch=100 "
        "(the keys of `queueprof run --queue`); backend=postgresql://... measures on "
        "PostgreSQL (a fresh database per drain, made and dropped outside the timing)",
    )
    parser.add_argument(
        "--json",
        metavar="PATH",
        help="also write the figures as JSON to PATH ('-': standard output, instead of the table)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.profilers.split(",") if n.strip()]
    for name in names:
        if name not in REGISTRY or name == "none":
            parser.error(
                f"--profilers: {name!r} is not a profiler; choose from "
                f"{', '.join(n for n in REGISTRY if n != 'none')}"
            )
    try:
        queue_config(args.queue)
    except InvalidArgumentError as error:
        parser.error(f"--queue {args.queue!r}: {error}")
    options: dict[str, list[str]] = defaultdict(list)
    for item in args.option:
        name, sep, pair = item.partition(":")
        if not sep or name not in names:
            parser.error(f"--option {item!r}: expected NAME:key=value with NAME in {names}")
        options[name].append(pair)
    for name in names:
        get_profiler(name).check_available()
        get_profiler(name).options_type.parse(options[name])  # bad options fail before round 1
    to_stdout = args.json == "-"

    def say(text: str) -> None:
        print(text, file=sys.stderr if to_stdout else sys.stdout, flush=True)

    rounds: dict[str, list[Round]] = defaultdict(list)
    summaries: dict[str, dict[str, object]] = {}
    say(
        f"{args.tasks} noop tasks, {args.workers} async workers, {args.rounds} rounds, "
        f"queue {args.queue or 'defaults'}"
    )
    pairs = interleaved_pairs(
        {name: options[name] for name in names}, args.tasks, args.workers, args.rounds, args.queue
    )
    for round_no, name, pair, summaries[name] in pairs:
        rounds[name].append(pair)
        say(
            f"round {round_no + 1}: {name:<12} bare {pair.bare_s:.3f} s, profiled "
            f"{pair.profiled_s:.3f} s, x{pair.ratio:.2f} (CPU {pair.bare_cpu_s:.3f} "
            f"-> {pair.profiled_cpu_s:.3f} s, x{pair.cpu_ratio:.2f})"
        )
    report = _report(args, names, options, rounds, summaries)
    say(_table(report))
    if args.json:
        text = orjson.dumps(report, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
        if to_stdout:
            sys.stdout.write(text.decode() + "\n")
        else:
            Path(args.json).write_bytes(text + b"\n")
    return 0 if report["passed"] else 1


def _report(
    args: argparse.Namespace,
    names: list[str],
    options: dict[str, list[str]],
    rounds: dict[str, list[Round]],
    summaries: dict[str, dict[str, object]],
) -> dict[str, Any]:
    """Every figure of the run, as the ``--json`` document."""
    profilers: dict[str, Any] = {}
    for name in names:
        overhead = Overhead.of(rounds[name])
        goal = GOALS.get(name)
        profilers[name] = {
            "overhead": overhead.ratio,
            "overhead_band": [overhead.low, overhead.high],
            "cpu_overhead": overhead.cpu_ratio,
            "goal": goal,
            "passed": goal is None or overhead.ratio <= goal,
            "finish_s": statistics.median(r.finish_s for r in rounds[name]),
            "options": options[name],
            "rounds": [r.to_dict() for r in rounds[name]],
            "summary": summaries[name],
        }
    trace: dict[str, Any] | None = None
    if "trace_mb" in summaries.get("viztracer", {}):
        size = float(summaries["viztracer"]["trace_mb"])  # type: ignore[arg-type]
        trace = {
            "mb": size,
            "goal_mb": VIZTRACER_SIZE_GOAL_MB,
            "passed": size < VIZTRACER_SIZE_GOAL_MB,
        }
    return {
        "schema_version": JSON_SCHEMA_VERSION,
        "tasks": args.tasks,
        "workers": args.workers,
        "rounds": args.rounds,
        "queue": args.queue,
        "profilers": profilers,
        "viztracer_trace": trace,
        "passed": all(p["passed"] for p in profilers.values())
        and (trace is None or trace["passed"]),
    }


def _table(report: dict[str, Any]) -> str:
    lines = [
        f"\n{'profiler':<13}{'overhead':>9}  {'95% band':<11}{'goal':<8}{'verdict':<8}"
        f"{'CPU':>6}  finish  pair ratios  options"
    ]
    for name, entry in report["profilers"].items():
        goal = entry["goal"]
        ratios = [r["ratio"] for r in entry["rounds"]]
        per_round = f"{min(ratios):.2f}-{max(ratios):.2f}"
        lines.append(
            f"{name:<13}{entry['overhead']:>8.2f}x  "
            f"{entry['overhead_band'][0]:.2f}-{entry['overhead_band'][1]:.2f}   "
            f"<= {goal if goal is not None else '-':<4}"
            f"{'PASS' if entry['passed'] else 'FAIL':<8}{entry['cpu_overhead']:>5.2f}x"
            f"{entry['finish_s']:>6.1f}s  {per_round:<11}  {entry['options'] or 'defaults'}"
        )
    trace = report["viztracer_trace"]
    if trace is not None:
        lines.append(
            f"viztracer trace: {trace['mb']:.1f} MB for {report['tasks']} tasks "
            f"(goal < {trace['goal_mb']:.0f} MB) {'PASS' if trace['passed'] else 'FAIL'}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
