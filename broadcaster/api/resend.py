"""``POST /v1/broadcasts/{id}/retry-failed`` and ``/reschedule``: second chances for a broadcast.

retry-failed answers 201 with the new broadcast the first time and 200 with the same one on
every later call (``services/resend.py`` holds it to one per source); reschedule moves the start
of a SCHEDULED broadcast. Both are 404 for another workspace's broadcast, 409 when its state
does not allow it.
"""

from __future__ import annotations

from aiohttp import web

from broadcaster.api.bodies import ID, Fields, read_json
from broadcaster.api.broadcasts import _bid
from broadcaster.api.context import CTX
from broadcaster.api.fields import start_date_field, timezone_field
from broadcaster.api.state import blocking, principal
from broadcaster.api.wire import json_answer
from broadcaster.services import resend
from broadcaster.store.db import utcnow


async def retry_failed(request: web.Request) -> web.Response:
    ctx, key, bid = request.app[CTX], principal(request), _bid(request)
    await read_json(request, optional=True)
    made = await blocking(request, resend.retry_failed, ctx.engine, bid, key.workspace_id)
    where = f"/v1/broadcasts/{made.view.id}"
    return json_answer(made.view, status=201 if made.created else 200, headers={"Location": where})


async def reschedule(request: web.Request) -> web.Response:
    ctx, key, bid = request.app[CTX], principal(request), _bid(request)
    f = Fields(await read_json(request))
    tz = timezone_field(f) if f.text("timezone", max_chars=64) is not None else None
    at = start_date_field(f, tz or "UTC", utcnow(), name="at", aliases=(), required=True)
    view = await blocking(
        request,
        resend.reschedule,
        ctx.engine,
        bid,
        at or "now",
        tz,
        key.workspace_id,
        start_now_hint='send "at": "now"',
    )
    return json_answer(view)


def add_routes(app: web.Application) -> None:
    app.router.add_post(f"/v1/broadcasts/{ID}/retry-failed", retry_failed)
    app.router.add_post(f"/v1/broadcasts/{ID}/reschedule", reschedule)
