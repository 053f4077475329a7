"""Keeping the event loop and its aiosqlite threads on one CPU (``cpu_affinity``).

On Linux, ``sched_setaffinity(0, ...)`` applies to the calling thread only, and threads
inherit the affinity of the thread that creates them. Pinning the event-loop thread before
the queue opens its connections therefore puts every connection thread on the same CPU.
"""

from __future__ import annotations

import os

from .config import parse_affinity
from .errors import InvalidArgumentError


def allowed_cpus() -> list[int]:
    """CPUs this thread may run on (all CPUs where affinity is not supported)."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def pin_current_thread(setting: str, *, slot: int | None = None) -> set[int] | None:
    """Apply ``setting`` to the calling thread; returns the affinity to restore, or None.

    ``colocate`` picks one of the allowed CPUs: ``slot`` (e.g. a worker process's index)
    spreads processes over CPUs; without it the process id does.
    """
    cpu = parse_affinity(setting)
    if cpu is None:
        return None
    if not hasattr(os, "sched_setaffinity"):
        raise InvalidArgumentError(
            f"cpu_affinity={setting!r} needs Linux (os.sched_setaffinity); use cpu_affinity=off"
        )
    allowed = allowed_cpus()
    if cpu == -1:
        cpu = allowed[(os.getpid() if slot is None else slot) % len(allowed)]
    elif cpu not in allowed:
        raise InvalidArgumentError(
            f"cpu_affinity={setting!r}: CPU {cpu} is not available here; allowed: "
            f"{', '.join(map(str, allowed))}"
        )
    previous = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    return previous


def restore(previous: set[int] | None) -> None:
    """Undo :func:`pin_current_thread`."""
    if previous is not None:
        os.sched_setaffinity(0, previous)
