"""README.md and docs/: every link to a page of the project leads somewhere, and the README's
commands are the ones CI runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def anchors(page: Path) -> set[str]:
    """GitHub's anchors for the headings of ``page``."""
    headings = re.findall(r"^#+ (.+)$", page.read_text(), flags=re.MULTILINE)
    return {
        re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-") for heading in headings
    }


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_every_local_link_names_a_file_and_heading_that_exist(page: Path) -> None:
    broken = []
    for target in LINK.findall(page.read_text()):
        if re.match(r"[a-z]+:", target):
            continue  # a web address
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists() or (anchor and anchor not in anchors(linked)):
            broken.append(target)
    assert not broken, f"{page.name}: {broken}"


def test_every_docs_page_is_linked_from_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    unlinked = [p.name for p in PAGES[1:] if f"(docs/{p.name}" not in readme]
    assert not unlinked


def test_the_readme_quick_start_runs_what_ci_runs() -> None:
    # GIVEN the README's quick start and the CI script
    readme = (ROOT / "README.md").read_text()
    quick_start = readme[readme.index("## Quick start") :].split("\n## ", 1)[0]
    (commands,) = re.findall(r"```sh\n(.*?)```", quick_start, flags=re.DOTALL)[:1]
    ci = (ROOT / ".ci" / "run").read_text()
    # THEN each tox command and the installer line of the quick start is what CI runs
    for line in commands.splitlines():
        command = line.split("#")[0].strip()
        if command.startswith("tox -e"):
            assert re.search(rf"^{re.escape(command)}( |$)", ci, re.MULTILINE), command
        if command.startswith("pip install"):
            assert command.removeprefix("pip install ") in ci, command
