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
keeps every digit): the parser hands their literal over instead of making floats.

Memory stays flat: the document is read twice as a stream (:mod:`json_stream`), never whole. The
first pass, inside ``open_recipients``, checks the syntax, counts the recipients against
``max_rows`` and collects the top-level keys (a batch's ``text`` may come after its ``to`` list);
the second pass, lazily, yields the rows.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any, TextIO

from broadcaster.errors import FileRejected
from broadcaster.ingest.detect import detect_encoding
from broadcaster.ingest.header import is_phone_header
from broadcaster.ingest.json_stream import CHUNK_CHARS, Event, JsonSyntaxError, events
from broadcaster.ingest.rows import RecipientRow, RecipientTable, RowProblem

#: Keys of a top-level object that may hold the recipient list.
LIST_KEYS = frozenset({"to", "recipients", "destinations"})
#: Most top-level keys besides the recipient list (they are all kept in ``meta``).
MAX_META_KEYS = 1_000
_SHAPE = (
    'JSON must be a list of recipients, or an object with a "to" list of recipients '
    "(the Messangi batch shape)"
)


def open_json(
    path: Path, sample: bytes, *, source: str, max_rows: int, stack: ExitStack
) -> RecipientTable:
    """Check and measure the document now; its rows come from a second, lazy pass."""
    encoding = detect_encoding(sample, source)
    f = stack.enter_context(open(path, encoding=encoding, buffering=CHUNK_CHARS))  # noqa: SIM115
    list_key, count, meta = _survey(f, source, max_rows)
    if list_key is None:
        single = meta.pop("to", None)
        if not isinstance(single, str):  # the single-message shape: {"from", "text", "to": "+58…"}
            raise FileRejected(source, _SHAPE)
        rows: Iterator[RecipientRow | RowProblem] = iter([RecipientRow(1, single.strip(), ())])
    else:
        if count == 0:
            raise FileRejected(source, "no rows: the recipient list is empty")
        meta.pop(list_key, None)
        rows = _rows(f, list_key, source)
    return RecipientTable(source=source, format="json", columns=None, meta=meta, rows=rows)


def _survey(f: TextIO, source: str, max_rows: int) -> tuple[str | None, int, dict[str, Any]]:
    """First pass: (key of the recipient list or "" for a top-level list, entries, other keys)."""
    list_key: str | None = None
    count = 0
    meta: dict[str, Any] = {}
    try:
        for event in _events(f):
            key = "" if event.key is None else event.key
            if event.kind != "value":
                if list_key is not None and list_key != key:
                    raise FileRejected(source, f"two recipient lists: {list_key!r} and {key!r}")
                list_key = key
                count += event.kind == "item"
                if count > max_rows:
                    raise FileRejected(source, f"more than {max_rows:,} recipients")
            else:
                meta[key] = event.value
                if len(meta) > MAX_META_KEYS:
                    raise FileRejected(source, f"more than {MAX_META_KEYS:,} top-level keys")
    except JsonSyntaxError as exc:
        raise FileRejected(source, f"invalid JSON: {exc}", exc.line) from None
    except UnicodeDecodeError as exc:
        raise FileRejected(source, f"undecodable JSON text: {exc.reason}") from None
    return list_key, count, meta


def _events(f: TextIO) -> Iterator[Event]:
    f.seek(0)
    return events(f, LIST_KEYS)


def _rows(f: TextIO, list_key: str, source: str) -> Iterator[RecipientRow | RowProblem]:
    """Second pass: one row per entry of the recipient list (the file was checked by the first)."""
    line = 0
    try:
        for event in _events(f):
            if event.kind == "item" and (event.key or "") == list_key:
                line += 1
                yield _row(line, event.value)
    except (JsonSyntaxError, UnicodeDecodeError) as exc:  # the file changed under us
        raise FileRejected(source, f"the file changed while being read: {exc}") from None


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
