"""Read one large JSON document a top-level entry at a time, in flat memory.

``events(f)`` walks a document that is a list, or an object whose values may be lists, and yields
each top-level list element (and each other top-level value) as soon as it is decoded, holding only
a buffer of about :data:`CHUNK_CHARS` plus the entry being decoded. Entries are decoded by the
stdlib's own ``JSONDecoder.raw_decode`` (C speed), so the grammar is exactly :mod:`json`'s.
Numbers are kept as their literal text (``parse_int``/``parse_float`` = ``str``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any, NamedTuple, TextIO

#: Characters read from the text stream at a time.
CHUNK_CHARS = 1024 * 1024
#: Largest single entry (a recipient, or a top-level value such as ``text``), in characters.
MAX_VALUE_CHARS = 4 * 1024 * 1024
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_NEAR_END_CHARS = 16  # a decode error this close to the buffer's end may just need more text


class JsonSyntaxError(Exception):
    """The document is not JSON, or not a shape ``events`` can walk."""

    def __init__(self, message: str, line: int) -> None:
        self.message, self.line = message, line
        super().__init__(f"{message} (line {line})")


class Event(NamedTuple):
    """One top-level entry. ``key`` is the top-level object's key (None for a top-level list)."""

    key: str | None
    #: ``"item"``: one element of the list under ``key``; ``"empty"``: that list is empty;
    #: ``"value"``: the whole value under ``key``.
    kind: str
    value: Any


class _Stream:
    def __init__(self, f: TextIO) -> None:
        self.f, self.buf, self.pos, self.eof, self.lines_before = f, "", 0, False, 0
        self.decoder = json.JSONDecoder(parse_int=str, parse_float=str, parse_constant=str)

    def fill(self) -> None:
        chunk = self.f.read(CHUNK_CHARS)
        if not chunk:
            self.eof = True
            return
        self.lines_before += self.buf.count("\n", 0, self.pos)
        self.buf, self.pos = self.buf[self.pos :] + chunk, 0

    def line(self, pos: int | None = None) -> int:
        return self.lines_before + self.buf.count("\n", 0, self.pos if pos is None else pos) + 1

    def peek(self) -> str | None:
        """The next non-space character, not consumed; None at the end of the document."""
        while True:
            self.pos = _WHITESPACE.match(self.buf, self.pos).end()  # type: ignore[union-attr]
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if self.eof:
                return None
            self.fill()

    def take(self, expected: str) -> str:
        """Consume one of the ``expected`` characters (after spaces) and return it."""
        ch = self.peek()
        if ch is None or ch not in expected:
            wanted = " or ".join(repr(c) for c in expected)
            found = "the end of the document" if ch is None else repr(ch)
            raise JsonSyntaxError(f"expecting {wanted}, found {found}", self.line())
        self.pos += 1
        return ch

    def value(self) -> Any:
        if self.peek() is None:
            raise JsonSyntaxError("expecting a value, found the end of the document", self.line())
        while True:
            try:
                obj, end = self.decoder.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                incomplete = (
                    exc.msg.startswith("Unterminated") or exc.pos >= len(self.buf) - _NEAR_END_CHARS
                )
                if not incomplete or self.eof:
                    raise JsonSyntaxError(exc.msg, self.line(exc.pos)) from None
                if len(self.buf) - self.pos > MAX_VALUE_CHARS:
                    raise JsonSyntaxError(
                        f"an entry over {MAX_VALUE_CHARS:,} characters", self.line()
                    ) from None
                self.fill()
                continue
            except RecursionError:
                raise JsonSyntaxError("nested too deeply", self.line()) from None
            if end > len(self.buf) - _NEAR_END_CHARS and not self.eof:
                # "0" of "0.5" or "1e" of "1e+9" decode fine: the number may go on in the next chunk
                self.fill()
                continue
            self.pos = end
            return obj


def events(f: TextIO, list_keys: frozenset[str]) -> Iterator[Event]:
    """Top-level entries of the document in ``f``, in order.

    A top-level list yields its elements; a top-level object yields its values, and the elements
    of any list under a key in ``list_keys`` one by one. Raises JsonSyntaxError on bad JSON or a
    document that is neither a list nor an object.
    """
    stream = _Stream(f)
    first = stream.peek()
    if first == "[":
        yield from _elements(stream, None)
    elif first == "{":
        stream.take("{")
        if stream.peek() == "}":
            stream.take("}")
        else:
            while True:
                if stream.peek() != '"':  # numbers come back as str too: check before decoding
                    raise JsonSyntaxError(
                        "expecting a property name in double quotes", stream.line()
                    )
                key = stream.value()
                stream.take(":")
                if key in list_keys and stream.peek() == "[":
                    yield from _elements(stream, key)
                else:
                    yield Event(key, "value", stream.value())
                if stream.take(",}") == "}":
                    break
    else:
        raise JsonSyntaxError("expecting a list or an object", stream.line())
    if stream.peek() is not None:
        raise JsonSyntaxError("Extra data", stream.line())


def _elements(stream: _Stream, key: str | None) -> Iterator[Event]:
    stream.take("[")
    if stream.peek() == "]":
        stream.take("]")
        yield Event(key, "empty", [])  # still says where the recipients would be
        return
    while True:
        yield Event(key, "item", stream.value())
        if stream.take(",]") == "]":
            return
