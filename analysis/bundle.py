"""Writing comparison files and report bundles (the file side of ``compare`` and ``report``).

:func:`write_comparison` puts ``comparison.md``, ``comparison.json`` and, when both runs
have a speedscope profile from the same profiler, ``diff-flamegraph.html`` into a folder.
:func:`write_bundle` assembles one folder (and a ``.zip`` of it) to attach to an optimisation
proposal: per run its manifest, results, artifacts and plots; the analysis's own reports over
all runs (:func:`analysis.output.write_reports`); the comparisons; and an ``index.md`` naming
every file in one line.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from runs import MANIFEST, RESULTS
from runs.errors import UnsafePathError
from runs.files import (
    COMPARISON_JSON,
    COMPARISON_MD,
    DIFF_FLAMEGRAPH,
    file_inside,
    output_error,
)
from runs.text import markdown_code, markdown_text

from . import diffgraph, plots
from .analyze import analyze
from .compare import Comparison, ComparisonOptions, compare_runs
from .errors import ArtifactError, NotComparableError, RunFolderError, ScalingError
from .load.runfolder import RUN_FIX, LoadedRun, inside_run, open_run
from .output import FILE_FORMATS, write_reports
from .render.comparison import comparison_markdown, scaling_markdown
from .scaling import scaling_fits
from .timelines import memory_timeline, queue_timelines, worker_steps

INDEX = "index.md"
ANALYSIS_DIR = "analysis"
_REPORTS = {
    "report.md": "where the time, memory and SQL go per operation; ranked findings",
    "report.html": "the same with plots, self-contained",
    "findings.json": "the findings as data",
}


@dataclass(frozen=True, slots=True)
class WrittenFile:
    """One file written, and one line saying what it is."""

    path: Path
    description: str


@dataclass(frozen=True, slots=True)
class Written:
    """Files written, and notes about what was left out and why."""

    files: tuple[WrittenFile, ...] = ()
    notes: tuple[str, ...] = ()


def write_comparison(
    comparison: Comparison, baseline: LoadedRun, candidate: LoadedRun, out_dir: Path
) -> Written:
    """``comparison.md``, ``comparison.json`` and, when possible, ``diff-flamegraph.html``."""
    try:
        return _write_comparison(comparison, baseline, candidate, out_dir)
    except OSError as error:  # the candidate's folder may be read-only, a disk full
        raise output_error(
            out_dir, error, "pass --out DIR to write the comparison files somewhere writable"
        ) from None


def _write_comparison(
    comparison: Comparison, baseline: LoadedRun, candidate: LoadedRun, out_dir: Path
) -> Written:
    out_dir.mkdir(parents=True, exist_ok=True)
    files = [
        _write(
            out_dir / COMPARISON_MD, comparison_markdown(comparison), "the comparison, readable"
        ),
        _write(out_dir / COMPARISON_JSON, comparison.to_json(), "the comparison as data"),
    ]
    notes: list[str] = []
    base_profile, cand_profile = baseline.speedscope_profile(), candidate.speedscope_profile()
    if base_profile is None or cand_profile is None:
        missing = [
            run.run_id
            for run, profile in ((baseline, base_profile), (candidate, cand_profile))
            if profile is None
        ]
        notes.append(
            f"no differential flame graph: no speedscope profile in {' and '.join(missing)} "
            "(run both with `--profiler pyinstrument` or both with `--profiler py-spy`)"
        )
    elif baseline.profiler != candidate.profiler:
        notes.append(
            f"no differential flame graph: the profiles come from {baseline.profiler} and "
            f"{candidate.profiler}; profile both runs with the same profiler"
        )
    else:
        diff = diffgraph.diff_speedscope_files(
            base_profile, cand_profile, labels=(baseline.run_id, candidate.run_id)
        )
        title = f"{candidate.run_id} vs {baseline.run_id} ({candidate.profiler})"
        path = diffgraph.write_html(diff, out_dir / DIFF_FLAMEGRAPH, title)
        files.append(
            WrittenFile(path, "differential flame graph (red: more time in the candidate)")
        )
    return Written(tuple(files), tuple(notes))


def write_bundle(runs: Sequence[Path], out_dir: Path, options: ComparisonOptions) -> Written:
    """Assemble ``out_dir`` and ``out_dir.zip`` from ``runs`` (the first is the baseline)."""
    if not runs:
        raise RunFolderError("report: name at least one run folder (`queueprof list` shows them)")
    existed = out_dir.exists()
    if existed and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise RunFolderError(
            f"--bundle {out_dir}: exists and is not an empty folder; name a new folder "
            "(the bundle never overwrites)"
        )
    archive = _archive(out_dir)
    if archive.exists() or archive.is_symlink():
        raise RunFolderError(
            f"--bundle {out_dir}: {archive.name} exists beside it and the bundle's zip would "
            "replace it; name a new folder (the bundle never overwrites)"
        )
    loaded = [open_run(path) for path in runs]
    ids = [run.run_id for run in loaded]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise RunFolderError(
            f"report: run {', '.join(repeated)} is named more than once; name each run once"
        )
    _check_space(loaded, out_dir)
    try:
        return _write_bundle(loaded, out_dir, options)
    except OSError as error:
        _remove_partial(out_dir, existed)
        raise output_error(
            out_dir, error, "name a --bundle folder on a writable file system with free space"
        ) from None
    except BaseException:
        _remove_partial(out_dir, existed)
        raise


def _archive(out_dir: Path) -> Path:
    return out_dir.with_name(out_dir.name + ".zip")


SPACE_MARGIN = 1.1
"""Free space wanted beyond the copies and the zip: the plots and reports, the file system's
own blocks."""


def _check_space(loaded: Sequence[LoadedRun], out_dir: Path) -> None:
    """Refuse before writing anything when the copies and their zip (at most as large again)
    cannot fit: a bundle that fills the disk halfway is worth nothing and costs the user's
    free space."""
    copied = 0
    for run in loaded:
        for relative in (MANIFEST, run.manifest.results or RESULTS, *_artifact_paths(run)):
            try:
                copied += file_inside(run.folder, relative).stat().st_size
            except (UnsafePathError, OSError):
                continue  # not copied: the bundle's index says why
    existing = next(p for p in (out_dir, *out_dir.parents) if p.exists())
    try:
        free = shutil.disk_usage(existing).free
    except OSError:
        return  # the write itself reports what is wrong with the place
    needed = int(2 * copied * SPACE_MARGIN)
    if needed > free:
        raise RunFolderError(
            f"--bundle {out_dir}: needs about {_mib(needed)} (copies of the runs' files and "
            f"their zip) and {existing} has {_mib(free)} free; name a folder on a disk with "
            "more space, or bundle fewer runs"
        )


def _artifact_paths(run: LoadedRun) -> list[str]:
    return [str(artifact["path"]) for artifact in run.manifest.artifacts]


def _mib(size: int) -> str:
    return f"{size / 2**20:,.1f} MiB"


def _remove_partial(out_dir: Path, existed: bool) -> None:
    """Take away what a failed bundle wrote (it was a new or empty folder, and no zip of its
    name was there); what cannot be removed stays, since the error that brought us here is
    the one to report."""
    try:
        if out_dir.is_dir() and not out_dir.is_symlink():
            if existed:
                for child in out_dir.iterdir():
                    if child.is_dir() and not child.is_symlink():
                        shutil.rmtree(child, ignore_errors=True)
                    else:
                        child.unlink(missing_ok=True)
            else:
                shutil.rmtree(out_dir, ignore_errors=True)
        archive = _archive(out_dir)
        if archive.exists():
            archive.unlink()
    except OSError:
        pass


def _write_bundle(
    loaded: Sequence[LoadedRun], out_dir: Path, options: ComparisonOptions
) -> Written:
    out_dir.mkdir(parents=True, exist_ok=True)
    files: list[WrittenFile] = []
    notes: list[str] = []
    for run in loaded:
        written = _bundle_run(run, out_dir / run.run_id)
        files += written.files
        notes += [f"{run.run_id}: {note}" for note in written.notes]
    # One analysis report over every run: per-run findings plus what the runs say together.
    report_dir = out_dir / ANALYSIS_DIR
    files += [
        WrittenFile(path, f"analysis report: {_REPORTS.get(path.name, path.name)}")
        for path in write_reports(
            analyze([run.folder for run in loaded]),
            FILE_FORMATS,
            report_dir,
            # Links go to the bundle's copies, so they work once the bundle is moved or unzipped.
            artifact_roots={run.run_id: out_dir / run.run_id for run in loaded},
        )
    ]
    baseline = loaded[0]
    for candidate in loaded[1:]:
        folder = out_dir / ("comparison" if len(loaded) == 2 else f"comparison-{candidate.run_id}")
        try:
            comparison = compare_runs(baseline, candidate, options)
        except NotComparableError as error:
            # A bundle may hold unrelated runs on purpose (a concurrency run beside a
            # throughput run): it is still worth writing, and the index says why not compared.
            notes.append(f"{candidate.run_id} not compared with {baseline.run_id}: {error}")
            continue
        written = write_comparison(comparison, baseline, candidate, folder)
        files += written.files
        files.append(_latency_overlay(baseline, candidate, folder))
        notes += list(written.notes)
    index = _write(out_dir / INDEX, _index(out_dir, loaded, files, notes), "this index")
    archive = shutil.make_archive(
        str(out_dir), "zip", root_dir=out_dir.parent, base_dir=out_dir.name
    )  # at _archive(out_dir)
    return Written(
        (*files, index, WrittenFile(Path(archive), "the whole bundle as one zip")), tuple(notes)
    )


def _bundle_run(run: LoadedRun, dest: Path) -> Written:
    # The manifest was validated when read: the run id is a plain folder name and every
    # artifact path is relative without '..', so dest and every target stay inside out_dir.
    dest.mkdir(parents=True)
    results = run.manifest.results or RESULTS
    files = [
        _copy(
            inside_run(run.folder, MANIFEST, "the run manifest is missing", RUN_FIX),
            dest,
            "manifest: what ran, where, with which settings",
        ),
        _copy(
            inside_run(run.folder, results, "the run's results are missing", RUN_FIX),
            dest,
            "results: every metric",
            results,
        ),
    ]
    notes: list[str] = []
    for artifact in run.manifest.artifacts:
        try:
            # Refuses a symlink out of the run folder: the bundle copies the folder's own files.
            source = inside_run(
                run.folder, artifact["path"], "is listed in the manifest but missing", RUN_FIX
            )
        except ArtifactError as error:
            notes.append(f"artifact {artifact['path']} {error.problem}")
            continue
        what = artifact.get("description") or artifact["kind"]
        # Kept at its path in the run folder (screenshots/...): the copied manifest names it so.
        files.append(
            _copy(source, dest, f"{what} (open with: {artifact['viewer']})", artifact["path"])
        )
    plots_dir = dest / "plots"
    plots_dir.mkdir()
    if run.op_samples:
        files.append(
            _write(
                plots_dir / "latency-cdf.svg",
                plots.samples_cdf_svg(run.op_samples, f"{run.run_id}: latency per operation"),
                "latency CDF per queue operation",
            )
        )
    files += _timeline(run, plots_dir)
    if run.manifest.workload == "concurrency":
        try:
            fits = scaling_fits(run.result)
        except ScalingError as error:
            notes.append(f"no scaling fit: {error}")
        else:
            ordered = [fits[mode] for mode in sorted(fits)]
            files.append(
                _write(
                    plots_dir / "scaling.svg",
                    plots.scaling_svg(ordered, f"{run.run_id}: throughput vs workers"),
                    "throughput vs workers, measured and USL fit",
                )
            )
            files.append(
                _write(
                    dest / "scaling.md",
                    f"# Scaling of {run.run_id}\n\n{scaling_markdown(ordered)}\n",
                    "USL fit: contention (sigma), coherency (kappa), peak worker count",
                )
            )
    return Written(tuple(files), tuple(notes))


def _timeline(run: LoadedRun, plots_dir: Path) -> list[WrittenFile]:
    """Over-time plots: throughput and queue depth with the run's events, memory with its
    growth lines, and each step's work per worker."""
    files = []
    for timeline in queue_timelines(run.result):
        files.append(
            _write(
                plots_dir / f"throughput-{timeline.series}.svg",
                plots.timeline_svg(
                    timeline.elapsed_s,
                    throughput=timeline.throughput,
                    queue_depth=timeline.queue_depth,
                    title=f"{run.run_id}: {timeline.series}",
                    events=timeline.events,
                ),
                f"throughput{' and queue depth' if timeline.queue_depth else ''} over time "
                f"(series {timeline.series!r})",
            )
        )
    memory = memory_timeline(run.result)
    if memory is not None:
        files.append(
            _write(
                plots_dir / "memory.svg",
                plots.memory_svg(memory, f"{run.run_id}: memory over time"),
                "RSS and heap over time, with the growth lines",
            )
        )
    for number, step in enumerate(worker_steps(run.result.steps), start=1):
        files.append(
            _write(
                plots_dir / f"workers-{number}.svg",
                plots.workers_svg(step.workers, f"{run.run_id}: {step.label}"),
                f"tasks and busy time per worker ({step.label})",
            )
        )
    return files


def _latency_overlay(baseline: LoadedRun, candidate: LoadedRun, folder: Path) -> WrittenFile:
    samples = {
        f"{operation} ({side})": run.op_samples[operation]
        for operation in sorted(baseline.op_samples.keys() & candidate.op_samples.keys())
        for side, run in (("baseline", baseline), ("candidate", candidate))
    }
    title = f"latency: {candidate.run_id} vs {baseline.run_id}"
    if not samples:
        return _write(folder / "latency-cdf.md", "Neither run kept op samples.\n", title)
    return _write(
        folder / "latency-cdf.svg",
        plots.samples_cdf_svg(samples, title),
        "latency CDFs of both runs, per operation",
    )


def _index(
    out_dir: Path, runs: Sequence[LoadedRun], files: Sequence[WrittenFile], notes: Sequence[str]
) -> str:
    # File names, descriptions and notes carry run strings (ids, artifact descriptions and
    # viewers from the manifest): escaped like every run string in Markdown.
    lines = [
        f"# Bundle: {markdown_text(', '.join(run.run_id for run in runs))}",
        "",
        f"Baseline: {markdown_code(runs[0].run_id)}." if len(runs) > 1 else "",
        "",
        "## Files",
        "",
    ]
    lines += [
        f"- {markdown_code(f.path.relative_to(out_dir))}: {markdown_text(f.description)}"
        for f in files
    ]
    lines.append(f"- {markdown_code(INDEX)}: this index")
    if notes:
        lines += ["", "## Left out", "", *(f"- {markdown_text(note)}" for note in notes)]
    return "\n".join(lines) + "\n"


def _copy(
    source: Path, dest_dir: Path, description: str, relative: str | None = None
) -> WrittenFile:
    target = dest_dir / (relative or source.name)
    if not target.resolve().is_relative_to(dest_dir.resolve()):  # pragma: no cover - validated
        raise RunFolderError(f"{relative!r}: would be written outside the bundle; not copied")
    target.parent.mkdir(parents=True, exist_ok=True)
    # The source was checked to resolve inside its run folder; copy the resolved file's bytes.
    shutil.copy2(source.resolve(), target)
    return WrittenFile(target, description)


def _write(path: Path, content: str | bytes, description: str) -> WrittenFile:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return WrittenFile(path, description)
