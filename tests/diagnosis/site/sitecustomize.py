"""Applies a planted bottleneck in every Python process of a diagnosis run.

Python imports ``sitecustomize`` at start-up from the first folder on ``sys.path`` that has
one; the diagnosis harness puts this folder first on ``PYTHONPATH`` and names the plant in
``QUEUEPROF_PLANT``. Worker processes (spawned) and py-spy's child inherit both, so the plant
is everywhere the queue runs. Each process that applies it appends a line to the file named
by ``QUEUEPROF_PLANT_LOG``, so the harness can tell an applied plant from one that never ran.
"""

from __future__ import annotations

import os

_plant = os.environ.get("QUEUEPROF_PLANT")
if _plant:
    from tests.diagnosis.plants import apply

    apply(_plant)
    _log = os.environ.get("QUEUEPROF_PLANT_LOG")
    if _log:
        with open(_log, "a", encoding="utf-8") as out:
            out.write(f"{_plant} {os.getpid()}\n")
