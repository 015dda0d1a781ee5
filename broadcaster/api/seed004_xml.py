"""Seed 004's XML answers: a static envelope and a per-method result, built with ElementTree.

The seed shows the envelope's children (``input``, ``status``, ``description``, ``result``)
but no root element; XML needs one, so they sit in ``<response>`` (docs/seed-api.md). Text is
escaped by ElementTree, never pasted into markup.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from broadcaster.domain.schedule import zone

ROOT = "response"
OK = "OK"
ERROR = "ERROR"
COMPLETED = "Completed"
CONTENT_TYPE = "application/xml"

Fields = Sequence[tuple[str, Any]]


#: Characters XML 1.0 cannot hold even as references (ElementTree writes them raw, and every
#: parser then refuses the whole answer): C0 controls but tab, newline and CR, and U+FFFE/U+FFFF.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def xml_safe(text: str) -> str:
    """``text`` with the characters XML cannot hold written as ``\\uXXXX``."""
    return _NOT_XML.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return xml_safe(str(value))


def element(tag: str, fields: Fields) -> ET.Element:
    """``<tag><name>value</name>…</tag>``; a value that is an Element is nested as it is."""
    el = ET.Element(tag)
    for name, value in fields:
        if isinstance(value, ET.Element):
            el.append(value)
        else:
            ET.SubElement(el, name).text = _text(value)
    return el


def listing(tag: str, items: Iterable[ET.Element]) -> ET.Element:
    el = ET.Element(tag)
    el.extend(items)
    return el


def document(
    method: str, result: ET.Element | None, status: str = OK, description: str = COMPLETED
) -> bytes:
    root = ET.Element(ROOT)
    ET.SubElement(root, "input").text = method
    ET.SubElement(root, "status").text = status
    ET.SubElement(root, "description").text = xml_safe(description)
    if result is not None:
        ET.SubElement(root, "result").append(result)
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))


def answer(method: str, result: ET.Element | None = None, http_status: int = 200) -> web.Response:
    return web.Response(
        body=document(method, result),
        status=http_status,
        content_type=CONTENT_TYPE,
        charset="utf-8",
    )


def error_answer(
    method: str, description: str, http_status: int, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=document(method, None, ERROR, description),
        status=http_status,
        content_type=CONTENT_TYPE,
        charset="utf-8",
        headers=headers,
    )


def seed_date(utc_naive: datetime | None, tz: str, *, millis: bool) -> str | None:
    """``yyyy-MM-dd'T'HH:mm:ss[.SSS]ZZ`` in ``tz``: sendSMS shows milliseconds, getBroadcast not."""
    if utc_naive is None:
        return None
    local = utc_naive.replace(tzinfo=UTC).astimezone(zone(tz))
    return local.isoformat(timespec="milliseconds" if millis else "seconds")


def iso_date(local: datetime | None, *, millis: bool) -> str | None:
    """A view's time (aware, in the broadcast's zone) in the seed's form."""
    if local is None:
        return None
    return local.isoformat(timespec="milliseconds" if millis else "seconds")
