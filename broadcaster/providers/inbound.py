"""Inbound (MO) messages: each gateway's webhook format read into one :class:`Inbound`.

- Messangi-compatible (and the simulator): JSON ``{"id", "from", "to", "text", "date"}``, ``from``
  the subscriber, ``to`` our code.
- Vonage/KPN (seed 002): ``msisdn, to, messageId, text, type, keyword, message-timestamp``, as
  query, form or JSON (``vonage.parse_inbound``).
- Kannel: the ``sms-service`` ``get-url`` of docs/inbound.md,
  ``?from=%p&to=%P&text=%a&id=%I&at=%t&coding=%c&charset=%C`` (``at``, ``coding`` and
  ``charset`` optional). ``%a`` is the message's own octets: UTF-8 for a GSM 7-bit MO, UTF-16BE
  for a UCS-2 one (what a phone sends for "ARRÊT": Ê is not in the GSM alphabet), so the text is
  decoded by ``charset`` (else by ``coding``: 2 is UCS-2). Kannel's ``%I`` is empty for some
  SMSCs: the id then falls back to a digest of what was received, so a retried call still
  stores once.

Adapters expose these as ``parse_mo(payload)``; :func:`parse_for` falls back for the others.
"""

from __future__ import annotations

import codecs
import hashlib
from dataclasses import dataclass
from typing import Any, Protocol

#: Longest text kept of one inbound message (a concatenated MO is at most 255 x 153 chars).
MAX_TEXT_CHARS = 40_000
#: Longest gateway id stored (the column's width).
MAX_ID_CHARS = 100


@dataclass(frozen=True, slots=True)
class Inbound:
    """One MO message: ``sender`` the subscriber in E.164, ``to`` our sender code."""

    id: str  # the gateway's message id: (route, id) is stored once
    sender: str
    to: str
    text: str
    received_at: str | None = None  # the gateway's own timestamp text, as sent


class ParsesInbound(Protocol):
    def parse_mo(self, payload: dict[str, Any]) -> Inbound: ...


def _str(value: Any) -> str:
    """A field as text: bytes (a query value that was not UTF-8) decoded with replacements."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value or "")


def _e164(number: Any) -> str:
    digits = _str(number).strip().replace(" ", "")
    if not digits:
        raise ValueError("inbound message without a sender number")
    digits = digits[2:] if digits.startswith("00") else digits
    return digits if digits.startswith("+") else f"+{digits}"


def _fallback_id(sender: str, to: str, text: str, at: Any) -> str:
    return "sha1:" + hashlib.sha1(f"{sender}|{to}|{at}|{text}".encode()).hexdigest()


def _inbound(gid: Any, sender: Any, to: Any, text: Any, at: Any) -> Inbound:
    s, t, body = _e164(sender), _str(to).strip(), _str(text)[:MAX_TEXT_CHARS]
    if not t:
        raise ValueError("inbound message without the code it was sent to ('to')")
    ident = _str(gid).strip() or _fallback_id(s, t, body, at)
    for name, value in (("from", s), ("to", t), ("text", body), ("id", ident), ("date", at)):
        if "\x00" in _str(value):  # PostgreSQL cannot store NUL; no gateway means one
            raise ValueError(f"{name}: must not contain NUL characters")
    return Inbound(
        ident[:MAX_ID_CHARS],
        s,
        t.lstrip("+") if t.startswith("+") else t,
        body,
        _str(at) if at else None,
    )


def parse_messangi(payload: dict[str, Any]) -> Inbound:
    """Messangi-compatible JSON ``{"id", "from", "to", "text", "date"}``."""
    return _inbound(
        payload.get("id"),
        payload.get("from"),
        payload.get("to"),
        payload.get("text"),
        payload.get("date"),
    )


def vonage_fields(payload: dict[str, Any]) -> dict[str, Any]:
    """An inbound SMS webhook (``msisdn, to, messageId, text, type, keyword, concat…``) as a dict.

    Returns ``{"from", "to", "text", "gateway_id", "at", "type", "keyword", "concat"}``: ``from``
    in E.164 with ``+``; ``concat`` is ``{"ref", "total", "part"}`` for one part of a long
    message (join them by ``ref``), else None. Raises ``ValueError`` without sender or id.
    """
    sender = _str(payload.get("msisdn")).strip()
    gid = payload.get("messageId") or payload.get("message-id")
    if not sender or not gid:
        raise ValueError("inbound SMS without msisdn or messageId")
    concat = None
    if str(payload.get("concat", "")).lower() == "true":
        concat = {
            "ref": str(payload.get("concat-ref", "")),
            "total": int(payload.get("concat-total", 1)),
            "part": int(payload.get("concat-part", 1)),
        }
    return {
        "from": sender if sender.startswith("+") else f"+{sender}",
        "to": _str(payload.get("to")),
        "text": _str(payload.get("text")),
        "gateway_id": _str(gid),
        "at": payload.get("message-timestamp"),
        "type": payload.get("type", "text"),
        "keyword": payload.get("keyword"),
        "concat": concat,
    }


def parse_vonage(payload: dict[str, Any]) -> Inbound:
    """Seed 002's inbound webhook (one part: concatenated parts are stored as they come)."""
    d = vonage_fields(payload)
    return _inbound(d["gateway_id"], d["from"], d["to"], d["text"], d["at"])


#: Kannel's ``%C`` for a message whose octets are no text: read as UTF-8, with replacements.
_KANNEL_NOT_TEXT = frozenset({"", "GSM", "8-BIT", "BINARY"})


def kannel_text(text: Any, coding: Any = None, charset: Any = None) -> str:
    """Kannel's ``%a`` (str where it was UTF-8, else bytes) decoded by its ``%C``/``%c``.

    ``charset`` (``%C``) is ``UTF-8`` for a 7-bit MO (Kannel keeps GSM text as UTF-8),
    ``UTF-16BE`` for a UCS-2 one, ``8-BIT`` for binary; without it ``coding`` (``%c``) 2 means
    UCS-2. A charset Python does not know, or octets it cannot decode, are read as UTF-8 with
    replacement characters, never refused (the MO is stored either way).
    """
    octets = text if isinstance(text, bytes) else _str(text).encode("utf-8")
    name = _str(charset).strip().upper()
    if not name and _str(coding).strip() == "2":
        name = "UTF-16BE"
    if name in _KANNEL_NOT_TEXT:
        return octets.decode("utf-8", errors="replace")
    try:
        codec = codecs.lookup(name).name
    except LookupError:
        return octets.decode("utf-8", errors="replace")
    if codec in ("utf-16", "ucs-2"):  # no byte order mark from Kannel: big-endian (%C says so)
        codec = "utf-16-be"
    return octets.decode(codec, errors="replace")


def parse_kannel(payload: dict[str, Any]) -> Inbound:
    """The ``get-url`` query of docs/inbound.md: ``from, to, text, id`` (``at``, ``coding``,
    ``charset`` optional; the text decoded by :func:`kannel_text`)."""
    return _inbound(
        payload.get("id"),
        payload.get("from"),
        payload.get("to"),
        kannel_text(payload.get("text"), payload.get("coding"), payload.get("charset")),
        payload.get("at"),
    )


def parse_for(provider: object, payload: dict[str, Any]) -> Inbound:
    """The provider's own parser; the Messangi-compatible format for one without."""
    parse = getattr(provider, "parse_mo", None)
    if parse is None:
        return parse_messangi(payload)
    result = parse(payload)
    assert isinstance(result, Inbound)
    return result
