"""``/v1/dlr/{provider}``: delivery receipts from gateways, authenticated by a secret.

``{provider}`` is a route: a built-in provider or an account of ``BROADCASTER_ACCOUNTS``. An
account may carry its own ``dlr_secret``; the others use ``BROADCASTER_DLR_SECRET``. A receipt
applies only to messages sent through that route, and a message of another route is answered
exactly like an unknown id (``known: false``), so a route learns nothing of another's messages.

Gateways post JSON (Messangi), form data, or call with a query string (Kannel); all are read
into one dict and handed to the provider's parser. Receipts arriving together are stored
together (``broadcaster/services/receipt_groups.py``); each answer waits for its group's commit.
"""

from __future__ import annotations

import functools
import hmac
import json
import logging
import urllib.parse
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from broadcaster.api.context import CTX
from broadcaster.providers.registry import receipt_secret
from broadcaster.services.receipt_groups import ReceiptGroups
from broadcaster.services.receipts import apply_receipts

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
GROUPS_KEY = web.AppKey("receipt_groups", ReceiptGroups)


def raw_query(request: web.Request) -> dict[str, str | bytes]:
    """The query's fields as sent: text where a value is UTF-8, else its bytes.

    ``request.query`` decodes every value as UTF-8 and replaces what is not: a gateway that
    puts a message's own octets in the query (Kannel's ``%a`` of a UCS-2 MO is UTF-16BE) would
    lose them. The first of repeated fields counts, as in ``request.query``.
    """
    fields: dict[str, str | bytes] = {}
    pairs = urllib.parse.parse_qsl(
        request.rel_url.raw_query_string, keep_blank_values=True, encoding="latin-1"
    )
    for key, value in pairs:
        octets = value.encode("latin-1")
        try:
            fields.setdefault(key, octets.decode("utf-8"))
        except UnicodeDecodeError:
            fields.setdefault(key, octets)
    return fields


async def gateway_payload(
    request: web.Request, what: str = "receipt", *, octets: bool = False
) -> dict[str, Any]:
    """A gateway's fields from the query and a JSON or form body (``what`` names it in errors).

    ``octets``: a query value that is not UTF-8 comes as its bytes (:func:`raw_query`), for a
    parser that knows the value's charset from another field.
    """
    query: Mapping[str, Any] = raw_query(request) if octets else request.query
    data: dict[str, Any] = {k: v for k, v in query.items() if k != "secret"}
    if request.method == "POST" and request.can_read_body:
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except ValueError:
                raise web.HTTPBadRequest(text=f"{what} body is not JSON") from None
            if not isinstance(body, dict):
                raise web.HTTPBadRequest(text=f"{what} body must be a JSON object")
            data.update(body)
        else:
            data.update({k: v for k, v in (await request.post()).items() if isinstance(v, str)})
    return data


async def receive_receipt(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    name = request.match_info["provider"]
    secret = request.query.get("secret", "")
    expected = receipt_secret(ctx.settings, name)
    if not hmac.compare_digest(secret.encode(), expected.encode()):
        raise web.HTTPUnauthorized(text="bad or missing receipt secret")
    try:
        provider = ctx.provider_for(name)
    except (KeyError, ValueError):
        raise web.HTTPNotFound(text=f"no provider {name!r}") from None
    try:
        receipt = provider.parse_receipt(await gateway_payload(request))
    except (ValueError, KeyError, TypeError) as exc:
        raise web.HTTPBadRequest(text=f"unreadable receipt: {exc}") from None
    # the connection: a group whose every recent connection is waiting in it starts at once
    result = await request.app[GROUPS_KEY].submit(name, receipt, request.protocol)
    return web.json_response(
        text=_answer(result.applied, result.status, result.message_id is not None)
    )


@functools.lru_cache(maxsize=64)
def _answer(applied: bool, status: str | None, known: bool) -> str:
    """A receipt's JSON answer: a handful of shapes, each serialised once, not per receipt."""
    return json.dumps({"applied": applied, "status": status, "known": known})


async def _start_groups(app: web.Application) -> None:
    ctx = app[CTX]
    apply = functools.partial(
        apply_receipts,
        ctx.engine,
        allow_private=ctx.settings.callback_allow_private,
        default_provider=ctx.settings.provider,
    )
    app[GROUPS_KEY] = ReceiptGroups(apply)


async def _close_groups(app: web.Application) -> None:
    await app[GROUPS_KEY].close()


def add_routes(app: web.Application) -> None:
    app.on_startup.append(_start_groups)
    app.on_cleanup.append(_close_groups)
    app.router.add_route("POST", "/v1/dlr/{provider}", receive_receipt)
    app.router.add_route("GET", "/v1/dlr/{provider}", receive_receipt)
