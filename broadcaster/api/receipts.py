"""``/v1/dlr/{provider}``: delivery receipts from gateways, authenticated by a shared secret.

Gateways post JSON (Messangi), form data, or call with a query string (Kannel); all are read
into one dict and handed to the provider's parser.
"""

from __future__ import annotations

import hmac
import logging
from typing import Any

from aiohttp import web

from broadcaster.services.receipts import apply_receipt

log = logging.getLogger(__name__)
routes = web.RouteTableDef()


async def _payload(request: web.Request) -> dict[str, Any]:
    data: dict[str, Any] = {k: v for k, v in request.query.items() if k != "secret"}
    if request.method == "POST" and request.can_read_body:
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except ValueError:
                raise web.HTTPBadRequest(text="receipt body is not JSON") from None
            if not isinstance(body, dict):
                raise web.HTTPBadRequest(text="receipt body must be a JSON object")
            data.update(body)
        else:
            data.update({k: v for k, v in (await request.post()).items() if isinstance(v, str)})
    return data


async def receive_receipt(request: web.Request) -> web.Response:
    ctx = request.app["ctx"]
    name = request.match_info["provider"]
    secret = request.query.get("secret", "")
    if not hmac.compare_digest(secret.encode(), ctx.settings.dlr_secret.encode()):
        raise web.HTTPUnauthorized(text="bad or missing receipt secret")
    try:
        provider = ctx.provider_for(name)
    except (KeyError, ValueError):
        raise web.HTTPNotFound(text=f"no provider {name!r}") from None
    try:
        receipt = provider.parse_receipt(await _payload(request))
    except (ValueError, KeyError, TypeError) as exc:
        raise web.HTTPBadRequest(text=f"unreadable receipt: {exc}") from None
    result = apply_receipt(
        ctx.engine, name, receipt, allow_private=ctx.settings.callback_allow_private
    )
    return web.json_response(
        {"applied": result.applied, "status": result.status, "known": result.message_id is not None}
    )


def add_routes(app: web.Application) -> None:
    app.router.add_route("POST", "/v1/dlr/{provider}", receive_receipt)
    app.router.add_route("GET", "/v1/dlr/{provider}", receive_receipt)
