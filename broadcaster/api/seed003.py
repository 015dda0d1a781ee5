"""Seed 003's (Engage) REST face at ``/api/rest/...``, behind the same API keys as ``/v1``.

- ``POST /api/rest/contact/get`` ``{"type": "MOBILE", "value": "48505606707"}`` → 200 with the
  contact (``contactID``, ``identifiers``…), 400 when none has that identifier (as the seed says).
- ``POST /api/rest/message/sendSingle?messageId=M&recipientId=R`` ``{"parameters": [...]}`` →
  204 once prepared message M is stored for contact R (sent by the workers like any broadcast);
  R joins M's list. 400 for an unknown message or contact, no mobile, a suppressed number or a
  placeholder nothing fills. Parameters are values of ``{0}``, ``{1}``… or
  ``{"name": "first_name", "value": "Ana"}`` objects, which win over the contact's attributes.

Both are faces over :mod:`services.contacts` and :mod:`services.prepared`; every refusal is a
problem document with status 400 (the seed's only error status).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal

from aiohttp import web

from broadcaster.api.bodies import INT32_MAX, Fields, read_json, scalar_text
from broadcaster.api.context import CTX
from broadcaster.api.problems import Problem
from broadcaster.api.state import blocking, principal
from broadcaster.api.wire import json_answer
from broadcaster.domain.contacts import ATTRIBUTE_VALUE_CHARS, VALUE_CHARS
from broadcaster.errors import InputError, NotFound
from broadcaster.services import contacts, prepared

BASE = "/api/rest"
MAX_PARAMETERS = 100
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _seed400(fn: Handler) -> Handler:
    """Seed 003 answers 400 for every refusal: input, a missing contact or message."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await fn(request)
        except (InputError, NotFound) as exc:
            raise Problem(400, str(exc)) from None
        except Problem as exc:
            if exc.status in (404, 422):
                raise Problem(400, exc.detail, field=exc.field) from None
            raise

    return wrapped


@_seed400
async def contact_get(request: web.Request) -> web.Response:
    ctx, key = request.app[CTX], principal(request)
    f = Fields(await read_json(request))
    kind = f.text("type", required=True, max_chars=20)
    value = f.data.get("value")
    if value is None:
        raise Problem(400, "value: is required", field="value")
    if (
        isinstance(value, bool)
        or not isinstance(value, (str, int))
        or len(str(value)) > VALUE_CHARS
    ):
        raise Problem(400, f"value: a string of at most {VALUE_CHARS} characters", field="value")
    view = await blocking(
        request,
        contacts.find_contact,
        ctx.engine,
        key.workspace,
        kind,
        str(value),
        ctx.settings.default_region,
    )
    return json_answer(view)


def _query_id(request: web.Request, name: str) -> int:
    raw = request.query.get(name, "")
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 10 and 1 <= int(raw) <= INT32_MAX):
        raise Problem(400, f"{name}: a positive whole number is required", field=name)
    return int(raw)


def _parameters(f: Fields) -> tuple[list[str], dict[str, str]]:
    """The seed's ``parameters``: scalars fill {0}, {1}…; {"name", "value"} objects fill {name}."""
    positional: list[str] = []
    named: dict[str, str] = {}
    for i, item in enumerate(f.items("parameters", max_items=MAX_PARAMETERS)):
        at = f"parameters[{i}]"
        if isinstance(item, dict):
            name, value = item.get("name"), item.get("value")
            if not isinstance(name, str) or not name.isidentifier() or len(name) > 64:
                raise Problem(400, f"{at}.name: a placeholder name", field=at)
            named[name] = scalar_text(_scalar(value, f"{at}.value"), at)
        else:
            positional.append(scalar_text(_scalar(item, at), at))
    too_long = [v for v in [*positional, *named.values()] if len(v) > ATTRIBUTE_VALUE_CHARS]
    if too_long:
        raise Problem(400, f"parameters: values of at most {ATTRIBUTE_VALUE_CHARS} characters")
    return positional, named


def _scalar(value: object, at: str) -> object:
    """A parameter value: a string or a number (null and true/false fill nothing)."""
    if value is None or isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
        raise Problem(400, f"{at}: a string or a number", field=at)
    return value


@_seed400
async def send_single(request: web.Request) -> web.Response:
    ctx, key = request.app[CTX], principal(request)
    message_id = _query_id(request, "messageId")
    recipient_id = _query_id(request, "recipientId")
    positional, named = _parameters(Fields(await read_json(request, optional=True)))
    await blocking(
        request,
        prepared.send_single,
        ctx.engine,
        ctx.settings,
        key.workspace,
        message_id,
        recipient_id,
        positional=positional,
        named=named,
    )
    return web.Response(status=204)


def add_routes(app: web.Application) -> None:
    """Serve seed 003 beside ``/v1`` (after ``v1.setup``: same keys, pools and rate buckets)."""
    app.router.add_post(f"{BASE}/contact/get", contact_get)
    app.router.add_post(f"{BASE}/message/sendSingle", send_single)
