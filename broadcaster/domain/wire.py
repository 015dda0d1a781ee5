"""One vocabulary on every wire: the HTTP API's bodies and the CLI's ``--json`` use these names.

Services answer with frozen dataclasses (snake_case fields); :func:`to_wire` gives their API
names (camelCase), so the two front ends cannot drift apart again (they did: ``messages_removed``
on the command line, ``messagesRemoved`` over HTTP).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import fields, is_dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any, overload

#: Field metadata of a view: ``WIRE_NAME`` names the field on the wire where camelCase of its
#: Python name is not the name (``contactID``, ``from``); ``WIRE_MILLIS`` shows a time to the
#: millisecond (inbound messages and suppression entries, as seed 003 shows them).
WIRE_NAME = "wire_name"
WIRE_MILLIS = "wire_millis"


def camel(name: str) -> str:
    """``messages_removed`` -> ``messagesRemoved``."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


@overload
def iso8601(at: datetime, *, millis: bool = False) -> str: ...
@overload
def iso8601(at: None, *, millis: bool = False) -> None: ...
@overload
def iso8601(at: datetime | None, *, millis: bool = False) -> str | None: ...
def iso8601(at: datetime | None, *, millis: bool = False) -> str | None:
    """The one ISO 8601 form of a time in the product's JSON (HTTP, ``--json``, callbacks, files).

    A naive time is the store's UTC and reads ``2026-12-01T15:30:00Z``; an aware one keeps its
    own offset (a broadcast's times in its zone: ``2026-12-01T09:30:00-06:00``). To the second,
    or to the millisecond with ``millis`` (the client callbacks' ``date``).
    """
    if at is None:
        return None
    text = at.isoformat(timespec="milliseconds" if millis else "seconds")
    return text + "Z" if at.tzinfo is None else text


def utc_naive(at: datetime) -> datetime:
    """``at`` as the store's naive UTC (an aware time is converted; a naive one is UTC already)."""
    return at if at.tzinfo is None else at.astimezone(UTC).replace(tzinfo=None)


def to_wire(value: Any) -> Any:
    """A service's answer as JSON-ready data under the API's names.

    Dataclass fields become camelCase keys, or their ``WIRE_NAME`` (a subclass's fields follow its base's, flat); dict
    keys are data (statuses, zones) and stay as they are; times go through :func:`iso8601`.
    """
    if is_dataclass(value) and not isinstance(value, type):
        return {
            wire: iso8601(v, millis=True) if millis and isinstance(v, datetime) else to_wire(v)
            for name, wire, millis in _wire_fields(type(value))
            for v in (getattr(value, name),)
        }
    if isinstance(value, dict):
        return {k: to_wire(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_wire(v) for v in value]
    if isinstance(value, datetime):
        return iso8601(value)
    return value


@cache
def _wire_fields(cls: type) -> tuple[tuple[str, str, bool], ...]:
    """(field, wire name, to the millisecond) of each field of view class ``cls``."""
    return tuple(
        (f.name, f.metadata.get(WIRE_NAME) or camel(f.name), bool(f.metadata.get(WIRE_MILLIS)))
        for f in fields(cls)
    )


def encode_cursor(key: tuple[int, ...] | None) -> str | None:
    """A page's keyset position as the opaque ``nextCursor`` text (HTTP and ``--json`` alike)."""
    if key is None:
        return None
    return base64.urlsafe_b64encode(".".join(str(k) for k in key).encode()).decode().rstrip("=")


def decode_cursor(raw: str, maxima: tuple[int, ...]) -> tuple[int, ...]:
    """The keyset position of a cursor :func:`encode_cursor` made; ValueError for anything else.

    ``maxima`` bounds each part by its column's type, so a forged cursor never reaches SQL
    with a number the database would choke on.
    """
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode("ascii")
        values = tuple(int(p) for p in text.split("."))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ValueError("not a cursor this API returned") from None
    if len(values) != len(maxima) or any(
        not 0 <= v <= top for v, top in zip(values, maxima, strict=True)
    ):
        raise ValueError("not a cursor this API returned")
    return values
