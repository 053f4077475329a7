"""The one ``key=value`` parser: queue strategies, workload parameters and profiler options.

Each layer keeps its own error class and wording (``--queue``, ``--param``,
``--profiler-option``); what a key is, what separates it from its value and which words mean
true or false are decided here, once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

KEY_VALUE = "key=value"
"""What an item without ``=`` should have been (the layers add an example of their own)."""

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
    """Each ``key=value`` item as a :class:`Pair`.

    :class:`KeyValueError` for an item with no ``=`` or no key, and for a key given twice
    (``claim_batch=1,claim_batch=5``): which one was meant is a guess, so none is taken.
    """
    seen: dict[str, str] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep:
            raise KeyValueError(item, KEY_VALUE)
        name = normalise_key(key)
        if not name:
            raise KeyValueError(item, f"a key before '=' ({KEY_VALUE})")
        if name in seen:
            raise KeyValueError(item, f"each key once; {name} is already set by {seen[name]!r}")
        seen[name] = item
        yield Pair(name, raw.strip(), item)


def overridden(defaults: Iterable[str], given: Iterable[str]) -> list[str]:
    """``defaults`` less each item whose key an item of ``given`` sets, then ``given``.

    Where defaults and a user's items meet (a tox env's sizes and the user's ``--param``, a
    profiler's queue options and the user's ``--queue``), the user's value replaces the
    default: joined as they are, the key would be set twice, which :func:`pairs` refuses.
    Items that do not parse are kept as they are, for :func:`pairs` to name.
    """
    chosen = list(given)
    keys = {normalise_key(item.partition("=")[0]) for item in chosen if "=" in item}
    kept = [item for item in defaults if normalise_key(item.partition("=")[0]) not in keys]
    return kept + chosen


def split_list(text: str) -> list[str]:
    """``a=1,b=2`` (the comma-joined form of ``--queue`` and of list values) as its items.

    Blank text has no items; an empty item (``a=1,,b=2``, a trailing comma) is a
    :class:`KeyValueError`: it is a typo more often than not, and a dropped item is silent.
    """
    if not text.strip():
        return []
    items = [part.strip() for part in text.split(",")]
    if not all(items):
        raise KeyValueError(text, "items separated by single commas, none of them empty")
    return items


_STARTS_PAIR = re.compile(r"\s*[A-Za-z_][A-Za-z0-9_-]*\s*=")


def split_pairs(text: str) -> list[str]:
    """``a=1,b=2`` (the comma-joined form of ``--queue``) as its ``key=value`` items, where a
    value may hold commas: a part that does not start with ``key=`` continues the value
    before it. A PostgreSQL URL naming several hosts
    (``backend=postgresql://h1,h2/db,pg_pool=5``) is one item, and so is a URL's query
    (``...?host=a,b``: ``b`` starts no pair). Empty parts are refused as in
    :func:`split_list`."""
    items: list[str] = []
    for part in split_list(text):
        if items and not _STARTS_PAIR.match(part):
            items[-1] = f"{items[-1]},{part}"
        else:
            items.append(part)
    return items


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
