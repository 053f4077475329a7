"""Reading callgrind's profile files (``callgrind.out.*``) and writing them as speedscope.

Only what the instruction gate needs: the file's ``Ir`` total and each function's self
(exclusive) instructions. Format: https://valgrind.org/docs/manual/cl-format.html. A cost line
under ``fn=`` is that function's own cost; the cost line right after ``calls=`` is the
inclusive cost of a call it makes and is NOT its own, so it is skipped. Names may be
compressed (``fn=(12) name`` defines id 12, ``fn=(12)`` reuses it; ``cfn`` shares the ``fn``
table, ``fi``/``fe``/``cfi`` share ``fl``'s). Callgrind suffixes a recursive function's deeper
activations (``_PyEval_EvalFrameDefault'2``); they are added to the function itself.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .speedscope import FrameKey

_COMPRESSED = re.compile(r"^\((\d+)\)(?: (.*))?$")
_RECURSION = re.compile(r"'\d+$")


class CallgrindFormatError(ValueError):
    """A file that is not a callgrind profile (the message names the file and the line)."""


@dataclass(frozen=True, slots=True)
class FunctionKey:
    """A C function as callgrind names it, with the shared object it is in."""

    name: str
    object: str
    """Basename of the binary or library (``libpython3.11.so.1.0``, ``libsqlite3.so.0``)."""


@dataclass(frozen=True, slots=True)
class CallgrindProfile:
    """One part file: its instruction total and each function's self instructions."""

    part: int
    trigger: str
    total: int
    """``Ir`` of the part (its ``summary:``/``totals:`` line, else the sum of self costs)."""
    functions: Mapping[FunctionKey, int]

    def top(self, count: int) -> list[tuple[FunctionKey, int]]:
        """The ``count`` functions with the most self instructions, most first."""
        return sorted(self.functions.items(), key=lambda kv: (-kv[1], kv[0].name))[:count]


def read_profile(path: Path) -> CallgrindProfile:
    """Parse ``path``; :class:`CallgrindFormatError` naming it if it is not callgrind output."""
    return parse_profile(path.read_text(errors="replace").splitlines(), str(path))


def parse_profile(lines: Iterable[str], source: str = "<callgrind>") -> CallgrindProfile:
    """Parse the lines of one callgrind part file (see the module docstring)."""
    names: dict[str, dict[str, str]] = {"fn": {}, "fl": {}, "ob": {}}
    functions: Counter[FunctionKey] = Counter()
    current: FunctionKey | None = None
    obj = ""
    ir_column: int | None = None
    part, trigger, total = 1, "", None
    skip_next_cost = False
    for number, raw in enumerate(lines, 1):
        line = raw.rstrip("\n")
        if not line or line.startswith("#"):
            continue
        head = line[0]
        if head.isdigit() or head in "+-*":
            if skip_next_cost:
                skip_next_cost = False
                continue
            if current is None or ir_column is None:
                raise CallgrindFormatError(f"{source}:{number}: a cost line before fn=/events:")
            fields = line.split()
            # One position column (``positions: line``, callgrind's default) then the events.
            if len(fields) > 1 + ir_column:
                functions[current] += int(fields[1 + ir_column])
            continue
        key, _, value = line.partition("=")
        if key in ("fn", "ob", "fl", "fi", "fe", "cfn", "cob", "cfi", "cfl"):
            table = {"cfn": "fn", "cob": "ob", "fi": "fl", "fe": "fl", "cfi": "fl", "cfl": "fl"}
            name = _name(names[table.get(key, key)], value, source, number)
            if key == "ob":
                obj = name.rpartition("/")[2]
            elif key == "fn":
                current = FunctionKey(_RECURSION.sub("", name), obj)
            continue
        if key == "calls":
            skip_next_cost = True
            continue
        if key in ("jump", "jcnd"):
            continue
        label, _, text = line.partition(":")
        text = text.strip()
        if label == "events":
            events = text.split()
            if "Ir" not in events:
                raise CallgrindFormatError(f"{source}:{number}: no Ir event ({text!r})")
            ir_column = events.index("Ir")
        elif label == "positions" and text != "line":
            raise CallgrindFormatError(
                f"{source}:{number}: positions {text!r}; run callgrind without --dump-instr"
            )
        elif label == "part":
            part = int(text)
        elif label == "desc" and text.startswith("Trigger:"):
            trigger = text.partition(":")[2].strip()
        elif label in ("summary", "totals"):
            total = int(text.split()[0 if ir_column is None else ir_column])
    if ir_column is None:
        raise CallgrindFormatError(f"{source}: not a callgrind profile (no events: line)")
    return CallgrindProfile(
        part, trigger, sum(functions.values()) if total is None else total, dict(functions)
    )


def _name(table: dict[str, str], value: str, source: str, number: int) -> str:
    match = _COMPRESSED.match(value)
    if match is None:
        return value
    ident, name = match.groups()
    if name is not None:
        table[ident] = name
        return name
    try:
        return table[ident]
    except KeyError:
        raise CallgrindFormatError(
            f"{source}:{number}: name id ({ident}) used before defined"
        ) from None


def speedscope_samples(
    profile: CallgrindProfile, root: FrameKey, *, keep: int = 300
) -> list[tuple[list[FrameKey], float]]:
    """``profile`` as speedscope samples under ``root``, weighted by instructions.

    Each function is one sample ``[root, shared object, function]`` weighing its self
    instructions (the ``keep`` biggest; the rest are one ``(other functions)`` sample), so
    speedscope's left-heavy and sandwich views rank the C functions under each root.
    """
    samples = []
    rest = profile.total
    # Grouped by library, biggest first in each: the time-order view then shows one block
    # per library under the root instead of alternating slivers.
    kept = profile.top(keep)
    by_object: dict[str, int] = {}
    for function, instructions in kept:
        by_object[function.object] = by_object.get(function.object, 0) + instructions
    kept.sort(key=lambda kv: (-by_object[kv[0].object], kv[0].object, -kv[1], kv[0].name))
    for function, instructions in kept:
        stack = [root, FrameKey(function.object), FrameKey(function.name, function.object)]
        samples.append((stack, float(instructions)))
        rest -= instructions
    if rest > 0:
        samples.append(([root, FrameKey("(other functions)")], float(rest)))
    return samples
