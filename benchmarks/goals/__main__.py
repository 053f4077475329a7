"""``python -m benchmarks.goals``: see :mod:`benchmarks.goals.cli`."""

from benchmarks.goals.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
