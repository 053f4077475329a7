"""How much of a run folder the loaders take in at once: the bounds on a hostile artifact.

A run folder may come from anywhere, so every loader refuses, by name and before reading
it, an artifact that would take more memory or time than a genuine one ever needs. Each
bound is generous for real runs and can be raised for a genuine larger file with the
environment variable its error message names (read at each call, never cached).

Measured on the artifacts this project writes: a 3,000-task viztracer trace is ~160 MB (it is
streamed, never held whole); speedscope, pyinstrument sessions, SQL captures and memray
statistics of smoke to default runs are under 20 MB and under 2 million JSON values;
op-samples.npz holds 8 bytes per call (about 32 MB for a million tasks).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..errors import ArtifactError

MIB = 1 << 20


@dataclass(frozen=True, slots=True)
class Limit:
    """One bound: its environment variable, its default and what it counts."""

    variable: str
    default: int
    unit: str
    why: str

    def value(self) -> int:
        """The bound now: the environment variable if set to a positive integer, else the
        default."""
        text = os.environ.get(self.variable, "")
        return int(text) if text.isdigit() and int(text) > 0 else self.default

    def check(self, path: object, measured: int, what: str) -> None:
        """:class:`ArtifactError` naming the file, the limit and the fix if over the bound."""
        bound = self.value()
        if measured > bound:
            raise ArtifactError(
                str(path),
                f"{what} is {measured:,} {self.unit}, over the limit of {bound:,} {self.unit} "
                f"({self.why})",
                f"if the file is genuine, raise the limit with {self.variable}={measured} "
                "(or analyse a shorter run); otherwise the file is damaged or not from queueprof",
            )


JSON_BYTES = Limit(
    "QUEUEPROF_MAX_JSON_BYTES",
    256 * MIB,
    "bytes",
    "a JSON artifact is parsed whole, so it is held in memory several times its size",
)
PARSED_VALUES = Limit(
    "QUEUEPROF_MAX_PARSED_VALUES",
    10_000_000,
    "values",
    "each value parsed costs 30-70 bytes of memory",
)
NPZ_BYTES = Limit(
    "QUEUEPROF_MAX_NPZ_BYTES",
    1024 * MIB,
    "bytes once unpacked",
    "the samples are unpacked into memory as 64-bit integers",
)
NPZ_ARRAYS = Limit(
    "QUEUEPROF_MAX_NPZ_ARRAYS",
    100_000,
    "arrays",
    "one per queue operation and per distinct SQL statement",
)
TRACE_EVENT_BYTES = Limit(
    "QUEUEPROF_MAX_TRACE_EVENT_BYTES",
    8 * MIB,
    "bytes",
    "a trace is read event by event and an event parses into 30 times its size; no real "
    "event, nor the document after the events, comes near this",
)
TRACE_EVENTS = Limit(
    "QUEUEPROF_MAX_TRACE_EVENTS",
    10_000_000,
    "events",
    "every slice is kept in compact arrays (~25 bytes each); viztracer's ring buffer holds "
    "1,000,000 entries by default, and a .gz of a few MB can unpack to billions",
)
