"""Nothing a run starts outlives it, even when the process that started it is SIGKILLed.

A profiled run starts its children (py-spy and the run under it, or the bare baseline run)
in a session of their own, so a Ctrl-C at the terminal reaches queueprof only and is passed
on in the order the child needs. The price: when queueprof itself dies without a chance to
clean up (SIGKILL, the OOM killer), nothing would stop that session. Two guards close it:

- :func:`watched`: a small watchdog process, in a session of its own, holds the read end of a
  pipe whose write end only queueprof holds. End of file without the "done" byte means
  queueprof died: the watchdog interrupts the run as queueprof would have (SIGTERM, which a
  run ends like Ctrl-C: folder ``interrupted``, scratch files removed, workers stopped), waits
  for the session to empty, and kills what is left after the grace period.
- :func:`exit_with_parent`: a ``queueprof run`` child asks Linux for SIGTERM when its parent
  dies (``PR_SET_PDEATHSIG``), so it ends cleanly even if the watchdog is killed too.

This file runs as the watchdog's script (``python -I watchdog.py SESSION GRACE MODE``), so it
imports nothing of queueprof.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import psutil

EXIT_WITH_PARENT = "QUEUEPROF_EXIT_WITH_PARENT"
"""Set in a child's environment: the child calls :func:`exit_with_parent` as it starts."""

PR_SET_PDEATHSIG = 1
"""prctl(2) option: the signal this process gets when the thread that forked it exits."""

DONE = b"done"
"""What the parent writes to the watchdog when the session ended normally."""

LAUNCHER = "launcher"
"""Mode: the session's leader runs the workload as its child (py-spy)."""
DIRECT = "direct"
"""Mode: the session's leader is the run itself."""


def interrupt_run(leader: int, signum: int, *, launcher: bool) -> None:
    """``signum`` to the run of the session led by ``leader``: to the leader itself, or, when
    it is a launcher (py-spy), to its children, the run (py-spy itself would kill the run at
    once on SIGINT or SIGTERM, before it could finish its folder); to the launcher if it has
    no child yet."""
    try:
        process = psutil.Process(leader)
        targets = (process.children(recursive=False) if launcher else []) or [process]
        for target in targets:
            target.send_signal(signum)
    except psutil.NoSuchProcess:
        pass  # already gone: nothing left to interrupt


def exit_with_parent(signum: int = signal.SIGTERM) -> None:
    """When :data:`EXIT_WITH_PARENT` is set: get ``signum`` when the parent process dies.

    Linux only (elsewhere the watchdog alone guards). If the parent died before the request
    took effect, the signal is raised at once."""
    if os.environ.pop(EXIT_WITH_PARENT, None) is None or not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, int(signum), 0, 0, 0) != 0:
        return  # refused (a seccomp sandbox): the watchdog still guards
    if os.getppid() != parent:
        os.kill(os.getpid(), signum)


@contextlib.contextmanager
def watched(session: int, *, launcher: bool, grace_s: float) -> Iterator[None]:
    """A watchdog over ``session`` for the block: if this process dies inside it, the
    session's run is interrupted, then whatever is left of the session is killed after
    ``grace_s`` seconds."""
    mode = LAUNCHER if launcher else DIRECT
    watchdog = subprocess.Popen(
        [sys.executable, "-I", __file__, str(session), repr(grace_s), mode],
        stdin=subprocess.PIPE,
        start_new_session=True,  # a kill of this process's group must not take it along
    )
    try:
        yield
    finally:
        assert watchdog.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            watchdog.stdin.write(DONE)
            watchdog.stdin.close()
        watchdog.wait()


def _members(session: int) -> bool:
    try:
        os.killpg(session, 0)
    except ProcessLookupError:
        return False
    return True


def _watch(session: int, grace_s: float, launcher: bool) -> int:
    if sys.stdin.buffer.read(len(DONE)) == DONE:
        return 0  # the session ended normally, its parent cleaned up
    # The parent died while the session ran: end the run as the parent would have.
    interrupt_run(session, signal.SIGTERM, launcher=launcher)
    deadline = time.monotonic() + grace_s
    while _members(session) and time.monotonic() < deadline:
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(session, signal.SIGKILL)
    return 0


if __name__ == "__main__":
    sys.exit(_watch(int(sys.argv[1]), float(sys.argv[2]), sys.argv[3] == LAUNCHER))
