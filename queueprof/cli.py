"""The ``queueprof`` command line: ``run``, ``list``, ``bench``, ``regress``, ``compare``,
``report``, ``analyze``, ``view-check``.

One :func:`main` parses arguments, dispatches to one function per subcommand, and catches
:class:`~runs.QueueprofError` once: it prints the message and returns the error's
exit code (2 for bad input). Exit codes: 0 complete, 1 failed, 2 bad input, 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

from profilers import REGISTRY as PROFILERS
from runs import (
    MANIFEST,
    Manifest,
    QueueprofError,
    RunStatus,
    UsageError,
    keyvalue,
    list_runs,
    new_run_id,
    write_atomic,
)
from runs.files import REGRESS_REPORT
from runs.text import terminal_text
from workloads.environment import capture_environment
from workloads.errors import RunFailedError
from workloads.params import Size
from workloads.registry import WORKLOADS
from workloads.runner import RunOutcome, execute

from .bench import bench_document, plan_bench, save_bench
from .closing import print_closing
from .gate import gate_suite, measure_gate, plan_gate
from .instructions import measure_instructions, plan_instructions
from .profiled import RunRequest, profile, run_claimed
from .render import (
    render_artifacts,
    render_profilers,
    render_result,
    render_runs,
    render_workloads,
)
from .viewers.browser import BrowserOptions
from .viewers.runs import check_runs
from .watchdog import exit_with_parent

Command = Callable[[argparse.Namespace, Sequence[str]], int]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(arguments)
    except SystemExit as exit_:  # argparse has printed its usage message
        return exit_.code if isinstance(exit_.code, int) else 2
    command: Command = getattr(args, "command_function", None) or args.command
    try:
        return command(args, arguments)
    except QueueprofError as error:
        Console(stderr=True).print(
            f"[red]queueprof: error:[/red] {terminal_text(str(error))}",
            highlight=False,
            soft_wrap=True,
        )
        return error.exit_code
    except KeyboardInterrupt as interrupt:  # before a run folder existed, or outside `run`
        name = str(interrupt) or "SIGINT"
        Console(stderr=True).print(f"queueprof: interrupted ({name})", highlight=False)
        return 130


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(
        prog="queueprof",
        description="Profile and trace a SQLite-backed async task queue.",
    )
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run one workload into traces/<run-id>/")
    run.add_argument("workload", metavar="WORKLOAD", help=f"one of: {', '.join(WORKLOADS)}")
    _size_option(run)
    run.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set a workload parameter (repeatable); `queueprof list` shows them",
    )
    run.add_argument(
        "--param-default",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a workload parameter's value unless a --param sets the same key (repeatable): "
        "tox envs set their sizes this way, so `tox -e ENV -- --param key=value` replaces them",
    )
    run.add_argument(
        "--adapter",
        action="append",
        default=[],
        metavar="MODULE:ATTR",
        help="add a queue adapter from outside queueprof (repeatable; workloads that drive "
        "adapters, e.g. comparison): a Contender, a sequence of them or a function returning "
        "either",
    )
    _common_options(run)
    run.add_argument("--run-id", help="name of the run folder (default: time-workload-random)")
    run.add_argument(
        "--profiler",
        default="none",
        metavar="NAME",
        help=f"wrap the run in a profiler: {', '.join(PROFILERS)} (default: none)",
    )
    run.add_argument(
        "--profiler-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set a profiler option (repeatable); `queueprof list` shows them",
    )
    run.add_argument(
        "--no-baseline",
        action="store_true",
        help="skip the bare run that measures the profiler's overhead",
    )
    # The child a launcher profiler (py-spy) starts runs into the folder the launcher has
    # claimed already; not for people (profiled.run_claimed).
    run.add_argument("--claimed", action="store_true", help=argparse.SUPPRESS)
    run.set_defaults(command=run_command)

    listing = commands.add_parser("list", help="list workloads, profilers and past runs")
    listing.add_argument("--out", type=Path, default=Path("traces"), help="run folders to list")
    listing.set_defaults(command=list_command)

    bench = commands.add_parser("bench", help="run the seed suite without a profiler")
    _size_option(bench)
    _common_options(bench)
    bench.add_argument(
        "--save",
        type=Path,
        metavar="FILE",
        help="also measure the regression gate and write every result to FILE as one JSON: "
        "a baseline for `queueprof regress` (e.g. results/baseline_results.json)",
    )
    bench.set_defaults(command=bench_command)

    regress = commands.add_parser(
        "regress", help="the regression gate: gated workloads against the committed baseline"
    )
    _size_option(regress)
    regress.add_argument(
        "--baseline",
        type=Path,
        metavar="FILE",
        help="bench file to judge against (default: results/baseline_results.json, "
        "results/baseline_smoke.json for --size smoke)",
    )
    regress.add_argument(
        "--rounds", type=int, metavar="N", help="rounds of every gated run (default: the size's)"
    )
    regress.add_argument(
        "--noise",
        type=float,
        metavar="BAND",
        help="relative cost increase allowed for every gated metric, e.g. 1.0 = fail above "
        "twice the baseline's cost (default: each metric's own band)",
    )
    regress.add_argument(
        "--queue",
        default="",
        metavar="KEY=VALUE,...",
        help="queue strategy (must be the baseline's)",
    )
    regress.add_argument(
        "--out", type=Path, default=Path("traces"), help="where the gate's folder goes"
    )
    regress.add_argument(
        "--update-baseline",
        action="store_true",
        help="measure the gate and write it as the baseline (--baseline FILE) instead of "
        "judging; `queueprof bench --save FILE` also writes the seed suite's results",
    )
    regress.add_argument(
        "--only",
        choices=["wall", "instructions"],
        help="run one gate: `wall` (the calibrated timings) or `instructions` (callgrind's "
        "instruction counts); default both. Not with --update-baseline: a baseline holds both",
    )
    regress.add_argument("--quiet", action="store_true", help="only the gate table")
    regress.set_defaults(command=regress_command)

    compare = commands.add_parser("compare", help="compare two runs: baseline vs candidate")
    compare.add_argument(
        "baseline", type=Path, metavar="BASE", help="baseline run folder (or run id in traces/)"
    )
    compare.add_argument(
        "candidate", type=Path, metavar="CAND", help="candidate run folder (or run id)"
    )
    compare.add_argument(
        "--noise",
        type=float,
        default=0.10,
        help="relative change treated as run-to-run noise (default: 0.10 = ±10%%)",
    )
    compare.add_argument(
        "--out", type=Path, help="where the comparison files go (default: the candidate's folder)"
    )
    compare.set_defaults(command=compare_command)

    report = commands.add_parser("report", help="bundle runs, plots and comparisons to share")
    report.add_argument(
        "runs",
        type=Path,
        nargs="+",
        metavar="RUN",
        help="run folders or run ids; the first is the baseline",
    )
    report.add_argument(
        "--bundle",
        required=True,
        metavar="NAME|DIR",
        help="a new folder (and its .zip): a bare NAME goes beside the first run "
        "(traces/NAME), a path with a / (./NAME, /tmp/NAME) where it says",
    )
    report.add_argument("--noise", type=float, default=0.10, help="as for compare")
    report.set_defaults(command=report_command)

    analyze = commands.add_parser(
        "analyze", help="findings, time by operation, SQL hotspots and targets of runs"
    )
    _run_selection(analyze)
    analyze.add_argument(
        "--format",
        choices=["terminal", "md", "html", "json", "all"],
        default="all",
        help="what to produce (default all: print the summary, write report.md, report.html "
        "and findings.json)",
    )
    analyze.add_argument(
        "--out", type=Path, help="write the reports of all runs here (default: each run's folder)"
    )
    analyze.add_argument(
        "--quiet",
        action="store_true",
        help="no summary tables: only the top findings, the file to open and how to open the "
        "artifacts",
    )
    analyze.add_argument(
        "--run-args",
        nargs=argparse.REMAINDER,
        default=[],
        metavar="ARGS",
        help="last: the arguments the analysed runs were given (the tox envs pass theirs); "
        "--quiet among them makes the analysis quiet too, the rest is the runs' business",
    )
    analyze.set_defaults(command=analyze_command)

    program = commands.add_parser(
        "profile",
        help="run any Python program under a profiler into traces/<run-id>/",
        description="Run COMMAND (e.g. `python app.py ARGS`) under a profiler into a run "
        "folder that `queueprof analyze` reads.",
    )
    program.add_argument(
        "--profiler",
        default="pyinstrument",
        metavar="NAME",
        help="pyinstrument (default), memray, viztracer or py-spy",
    )
    program.add_argument(
        "--profiler-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set a profiler option (repeatable)",
    )
    _ops_option(program)
    program.add_argument("--out", type=Path, default=Path("traces"), help="where run folders go")
    program.add_argument("--run-id", help="name of the run folder (default: time-program-random)")
    program.add_argument(
        "command",
        nargs=argparse.REMAINDER,
        metavar="-- COMMAND",
        help="the program and its arguments, after --",
    )
    program.set_defaults(command_function=profile_command, command=None)

    attaching = commands.add_parser(
        "attach", help="sample a running Python process (py-spy) into traces/<run-id>/"
    )
    attaching.add_argument("pid", type=int, metavar="PID")
    attaching.add_argument(
        "--duration",
        type=float,
        default=10.0,
        metavar="S",
        help="seconds to sample (default 10)",
    )
    attaching.add_argument(
        "--profiler",
        default="py-spy",
        metavar="NAME",
        help="py-spy (default); memray is refused with the reason",
    )
    _ops_option(attaching)
    attaching.add_argument("--out", type=Path, default=Path("traces"), help="where run folders go")
    attaching.add_argument("--run-id", help="name of the run folder (default: time-attach-random)")
    attaching.set_defaults(command=attach_command)

    adapter = commands.add_parser("adapter", help="queue adapters from outside queueprof")
    adapter_commands = adapter.add_subparsers(title="adapter commands", required=True)
    check = adapter_commands.add_parser(
        "check",
        help="run the adapter contract suite and verify every CodePath resolves",
    )
    check.add_argument(
        "adapters",
        nargs="+",
        metavar="ADAPTER",
        help="module:attr (a Contender, a sequence of them or a function returning either), "
        "or an installed plugin's contender name",
    )
    check.set_defaults(command=adapter_check_command)

    view = commands.add_parser(
        "view-check",
        help="open every profile, trace and HTML report of runs in its real viewer "
        "(headless Chromium, offline) and screenshot it",
    )
    _run_selection(view)
    view.add_argument(
        "--speedscope-app",
        type=Path,
        default=os.environ.get("QUEUEPROF_SPEEDSCOPE_APP"),
        metavar="DIR",
        help="npm speedscope's release folder (node_modules/speedscope/dist/release; "
        "default: $QUEUEPROF_SPEEDSCOPE_APP)",
    )
    defaults = BrowserOptions()
    view.add_argument("--chromium", type=Path, default=defaults.chromium, help="the browser binary")
    view.add_argument("--chromedriver", type=Path, default=defaults.chromedriver, help="its driver")
    view.add_argument(
        "--timeout",
        type=float,
        default=defaults.timeout_s,
        metavar="S",
        help=f"longest wait for one viewer to render (default {defaults.timeout_s:g} s)",
    )
    view.set_defaults(command=view_check_command)
    return parser


def _ops_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ops",
        type=Path,
        metavar="FILE",
        help='TOML mapping operations to the program\'s functions: enqueue = ["app.py:submit"]; '
        "the queue's operations (enqueue, claim, complete, status, handler) or the program's "
        'own names: render = ["render_page"]',
    )


def _run_selection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "runs", nargs="*", metavar="RUN", help="run folder, or run id under --traces"
    )
    parser.add_argument(
        "--latest", type=int, metavar="N", help="also take the N newest runs in --traces"
    )
    parser.add_argument(
        "--traces", type=Path, default=Path("traces"), help="where run ids are looked up"
    )


def _selected_runs(args: argparse.Namespace, command: str) -> list[Path]:
    """The run folders named by RUN arguments and ``--latest``, each once."""
    from analysis.load.runfolder import latest_runs, resolve_run

    if args.latest is not None and args.latest < 1:
        raise UsageError(f"--latest {args.latest}: give a number of runs, 1 or more")
    named = [resolve_run(run, args.traces) for run in args.runs]
    if args.latest:
        named += latest_runs(args.traces, args.latest)
    # One folder named twice (`RUN RUN`, a run id and its path, or a RUN that --latest also
    # takes) is analysed once: twice, it agreed with itself and its findings counted double.
    unique: dict[Path, Path] = {}
    for folder in named:
        unique.setdefault(folder.resolve(), folder)
    folders = list(unique.values())
    if not folders:
        raise UsageError(
            f"{command}: name at least one RUN (a folder or a run id) or use --latest N"
        )
    return folders


def _size_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--size",
        default=Size.DEFAULT.value,
        help=f"size preset: {', '.join(s.value for s in Size)} (default: default)",
    )


def _common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--queue",
        default="",
        metavar="KEY=VALUE,...",
        help=(
            "queue strategy, e.g. connection=per-worker,claim_batch=10; "
            "backend=postgresql://HOST/DB runs on PostgreSQL (docs/postgres.md)"
        ),
    )
    parser.add_argument("--targets", type=Path, metavar="FILE", help="TOML overriding targets")
    parser.add_argument("--out", type=Path, default=Path("traces"), help="where run folders go")
    parser.add_argument("--quiet", action="store_true", help="no progress bar, no tables")


def run_command(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """``queueprof run``: one workload into one run folder, bare or under a profiler."""
    params = tuple(keyvalue.overridden(args.param_default, args.param))
    if args.adapter:
        drives_adapters = [
            name
            for name, workload in WORKLOADS.items()
            if any(spec[0] == "adapters" for spec in workload.params_type.specs())
        ]
        if args.workload not in drives_adapters:
            raise UsageError(
                f"--adapter: the {args.workload} workload drives no queue adapters; "
                f"use it with {', '.join(drives_adapters)}"
            )
        params += (f"adapters={','.join(args.adapter)}",)
    request = RunRequest(
        workload=args.workload,
        size=args.size,
        params=params,
        queue=args.queue,
        targets_file=args.targets,
        out_dir=args.out,
        run_id=args.run_id,
        command=("queueprof", *argv),
    )
    exit_with_parent()  # a child of a profiled run: ends (cleanly) with the run's parent
    if args.claimed:
        outcome = run_claimed(request, show_progress=_show_progress(args))
    else:
        outcome = profile(
            request,
            args.profiler,
            args.profiler_option,
            baseline=not args.no_baseline,
            show_progress=_show_progress(args),
        )
    _report(outcome, quiet=args.quiet)
    return outcome.exit_code


def bench_command(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """``queueprof bench``: the seed suite, each run in its folder, optionally one file."""
    if args.save is not None and args.save.is_dir():
        raise UsageError(f"--save {str(args.save)!r} is a folder; name a JSON file")
    plan = plan_bench(
        size=args.size,
        queue=args.queue,
        targets_file=args.targets,
        out_dir=args.out,
        command=["queueprof", *argv],
        gate_dir=None if args.save is None else args.out / new_run_id("gate"),
    )
    outcomes: list[RunOutcome] = []
    for run in plan.runs:
        outcome = execute(run, show_progress=_show_progress(args))
        _report(outcome, quiet=args.quiet)
        outcomes.append(outcome)
        if outcome.status is not RunStatus.COMPLETE:
            return outcome.exit_code
    failed = [v.metric for o in outcomes for v in o.result.verdicts if not v.passed]
    console = _console()
    if args.save is not None:
        assert plan.gate is not None
        console.print(f"regression gate: {plan.gate.suite.rounds} rounds into {plan.gate.folder}")
        gate = measure_gate(
            plan.gate, lambda line: console.print(terminal_text(line), highlight=False)
        )
        assert plan.instructions is not None
        console.print(f"instruction gate: callgrind into {plan.instructions.run_dir}")
        instructions = measure_instructions(plan.instructions)
        save_bench(args.save, bench_document(plan.size, outcomes, gate, instructions))
        console.print(f"saved {len(outcomes)} results and the gate's figures to {args.save}")
    console.print(
        f"bench: {len(outcomes)} runs complete; "
        + (f"[red]targets failed: {', '.join(failed)}[/red]" if failed else "every target met")
    )
    return 0


def regress_command(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """``queueprof regress``: measure the gate, judge it against the baseline; 1 if it fails."""
    # The verdict uses analysis.compare (scipy): imported here so `queueprof run` starts fast.
    from .regress import DEFAULT_BASELINES, check_band, check_comparable, judge, load_baseline
    from .render_gate import render_gate

    suite = gate_suite(args.size, args.rounds)
    command = ["queueprof", *argv]
    plan = plan_gate(
        suite, queue=args.queue, out_dir=args.out / new_run_id("gate"), command=command
    )
    instructions = None
    if args.only != "wall":
        instructions = plan_instructions(
            suite.size, queue=args.queue, run_dir=plan.folder / "instructions", command=command
        )
    baseline_path = args.baseline or DEFAULT_BASELINES[suite.size.value]
    if args.update_baseline:
        if baseline_path.is_dir():
            raise UsageError(f"--baseline {str(baseline_path)!r} is a folder; name a JSON file")
        if args.only is not None:
            raise UsageError(
                f"--only {args.only} with --update-baseline: a baseline holds both gates' "
                "figures; drop --only"
            )
    else:
        baseline = load_baseline(baseline_path, suite.size.value)
        check_comparable(baseline, plan, instructions)
        check_band(args.noise)
    console = _console()
    say = (lambda _: None) if args.quiet else (lambda line: console.print(terminal_text(line)))
    measurement = None
    if args.only != "instructions":
        console.print(
            f"regression gate ({suite.size.value}, {suite.rounds} rounds) into {plan.folder}"
        )
        measurement = measure_gate(plan, say)
    counted = None
    if instructions is not None:
        console.print(
            f"instruction gate ({suite.size.value}): callgrind into {instructions.run_dir}"
        )
        counted = measure_instructions(instructions)
        if not args.quiet:
            console.print(f"instruction gate: callgrind ran {counted.seconds:.0f} s")
    if args.update_baseline:
        assert measurement is not None
        save_bench(baseline_path, bench_document(suite.size.value, [], measurement, counted))
        console.print(f"saved the gate's figures to {terminal_text(str(baseline_path))}")
        return 0
    report = judge(
        baseline,
        measurement,
        band=args.noise,
        environment=capture_environment(),
        instructions=counted,
    )
    write_atomic(plan.folder / REGRESS_REPORT, report.to_json())
    render_gate(console, report)
    console.print(f"wrote {terminal_text(str(plan.folder / REGRESS_REPORT))}", highlight=False)
    return 0 if report.passed else 1


def list_command(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """``queueprof list``: workloads with their params, profilers with their options, past runs."""
    console = _console()
    render_workloads(console, [(w.name, w.description, w.sizes) for w in WORKLOADS.values()])
    console.print("profilers: " + ", ".join(profiler_names()))
    render_profilers(
        console,
        [
            (name, PROFILERS[name].description, PROFILERS[name].options_type.describe())
            for name in profiler_names()
        ],
    )

    from workloads.adapters.plugins import broken_plugins, installed_plugins

    plugins = installed_plugins()
    console.print(
        "adapter plugins (entry-point group queueprof.adapters): "
        + terminal_text(
            ", ".join(f"{n} [{c.spec.guarantee}]" for n, c in plugins.items()) or "none"
        ),
        highlight=False,
    )
    for problem in broken_plugins():
        console.print(
            f"[yellow]plugin not loaded:[/yellow] {terminal_text(problem)}", highlight=False
        )
    render_runs(console, list_runs(args.out))
    return 0


def compare_command(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """``queueprof compare``: verdicts per metric, comparison files, differential flame graph."""
    # analysis pulls in scipy and matplotlib: imported here so `queueprof run` starts fast.
    from analysis.bundle import write_comparison
    from analysis.compare import ComparisonOptions, compare_runs
    from analysis.load.runfolder import open_run
    from analysis.render.comparison import comparison_table

    options = ComparisonOptions(noise=args.noise)
    baseline, candidate = open_run(args.baseline), open_run(args.candidate)
    comparison = compare_runs(baseline, candidate, options)
    console = _console()
    console.print(comparison_table(comparison))
    for title, differences in (
        ("candidate changed", comparison.changes),
        ("[yellow]warning: the runs also differ in[/yellow]", comparison.warnings),
    ):
        if differences:
            console.print(title + ":")
            for d in differences:
                console.print(
                    f"  {terminal_text(d.field)}: {terminal_text(d.baseline)} -> "
                    f"{terminal_text(d.candidate)}"
                )
    for note in comparison.notes:
        console.print(f"[yellow]note:[/yellow] {terminal_text(note)}", highlight=False)
    console.print(
        f"{len(comparison.regressions)} slower/worse, {len(comparison.improvements)} "
        f"faster/better, {len(comparison.metrics)} metrics compared"
    )
    written = write_comparison(comparison, baseline, candidate, args.out or candidate.folder)
    for file in written.files:
        console.print(f"wrote {terminal_text(str(file.path))}: {file.description}", highlight=False)
    for note in written.notes:
        console.print(terminal_text(note), highlight=False)
    return 0


def report_command(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """``queueprof report``: one folder and zip with runs, plots and comparisons."""
    from analysis.bundle import write_bundle
    from analysis.compare import ComparisonOptions
    from analysis.load.runfolder import resolve_run

    bundle = bundle_folder(args.bundle, resolve_run(str(args.runs[0])))
    written = write_bundle(args.runs, bundle, ComparisonOptions(noise=args.noise))
    console = _console()
    zipped = bundle.with_name(bundle.name + ".zip")
    console.print(
        f"bundle: {len(written.files)} files in {terminal_text(str(bundle))}", highlight=False
    )
    console.print(f"the same as one zip: {terminal_text(str(zipped))}", highlight=False)
    for note in written.notes:
        console.print(f"left out: {terminal_text(note)}", highlight=False)
    console.print(f"open: {terminal_text(str(bundle / 'index.md'))}", highlight=False)
    return 0


def bundle_folder(argument: str, first_run: Path) -> Path:
    """Where ``report --bundle ARGUMENT`` writes: a bare name goes beside ``first_run`` (in
    ``traces/`` for runs named by id), never into the working tree by surprise; anything with
    a path separator is a path, taken as given."""
    if not argument or argument in (".", ".."):
        raise UsageError(
            f"--bundle {argument!r}: name a new folder, e.g. --bundle proposal (traces/proposal)"
        )
    if "/" in argument or (os.altsep is not None and os.altsep in argument):
        return Path(argument)
    return first_run.parent / argument


def analyze_command(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """``queueprof analyze``: analyse run folders, print the summary, write the reports."""
    # Imported here: the analysis pulls in matplotlib, which `queueprof run` does not need.
    from analysis.analyze import analyze
    from analysis.output import FILE_FORMATS, report_folder, write_reports
    from analysis.render import Format
    from analysis.render.terminal import print_summary

    folders = _selected_runs(args, "analyze")
    quiet = args.quiet or "--quiet" in args.run_args
    result = analyze(folders)
    console = _console()
    formats = FILE_FORMATS if args.format == "all" else [Format(args.format)]
    files = [f for f in formats if f is not Format.TERMINAL]
    folder = report_folder(result, args.out)
    report = folder / "report.md" if folder is not None and Format.MARKDOWN in files else None
    if args.format in ("terminal", "all") and not quiet:
        print_summary(console, result, report)
    written = write_reports(result, files, args.out, folder)
    if args.format != "all":
        for path in written:
            console.print(f"wrote {terminal_text(str(path))}", highlight=False)
        return 0
    combined = [p for p in written if folder is not None and p.parent == folder]
    print_closing(
        console,
        # The short list leaves out what cost the run next to nothing (a worker imbalance of
        # 20 us in a clean smoke run stood second); the report keeps every finding.
        findings=[
            (f.title, f.run_id, (f.cause, f.op)) for f in result.findings if not f.negligible
        ],
        total=len(result.findings),
        report=next((p for p in combined if p.suffix == ".html"), None),
        run_reports=len({p.parent for p in written} - {folder}),
        folders=folders,
        quiet=quiet,
    )
    return 0


def view_check_command(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """``queueprof view-check``: every viewable artifact of runs, rendered in its viewer."""
    from .viewers.report import print_view, view_failure

    folders = _selected_runs(args, "view-check")
    options = BrowserOptions(args.chromium, args.chromedriver, timeout_s=args.timeout)
    console = _console()
    views = check_runs(folders, options, args.speedscope_app, lambda r: print_view(console, r))
    for view in views:
        for shot in view.screenshots:
            console.print(f"wrote {terminal_text(str(shot))}", highlight=False)
    checked = sum(len(v.results) for v in views)
    failed = [r for v in views for r in v.failed]
    if failed:
        raise view_failure(failed, checked)
    console.print(
        f"view-check: all {checked} artifacts of {len(views)} run(s) rendered in their viewers; "
        "`queueprof analyze` shows the screenshots in report.html"
    )
    return 0


def profile_command(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """``queueprof profile``: a program under a profiler, into a run folder."""
    from .program import ProgramRequest, profile_program

    command = list(args.command)
    if command[:1] == ["--"]:
        command = command[1:]
    outcome = profile_program(
        ProgramRequest(
            command=tuple(command),
            profiler=args.profiler,
            profiler_options=tuple(args.profiler_option),
            ops_file=args.ops,
            out_dir=args.out,
            run_id=args.run_id,
            argv=tuple(argv),
        )
    )
    return _report_program(outcome)


def attach_command(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """``queueprof attach``: sample a running process into a run folder."""
    from .program import attach

    outcome = attach(
        args.pid,
        duration_s=args.duration,
        profiler_name=args.profiler,
        ops_file=args.ops,
        out_dir=args.out,
        run_id=args.run_id,
        argv=argv,
    )
    return _report_program(outcome)


def _report_program(outcome: RunOutcome) -> int:
    console = _console()
    manifest = Manifest.from_json((outcome.run_dir / MANIFEST).read_bytes())
    render_artifacts(console, str(outcome.run_dir), manifest)
    console.print(
        f"{terminal_text(str(outcome.run_dir))}: {outcome.status.value}"
        + (f" ({terminal_text(outcome.error.message)})" if outcome.error else "")
        + f"; next: queueprof analyze {terminal_text(str(outcome.run_dir))}",
        highlight=False,
    )
    return outcome.exit_code


def adapter_check_command(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """``queueprof adapter check``: the contract suite against each adapter; 1 if one fails."""
    import asyncio

    from workloads.adapters.check import run_checks
    from workloads.adapters.plugins import find_contenders

    chosen = [c for reference in args.adapters for c in find_contenders(reference)]
    results = asyncio.run(run_checks(chosen))
    console = _console()
    table = Table("adapter", "check", "", "detail")
    for result in results:
        table.add_row(
            terminal_text(result.contender),
            terminal_text(result.name),
            "[green]ok[/green]" if result.passed else "[red]FAIL[/red]",
            terminal_text(result.detail),
        )
    console.print(table)
    failed = [r for r in results if not r.passed]
    console.print(
        f"{len(results) - len(failed)} of {len(results)} checks passed"
        + (f"; [red]{len(failed)} failed[/red]" if failed else "")
    )
    return 1 if failed else 0


def profiler_names() -> list[str]:
    """Every profiler in ``profilers.REGISTRY`` (``none`` first: the baseline)."""
    return ["none", *(name for name in PROFILERS if name != "none")]


def _console() -> Console:
    # A pipe or file gets wide tables instead of rich's 80-column default for non-terminals.
    return Console() if sys.stdout.isatty() else Console(width=160)


def _show_progress(args: argparse.Namespace) -> bool:
    return not args.quiet and sys.stderr.isatty()


def _report(outcome: RunOutcome, *, quiet: bool) -> None:
    console = _console()
    manifest = Manifest.from_json((outcome.run_dir / MANIFEST).read_bytes())
    if not quiet:
        render_result(console, outcome.result, outcome.status.value, str(outcome.run_dir))
    render_artifacts(console, str(outcome.run_dir), manifest)
    _crossover(console, outcome, quiet=quiet)
    if outcome.status is RunStatus.FAILED:
        assert outcome.error is not None
        raise RunFailedError(
            f"run {outcome.run_dir.name} failed: {outcome.error.type}: {outcome.error.message} "
            f"(traceback in {outcome.run_dir / MANIFEST})"
        )
    if outcome.status is RunStatus.INTERRUPTED:
        console.print(f"interrupted: partial results in {outcome.run_dir}")
    elif quiet:
        verdict = "targets met" if outcome.result.passed else "targets FAILED"
        console.print(f"{outcome.run_dir}: {outcome.status.value}, {verdict}")


def _crossover(console: Console, outcome: RunOutcome, *, quiet: bool) -> None:
    """A crossover run's table (unless ``quiet``) and its finding in one sentence."""
    from analysis.crossover import crossover_report
    from analysis.render.terminal import crossover_table

    report = crossover_report(outcome.result.steps)
    if report is None:
        return
    if not quiet:
        console.print(crossover_table(report))
    console.print(terminal_text(report.finding), highlight=False)
    console.print(
        terminal_text(f"plots of every metric: queueprof analyze {outcome.run_dir} (report.html)"),
        highlight=False,
    )
