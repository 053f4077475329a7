"""SIGINT, SIGTERM and SIGHUP end a run the same way: ``interrupted``, partial results, clean.

Ctrl-C was the only way to stop a run that left a valid folder: SIGTERM (a process manager, a
CI timeout, ``kill``) and SIGHUP (a closed terminal) killed the process where it stood, with
the manifest left ``running``, scratch databases in the temp folder and worker processes or
a profiler child orphaned. :func:`interrupts` makes all three signals act alike:

- outside the event loop, the first one raises :class:`Interrupted`, a ``KeyboardInterrupt``,
  so every ``except KeyboardInterrupt`` that ends a run on Ctrl-C ends it on SIGTERM too;
- inside the loop, :meth:`Interrupts.on_loop` turns the first one into a callback on the loop
  (the runner cancels the workload, which stops its workers);
- every later one is ignored: the run is already ending, and a second signal must not cut
  its clean-up short (each wait in that clean-up is bounded instead);
- :meth:`Interrupts.held` defers the first one over a step that must finish whole.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

INTERRUPT_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(KeyboardInterrupt):
    """One of :data:`INTERRUPT_SIGNALS` arrived outside the event loop."""

    def __init__(self, signum: signal.Signals) -> None:
        super().__init__(signum.name)
        self.signal = signum


def describe(signum: signal.Signals | None) -> str:
    """How a note names the signal: ``SIGINT (Ctrl-C)``, ``SIGTERM``, ``SIGHUP``."""
    if signum is None or signum is signal.SIGINT:
        return "SIGINT (Ctrl-C)"
    return signum.name


class Interrupts:
    """Which interrupt signal came first (``received``), and the handlers that act on it."""

    def __init__(self) -> None:
        self.received: signal.Signals | None = None
        self._holding = 0

    def handle(self, signum: int, frame: FrameType | None) -> None:
        """The process's handler of every interrupt signal outside the event loop."""
        if self.received is not None:
            return  # already ending: see the module docstring
        self.received = signal.Signals(signum)
        if not self._holding:
            raise Interrupted(self.received)

    @contextmanager
    def held(self) -> Iterator[None]:
        """Record, not raise, an interrupt during the block (claiming a folder, finishing
        its manifest): the caller reads ``received`` afterwards."""
        self._holding += 1
        try:
            yield
        finally:
            self._holding -= 1

    def raise_if_received(self) -> None:
        """Raise :class:`Interrupted` for an interrupt recorded while :meth:`held`."""
        if self.received is not None:
            raise Interrupted(self.received)

    @contextmanager
    def on_loop(
        self, loop: asyncio.AbstractEventLoop, interrupt: Callable[[signal.Signals], None]
    ) -> Iterator[None]:
        """Inside the running ``loop``: the first interrupt calls ``interrupt(signal)`` on it."""
        if threading.current_thread() is not threading.main_thread():
            yield  # signals are delivered to the main thread only
            return

        def on_signal(signum: signal.Signals) -> None:
            if self.received is None:
                self.received = signum
                interrupt(signum)

        for signum in INTERRUPT_SIGNALS:
            loop.add_signal_handler(signum, on_signal, signum)
        try:
            yield
        finally:
            for signum in INTERRUPT_SIGNALS:
                loop.remove_signal_handler(signum)
                # asyncio leaves SIG_DFL (SIGINT: default_int_handler) behind: put ours back.
                signal.signal(signum, self.handle)


@contextmanager
def interrupts() -> Iterator[Interrupts]:
    """Interrupt signals handled as described above for the block; the handlers before are
    back afterwards. Nested uses share the outer one's :class:`Interrupts`."""
    current = signal.getsignal(signal.SIGTERM)
    owner = getattr(current, "__self__", None)
    if isinstance(owner, Interrupts):
        yield owner
        return
    mine = Interrupts()
    if threading.current_thread() is not threading.main_thread():
        yield mine  # only the main thread may set handlers (and receives signals)
        return
    previous = {signum: signal.getsignal(signum) for signum in INTERRUPT_SIGNALS}
    for signum in INTERRUPT_SIGNALS:
        signal.signal(signum, mine.handle)
    try:
        yield mine
    finally:
        for signum, handler in previous.items():
            # None: a handler not set from Python; the default is the closest we can restore.
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
