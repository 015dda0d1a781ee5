"""``/v1/lists`` (static lists of contacts, with counts) and ``/v1/templates`` (prepared messages).

- ``POST /v1/lists`` ``{"name": "vip"}``; ``GET /v1/lists``; ``GET|DELETE /v1/lists/{id}``;
  ``POST|DELETE /v1/lists/{id}/members`` ``{"contactIDs": [1, 2]}``.
- ``POST /v1/templates`` ``{"name", "text", "from", "list"}``; ``GET /v1/templates``;
  ``GET|PATCH|DELETE /v1/templates/{id}``.

Another workspace's list, template or contact is 404 (or, among contactIDs, "no contact").
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from broadcaster.api.bodies import (
    ID,
    ID64_MAX,
    INT32_MAX,
    Fields,
    decode_cursor,
    page_limit,
    path_id,
    read_json,
)
from broadcaster.api.context import CTX
from broadcaster.api.fields import SENDER_CHARS
from broadcaster.api.problems import invalid
from broadcaster.api.state import blocking, principal
from broadcaster.api.wire import json_answer, page_answer
from broadcaster.services import contact_lists, prepared
from broadcaster.services.contacts import LIST_NAME_CHARS
from broadcaster.services.views import Page


def id_page(page: Page[Any]) -> web.Response:
    """A page of contacts, lists or prepared messages, whose cursor is the last id."""
    return page_answer(page.items, page.next_after)


def _after(request: web.Request) -> int:
    after = decode_cursor(request, (INT32_MAX,))
    return after[0] if after else 0


async def _paged(request: web.Request, fn: Callable[..., Page[Any]]) -> web.Response:
    """A page of ``fn`` (a service's keyset listing) for the key's workspace."""
    ctx, key = request.app[CTX], principal(request)
    page = await blocking(
        request, fn, ctx.engine, key.workspace, after=_after(request), limit=page_limit(request)
    )
    return id_page(page)


async def create_list(request: web.Request) -> web.Response:
    ctx, key = request.app[CTX], principal(request)
    f = Fields(await read_json(request))
    name = f.text("name", required=True, max_chars=LIST_NAME_CHARS)
    view = await blocking(request, contact_lists.create_list, ctx.engine, key.workspace, name)
    return json_answer(view, status=201, headers={"Location": f"/v1/lists/{view.id}"})


async def list_lists(request: web.Request) -> web.Response:
    return await _paged(request, contact_lists.list_lists)


def _lid(request: web.Request) -> int:
    return path_id(request, INT32_MAX, "list")


def by_id(
    fn: Callable[..., Any], noun: str, *, max_id: int = INT32_MAX, no_content: bool = False
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """A handler of ``/…/{id}`` that calls ``fn(engine, workspace, id)`` for the key's
    workspace and answers with what it returns (``no_content``: 204)."""

    async def handler(request: web.Request) -> web.Response:
        ctx, key = request.app[CTX], principal(request)
        row_id = path_id(request, max_id, noun)
        got = await blocking(request, fn, ctx.engine, key.workspace, row_id)
        return web.Response(status=204) if no_content else json_answer(got)

    handler.__name__ = handler.__qualname__ = fn.__name__
    return handler


read_list = by_id(contact_lists.get_list, "list")


delete_list = by_id(contact_lists.delete_list, "list", no_content=True)


async def _members(request: web.Request, *, add: bool) -> web.Response:
    ctx, key, lid = request.app[CTX], principal(request), _lid(request)
    f = Fields(await read_json(request))
    ids = f.items("contactIDs", required=True, max_items=contact_lists.MAX_MEMBERS_PER_REQUEST)
    if not all(type(i) is int and 1 <= i <= ID64_MAX for i in ids):
        raise invalid("contactIDs: a list of contactIDs (whole numbers)", "contactIDs")
    got = await blocking(
        request, contact_lists.change_members, ctx.engine, key.workspace, lid, ids, add=add
    )
    return json_answer(got)


async def add_members(request: web.Request) -> web.Response:
    return await _members(request, add=True)


async def remove_members(request: web.Request) -> web.Response:
    return await _members(request, add=False)


def _template_fields(f: Fields, *, required: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": f.text("name", required=required, max_chars=prepared.NAME_CHARS),
        "text": f.text("text", required=required, max_chars=prepared.MAX_TEXT_CHARS),
        "sender": f.text("from", required=required, max_chars=SENDER_CHARS),
    }
    if "list" in f.data:  # null: no list
        out["list"] = f.text("list", max_chars=LIST_NAME_CHARS)
    return out


async def create_template(request: web.Request) -> web.Response:
    ctx, key = request.app[CTX], principal(request)
    fields = _template_fields(Fields(await read_json(request)), required=True)
    view = await blocking(
        request,
        prepared.create_template,
        ctx.engine,
        key.workspace,
        name=fields["name"],
        text=fields["text"],
        sender=fields["sender"],
        list_=fields.get("list"),
    )
    location = f"/v1/templates/{view.id}"
    return json_answer(view, status=201, headers={"Location": location})


async def list_templates(request: web.Request) -> web.Response:
    return await _paged(request, prepared.list_templates)


def _tid(request: web.Request) -> int:
    return path_id(request, INT32_MAX, "template")


read_template = by_id(prepared.get_template, "template")


async def update_template(request: web.Request) -> web.Response:
    ctx, key, tid = request.app[CTX], principal(request), _tid(request)
    fields = _template_fields(Fields(await read_json(request)), required=False)
    view = await blocking(request, prepared.update_template, ctx.engine, key.workspace, tid, fields)
    return json_answer(view)


delete_template = by_id(prepared.delete_template, "template", no_content=True)


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/v1/lists", create_list)
    r.add_get("/v1/lists", list_lists)
    r.add_get(f"/v1/lists/{ID}", read_list)
    r.add_delete(f"/v1/lists/{ID}", delete_list)
    r.add_post(f"/v1/lists/{ID}/members", add_members)
    r.add_delete(f"/v1/lists/{ID}/members", remove_members)
    r.add_post("/v1/templates", create_template)
    r.add_get("/v1/templates", list_templates)
    r.add_get(f"/v1/templates/{ID}", read_template)
    r.add_patch(f"/v1/templates/{ID}", update_template)
    r.add_delete(f"/v1/templates/{ID}", delete_template)
