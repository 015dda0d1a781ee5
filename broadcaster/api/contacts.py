"""``/v1/contacts``: create, search, read, change and erase the key's workspace's contacts.

- ``POST /v1/contacts`` ``{"identifiers": [{"type": "MOBILE", "value": "+48…"}], "attributes":
  {"first_name": "Ana"}, "lists": ["vip"]}`` → 201; 409 when an identifier names another contact.
- ``GET /v1/contacts?mobile=…`` (or ``email``, ``external``, ``app_alias``, ``id``; ``list=NAME``),
  cursor pages like the other /v1 lists.
- ``GET|PATCH|DELETE /v1/contacts/{id}``: a PATCH's null identifier value or attribute removes
  it; DELETE erases (docs/contacts.md). Another workspace's contact is 404.
- ``POST /v1/contacts/import``: a recipient file uploaded as multipart/form-data (the ``file``
  part, with ``list``, ``by``, ``region``, ``sheet``, ``columns`` fields), under the broadcast
  uploads' limits → 200 with the import's counts and row errors (``broadcaster contacts import``).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from broadcaster.api.bodies import (
    ID,
    ID64_MAX,
    Fields,
    decode_cursor,
    page_limit,
    path_id,
    read_json,
)
from broadcaster.api.context import CTX
from broadcaster.api.fields import SUPPORTED_REGIONS, region_field
from broadcaster.api.lists import by_id, id_page
from broadcaster.api.problems import invalid
from broadcaster.api.state import blocking, principal, state
from broadcaster.api.uploads import receive_body, receive_upload
from broadcaster.api.wire import json_answer
from broadcaster.domain.contacts import MAX_ATTRIBUTES, VALUE_CHARS
from broadcaster.services import contact_import, contacts

#: Query parameters that search by an identifier, and the type each names.
SEARCH = {
    "mobile": "MOBILE",
    "email": "EMAIL",
    "external": "EXTERNAL",
    "app_alias": "APP_ALIAS",
    "id": "ID",
}
MAX_IDENTIFIERS = 10
#: Text parts of a contact import upload besides its file.
IMPORT_FIELDS = frozenset({"list", "by", "region", "sheet", "columns"})


def _cid(request: web.Request) -> int:
    return path_id(request, ID64_MAX, "contact")


def identifier_pairs(f: Fields, *, nullable: bool) -> list[tuple[object, object]]:
    """The body's ``identifiers`` as (type, value) pairs, shape-checked."""
    items = f.items("identifiers", max_items=MAX_IDENTIFIERS)
    out: list[tuple[object, object]] = []
    for i, item in enumerate(items):
        at = f"identifiers[{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("type"), str):
            raise invalid(f'{at}: an object {{"type": "MOBILE", "value": "…"}}', at)
        value = item.get("value")
        if value is None and not nullable:
            raise invalid(f"{at}.value: is required", f"{at}.value")
        if value is not None and (not isinstance(value, str) or len(value) > VALUE_CHARS):
            raise invalid(f"{at}.value: a string of at most {VALUE_CHARS} characters", at)
        out.append((item["type"], value))
    return out


def _attributes(f: Fields) -> dict[str, Any]:
    value = f.data.get("attributes")
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) > MAX_ATTRIBUTES:
        raise invalid(f"attributes: an object of at most {MAX_ATTRIBUTES} names", "attributes")
    return value


def _lists(f: Fields) -> list[str]:
    items = f.items("lists", max_items=contacts.MAX_LISTS)
    if not all(isinstance(n, str) for n in items):
        raise invalid("lists: list names (strings)", "lists")
    return items


async def create_contact(request: web.Request) -> web.Response:
    ctx, key = request.app[CTX], principal(request)
    f = Fields(await read_json(request))
    view = await blocking(
        request,
        contacts.create_contact,
        ctx.engine,
        key.workspace,
        identifiers=identifier_pairs(f, nullable=False),
        attributes=_attributes(f),
        lists=_lists(f),
        region=region_field(f) or ctx.settings.default_region,
    )
    location = f"/v1/contacts/{view.contact_id}"
    return json_answer(view, status=201, headers={"Location": location})


def _search(request: web.Request) -> tuple[object, object] | None:
    given = [(k, request.query[k]) for k in SEARCH if k in request.query]
    if len(given) > 1:
        raise invalid("search by one identifier at a time", given[1][0])
    if not given:
        return None
    name, value = given[0]
    if len(value) > VALUE_CHARS:
        raise invalid(f"{name}: at most {VALUE_CHARS} characters", name)
    return SEARCH[name], value


def query_region(request: web.Request) -> str | None:
    """``?region=`` for national numbers, else BROADCASTER_DEFAULT_REGION."""
    region = request.query.get("region")
    if region is not None and region.upper() not in SUPPORTED_REGIONS:
        raise invalid(
            f"region: {region[:8]!r} is not an ISO 3166 region code (e.g. MX, GB)", "region"
        )
    return region.upper() if region else request.app[CTX].settings.default_region


async def list_contacts(request: web.Request) -> web.Response:
    ctx, key = request.app[CTX], principal(request)
    in_list = request.query.get("list")
    if in_list is not None and not 1 <= len(in_list) <= contacts.LIST_NAME_CHARS:
        raise invalid(f"list: 1 to {contacts.LIST_NAME_CHARS} characters", "list")
    after = decode_cursor(request, (ID64_MAX,))
    page = await blocking(
        request,
        contacts.list_contacts,
        ctx.engine,
        key.workspace,
        after=after[0] if after else 0,
        limit=page_limit(request),
        identifier=_search(request),
        in_list=in_list,
        region=query_region(request),
    )
    return id_page(page)


read_contact = by_id(contacts.get_contact, "contact", max_id=ID64_MAX)


async def update_contact(request: web.Request) -> web.Response:
    ctx, key, cid = request.app[CTX], principal(request), _cid(request)
    f = Fields(await read_json(request))
    view = await blocking(
        request,
        contacts.update_contact,
        ctx.engine,
        key.workspace,
        cid,
        identifiers=identifier_pairs(f, nullable=True),
        attributes=_attributes(f),
        lists=_lists(f),
        region=region_field(f) or ctx.settings.default_region,
    )
    return json_answer(view)


erase_contact = by_id(contacts.erase_contact, "contact", max_id=ID64_MAX)


async def import_contacts(request: web.Request) -> web.Response:
    ctx, key, limits = request.app[CTX], principal(request), state(request).limits
    receive = (
        receive_upload(request, IMPORT_FIELDS)
        if request.content_type == "multipart/form-data"
        else receive_body(request, IMPORT_FIELDS)  # the file as the body, fields in the query
    )
    async with receive as upload:
        f = Fields(upload.fields, form=True)
        by = (f.text("by", max_chars=10) or "MOBILE").upper()
        if by not in contact_import.KEYS:
            raise invalid(f"by: one of {', '.join(contact_import.KEYS)}", "by")
        report = await blocking(
            request,
            contact_import.import_file,
            ctx.engine,
            ctx.settings,
            upload.path,
            key.workspace,
            f.text("list", max_chars=contacts.LIST_NAME_CHARS),
            by=by,
            region=region_field(f),
            sheet=f.text("sheet", max_chars=100),
            columns=contact_import.parse_columns(f.text("columns", max_chars=10_000)),
            max_file_bytes=limits.upload_max_bytes,
            source=upload.filename,
        )
    return web.json_response(report)


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/v1/contacts", create_contact)
    r.add_post("/v1/contacts/import", import_contacts)
    r.add_get("/v1/contacts", list_contacts)
    r.add_get(f"/v1/contacts/{ID}", read_contact)
    r.add_patch(f"/v1/contacts/{ID}", update_contact)
    r.add_delete(f"/v1/contacts/{ID}", erase_contact)
