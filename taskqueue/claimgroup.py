"""Claims from the engines that share one connection, sent to its thread together.

Every trip to a connection thread costs a thread wake-up each way, and on a loaded machine a
wake-up waits for a CPU: with 20 engines on one event loop and one connection, each sending
its own claim, the trips (not SQL, not Python) set the pace. A :class:`ClaimGroup` sends a
claim at once when none is in flight (a lone engine pays nothing extra); claims that arrive
while one is in flight wait and then go together, in one trip and one transaction, each
with its own worker name, size, lease and acks. This is group commit: the busier the
connection, the more each trip carries; the idle case is unchanged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .models import Task
from .stats import QueueStats
from .store import AckRow, ClaimRequest, Store

Outcome = tuple[int, list[Task]]
"""(acks applied, tasks claimed)."""

Call = Callable[..., Awaitable[Any]]
"""The queue's ``_call(key, op, fn, *args)`` bound to one connection key."""


@dataclass
class _Waiting:
    request: ClaimRequest
    future: asyncio.Future[Outcome]


class ClaimGroup:
    """The claims (with the acks that ride on them) waiting for one connection."""

    def __init__(self, call: Call, store: Store, stats: QueueStats, *, immediate: bool) -> None:
        self._call = call
        self._store = store
        self._stats = stats
        self._immediate = immediate
        self._waiting: list[_Waiting] = []
        self._in_flight = False
        self._flusher: asyncio.Task[None] | None = None

    async def claim(self, acks: list[AckRow], worker: str, n: int, lease_s: float) -> Outcome:
        """Write ``acks``, then claim up to ``n`` tasks for ``worker``, as one transaction."""
        request = (acks, worker, n, lease_s)
        if self._in_flight:
            future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
            self._waiting.append(_Waiting(request, future))
            return await future
        self._in_flight = True
        try:
            return await self._send_one(request)
        finally:
            if self._waiting:  # stay in flight: the flush task takes over
                # Keep a reference: the loop holds tasks weakly.
                self._flusher = asyncio.get_running_loop().create_task(self._flush())
            else:
                self._in_flight = False

    async def _flush(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                live = [w for w in batch if not w.future.done()]  # a cancelled engine left
                if live:
                    await self._send_batch(live)
        finally:
            self._in_flight = False
            for left in self._waiting:  # only if this task itself was cancelled
                if not left.future.done():
                    left.future.cancel()
            self._waiting = []

    async def _send_batch(self, batch: list[_Waiting]) -> None:
        try:
            if len(batch) == 1:
                outcomes = [await self._send_one(batch[0].request)]
            else:
                self._stats.claim_trips += 1
                self._stats.grouped_claims += len(batch)
                requests = [w.request for w in batch]
                outcomes = await self._call(
                    "claim",
                    self._store.claim_group,
                    requests,
                    self._immediate,
                    rows=sum(len(acks) + n for acks, _, n, _ in requests),
                )
        except Exception as error:  # noqa: BLE001 - handed to every claim of the trip, which shared its transaction
            for waiting in batch:
                if not waiting.future.done():
                    waiting.future.set_exception(error)
            return
        except BaseException:
            for waiting in batch:
                waiting.future.cancel()
            raise
        for waiting, outcome in zip(batch, outcomes, strict=True):
            if not waiting.future.done():
                waiting.future.set_result(outcome)

    async def _send_one(self, request: ClaimRequest) -> Outcome:
        self._stats.claim_trips += 1
        acks, worker, n, lease_s = request
        store = self._store
        if acks:
            result: Outcome = await self._call(
                "claim",
                store.complete_and_claim,
                acks,
                worker,
                n,
                lease_s,
                self._immediate,
                rows=len(acks) + n,
            )
            return result
        claim = store.claim_immediate if self._immediate else store.claim_returning
        tasks: list[Task] = await self._call("claim", claim, worker, n, lease_s, rows=n)
        return 0, tasks
