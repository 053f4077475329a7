"""SIGINT, SIGTERM and SIGHUP act alike while a run is under way, and only once."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from workloads.interrupts import Interrupted, interrupts


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_each_interrupt_signal_raises_a_keyboard_interrupt_once(signum: signal.Signals) -> None:
    before = signal.getsignal(signum)
    with interrupts() as signals:
        # GIVEN a run under way WHEN the first signal comes THEN Ctrl-C's exception, naming it
        with pytest.raises(KeyboardInterrupt) as caught:
            os.kill(os.getpid(), signum)
        assert isinstance(caught.value, Interrupted)
        assert caught.value.signal is signum
        # AND a second one does not cut the clean-up short
        os.kill(os.getpid(), signal.SIGTERM)
        assert signals.received is signum
    assert signal.getsignal(signum) is before  # the handler from before is back


def test_an_interrupt_in_a_held_step_is_raised_when_the_caller_asks() -> None:
    with interrupts() as signals:
        with signals.held():
            os.kill(os.getpid(), signal.SIGTERM)  # e.g. while the folder is claimed
        assert signals.received is signal.SIGTERM
        with pytest.raises(Interrupted):
            signals.raise_if_received()


def test_inside_the_loop_the_first_signal_calls_back_and_ours_are_back_after() -> None:
    received: list[signal.Signals] = []

    async def run() -> None:
        with interrupts() as signals:
            with signals.on_loop(asyncio.get_running_loop(), received.append):
                os.kill(os.getpid(), signal.SIGHUP)
                os.kill(os.getpid(), signal.SIGTERM)
                await asyncio.sleep(0.05)
            # asyncio would have left SIG_DFL: a SIGTERM now would kill the process
            assert signal.getsignal(signal.SIGTERM) == signals.handle

    asyncio.run(run())
    assert received == [signal.SIGHUP]
