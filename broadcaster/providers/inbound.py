"""Inbound (MO) messages: each gateway's webhook format read into one :class:`Inbound`.

- Messangi-compatible (and the simulator): JSON ``{"id", "from", "to", "text", "date"}``, ``from``
  the subscriber, ``to`` our code.
- Vonage/KPN (seed 002): ``msisdn, to, messageId, text, type, keyword, message-timestamp``, as
  query, form or JSON (``vonage.parse_inbound``).
- Kannel: the ``sms-service`` ``get-url`` of docs/inbound.md, ``?from=%p&to=%P&text=%a&id=%I``
  (``at=%t`` optional). Kannel's ``%I`` is empty for some SMSCs: the id then falls back to a
  digest of what was received, so a retried call still stores once.

Adapters expose these as ``parse_mo(payload)``; :func:`parse_for` falls back for the others.
"""

from __future__ import annotations

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


def _e164(number: Any) -> str:
    digits = str(number or "").strip().replace(" ", "")
    if not digits:
        raise ValueError("inbound message without a sender number")
    digits = digits[2:] if digits.startswith("00") else digits
    return digits if digits.startswith("+") else f"+{digits}"


def _fallback_id(sender: str, to: str, text: str, at: Any) -> str:
    return "sha1:" + hashlib.sha1(f"{sender}|{to}|{at}|{text}".encode()).hexdigest()


def _inbound(gid: Any, sender: Any, to: Any, text: Any, at: Any) -> Inbound:
    s, t, body = _e164(sender), str(to or "").strip(), str(text or "")[:MAX_TEXT_CHARS]
    if not t:
        raise ValueError("inbound message without the code it was sent to ('to')")
    ident = str(gid or "").strip() or _fallback_id(s, t, body, at)
    return Inbound(
        ident[:MAX_ID_CHARS],
        s,
        t.lstrip("+") if t.startswith("+") else t,
        body,
        str(at) if at else None,
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
    sender = str(payload.get("msisdn") or "").strip()
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
        "to": str(payload.get("to") or ""),
        "text": str(payload.get("text") or ""),
        "gateway_id": str(gid),
        "at": payload.get("message-timestamp"),
        "type": payload.get("type", "text"),
        "keyword": payload.get("keyword"),
        "concat": concat,
    }


def parse_vonage(payload: dict[str, Any]) -> Inbound:
    """Seed 002's inbound webhook (one part: concatenated parts are stored as they come)."""
    d = vonage_fields(payload)
    return _inbound(d["gateway_id"], d["from"], d["to"], d["text"], d["at"])


def parse_kannel(payload: dict[str, Any]) -> Inbound:
    """The ``get-url`` query of docs/inbound.md: ``from, to, text, id`` (``at`` optional)."""
    return _inbound(
        payload.get("id"),
        payload.get("from"),
        payload.get("to"),
        payload.get("text"),
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
