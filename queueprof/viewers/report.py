"""What ``queueprof view-check`` prints: one line per artifact, and the failure message."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console

from runs.text import terminal_text

from .checks import ViewResult
from .errors import ViewCheckFailed


def print_view(console: Console, result: ViewResult) -> None:
    """One artifact's verdict, what the viewer showed, and what it tried to fetch."""
    verdict = "[green]rendered[/green]" if result.ok else "[red]FAILED[/red]"
    console.print(
        f"{verdict} {terminal_text(str(result.target.path))} in {result.target.viewer} "
        f"({result.seconds:.1f} s)",
        highlight=False,
    )
    if result.shown:
        shown = ", ".join(result.shown)
        # One line however long: a track's name is never split across lines.
        console.print(
            f"    shows {len(result.shown)}: {terminal_text(shown)}",
            highlight=False,
            soft_wrap=True,
        )
    for url in result.blocked:
        console.print(f"    blocked (not needed): {terminal_text(url)}", highlight=False)
    for problem in result.problems:
        console.print(f"    [red]{terminal_text(problem)}[/red]", highlight=False)


def view_failure(failed: Sequence[ViewResult], checked: int) -> ViewCheckFailed:
    """The error that ends a check in which ``failed`` did not render."""
    lines = [
        f"{len(failed)} of {checked} artifacts did not render in their viewers "
        "(the screenshots in each run's screenshots/ folder show what the viewer showed):"
    ]
    lines += [f"  {r.target.path} ({r.target.viewer}): {'; '.join(r.problems)}" for r in failed]
    lines.append(
        "fix: a truncated or malformed file comes from a run that did not finish writing it; "
        "re-run the workload (`queueprof run ...`) and check the new run folder"
    )
    return ViewCheckFailed("\n".join(lines))
