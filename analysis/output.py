"""Writing an analysis's reports: one report for the whole invocation, and each run's part
beside the run.

With several runs, the combined report (every run's findings ranked together) goes to a
folder of its own next to the runs, ``analysis-<timestamp>/``; each run folder gets its own
part. With ``--out``, everything goes to that folder.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path

from runs import write_atomic
from runs.files import output_error

from .errors import AnalysisError
from .model import Analysis, ranked
from .render import RENDERERS, Format

FILE_FORMATS = (Format.MARKDOWN, Format.HTML, Format.JSON)


def for_run(analysis: Analysis, run_id: str) -> Analysis:
    """The part of ``analysis`` about one run: its findings and the comparisons it is in."""
    agreements = tuple(a for a in analysis.agreements if run_id in (a.run_a, a.run_b))
    pairs = {(a.run_a, a.run_b) for a in agreements}
    findings = [
        f
        for f in analysis.findings
        if f.run_id == run_id
        or (f.run_id is None and any(a in f.key and b in f.key for a, b in pairs))
    ]
    return Analysis(
        runs=tuple(r for r in analysis.runs if r.run_id == run_id),
        agreements=agreements,
        findings=ranked(findings),
    )


def with_links(analysis: Analysis, folder: Path, roots: Mapping[str, Path]) -> Analysis:
    """``analysis`` with each run's artifact folder relative to ``folder`` (the report's)."""
    dirs = {
        run.run_id: Path(
            os.path.relpath(roots.get(run.run_id, Path(run.folder)).resolve(), folder.resolve())
        ).as_posix()
        for run in analysis.runs
    }
    return dataclasses.replace(analysis, artifact_dirs=dirs)


COMBINED_PREFIX = "analysis-"


def report_folder(analysis: Analysis, out: Path | None, now: datetime | None = None) -> Path | None:
    """Where the whole invocation's report goes: ``out``; for several runs a new
    ``analysis-<timestamp>`` folder beside the first run; for one run its own folder."""
    if out is not None:
        return out
    if not analysis.runs:
        return None
    first = Path(analysis.runs[0].folder)
    if len(analysis.runs) == 1:
        return first
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    folder = first.parent / f"{COMBINED_PREFIX}{stamp}"
    suffix = 1
    while folder.exists():
        suffix += 1
        folder = first.parent / f"{COMBINED_PREFIX}{stamp}-{suffix}"
    return folder


def write_reports(
    analysis: Analysis,
    formats: Sequence[Format],
    out: Path | None,
    combined: Path | None = None,
    artifact_roots: Mapping[str, Path] | None = None,
) -> list[Path]:
    """Write each file format in ``formats``: all runs into ``out``; without ``out``, each
    run's own report into its run folder and, for several runs, the combined report into
    ``combined`` (see :func:`report_folder`). Returns the files written.

    Reports link each run's artifacts relative to where they are written, in the run's
    folder or, per run id, in ``artifact_roots`` (a bundle's copies)."""
    targets: list[tuple[Path, Analysis]]
    if out is not None:
        if out.exists() and not out.is_dir():
            raise AnalysisError(f"--out {str(out)!r} is a file; name a folder for the reports")
        fix = "pass --out with a folder you can write to"
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise output_error(out, error, fix) from None
        targets = [(out, analysis)]
    else:
        # A run folder may be read-only (an archive, another user's traces).
        fix = "pass --out DIR to write the reports there instead of into the run folder"
        targets = [(Path(run.folder), for_run(analysis, run.run_id)) for run in analysis.runs]
        if len(analysis.runs) > 1:
            folder = combined or report_folder(analysis, None)
            assert folder is not None  # several runs: always a folder
            folder.mkdir(parents=True, exist_ok=True)
            targets.insert(0, (folder, analysis))
    written = []
    for folder, whole in targets:
        part = with_links(whole, folder, artifact_roots or {})
        for fmt in formats:
            renderer = RENDERERS[fmt]
            if renderer.file_name is None:
                continue
            path = folder / renderer.file_name
            try:
                write_atomic(path, renderer.render(part).encode("utf-8"))
            except OSError as error:
                raise output_error(path, error, fix) from None
            written.append(path)
    return written
