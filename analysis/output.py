"""Writing an analysis's reports: into one folder, or each run's part into its own folder."""

from __future__ import annotations

from collections.abc import Sequence
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


def write_reports(analysis: Analysis, formats: Sequence[Format], out: Path | None) -> list[Path]:
    """Write each file format in ``formats``: all runs into ``out``, or, without ``out``, each
    run's own report into its run folder. Returns the files written."""
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
    written = []
    for folder, part in targets:
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
