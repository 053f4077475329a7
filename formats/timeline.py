"""The conventions of queueprof's own timeline tracks inside a Chrome trace.

The recording side (``profilers.timeline``) lays op spans, SQL slices and counters out by
these names and ids; the analysis reads them back by the same names.
"""

from __future__ import annotations

SYNTHETIC_TID_BASE = 1_000_000_000
"""First ``tid`` of the synthetic lanes (Linux thread ids stay below 2**22)."""

SQL_LANE = "sqlite thread"
"""Prefix of the lane of SQL run on a connection's own thread: ``sqlite thread Thread-3``."""
INLINE_SQL_LANE = "SQL inline on the event loop"
"""Prefix of the lane of SQL run on the event loop's thread (``dispatch`` ran the call inline,
with no trip to a connection thread): ``SQL inline on the event loop (MainThread)``."""


def sql_lane(thread: str, *, inline: bool) -> str:
    """The lane name of SQL statements that ran on ``thread``."""
    return f"{INLINE_SQL_LANE} ({thread})" if inline else f"{SQL_LANE} {thread}"


def is_inline_sql_lane(name: str) -> bool:
    """True for the lane of SQL that ran on the event loop, not on a connection thread.

    Traces written before the inline lane had its own name put that SQL on
    ``sqlite thread MainThread``: the main thread runs the event loop, never a connection.
    """
    return name.startswith(INLINE_SQL_LANE) or name.startswith(f"{SQL_LANE} MainThread")


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
