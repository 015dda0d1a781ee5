"""``/v1/apikeys``: a workspace's own API keys, for the dashboard's keys page.

A key lists, creates and revokes keys of its own workspace only (another workspace's prefix is
404, like any id of another tenant); a new key's secrets are in the 201 answer and never again.
"""

from __future__ import annotations

from aiohttp import web

from broadcaster.api.bodies import Fields, read_json
from broadcaster.api.context import CTX
from broadcaster.api.state import blocking, principal, state
from broadcaster.domain.wire import iso8601, to_wire
from broadcaster.services import apikeys

#: A prefix as the path names it: the 12 hex characters after ``bk_``.
PREFIX = r"{prefix:[0-9a-f]{12}}"


async def list_keys(request: web.Request) -> web.Response:
    ctx, key = request.app[CTX], principal(request)
    rows = await blocking(request, apikeys.list_keys, ctx.engine, key.workspace)
    items = [
        {
            "prefix": r.prefix,
            "createdAt": iso8601(r.created_at),
            "revokedAt": iso8601(r.revoked_at),
            "signing": r.signing,
            "current": r.prefix == key.prefix,
        }
        for r in rows
    ]
    return web.json_response({"items": items})


async def create_key(request: web.Request) -> web.Response:
    ctx, key = request.app[CTX], principal(request)
    signing = Fields(await read_json(request, optional=True)).flag("signing", False)
    made = await blocking(
        request,
        apikeys.create_key,
        ctx.engine,
        key.workspace,
        signing=signing,
        max_live=state(request).limits.keys_per_workspace,
    )
    return web.json_response(to_wire(made), status=201)


async def revoke_key(request: web.Request) -> web.Response:
    ctx, key = request.app[CTX], principal(request)
    out = await blocking(
        request, apikeys.revoke_key, ctx.engine, request.match_info["prefix"], key.workspace_id
    )
    return web.json_response(to_wire(out))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v1/apikeys", list_keys)
    app.router.add_post("/v1/apikeys", create_key)
    app.router.add_delete(f"/v1/apikeys/{PREFIX}", revoke_key)
