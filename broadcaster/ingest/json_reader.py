"""JSON recipient lists: the Messangi batch shape, plain lists of numbers, lists of objects.

Accepted shapes (``line`` of a row = its index in the recipient list + 1)::

    {"from": "12345", "text": "Hi {0}", "to": [{"to": "+5255…", "params": ["Ana", 10.65]}, …]}
    ["+525500000000", 525511111111, …]
    [{"phone": "+5255…", "params": ["Ana"]}, {"mobile": "…"}, …]
    [["+5255…", "Ana", "10.65"], …]                      (a row as a list: phone first)

Any key named like a phone column (``to``, ``to:`` as the Messangi docs spell it, ``phone``,
``mobile``, ``msisdn``, ``number``…) holds the phone; other keys but ``params`` are ignored. A
batch's top-level keys other than ``to`` go into ``meta`` (``from``, ``text``, ``type``…).

Numbers keep the exact text they have in the file (``10.65`` stays ``"10.65"``, a 15-digit phone
keeps every digit): the parser hands their literal over instead of making floats. JSON is parsed
whole (capped by ``max_file_bytes``); each entry is released as soon as its row is yielded, so
rows never exist twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from broadcaster.errors import FileRejected
from broadcaster.ingest.detect import detect_encoding
from broadcaster.ingest.header import is_phone_header
from broadcaster.ingest.rows import RecipientRow, RecipientTable, RowProblem

#: Keys of a top-level object that may hold the recipient list, in order of preference.
LIST_KEYS = ("to", "recipients", "destinations")
_SHAPE = (
    'JSON must be a list of recipients, or an object with a "to" list of recipients '
    "(the Messangi batch shape)"
)


def open_json(path: Path, sample: bytes, *, source: str, max_rows: int) -> RecipientTable:
    encoding = detect_encoding(sample, source)
    try:
        text = path.read_text(encoding=encoding)
    except UnicodeDecodeError as exc:
        raise FileRejected(
            source, f"undecodable JSON text ({encoding}): {exc.reason} at byte {exc.start:,}"
        ) from None
    try:
        doc = json.loads(text, parse_int=str, parse_float=str, parse_constant=str)
    except json.JSONDecodeError as exc:
        raise FileRejected(
            source, f"invalid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})", exc.lineno
        ) from None
    except RecursionError:
        raise FileRejected(source, "invalid JSON: nested too deeply") from None
    del text
    items, meta = _recipients(doc, source)
    if not items:
        raise FileRejected(source, "no rows: the recipient list is empty")
    if len(items) > max_rows:
        raise FileRejected(source, f"{len(items):,} recipients, more than {max_rows:,}")
    return RecipientTable(source=source, format="json", columns=None, meta=meta, rows=_rows(items))


def _recipients(doc: Any, source: str) -> tuple[list[Any], dict[str, Any]]:
    if isinstance(doc, list):
        return doc, {}
    if not isinstance(doc, dict):
        raise FileRejected(source, _SHAPE)
    for key in LIST_KEYS:
        value = doc.get(key)
        if isinstance(value, list):
            return value, {k: v for k, v in doc.items() if k != key}
        if isinstance(value, str):  # the single-message shape: {"from", "text", "to": "+58…"}
            return [value], {k: v for k, v in doc.items() if k != key}
    raise FileRejected(source, _SHAPE)


def _rows(items: list[Any]) -> Iterator[RecipientRow | RowProblem]:
    for index, item in enumerate(items):
        items[index] = None  # let the parsed entry go once its row exists
        yield _row(index + 1, item)
    items.clear()


def _row(line: int, item: Any) -> RecipientRow | RowProblem:
    if isinstance(item, str):
        return RecipientRow(line, item.strip(), ())
    if isinstance(item, list):
        if not item:
            return RowProblem.of(line, "[]", "empty recipient entry")
        head, *rest = item
        params = _params(rest)
        if not isinstance(head, str) or params is None:
            return RowProblem.of(
                line, _dump(item), "a recipient list entry must hold text or numbers"
            )
        return RecipientRow(line, head.strip(), params)
    if isinstance(item, dict):
        return _object_row(line, item)
    return RowProblem.of(
        line, _dump(item), "a recipient must be a phone number or an object with one"
    )


def _object_row(line: int, item: dict[str, Any]) -> RecipientRow | RowProblem:
    key = next((k for k in item if is_phone_header(k)), None)
    if key is None:
        return RowProblem.of(line, _dump(item), 'no phone in this recipient (expected a "to" key)')
    phone = item[key]
    if not isinstance(phone, str):
        return RowProblem.of(line, _dump(item), f'"{key}" must be a phone number')
    raw = item.get("params")
    params = () if raw is None else _params(raw) if isinstance(raw, list) else None
    if params is None:
        return RowProblem.of(line, _dump(item), '"params" must be a list of texts or numbers')
    return RecipientRow(line, phone.strip(), params)


def _params(values: list[Any]) -> tuple[str, ...] | None:
    """Texts and numbers (already literal text) as-is, booleans as JSON spells them, null as ""."""
    out: list[str] = []
    for value in values:
        if isinstance(value, str):
            out.append(value.strip())
        elif isinstance(value, bool):
            out.append("true" if value else "false")
        elif value is None:
            out.append("")
        else:
            return None
    return tuple(out)


def _dump(item: Any) -> str:
    return json.dumps(item, ensure_ascii=False)[:200]
