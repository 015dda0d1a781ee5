"""Seed 004's broadcast API at ``/rest/api/...``: signed URLs in, XML out, over /v1's use cases.

Every handler here parses the seed's path and POST parameters, checks the signature
(:mod:`broadcaster.api.seed004_sign`) and calls the same services as ``/v1``
(``create_from_table`` through /v1's file path, ``services.control``, ``services.queries``,
``services.codes``); only the broadcast edit is new (``services/broadcast_edit.py``). Answers and
refusals are the seed's envelope (:mod:`broadcaster.api.seed004_xml`). The bearer middleware lets
``/rest/api/`` through: these calls carry their key in the URL. docs/seed-api.md is the contract.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

from aiohttp import web
from sqlalchemy.engine import Engine

from broadcaster.api import seed004_xml as xml
from broadcaster.api.auth import NONCE_RETRY_AFTER_S, take_request
from broadcaster.api.bodies import INT32_MAX, read_body
from broadcaster.api.broadcasts import _create_from_file
from broadcaster.api.context import CTX
from broadcaster.api.fields import NAME_CHARS, SENDER_CHARS
from broadcaster.api.problems import Problem, bad_request, invalid, to_problem
from broadcaster.api.seed004_sign import digest_bytes, digest_file, signature_matches
from broadcaster.api.signatures import NONCE_RE, NonceStoreUnavailable, timestamp_skew_s
from broadcaster.api.state import blocking, state
from broadcaster.api.uploads import receive_upload
from broadcaster.config import Settings
from broadcaster.domain.states import IN_NETWORK_STATES, BroadcastStatus, MessageStatus
from broadcaster.errors import NotFound
from broadcaster.ingest.reader import read_recipients_bytes
from broadcaster.logsafe import printable
from broadcaster.services import control, queries
from broadcaster.services.apikeys import SeedKey, by_public_key
from broadcaster.services.broadcast_edit import edit_unstarted
from broadcaster.services.broadcasts import NewBroadcast, create_from_table, get_broadcast
from broadcaster.services.codes import get_code, list_codes
from broadcaster.services.views import BroadcastView

log = logging.getLogger(__name__)

BASE = "/rest/api"
#: ``broadcastId`` that asks createBroadcastFromJson for a new broadcast.
NEW_BROADCAST = "-1"
#: The seed's ``date`` path parameter, and its "start now" value.
SEED_DATE_FORMAT = "%d-%m-%Y %H:%M"
NULL = "null"
#: Messages listed in sendSMSByFile's answer; the rest are read with getBroadcast or /v1.
LISTED_MESSAGES = 1_000
#: Most characters of ``userName`` (the broadcasts.owner column).
USER_NAME_CHARS = 100
#: getBroadcast's numeric ``status`` (documented in docs/seed-api.md).
STATUS_NUMBERS = {
    BroadcastStatus.SCHEDULED.value: 0,
    BroadcastStatus.RUNNING.value: 1,
    BroadcastStatus.COMPLETED.value: 2,
    BroadcastStatus.SUSPENDED.value: 3,
    BroadcastStatus.STOPPED.value: 4,
}
SENT_TO_CARRIER = ("SENT_TO_CARRIER", "Sent to Carrier")
#: A message's seed status and statusDescription, by our status (others: their own name).
MESSAGE_WORDS = {
    MessageStatus.QUEUE.value: ("QUEUED", "Queued for sending"),
    MessageStatus.DEQUEUED.value: ("QUEUED", "Being sent"),
    **{s.value: SENT_TO_CARRIER for s in IN_NETWORK_STATES},
    MessageStatus.DELIVRD.value: ("DELIVERED", "Delivered"),
    MessageStatus.ERROR.value: ("ERROR", "Refused by the gateway"),
    MessageStatus.INVALID_ROUTING.value: ("INVALID_ROUTING", "Not a valid mobile number"),
    MessageStatus.SEGMENTS_EXCEEDED.value: ("SEGMENTS_EXCEEDED", "Text over 10 segments"),
    MessageStatus.BLACKLISTED.value: ("BLACKLISTED", "Recipient opted out"),
    MessageStatus.CANCELLED.value: ("CANCELLED", "Broadcast stopped before sending"),
}
FORM_TYPE = "application/x-www-form-urlencoded"
#: The optional replay guard's query parameters (signed after the POST parameters).
GUARD_TIMESTAMP, GUARD_NONCE = "timestamp", "nonce"

Handler = Callable[[web.Request], Awaitable[web.Response]]


def seed_method(name: str) -> Callable[[Handler], Handler]:
    """Answer every refusal of ``fn`` in the envelope, with the HTTP status /v1 would use."""

    def wrap(fn: Handler) -> Handler:
        async def handler(request: web.Request) -> web.Response:
            try:
                return await fn(request)
            except Exception as exc:  # noqa: BLE001 - every answer is the seed's envelope
                problem = to_problem(exc)
                if problem is None:
                    log.exception("unhandled error on seed 004 %s", printable(request.path))
                    return xml.error_answer(name, "the server failed on this request", 500)
                keep = {k: v for k, v in problem.headers.items() if k.lower() in ("retry-after",)}
                return xml.error_answer(name, problem.detail, problem.status, keep)

        return handler

    return wrap


def _params(request: web.Request, names: Sequence[str]) -> list[str]:
    """The path parameters before ``{signature}``, URL-decoded, in URL order."""
    return [request.match_info[n] for n in names]


async def _key(request: web.Request) -> SeedKey:
    """The key named by ``publicKey`` whose workspace is ``instanceId`` (401 otherwise)."""
    public_key = request.match_info["publicKey"]
    key = await blocking(request, by_public_key, request.app[CTX].engine, public_key)
    if key is None:
        raise Problem(401, "publicKey: unknown, malformed or revoked")
    if key.seed_secret is None:
        raise Problem(
            401,
            "publicKey: this key was made before seed-004 signatures; create a new key "
            "(broadcaster apikey create)",
        )
    if key.principal.signing_secret is not None:
        # Its /v1 requests must carry an HMAC of its signing secret; the seed secret derives from
        # the bearer key alone, so accepting it here would let the bare key act unsigned.
        raise Problem(
            401,
            "publicKey: this key must sign its requests (X-Signature on /v1), which seed 004's "
            "URLs cannot carry; call seed 004 with a key made without --signing",
        )
    instance = request.match_info["instanceId"]
    if instance != str(key.principal.workspace_id):
        raise Problem(401, f"instanceId {instance!r} is not the workspace of this publicKey")
    take_request(state(request), key.principal)
    return key


def _guard(request: web.Request) -> tuple[str, str] | None:
    """The optional replay guard's ``timestamp`` and ``nonce`` query parameters, checked as
    ``/v1``'s X-Timestamp and X-Nonce are (both or neither; within the signature window)."""
    timestamp, nonce = request.query.get(GUARD_TIMESTAMP), request.query.get(GUARD_NONCE)
    if timestamp is None and nonce is None:
        return None
    if timestamp is None or nonce is None:
        raise Problem(401, "timestamp and nonce: the replay guard needs both (or neither)")
    st = state(request)
    window_s = st.limits.signature_window_s
    skew = timestamp_skew_s(timestamp, st.wall_clock())
    if skew is None:
        raise Problem(401, "timestamp: must be Unix seconds")
    if skew > window_s:
        raise Problem(401, f"timestamp: {skew:.0f} s from the server's clock (window {window_s} s)")
    if not NONCE_RE.match(nonce):
        raise Problem(401, "nonce: must be 8-64 of A-Z a-z 0-9 - _")
    return timestamp, nonce


async def _check(
    request: web.Request, key: SeedKey, names: Sequence[str], digests: list[str]
) -> None:
    """The signature holds, and with the replay guard its nonce was not seen in the window."""
    assert key.seed_secret is not None
    guard = _guard(request)
    presented = request.match_info["signature"]
    if not signature_matches(
        presented, _params(request, names), digests, key.seed_secret, guard or ()
    ):
        raise Problem(401, "signature: does not match this call (see docs/seed-api.md)")
    if guard is None:
        return
    # Remembered only once the signature holds (strangers cannot burn a client's nonces), in
    # /v1's nonce store: durable, shared by every API process, one namespace per key.
    st = state(request)
    try:
        fresh = await st.nonces.remember(
            f"{key.principal.prefix}:{guard[1]}", 2 * st.limits.signature_window_s
        )
    except NonceStoreUnavailable:
        raise Problem(
            503,
            "the replay guard (nonce store) is unavailable, so guarded calls are refused; "
            f"retry in {NONCE_RETRY_AFTER_S} s with a new nonce",
            headers={"Retry-After": str(NONCE_RETRY_AFTER_S)},
        ) from None
    if not fresh:
        raise Problem(401, "nonce: already used (a replayed call)")


async def _signed(request: web.Request, names: Sequence[str]) -> SeedKey:
    """A GET/DELETE call's key once its signature holds."""
    key = await _key(request)
    await _check(request, key, names, [])
    return key


def _broadcast_id(request: web.Request) -> int:
    raw = request.match_info["broadcastId"]
    if not raw.isascii() or not raw.isdigit():
        raise bad_request(f"broadcastId: must be a broadcast number, not {raw!r}", "broadcastId")
    value = int(raw)
    if value > INT32_MAX:
        raise NotFound(f"broadcast {raw} does not exist")
    return value


# --- sendSMSByFile -------------------------------------------------------------------------

SEND_PARAMS = ("instanceId", "publicKey")
#: Optional POST parameters sent beside ``file`` (signed after it, in this order).
SEND_EXTRAS = ("text", "from")


def _message(row: dict[str, Any], sender: str, carrier: str, tz: str) -> ET.Element:
    status, words = MESSAGE_WORDS.get(row["status"], (row["status"], row["status"]))
    return xml.element(
        "message",
        [
            ("id", row["id"]),
            ("carrier", carrier),
            ("from", sender),
            ("to", str(row["recipient"]).lstrip("+")),
            ("text", row["text"]),
            ("status", status),
            ("statusDescription", words),
            ("encoding", "UTF-8"),
            ("date", xml.seed_date(row["sent_at"] or row["created_at"], tz, millis=True)),
            ("timezone", tz),
            ("clientId", row["client_id"] or ""),
        ],
    )


def _messages_result(engine: Engine, settings: Settings, view: BroadcastView, ws: int) -> Any:
    rows = queries.message_details(engine, ws, view.id, LISTED_MESSAGES)
    carrier = get_code(engine, settings, view.shortcode, ws).provider
    items = [_message(r, view.shortcode, carrier, view.timezone) for r in rows]
    return xml.listing("messages", items)


@seed_method("sendSMS")
async def send_by_file(request: web.Request) -> web.Response:
    ctx, limits = request.app[CTX], state(request).limits
    key = await _key(request)
    async with receive_upload(request) as upload:
        extras = {n: upload.fields[n] for n in SEND_EXTRAS if n in upload.fields}
        digests = [await blocking(request, digest_file, upload.path)]
        digests += [digest_bytes(v.encode("utf-8")) for v in extras.values()]
        await _check(request, key, SEND_PARAMS, digests)
        sender = extras.get("from", "")
        if len(sender) > SENDER_CHARS:
            raise invalid(f"from: at most {SENDER_CHARS} characters", "from")
        req = NewBroadcast(
            sender=sender,
            text=extras.get("text") or None,
            name=upload.filename[:NAME_CHARS],
            workspace=key.principal.workspace,
            start_now=True,
        )
        view = await blocking(
            request,
            _create_from_file,
            ctx.engine,
            ctx.settings,
            upload.path,
            upload.filename,
            None,
            req,
            limits.upload_max_bytes,
        )
    result = await blocking(
        request, _messages_result, ctx.engine, ctx.settings, view, key.principal.workspace_id
    )
    return xml.answer("sendSMS", result)


# --- getShortcodes -------------------------------------------------------------------------

SHORTCODE_PARAMS = ("instanceId", "userName", "publicKey")


@seed_method("getShortcodes")
async def get_shortcodes(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    key = await _signed(request, SHORTCODE_PARAMS)
    codes = await blocking(
        request, list_codes, ctx.engine, ctx.settings, workspace=key.principal.workspace
    )
    items = [xml.element("shortcode", [("sc", c.code)]) for c in codes]
    return xml.answer("getShortcodes", xml.listing("shortcodes", items))


# --- createBroadcastFromJson ---------------------------------------------------------------

CREATE_PARAMS = (
    "instanceId",
    "broadcastId",
    "shortcode",
    "userName",
    "shortcodeIgnore",
    "campaignName",
    "date",
    "publicKey",
)


async def _to_parameter(request: web.Request) -> str:
    if request.content_type != FORM_TYPE:
        raise Problem(
            415,
            f"send the POST parameter to as {FORM_TYPE} (to=<JSON recipient list>)",
        )
    body = await read_body(request, state(request).limits.json_max_bytes)
    try:
        form = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise bad_request("the POST body must be UTF-8") from None
    values = form.get("to")
    if not values or not values[0].strip():
        raise invalid("to: the POST parameter with the JSON recipient list is missing", "to")
    if len(values) > 1:
        raise invalid("to: give it once", "to")
    return values[0]


def _flag(raw: str) -> bool:
    if raw.lower() not in ("true", "false"):
        raise bad_request(f"shortcodeIgnore: must be true or false, not {raw!r}")
    return raw.lower() == "true"


def _start(raw: str) -> str | None:
    """The ISO start of ``dd-MM-yyyy HH:mm`` (UTC), or None for ``null`` (start now)."""
    if raw.lower() == NULL:
        return None
    try:
        return datetime.strptime(raw, SEED_DATE_FORMAT).isoformat(timespec="minutes")
    except ValueError:
        raise bad_request(f"date: must be dd-MM-yyyy HH:mm or null, not {raw!r}") from None


def _request_from(request: web.Request, key: SeedKey) -> NewBroadcast:
    m = request.match_info
    user = m["userName"]
    if not user or len(user) > USER_NAME_CHARS or not user.isprintable():
        raise bad_request(f"userName: 1-{USER_NAME_CHARS} printable characters")
    campaign = m["campaignName"]
    if len(campaign) > NAME_CHARS:
        raise bad_request(f"campaignName: at most {NAME_CHARS} characters")
    use_code = _flag(m["shortcodeIgnore"])
    at = _start(m["date"])
    return NewBroadcast(
        # shortcodeIgnore false: the shortcode parameter is ignored, the JSON's "from" is used
        sender=m["shortcode"] if use_code else "",
        text=None,
        name=None if campaign.lower() in ("", NULL) else campaign,
        at=at,
        start_now=at is None,
        workspace=key.principal.workspace,
        owner=user,
    )


def _store_json(
    engine: Engine, settings: Settings, to: str, bid: int | None, req: NewBroadcast, cap: int
) -> BroadcastView:
    with read_recipients_bytes(
        to.encode("utf-8"), "to.json", max_rows=settings.max_rows, max_file_bytes=cap
    ) as table:
        if not table.meta.get("text"):
            raise invalid('to: the JSON needs a "text" member with the message', "to")
        if not (req.sender or table.meta.get("from")):
            raise invalid(
                'to: with shortcodeIgnore false the JSON needs a "from" member (the code)', "to"
            )
        if bid is None:
            return create_from_table(engine, settings, table, req)
        return edit_unstarted(engine, settings, bid, table, req)


def _broadcast(view: BroadcastView, fields: Sequence[str]) -> ET.Element:
    values: dict[str, Any] = {
        "id": view.id,
        "text": view.text,
        "startDate": xml.iso_date(view.start_date, millis=False),
        "endDate": xml.iso_date(view.end_date, millis=False),
        "expectedMessages": view.expected_messages,
        "sentMessages": view.sent_messages,
        "statusDescription": view.status,
        "status": STATUS_NUMBERS.get(view.status, -1),
        "shortcode": view.shortcode,
    }
    return xml.element("broadcast", [(f, values[f]) for f in fields])


CREATED_FIELDS = (
    "id",
    "text",
    "startDate",
    "expectedMessages",
    "sentMessages",
    "statusDescription",
    "shortcode",
)
GET_FIELDS = (
    "id",
    "text",
    "startDate",
    "endDate",
    "expectedMessages",
    "sentMessages",
    "status",
    "shortcode",
)


@seed_method("createBroadcastFromJson")
async def create_from_json(request: web.Request) -> web.Response:
    ctx, limits = request.app[CTX], state(request).limits
    key = await _key(request)
    to = await _to_parameter(request)
    await _check(request, key, CREATE_PARAMS, [digest_bytes(to.encode("utf-8"))])
    raw_id = request.match_info["broadcastId"]
    bid = None if raw_id == NEW_BROADCAST else _broadcast_id(request)
    req = _request_from(request, key)
    view = await blocking(
        request, _store_json, ctx.engine, ctx.settings, to, bid, req, limits.json_max_bytes
    )
    return xml.answer("createBroadcastFromJson", _broadcast(view, CREATED_FIELDS))


# --- getBroadcast, suspend, resume, stop, delete -------------------------------------------

ID_PARAMS = ("instanceId", "broadcastId", "publicKey")


@seed_method("getBroadcast")
async def read_broadcast(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    key = await _signed(request, ID_PARAMS)
    view = await blocking(
        request, get_broadcast, ctx.engine, _broadcast_id(request), key.principal.workspace
    )
    return xml.answer("getBroadcast", _broadcast(view, GET_FIELDS))


@seed_method("suspendBroadcast")
async def suspend(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    key = await _signed(request, ID_PARAMS)
    ws = key.principal.workspace_id
    await blocking(request, control.suspend, ctx.engine, _broadcast_id(request), ws, None)
    return xml.answer("suspendBroadcast")


@seed_method("resumeBroadcast")
async def resume(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    key = await _signed(request, ID_PARAMS)
    bid, ws = _broadcast_id(request), key.principal.workspace_id
    await blocking(request, control.resume, ctx.engine, ctx.settings, ctx.queue, bid, ws)
    return xml.answer("resumeBroadcast")


@seed_method("stopBroadcast")
async def stop(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    key = await _signed(request, ID_PARAMS)
    ws = key.principal.workspace_id
    await blocking(request, control.stop, ctx.engine, _broadcast_id(request), ws)
    return xml.answer("stopBroadcast")


@seed_method("deleteBroadcast")
async def delete(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    key = await _signed(request, ID_PARAMS)
    ws = key.principal.workspace_id
    await blocking(request, control.delete, ctx.engine, _broadcast_id(request), ws)
    return xml.answer("deleteBroadcast")


def path(stem: str, names: Sequence[str]) -> str:
    return f"{BASE}/{stem}/" + "".join(f"{{{n}}}/" for n in names) + "{signature}"


#: (HTTP method, path stem, parameters before {signature}, handler): the OpenAPI lists these.
ROUTES: tuple[tuple[str, str, Sequence[str], Handler], ...] = (
    ("POST", "tools/sendSMSByFile", SEND_PARAMS, send_by_file),
    ("GET", "getShortcodes", SHORTCODE_PARAMS, get_shortcodes),
    ("POST", "createBroadcastFromJson", CREATE_PARAMS, create_from_json),
    ("GET", "getBroadcast", ID_PARAMS, read_broadcast),
    ("GET", "suspendBroadcast", ID_PARAMS, suspend),
    ("GET", "resumeBroadcast", ID_PARAMS, resume),
    ("GET", "stopBroadcast", ID_PARAMS, stop),
    ("DELETE", "broadcast", ID_PARAMS, delete),
)


def add_routes(app: web.Application) -> None:
    """Serve seed 004 (after ``v1.setup``: it shares the v1 state, pools and rate buckets)."""
    for method, stem, names, handler in ROUTES:
        app.router.add_route(method, path(stem, names), handler)
