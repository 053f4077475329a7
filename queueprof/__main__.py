"""``python -m queueprof``: the same CLI as the ``queueprof`` command."""

import sys

from queueprof.cli import main

# The guard matters: process workers are spawned, and spawn re-imports the main module.
if __name__ == "__main__":
    sys.exit(main())
