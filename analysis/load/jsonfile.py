"""Reading a whole JSON artifact, with errors that tell empty, truncated and garbage apart."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson

from ..errors import ArtifactError
from .limits import JSON_BYTES, PARSED_VALUES


def read_bytes(path: Path, what: str, fix: str) -> bytes:
    """The bytes of ``path``; a missing, unreadable, empty or oversized file
    (:data:`~analysis.load.limits.JSON_BYTES`) is an :class:`ArtifactError`."""
    try:
        with path.open("rb") as stream:
            size = os.fstat(stream.fileno()).st_size
            JSON_BYTES.check(path, size, what)
            # Read at most one byte over the bound: a file that grows, or a pipe, stays bounded.
            data = stream.read(JSON_BYTES.value() + 1)
        JSON_BYTES.check(path, len(data), what)
    except FileNotFoundError:
        raise ArtifactError(path, f"{what} is missing", fix) from None
    except OSError as error:
        raise ArtifactError(path, f"{what} cannot be read ({error.strerror})", fix) from None
    if not data.strip():
        raise ArtifactError(path, f"{what} is empty", fix)
    return data


def parse_json(data: bytes, path: Path, what: str, fix: str) -> Any:
    """``data`` parsed; says whether it was cut short or is not JSON at all.

    Refused before parsing when it holds more values than
    :data:`~analysis.load.limits.PARSED_VALUES` (counted by their separators and openers, a
    linear scan), so a small file of ``[[],[],...]`` cannot expand into gigabytes of objects.
    """
    PARSED_VALUES.check(path, data.count(b",") + data.count(b"[") + data.count(b"{"), what)
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as error:
        raise ArtifactError(path, describe_json_error(data, error, what), fix) from None


def read_json(path: Path, what: str, fix: str) -> Any:
    """Load the JSON file ``path`` (``what`` names it in errors, ``fix`` says what to do)."""
    return parse_json(read_bytes(path, what, fix), path, what, fix)


def read_json_object(path: Path, what: str, fix: str) -> dict[str, Any]:
    """Like :func:`read_json`, for files whose top level must be an object."""
    document = read_json(path, what, fix)
    if not isinstance(document, dict):
        raise ArtifactError(
            path, f"{what} holds a JSON {type(document).__name__}, not an object", fix
        )
    return document


def describe_json_error(data: bytes, error: orjson.JSONDecodeError, what: str) -> str:
    """A sentence saying how ``data`` fails to be JSON."""
    first = data.lstrip()[:1]
    if first not in (b"{", b"["):
        return f"{what} is not JSON (it starts with {data.lstrip()[:20]!r})"
    if "end of data" in error.msg or "EOF" in error.msg:
        return f"{what} is truncated: the JSON ends after {len(data):,} bytes mid-document"
    return f"{what} is not valid JSON ({error.msg} at character {error.pos})"
