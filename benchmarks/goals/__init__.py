"""The performance goals of issue 7, every row measured in one run, with verdicts.

    python -m benchmarks.goals [--quick] [--only ROW,...] [--save FILE] [--strict]

Each row of the goal table is measured by what the tree does now (the queue, the workloads,
the profiler wrappers, the analysis), so anyone can re-check the table on their machine. A
ratio's two sides are measured in this same process, back to back and interleaved round by
round: the machines here are shared and noisy, so a ratio taken in one run is the only fair
figure. The queue-vs-sqlite3 rows are judged on each side's best round, as the regression
gate judges rates: on the reference VM the same sqlite3 loop ran at 70,000 or 120,000 tasks/s
from one run to the next, flipping within a second, so a round's two sides often ran at
different machine speeds and single rounds' ratios spread 0.6-1.5x; the best round of each
side is its speed with the machine at its fastest. The median of the per-round ratios is
reported next to it. The profiler-overhead row pairs two drains next to each other in time
and takes the median of many pairs (see benchmarks.profiler_overhead).

The table prints each row's goal, the measured figures, PASS or FAIL, and the command that
re-measures that row alone. ``--save`` writes every figure, every check and the environment
as schema-versioned JSON. This is a report: the exit status is 0 when every row was measured
(whatever the verdicts), 1 when a row could not be measured or, with ``--strict``, when a
goal failed, 2 for bad arguments, and 130 on Ctrl-C (after printing and saving the rows
measured so far).

``--quick`` runs every row at small sizes (about a minute in all): its figures show the rows
work, not what the goals are about (e.g. the Perfetto row traces fewer than 10,000 tasks).

The package reads as the data flows: :mod:`.measure` measures (sizes, one function per row,
the commands of the tox envs in :mod:`.tox_env`), :mod:`.table` judges the figures against the
goals (the workloads' own :class:`~runs.Verdict`), renders the table and the JSON,
and :mod:`.cli` is ``main``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from runs import QueueprofError

ROOT = Path(__file__).resolve().parents[2]
"""The project's checkout."""
PROG = "python -m benchmarks.goals"


class GoalsError(QueueprofError):
    """A row could not be measured (its workload failed, a figure is missing, ...)."""


Say = Callable[[str], None]
"""Where a measurement reports its progress, one line at a time."""
