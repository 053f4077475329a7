"""Task payloads and results as the JSON the store keeps: encoding and validation of rows.

:func:`validated_row` checks and encodes one :meth:`TaskQueue.enqueue`, :func:`batch_document`
a whole :meth:`TaskQueue.enqueue_many` batch, both through one check of a row's fields
(:func:`_check_fields`); :func:`ack_rows` encodes completion results. Errors name the bad
value and, in a batch, the item's index.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from itertools import chain, repeat
from typing import Any, cast

import orjson

from . import sql
from .errors import InvalidArgumentError, InvalidPayloadError
from .models import NewTask, Task
from .store import AckRow

INT64_MAX = 2**63 - 1
"""The largest INTEGER SQLite stores: bigger ids, priorities and counts are refused (binding
one raised OverflowError; through enqueue_many's JSON it was stored as a REAL)."""


def validated_row(
    type_: str, payload: Any, priority: int, delay: float, max_attempts: int
) -> list[Any]:
    """[type, payload JSON, priority, delay, max_attempts]; errors say which value is wrong."""
    _check_fields(type_, priority, delay, max_attempts)
    return [type_, encode_json(payload, "payload"), priority, delay, max_attempts]


def batch_document(items: Sequence[NewTask | tuple[str, Any]]) -> list[str]:
    """The JSON documents of ``items``' rows for ``Store.insert_many``.

    Raises the error of the first bad item, naming its index; nothing is encoded then.
    """
    document = _fast_batch_document(items)
    return _checked_batch_document(items) if document is None else document


def _check_fields(type_: object, priority: object, delay: object, max_attempts: object) -> None:
    """The one check of a row's fields: :class:`InvalidArgumentError` names the wrong value.

    The ``type(x) is int`` fast paths keep this cheap for batches of thousands; anything else
    goes through the full check, which also refuses bool.
    """
    if type(type_) is not str or not type_ or not utf8(type_):
        raise InvalidArgumentError(
            f"task type {type_!r} must be a non-empty string of text SQLite can store "
            "(no lone surrogates)"
        )
    if not (type(priority) is int and 0 <= priority <= INT64_MAX) and (
        not isinstance(priority, int)
        or isinstance(priority, bool)
        or not 0 <= priority <= INT64_MAX
    ):
        raise InvalidArgumentError(
            f"priority={priority!r} must be a whole number 0..2**63-1 (higher runs first)"
        )
    if not ((type(delay) is float or type(delay) is int) and 0 <= delay < math.inf) and (
        not isinstance(delay, int | float) or isinstance(delay, bool) or not 0 <= delay < math.inf
    ):
        raise InvalidArgumentError(f"delay={delay!r} must be a finite number of seconds >= 0")
    if not (type(max_attempts) is int and 1 <= max_attempts <= INT64_MAX):
        check_count("max_attempts", max_attempts)


def _item_row(item: NewTask | tuple[str, Any]) -> list[Any]:
    """[type, payload, priority, delay, max_attempts] of one ``enqueue_many`` item, its payload
    not yet encoded; :class:`InvalidArgumentError` says what is wrong with it."""
    if type(item) is tuple and len(item) == 2:
        type_, payload = item
        priority, delay, max_attempts = 0, 0.0, 3
    elif isinstance(item, NewTask):
        type_, payload = item.type, item.payload
        priority, delay, max_attempts = item.priority, item.delay, item.max_attempts
    else:
        raise InvalidArgumentError(f"{item!r} is neither a NewTask nor a (type, payload) pair")
    _check_fields(type_, priority, delay, max_attempts)
    return [type_, payload, priority, delay, max_attempts]


def _fast_batch_document(items: Sequence[NewTask | tuple[str, Any]]) -> list[str] | None:
    """:func:`batch_document` when every item is valid, or None when one is not: then
    :func:`_checked_batch_document` finds the first bad one, payloads included.

    The common shape, (type, payload) pairs, is checked and laid out by C iterators, with no
    Python bytecode per item: in a batch of thousands every step was time, and under a
    profile hook (Python 3.11) each bytecode takes the slower tracing path. The only field
    such a pair brings is its type, and the set test below is :func:`_check_fields`'s rule
    for it in bulk. Payloads are encoded by one ``orjson.dumps`` per document.
    """
    if set(map(type, items)) == _TUPLES:
        pairs = cast("Sequence[tuple[str, Any]]", items)
        if set(map(len, pairs)) != _PAIRS:
            return None
        flat = list(chain.from_iterable(pairs))
        types, payloads = flat[0::2], flat[1::2]
        if set(map(type, types)) != _STRINGS or "" in types:
            return None
        laid_out = list(zip(types, payloads, repeat(0), repeat(0.0), repeat(3), strict=False))
        return _encoded(laid_out, payloads)
    rows: list[Sequence[Any]] = []
    try:
        for item in items:
            rows.append(_item_row(item))
    except InvalidArgumentError:
        return None  # the checked pass reports it, after any bad payload before it
    return _encoded(rows, [row[1] for row in rows])


_TUPLES, _PAIRS, _STRINGS = {tuple}, {2}, {str}
_FINITE_KINDS = {type(None), str, int, bool}
"""Payload types that cannot hold a NaN or an infinity."""


def _encoded(rows: Sequence[Sequence[Any]], payloads: list[Any]) -> list[str] | None:
    """``rows`` as INSERT_MANY's documents (:func:`sql.insert_documents`), or None when a
    payload is not JSON or too large (the checks name it)."""
    try:
        documents = sql.insert_documents(rows)
    except (TypeError, InvalidPayloadError):
        return None  # the checks name the item
    if any("null" in document for document in documents) and not (
        set(map(type, payloads)) <= _FINITE_KINDS
    ):
        for payload in payloads:  # a loop, not any() over a generator: no call per None
            if payload is not None and _has_non_finite(payload):
                return None  # orjson wrote NaN or Infinity as null
    return documents


def _checked_batch_document(items: Sequence[NewTask | tuple[str, Any]]) -> list[str]:
    """:func:`batch_document` item by item, payloads encoded one at a time: raises the error
    of the first bad item, with its index."""
    rows: list[list[Any]] = []
    for index, item in enumerate(items):
        try:
            row = _item_row(item)
            # embedded as is in the batch's JSON document
            row[1] = orjson.Fragment(encode_json(row[1], "payload"))
        except InvalidArgumentError as error:
            raise type(error)(f"enqueue_many item {index}: {error}") from None
        rows.append(row)
    return sql.insert_documents(rows)


class JSONText(str):
    """A value already encoded as JSON (by :func:`encode_json`); stored without re-encoding."""

    __slots__ = ()


def ack_rows(done: Sequence[tuple[Task, Any]]) -> list[AckRow]:
    rows: list[AckRow] = []
    for task, result in done:
        encoded: str = (
            result
            if type(result) is JSONText
            else encode_json(result, f"complete result of task {task.id}")
        )
        rows.append((task.id, task.claim, encoded))
    return rows


def encode_json(value: Any, what: str) -> str:
    """``value`` as JSON text; :class:`InvalidPayloadError` naming ``what`` if it is not JSON.

    orjson's types are accepted (dataclasses, datetimes, numpy scalars...). NaN and Infinity
    are refused: orjson would write them as null, storing something other than what was given.
    """
    if value is None:
        return "null"
    try:
        encoded = orjson.dumps(value)
    except TypeError as error:
        raise InvalidPayloadError(f"{what}: {error}; pass JSON-serialisable data") from None
    if b"null" in encoded and _has_non_finite(value):
        raise InvalidPayloadError(f"{what}: contains NaN or Infinity, which JSON cannot hold")
    if len(encoded) > sql.VALUE_BYTES_MOST:
        raise InvalidPayloadError(
            f"{what}: {len(encoded):,} bytes as JSON, over the queue's limit of "
            f"{sql.VALUE_BYTES_MOST:,} bytes per payload or result: keep large data outside the "
            "queue (a file, an object store) and put its path or key in the payload"
        )
    return encoded.decode()


def _has_non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_has_non_finite(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_has_non_finite(v) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        # orjson writes a dataclass's fields, so NaN there would be stored as null too.
        return any(_has_non_finite(getattr(value, f.name)) for f in dataclasses.fields(value))
    return False


def check_count(what: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= INT64_MAX:
        raise InvalidArgumentError(f"{what}={value!r} must be a whole number 1..2**63-1")
    return value


def utf8(text: str) -> bool:
    """True when ``text`` has a UTF-8 form, which is how SQLite stores it (a lone surrogate
    has none: binding one raised UnicodeEncodeError)."""
    if text.isascii():
        return True
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True
