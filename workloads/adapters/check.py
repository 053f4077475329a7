"""The adapter contract suite, runnable against any adapter: ``queueprof adapter check``.

The same promises the comparison relies on, checked one by one on fresh folders with the
adapter's public primitives only, each ending in a :class:`ContractCheck` that says what was
expected and what happened. A plugin author runs it before a comparison; a CodePath typo or a
status word in capitals fails here with the exact mismatch instead of skewing a figure.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import psutil

from runs.adapters import DONE, STATUS_WORDS

from ..tasks import payload
from .base import ADAPTER_OPERATIONS, Contender, QueueAdapter
from .plugins import code_path_problems

T = TypeVar("T")

TASKS = 12
"""Tasks per check: enough to see a repeat or a loss, quick on any queue."""


@dataclass(frozen=True, slots=True)
class ContractCheck:
    """One promise of the contract and whether the adapter kept it."""

    contender: str
    name: str
    passed: bool
    detail: str


class NotApplicable(Exception):
    """Raised by a check whose promise the adapter does not make (a queue with no status)."""


Check = Callable[[Contender, Path], Awaitable[str | None]]
"""Runs one check in a fresh folder; returns what went wrong (None when the promise held)."""


async def run_checks(contenders: Sequence[Contender]) -> list[ContractCheck]:
    """:func:`check_contender` for each of ``contenders``, in a temporary folder."""
    with tempfile.TemporaryDirectory(prefix="queueprof-adapter-check-") as scratch:
        return [
            c for contender in contenders for c in await check_contender(contender, Path(scratch))
        ]


async def check_contender(contender: Contender, scratch: Path) -> list[ContractCheck]:
    """Every check of the contract against ``contender``, each in a folder of its own."""
    results = []
    for number, (name, check, promise) in enumerate(CHECKS):
        folder = scratch / f"{contender.name}-{number}"
        folder.mkdir(parents=True)
        try:
            problem = await check(contender, folder)
        except NotApplicable as skipped:
            results.append(ContractCheck(contender.name, name, True, f"not applicable: {skipped}"))
            continue
        except Exception as error:  # noqa: BLE001 - a crash in the adapter fails that check
            problem = f"raised {type(error).__name__}: {error}"
        results.append(
            ContractCheck(
                contender.name, name, problem is None, promise if problem is None else problem
            )
        )
    return results


async def _spec(contender: Contender, folder: Path) -> str | None:
    # The guarantee's words are checked when the AdapterSpec is built.
    spec = contender.spec
    problems = []
    covered = {path.op for path in spec.code_paths}
    missing = [op for op in ADAPTER_OPERATIONS[:3] if op not in covered]
    if missing:
        problems.append(
            f"no CodePath for {', '.join(missing)}: `analyze` would count that time as 'other'"
        )
    return "; ".join(problems) or None


async def _code_paths(contender: Contender, folder: Path) -> str | None:
    contender.spec.load()
    problems = code_path_problems(contender.spec)
    return "\n".join(problems) or None


async def _empty(contender: Contender, folder: Path) -> str | None:
    claimed = await _with(contender, folder, lambda a: a.claim(5))
    if not isinstance(claimed, Sequence) or len(claimed) != 0:
        return f"claim(5) on a fresh queue returned {claimed!r}; expected an empty sequence"
    return None


async def _once(contender: Contender, folder: Path) -> str | None:
    async def body(adapter: QueueAdapter) -> str | None:
        refs = [await adapter.enqueue(payload("noop", seq)) for seq in range(TASKS)]
        claimed: list[object] = []
        while more := await adapter.claim(3):
            claimed.extend(more)
            if len(claimed) > 2 * TASKS:
                break
        again = await adapter.claim(3)
        await adapter.complete(claimed)
        if len(claimed) != TASKS:
            return f"{TASKS} tasks enqueued, claims handed out {len(claimed)} (batches of 3)"
        if again:
            return f"a claimed, uncompleted task was handed out again: {again!r}"
        if not contender.spec.has_status:
            return None
        words = [await adapter.status(ref) for ref in refs]
        if words != [DONE] * TASKS:
            return f"status() after complete: {sorted(set(map(repr, words)))}; expected 'done'"
        return None

    return await _with(contender, folder, body)


async def _status_words(contender: Contender, folder: Path) -> str | None:
    if not contender.spec.has_status:
        raise NotApplicable("the queue has no per-task status query (has_status=False)")

    async def body(adapter: QueueAdapter) -> str | None:
        refs = [await adapter.enqueue(payload("noop", seq)) for seq in range(2)]
        seen = [await adapter.status(refs[0])]
        claimed = await adapter.claim(1)
        seen.append(await adapter.status(refs[0]))
        await adapter.complete(claimed)
        seen.append(await adapter.status(refs[0]))
        seen.append(await adapter.status(refs[1]))
        bad = [word for word in seen if word is not None and word not in STATUS_WORDS]
        if bad:
            return (
                f"status() answered {', '.join(map(repr, bad))}; the contract is one of "
                f"{', '.join(STATUS_WORDS)} (exactly, lower case) or None for an unknown task"
            )
        if seen[0] == DONE or seen[3] == DONE:
            return f"status() says 'done' for a task nobody completed: {seen!r}"
        return None

    return await _with(contender, folder, body)


async def _concurrent(contender: Contender, folder: Path) -> str | None:
    async def body(adapter: QueueAdapter) -> str | None:
        await asyncio.gather(*(adapter.enqueue(payload("noop", seq)) for seq in range(TASKS)))
        batches = await asyncio.gather(*(adapter.claim(2) for _ in range(TASKS)))
        claimed = [task for batch in batches for task in batch]
        await asyncio.gather(*(adapter.complete([task]) for task in claimed))
        left = await adapter.claim(TASKS)
        if len(claimed) + len(left) != TASKS:
            return (
                f"{TASKS} enqueued concurrently, {len(claimed)} handed out to {TASKS} "
                f"concurrent claims and {len(left)} left: tasks were lost or repeated"
            )
        if len(set(map(_key, claimed))) != len(claimed):
            return "concurrent claims handed the same task out twice"
        return None

    return await _with(contender, folder, body)


async def _close(contender: Contender, folder: Path) -> str | None:
    adapter = await contender.open(folder)
    await adapter.enqueue(payload("noop", 0))
    await adapter.close()
    held = [f.path for f in psutil.Process(os.getpid()).open_files() if _inside(f.path, folder)]
    if held:
        return f"close() left {len(held)} file(s) open: {', '.join(sorted(held))}"
    reopened = await _with(contender, folder, lambda a: a.claim(5))
    if len(reopened) != 1:
        return f"after close() and a reopen, claim found {len(reopened)} tasks; expected 1"
    return None


def _inside(path: str, folder: Path) -> bool:
    return Path(path).resolve().is_relative_to(folder.resolve())


def _key(task: object) -> object:
    try:
        hash(task)
    except TypeError:
        return repr(task)
    return task


async def _with(
    contender: Contender, folder: Path, body: Callable[[QueueAdapter], Awaitable[T]]
) -> T:
    adapter = await contender.open(folder)
    try:
        return await body(adapter)
    finally:
        await adapter.close()


CHECKS: tuple[tuple[str, Check, str], ...] = (
    ("spec", _spec, "enqueue, claim and complete each have a CodePath"),
    ("code paths", _code_paths, "every CodePath names a function defined in its file"),
    ("empty queue", _empty, "claim on a fresh queue returns an empty sequence"),
    (
        "handed out once",
        _once,
        f"{TASKS} tasks: each claimed once, not again while held, 'done' after complete",
    ),
    ("status words", _status_words, f"status() answers only {', '.join(STATUS_WORDS)} or None"),
    ("concurrency", _concurrent, f"{TASKS} concurrent enqueues and claims: none lost or doubled"),
    ("close", _close, "close() releases every file; the tasks are there after a reopen"),
)
