"""The fields that ask for a broadcast, wherever they are written: a drop folder's sidecar
(``NAME.broadcast.json``) and ``defaults.json``, the top-level keys of a JSON recipient file, and
the Task API's ``create_broadcast_from_json`` payload (seed 004's createBroadcastFromJson shape).

One vocabulary for all of them (aliases are the seeds' spellings)::

    field       aliases                          meaning
    text        message                          template: {0}, <0>, {name}
    from        sender, shortcode, code          sender code
    at          startDate, start, date           start: ISO 8601, or "dd-MM-yyyy HH:mm" (Messangi);
                                                 null, "" or "now" = at once
    tz          timezone                         IANA zone of ``at`` (default UTC)
    name        campaignName                     broadcast name (default: the file's name)
    region                                       ISO region for national numbers (MX, GB…)
    sheet                                        worksheet of an .xlsx (default: the first)
    workspace                                    workspace (default: "default")
    requestDr   request_dr                       ask the gateway for delivery receipts
    window      sendWindow                       quiet hours "HH:MM-HH:MM", recipient's local time
    validity                                     unsent this long after the start: EXPIRED ("2h", 7200)

Layers merge field by field, later ones winning: ``defaults.json`` < the JSON file's own keys <
the sidecar. A sidecar or payload key that is none of these is refused (a typo such as ``txet``
must not silently send a broadcast without its text); a JSON recipient file's own keys are read
leniently, since such files carry other keys too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from broadcaster.config import Settings
from broadcaster.errors import FileRejected, InputError
from broadcaster.services.broadcasts import NewBroadcast, create_from_table
from broadcaster.services.importer import PublishHook
from broadcaster.services.views import BroadcastView
from broadcaster.store import codes_repo
from broadcaster.store.db import Engine

#: Canonical field → its accepted spellings (the canonical name first).
ALIASES: dict[str, tuple[str, ...]] = {
    "text": ("text", "message"),
    "from": ("from", "sender", "shortcode", "code"),
    "at": ("at", "startDate", "start", "date"),
    "tz": ("tz", "timezone"),
    "name": ("name", "campaignName"),
    "region": ("region",),
    "sheet": ("sheet",),
    "workspace": ("workspace",),
    "requestDr": ("requestDr", "request_dr"),
    "window": ("window", "sendWindow"),
    "validity": ("validity",),
}
_CANONICAL = {alias: field for field, names in ALIASES.items() for alias in names}
#: Keys a seed-004/Messangi payload may carry that say nothing about the broadcast itself.
PAYLOAD_IGNORED = frozenset(
    {
        "to",
        "recipients",
        "destinations",
        "type",
        "broadcastId",
        "userName",
        "shortcodeIgnore",
        "instanceId",
    }
)
#: Largest sidecar or defaults file read, in bytes (they hold a few fields).
MAX_FIELDS_FILE_BYTES = 1024 * 1024
#: Messangi's date pattern ``dd-MM-yyyy HH:mm`` (seed 004).
_MESSANGI_DATE = re.compile(r"^\s*(\d{2})-(\d{2})-(\d{4})[ T](\d{2}):(\d{2})(?::(\d{2}))?\s*$")


def normalize_at(value: str | None) -> str | None:
    """ISO 8601 as is; Messangi's ``dd-MM-yyyy HH:mm`` turned into ISO; blank/now/null → None."""
    if value is None or value.strip().lower() in ("", "now", "immediately", "null"):
        return None
    m = _MESSANGI_DATE.match(value)
    if m:
        dd, mm, yyyy, hh, mi, ss = m.groups()
        return f"{yyyy}-{mm}-{dd}T{hh}:{mi}:{ss or '00'}"
    return value.strip()


def _coerce(field: str, value: Any, where: str) -> Any:
    if field == "requestDr":
        if not isinstance(value, bool):
            raise InputError(f"{where}: field {field!r} must be true or false, not {value!r}")
        return value
    if value is None:
        return None
    if field == "from" and isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # a numeric short code written as a JSON number
    if field == "validity" and isinstance(value, int | float) and not isinstance(value, bool):
        return value  # seconds
    if not isinstance(value, str):
        raise InputError(f"{where}: field {field!r} must be a string, not {type(value).__name__}")
    return normalize_at(value) if field == "at" else value


def read_fields(
    data: Mapping[str, Any],
    where: str,
    *,
    strict: bool = True,
    ignore: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """Canonical fields of ``data``. ``where`` names the source in messages.

    ``strict``: an unknown key (not in ``ignore``) is an InputError naming it. Two spellings of
    one field (``from`` and ``sender``) are refused either way: which one was meant is unclear.
    """
    out: dict[str, Any] = {}
    for key, value in data.items():
        field = _CANONICAL.get(key)
        if field is None:
            if strict and key not in ignore:
                known = ", ".join(sorted(_CANONICAL))
                raise InputError(f"{where}: unknown field {key!r} (known fields: {known})")
            continue
        if field in out:
            raise InputError(
                f"{where}: field {field!r} is given twice (as {key!r} and another alias)"
            )
        out[field] = _coerce(field, value, where)
    return out


def read_fields_file(path: Path, where: str | None = None) -> dict[str, Any]:
    """The fields of a sidecar or defaults file: one JSON object. Errors name file and line."""
    where = where or path.name
    try:
        size = path.stat().st_size
        if size > MAX_FIELDS_FILE_BYTES:
            raise FileRejected(
                where,
                f"file is {size:,} bytes; a fields file holds at most {MAX_FIELDS_FILE_BYTES:,}",
            )
        raw = path.read_bytes()
    except OSError as exc:
        raise FileRejected(where, f"cannot read the file: {exc.strerror}") from None
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise FileRejected(where, "not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise FileRejected(
            where, f"invalid JSON: {exc.msg} (column {exc.colno})", line=exc.lineno
        ) from None
    if not isinstance(data, dict):
        raise FileRejected(
            where,
            "must be one JSON object such as "
            '{"from": "55501", "text": "Hi {0}", "at": "2026-12-01T09:30"}',
        )
    return read_fields(data, where)


def merge(*layers: Mapping[str, Any]) -> dict[str, Any]:
    """Later layers win field by field; a field set to null in a later layer clears it."""
    out: dict[str, Any] = {}
    for layer in layers:
        out.update(layer)
    return out


def new_broadcast(
    fields: Mapping[str, Any], *, workspace: str = codes_repo.DEFAULT_WORKSPACE
) -> NewBroadcast:
    """The request the broadcast service takes. Missing sender/text stay empty here: a JSON
    file's own ``from``/``text`` may still fill them, and the service names what is missing."""
    return NewBroadcast(
        sender=fields.get("from") or "",
        text=fields.get("text"),
        name=fields.get("name"),
        at=fields.get("at"),
        tz=fields.get("tz") or "UTC",
        region=fields.get("region"),
        workspace=fields.get("workspace") or workspace,
        request_dr=fields.get("requestDr", True),
        start_now_hint='leave "at" out of the sidecar and defaults.json',
        window=fields.get("window"),
        validity=fields.get("validity"),
    )


def check_required(fields: Mapping[str, Any], where: str) -> None:
    """Refuse early, with the remedy, what the service would refuse late."""
    if not fields.get("from"):
        raise InputError(
            f'{where}: no sender code: give "from" (sidecar NAME.broadcast.json, '
            "defaults.json or the JSON file itself)"
        )
    if not fields.get("text"):
        raise InputError(
            f'{where}: no message text: give "text" (sidecar NAME.broadcast.json, '
            "defaults.json or the JSON file itself)"
        )


def create_from_payload(
    engine: Engine,
    settings: Settings,
    payload: Mapping[str, Any],
    *,
    workspace: str = codes_repo.DEFAULT_WORKSPACE,
    on_publish: PublishHook | None = None,
) -> BroadcastView:
    """A broadcast from a seed-004 payload: the fields above plus ``to`` (or ``recipients``), a
    list of numbers or ``{"to": …, "params": […]}`` objects. All or nothing, like a file."""
    from broadcaster.ingest import read_recipients_bytes

    if not isinstance(payload, Mapping):
        raise InputError('payload must be a JSON object with "from", "text" and a "to" list')
    fields = read_fields(payload, "payload", ignore=PAYLOAD_IGNORED)
    check_required(fields, "payload")
    data = json.dumps(dict(payload), ensure_ascii=False).encode()
    with read_recipients_bytes(
        data, "payload.json", max_rows=settings.max_rows, max_file_bytes=settings.max_file_bytes
    ) as table:
        return create_from_table(
            engine,
            settings,
            table,
            new_broadcast(fields, workspace=workspace),
            on_publish=on_publish,
        )
