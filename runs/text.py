"""Showing run-supplied text safely: one helper per output medium.

A run folder is input: its manifest, results and artifacts may come from someone else's
machine, so every string read from them (run id, workload, parameters, profiler options,
function names, SQL, notes) is escaped where it is written out:

- Markdown (``report.md``, ``comparison.md``, a bundle's ``index.md``):
  :func:`markdown_text` for prose and table cells, :func:`markdown_code` for code spans. No
  run string can open an HTML element, a link or an image when the file is rendered.
- A terminal (rich): :func:`terminal_text` drops control characters, so no escape sequence
  from a run (a clipboard write with OSC 52, a cursor move, a title change) reaches the
  terminal, and escapes rich's markup.

They live on the ground floor because both ``analysis/`` and the CLI print run strings.
"""

from __future__ import annotations

import re

from rich.markup import escape as _rich_escape

# C0 controls but tab and newline, DEL, C1 controls (0x9b is a one-byte CSI), and the
# bidirectional overrides that make text read differently from what it is.
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_LINE_BREAKS = re.compile("[\t\n\r\x0b\x0c]")
# Characters that open inline markup, raw HTML, a link or image, an entity, or end a table
# cell, anywhere in a line. `]`, `!`, `>`, `#` and `_` inside a word open nothing once `[` and
# `<` are escaped, so they stay as they are and the file stays readable. `<` opens a tag or an
# autolink only before a letter, `/`, `!` or `?`, and `&` an entity only before `#` or a
# letter or digit (or at the end, where the next piece of text may supply one): `goal <= 1.3x`
# and `a & b` stay as written.
_INLINE_SPECIAL = re.compile(
    r"([\\`*\[|~])|<(?=[A-Za-z/!?]|$)|&(?=[#A-Za-z0-9]|$)|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])"
)
# What opens a block where a line starts: a heading, quote, list item, rule or underline.
_BLOCK_START = re.compile(r"^(\s*)(?:([#>+=-])|(\d{1,9})([.)])(?=\s|$))")


def strip_controls(text: str) -> str:
    """``text`` without control characters (tab and newline stay)."""
    return _CONTROLS.sub("", text)


def terminal_text(value: object) -> str:
    """``value`` as text for rich's ``Console.print`` and table cells: no control sequences,
    no markup."""
    return _rich_escape(strip_controls(str(value)))


def markdown_text(value: object) -> str:
    """``value`` as literal text on one Markdown line (also safe in a table cell)."""
    text = strip_controls(_LINE_BREAKS.sub(" ", str(value)))
    text = _INLINE_SPECIAL.sub(lambda m: "\\" + m[0], text)
    return _BLOCK_START.sub(_block_start, text)


def markdown_code(value: object) -> str:
    """``value`` as one inline code span: whitespace folded, fenced by enough backticks."""
    text = " ".join(strip_controls(str(value)).split())
    longest = max((len(run) for run in re.findall("`+", text)), default=0)
    fence = "`" * (longest + 1)
    padded = f" {text} " if text.startswith("`") or text.endswith("`") or not text else text
    return f"{fence}{padded}{fence}"


def _block_start(match: re.Match[str]) -> str:
    indent, marker, number, delimiter = match.groups()
    if marker is not None:
        return f"{indent}\\{marker}"
    return f"{indent}{number}\\{delimiter}"
