"""Streaming reader of Chrome Trace Event JSON: the ``traceEvents`` array in batches.

``orjson.loads`` of a whole 150 MB trace holds the file and every event as Python objects at
once, several times the file's size. :class:`TraceEventStream` reads the file in chunks and
parses each chunk's complete events with one ``orjson.loads`` call:

- a chunk is cut after its last ``}`` that is followed by ``,`` and ``{`` (the separator
  between two events), wrapped in ``[ ]`` and parsed. A cut that falls inside an event (an
  ``args`` value holding a list of objects, or a string holding ``},{``) leaves the wrapped
  text unbalanced, which fails at its very end; the reader then cuts at the separator before.
- where the events array ends, the wrapped text parses as a complete array followed by more
  content; orjson reports where, which is exactly the array's end. The rest of the document
  (``displayTimeUnit``, metadata) is parsed on its own.

Any other parse error is a damaged file, reported with its byte offset.

Bounded on hostile input: the buffer never holds more than one chunk beyond
:data:`~analysis.load.limits.TRACE_EVENT_BYTES` without a complete event (NUL bytes after
``[`` were buffered and rescanned from byte 0 until the end of the file: quadratic), and a
cut inside an event steps back over 1, 2, 4, ... separators, so an event holding millions of
``},{`` costs a logarithmic number of parses, not one per separator.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import orjson

from ..errors import ArtifactError
from .limits import TRACE_EVENT_BYTES, TRACE_EVENTS

CHUNK_BYTES = 4 << 20
FIX = "re-run the workload with `--profiler viztracer`, or open the file in Perfetto to check it"

_EVENTS_KEY = re.compile(rb'"traceEvents"\s*:\s*\[')
_SEPARATOR = re.compile(rb"\}\s*,\s*\{")
_MAX_HEAD = 64 << 20
_FIRST_SPAN = 64 << 10


class TraceEventStream:
    """Iterate to get the events in batches (lists of dicts); then read :attr:`metadata`."""

    def __init__(self, path: Path, chunk_bytes: int = CHUNK_BYTES) -> None:
        self.path = path
        self.chunk_bytes = chunk_bytes
        self.metadata: dict[str, Any] = {}
        """Every top-level key but ``traceEvents``, filled once the events are read."""
        self.events = 0
        self.bytes_read = 0

    def __iter__(self) -> Iterator[list[dict[str, Any]]]:
        try:
            with self._open() as stream:
                yield from self._batches(stream)
        except FileNotFoundError:
            raise ArtifactError(self.path, "the Chrome trace is missing", FIX) from None
        except (OSError, EOFError) as error:  # gzip reports a cut-off file as EOFError
            raise ArtifactError(
                self.path, f"the Chrome trace cannot be read ({error})", FIX
            ) from None

    def _open(self) -> IO[bytes]:
        if self.path.suffix == ".gz":
            return gzip.GzipFile(self.path, "rb")  # type: ignore[return-value]
        return self.path.open("rb")

    def _read(self, stream: IO[bytes], size: int) -> bytes:
        data = stream.read(size)
        self.bytes_read += len(data)
        return data

    def _batches(self, stream: IO[bytes]) -> Iterator[list[dict[str, Any]]]:
        head = self._read(stream, self.chunk_bytes)
        if not head.strip():
            raise ArtifactError(self.path, "the Chrome trace is empty", FIX)
        prefix, buffer = self._find_events(stream, head)
        at_eof = False
        while True:
            if not at_eof and len(buffer) < self.chunk_bytes:
                more = self._read(stream, self.chunk_bytes)
                at_eof = not more
                buffer += more
                if not at_eof:
                    continue
            if at_eof:
                events, rest = self._tail(buffer)
                self._count(events)
                if events:
                    yield events
                self.metadata = self._rest(prefix, rest)
                return
            events, consumed = self._cut(buffer)
            if consumed == 0:  # no complete event yet: one event is bigger than a chunk
                TRACE_EVENT_BYTES.check(
                    self.path,
                    len(buffer),
                    f"the trace text from byte {self.bytes_read - len(buffer):,} without "
                    "one complete event",
                )
                more = self._read(stream, self.chunk_bytes)
                at_eof = not more
                buffer += more
                continue
            self._count(events)
            yield events
            buffer = buffer[consumed:]

    def _count(self, events: list[dict[str, Any]]) -> None:
        self.events += len(events)
        TRACE_EVENTS.check(self.path, self.events, "the Chrome trace (events read so far)")

    def _find_events(self, stream: IO[bytes], head: bytes) -> tuple[bytes, bytes]:
        """(the document before ``"traceEvents": [``, the bytes after it)."""
        stripped = head.lstrip()
        if stripped.startswith(b"["):  # the JSON Array Format: the file is the events array
            return b"", stripped[1:].lstrip()
        if not stripped.startswith(b"{"):
            raise ArtifactError(
                self.path,
                f"not JSON: a Chrome trace starts with '{{', this with {stripped[:20]!r}",
                FIX,
            )
        while True:
            match = _EVENTS_KEY.search(head)
            if match is not None:
                return head[: match.start()], head[match.end() :].lstrip()
            more = self._read(stream, self.chunk_bytes)
            if not more or len(head) > _MAX_HEAD:
                raise ArtifactError(
                    self.path, 'no "traceEvents" array: not a Chrome Trace Event file', FIX
                )
            head += more

    def _cut(self, buffer: bytes) -> tuple[list[dict[str, Any]], int]:
        """Parse the complete events at the start of ``buffer``: (events, bytes consumed).

        First the whole buffer up to its last separator: one parse, right unless that
        separator lies inside an event. Then gallop from the start: parse up to a separator
        ``span`` bytes on, keep the events when it parses, double ``span`` when it falls inside
        an event. The buffer always starts at an event, so failed parses cost at most twice
        the bytes finally consumed: linear even for one event holding millions of ``},{``.
        """
        last = _last_separator(buffer, len(buffer))
        if last is None:
            return [], 0
        parsed = self._parse(buffer, 0, last)
        if parsed is not None:
            return parsed, _next_event(buffer, last) if parsed else 0
        events: list[dict[str, Any]] = []
        start, span = 0, _FIRST_SPAN
        while (cut := _separator_after(buffer, start + span)) is not None and cut < last:
            parsed = self._parse(buffer, start, cut)
            if parsed is None:  # inside an event: look twice as far
                span *= 2
            elif not parsed:  # the events array ended before the cut
                break
            else:
                events += parsed
                start = _next_event(buffer, cut)
        return events, start

    def _parse(self, buffer: bytes, start: int, cut: int) -> list[dict[str, Any]] | None:
        """The events in ``buffer[start:cut + 1]``; None when the cut falls inside an event,
        ``[]`` when the events array ends before it (the caller reads to the end of the file
        and parses the tail)."""
        wrapped = b"[" + buffer[start : cut + 1] + b"]"
        try:
            return _checked(orjson.loads(wrapped), self.path)
        except orjson.JSONDecodeError as error:
            if _array_closed(error):
                return []
            if not _fails_at_end(wrapped, error):
                raise self._damaged(buffer[start:], wrapped, error) from None
            return None

    def _tail(self, buffer: bytes) -> tuple[list[dict[str, Any]], bytes]:
        """The last events and the document after the array, from the end of the file."""
        if buffer.lstrip().startswith(b"]"):
            return [], buffer.lstrip()[1:]
        wrapped = b"[" + buffer
        try:
            orjson.loads(wrapped)
        except orjson.JSONDecodeError as error:
            if not _array_closed(error):
                if _fails_at_end(wrapped, error):
                    raise ArtifactError(
                        self.path,
                        f"the Chrome trace is truncated: the traceEvents array is not closed "
                        f"(the file ends after {self.bytes_read:,} bytes, {self.events:,} "
                        "events read)",
                        FIX,
                    ) from None
                raise self._damaged(buffer, wrapped, error) from None
            end = _byte_offset(wrapped, error.pos)
            return _checked(orjson.loads(wrapped[:end]), self.path), wrapped[end:]
        # The file ends with the array: right for the JSON Array Format; for the object
        # format the closing brace is missing, which _rest reports.
        return _checked(orjson.loads(wrapped), self.path), b""

    def _rest(self, prefix: bytes, rest: bytes) -> dict[str, Any]:
        document = prefix + b'"traceEvents":[]' + rest
        if not prefix:  # the JSON Array Format has nothing after the events
            if rest.strip():
                raise ArtifactError(
                    self.path, f"content after the events array: {rest[:40]!r}", FIX
                )
            return {}
        try:
            parsed = orjson.loads(document)
        except orjson.JSONDecodeError as error:
            raise ArtifactError(
                self.path,
                f"the Chrome trace is truncated or damaged after its events ({error.msg})",
                FIX,
            ) from None
        if not isinstance(parsed, dict):
            raise ArtifactError(self.path, "the top level is not a JSON object", FIX)
        parsed.pop("traceEvents", None)
        return parsed

    def _damaged(
        self, buffer: bytes, wrapped: bytes, error: orjson.JSONDecodeError
    ) -> ArtifactError:
        offset = self.bytes_read - len(buffer) + _byte_offset(wrapped, error.pos) - 1
        near = wrapped[max(_byte_offset(wrapped, error.pos) - 20, 0) :][:40]
        return ArtifactError(
            self.path,
            f"the Chrome trace is damaged near byte {max(offset, 0):,} ({error.msg}: {near!r})",
            FIX,
        )


def _last_separator(buffer: bytes, end: int) -> int | None:
    """Position of the ``}`` of the last event separator before ``end``."""
    found = buffer.rfind(b"},{", 0, end)
    if found >= 0:
        return found
    # Pretty-printed traces put whitespace around the comma.
    last = None
    for match in _SEPARATOR.finditer(buffer, 0, end):
        last = match.start()
    return last


def _separator_after(buffer: bytes, position: int) -> int | None:
    """Position of the ``}`` of the first event separator at or after ``position``."""
    found = buffer.find(b"},{", position)
    if found >= 0:
        return found
    match = _SEPARATOR.search(buffer, position)
    return None if match is None else match.start()


def _next_event(buffer: bytes, cut: int) -> int:
    """Index of the ``{`` that starts the event after the separator at ``cut``."""
    return buffer.index(b"{", cut + 1)


def _array_closed(error: orjson.JSONDecodeError) -> bool:
    return "after document" in error.msg or "trailing" in error.msg


def _fails_at_end(wrapped: bytes, error: orjson.JSONDecodeError) -> bool:
    """True when parsing failed only because the text stopped (a cut inside an event)."""
    return _byte_offset(wrapped, error.pos) >= len(wrapped) - 1


def _byte_offset(data: bytes, char_pos: int) -> int:
    """orjson reports positions in characters; the byte offset of character ``char_pos``."""
    if data.isascii():
        return char_pos
    return len(data.decode("utf-8", errors="replace")[:char_pos].encode("utf-8"))


def _checked(events: Any, path: Path) -> list[dict[str, Any]]:
    if not isinstance(events, list):  # pragma: no cover - the wrapper makes a list
        raise ArtifactError(path, "traceEvents is not a list", FIX)
    return events
