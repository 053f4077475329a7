"""The conventions of queueprof's own timeline tracks inside a Chrome trace.

The recording side (``profilers.timeline``) lays op spans, SQL slices and counters out by
these names and ids; the analysis reads them back by the same names.
"""

from __future__ import annotations

SYNTHETIC_TID_BASE = 1_000_000_000
"""First ``tid`` of the synthetic lanes (Linux thread ids stay below 2**22)."""

PRODUCER_LANE = "producer"
"""Label of the lane for operations that carry no worker name."""

DEPTH = ("queue", "depth")
IN_FLIGHT = ("tasks", "in flight")
RATE = ("completions", "per second")


_TWO_WORD_HEADS = {"INSERT", "DELETE", "REPLACE", "BEGIN", "CREATE", "DROP"}


def statement_label(sql: str) -> str:
    """A short name for a statement: verb and table (``UPDATE tasks``, ``SELECT FROM tasks``)."""
    words = sql.split()
    if not words:
        return "(empty statement)"
    head = words[0].upper()
    if head == "UPDATE" and len(words) > 1:
        return f"UPDATE {words[1]}"
    if head in _TWO_WORD_HEADS and len(words) > 2 and head != "BEGIN":
        return f"{head} {words[1].upper()} {words[2]}"
    if head == "BEGIN" and len(words) > 1:
        return f"BEGIN {words[1].upper()}"
    if head in ("SELECT", "WITH"):
        upper = [w.upper() for w in words]
        if "FROM" in upper:
            at = upper.index("FROM")
            if at + 1 < len(words):
                return f"{head} FROM {words[at + 1].strip('(),;')}"
    return head
