"""Inbound (MO) webhooks, the inbound list, the suppression list and workspace settings.

- ``POST|GET /v1/inbound/{account}?secret=…``: public like ``/v1/dlr/{account}`` and checked
  with the same secret (the account's ``dlr_secret``, else ``BROADCASTER_DLR_SECRET``); the body
  (JSON, form) or the query is read by that route's adapter (``providers/inbound.py``).
- ``GET /v1/inbound``: the key's workspace's inbound messages, newest first (``?before=ID``).
- ``GET|POST|DELETE /v1/optouts``; ``GET /v1/optouts.csv`` (export), ``POST /v1/optouts.csv``
  (import, ``text/csv`` body).
- ``GET|PUT /v1/inbound-settings``: keyword lists, reply texts, inbound callback URL.
"""

from __future__ import annotations

import hmac

from aiohttp import web

from broadcaster.api.bodies import Fields, read_body, read_json
from broadcaster.api.broadcasts import stream_download
from broadcaster.api.context import CTX
from broadcaster.api.fields import SUPPORTED_REGIONS
from broadcaster.api.problems import Problem, from_input_error, invalid
from broadcaster.api.receipts import gateway_payload
from broadcaster.api.state import blocking, principal, state
from broadcaster.api.wire import json_answer
from broadcaster.errors import InputError, NotFound
from broadcaster.net import guard as netguard
from broadcaster.providers.inbound import parse_for
from broadcaster.providers.registry import receipt_secret
from broadcaster.services import inbound, optouts

#: Digits of an E.164 number at most, with '+' (the column's width is 20).
NUMBER_CHARS = 20
DEFAULT_PAGE = 100
#: Longest number as typed (spaces, dashes, brackets) that is read at all.
MAX_NUMBER_INPUT = 40
ID64_MAX = 2**63 - 1


async def receive_inbound(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    name = request.match_info["account"]
    secret = request.query.get("secret", "")
    if not hmac.compare_digest(secret.encode(), receipt_secret(ctx.settings, name).encode()):
        raise web.HTTPUnauthorized(text="bad or missing inbound secret")
    try:
        provider = ctx.provider_for(name)
    except (KeyError, ValueError):
        raise web.HTTPNotFound(text=f"no provider {name!r}") from None
    try:
        msg = parse_for(provider, await gateway_payload(request, "inbound", octets=True))
    except (ValueError, KeyError, TypeError) as exc:
        raise web.HTTPBadRequest(text=f"unreadable inbound message: {exc}") from None
    got = await blocking(request, inbound.receive, ctx.engine, ctx.settings, name, msg)
    return json_answer(got)


def _int_query(
    request: web.Request, name: str, default: int | None, maximum: int = ID64_MAX
) -> int | None:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not raw.isascii() or not raw.isdigit() or len(raw) > 19 or not 1 <= int(raw) <= maximum:
        raise invalid(f"{name}: must be an integer from 1 to {maximum}", name)
    return int(raw)


async def get_inbound(request: web.Request) -> web.Response:
    ctx, key = request.app[CTX], principal(request)
    before = _int_query(request, "before", None)
    limit = _int_query(request, "limit", DEFAULT_PAGE, inbound.MAX_PAGE) or DEFAULT_PAGE
    items = await blocking(
        request, inbound.list_inbound, ctx.engine, key.workspace, before=before, limit=limit
    )
    nxt = items[-1].id if len(items) >= min(limit, inbound.MAX_PAGE) else None
    return json_answer({"items": items, "next": nxt})


async def get_optouts(request: web.Request) -> web.Response:
    ctx, key = request.app[CTX], principal(request)
    after = request.query.get("after", "")
    if len(after) > NUMBER_CHARS:
        raise invalid(f"after: at most {NUMBER_CHARS} characters", "after")
    if not all(c == "+" or "0" <= c <= "9" for c in after):  # a NUL made PostgreSQL fail (500)
        raise invalid(
            "after: an E.164 number (+ and ASCII digits), as the last page ended", "after"
        )
    limit = _int_query(request, "limit", DEFAULT_PAGE, optouts.MAX_PAGE) or DEFAULT_PAGE
    items = await blocking(
        request, optouts.list_optouts, ctx.engine, key.workspace, after=after, limit=limit
    )
    nxt = items[-1].number if len(items) >= min(limit, optouts.MAX_PAGE) else None
    return json_answer({"items": items, "next": nxt})


def _region(request: web.Request, f: Fields | None = None) -> str | None:
    """For national numbers: the body's or query's ``region``, else BROADCASTER_DEFAULT_REGION."""
    region = (f.text("region", max_chars=3) if f else None) or request.query.get("region")
    if region is not None and region.upper() not in SUPPORTED_REGIONS:
        raise invalid(
            f"region: {region[:8]!r} is not an ISO 3166 region code (e.g. MX, GB)", "region"
        )
    region = region or request.app[CTX].settings.default_region
    return region.upper() if region else None


async def post_optout(request: web.Request) -> web.Response:
    ctx, key = request.app[CTX], principal(request)
    f = Fields(await read_json(request))
    number = f.text("number", required=True, max_chars=MAX_NUMBER_INPUT)
    detail = f.text("detail", max_chars=200)
    assert number is not None
    try:
        entry = await blocking(
            request,
            optouts.add_optout,
            ctx.engine,
            key.workspace,
            number,
            region=_region(request, f),
            detail=detail,
        )
    except InputError as exc:
        raise from_input_error(exc, "number") from None
    return json_answer(entry, status=201)


async def delete_optout(request: web.Request) -> web.Response:
    ctx, key = request.app[CTX], principal(request)
    number = request.query.get("number", "")
    if not number or len(number) > MAX_NUMBER_INPUT:
        raise invalid(
            f"number: 1 to {MAX_NUMBER_INPUT} characters (?number=+15551234567)", "number"
        )
    try:
        await blocking(
            request,
            optouts.remove_optout,
            ctx.engine,
            key.workspace,
            number,
            region=_region(request),
        )
    except InputError as exc:
        raise from_input_error(exc, "number") from None
    except NotFound as exc:
        raise Problem(404, str(exc)) from None
    return web.Response(status=204)


async def export_optouts(request: web.Request) -> web.StreamResponse:
    """The suppression list as CSV, streamed page by page (never built in memory)."""
    ctx, key = request.app[CTX], principal(request)
    return await stream_download(
        request,
        key.workspace_id,
        lambda: optouts.export_pieces(ctx.engine, key.workspace),
        content_type="text/csv; charset=utf-8",
        filename="optouts.csv",
    )


async def import_optouts(request: web.Request) -> web.Response:
    ctx, key = request.app[CTX], principal(request)
    raw = await read_body(request, state(request).limits.json_max_bytes)
    if not raw.strip():
        raise invalid("the body is empty: send the CSV (text/csv, number[,detail] per line)")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise invalid("the CSV is not UTF-8") from None
    try:
        got = await blocking(
            request, optouts.import_csv, ctx.engine, key.workspace, text, region=_region(request)
        )
    except InputError as exc:
        raise from_input_error(exc) from None
    return web.json_response(got)


async def get_settings(request: web.Request) -> web.Response:
    ctx, key = request.app[CTX], principal(request)
    got = await blocking(request, inbound.workspace_settings, ctx.engine, key.workspace)
    return web.json_response(got)


async def put_settings(request: web.Request) -> web.Response:
    ctx, key = request.app[CTX], principal(request)
    body = await read_json(request)
    if not isinstance(body, dict):
        raise invalid("the body must be a JSON object")
    url = body.get("inbound_callback_url")
    try:
        if url is not None:
            if not isinstance(url, str):
                raise InputError("inbound_callback_url: must be a URL")
            netguard.check_callback_url_static(
                url, allow_private=ctx.settings.callback_allow_private
            )
        got = await blocking(request, inbound.update_settings, ctx.engine, key.workspace, body)
    except InputError as exc:
        raise from_input_error(exc) from None
    return web.json_response(got)


def add_routes(app: web.Application) -> None:
    app.router.add_route("POST", "/v1/inbound/{account}", receive_inbound)
    app.router.add_route("GET", "/v1/inbound/{account}", receive_inbound)
    app.router.add_get("/v1/inbound", get_inbound)
    app.router.add_get("/v1/optouts", get_optouts)
    app.router.add_post("/v1/optouts", post_optout)
    app.router.add_delete("/v1/optouts", delete_optout)
    app.router.add_get("/v1/optouts.csv", export_optouts)
    app.router.add_post("/v1/optouts.csv", import_optouts)
    app.router.add_get("/v1/inbound-settings", get_settings)
    app.router.add_put("/v1/inbound-settings", put_settings)
