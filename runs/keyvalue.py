"""The one ``key=value`` parser: queue strategies, workload parameters and profiler options.

Each layer keeps its own error class and wording (``--queue``, ``--param``,
``--profiler-option``); what a key is, what separates it from its value and which words mean
true or false are decided here, once.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")


class KeyValueError(ValueError):
    """An item or a value cannot be parsed; ``expected`` says what would have been valid."""

    def __init__(self, item: str, expected: str) -> None:
        self.item = item
        self.expected = expected
        super().__init__(f"{item!r}: expected {expected}")


@dataclass(frozen=True, slots=True)
class Pair:
    """One ``key=value`` item: the key normalised, the value stripped, the item as written."""

    key: str
    raw: str
    item: str


def normalise_key(key: str) -> str:
    """Dashes and underscores are interchangeable in keys: ``claim-batch`` is ``claim_batch``."""
    return key.strip().replace("-", "_")


def pairs(items: Iterable[str]) -> Iterator[Pair]:
    """Each ``key=value`` item as a :class:`Pair`; :class:`KeyValueError` for one with no ``=``."""
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep:
            raise KeyValueError(item, "key=value")
        yield Pair(normalise_key(key), raw.strip(), item)


def split_list(text: str) -> list[str]:
    """``a=1,b=2`` as its non-empty items (the comma-joined form of ``--queue``)."""
    return [part for part in (p.strip() for p in text.split(",")) if part]


def coerce(kind: type[Any], raw: str) -> Any:
    """``raw`` as ``bool``, ``int`` or ``float`` (``str`` as it is); :class:`KeyValueError`."""
    if kind is bool:
        if raw.lower() in TRUE_WORDS:
            return True
        if raw.lower() in FALSE_WORDS:
            return False
        raise KeyValueError(raw, "true or false")
    if kind is int:
        try:
            return int(raw)
        except ValueError:
            raise KeyValueError(raw, "a whole number") from None
    if kind is float:
        try:
            return float(raw)
        except ValueError:
            raise KeyValueError(raw, "a number") from None
    return raw
