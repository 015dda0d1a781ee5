"""``/v1/codes``: the workspace's sender codes (seed 004 getShortcodes) and registering one.

A workspace may register a new code with its kind and rate. It may not change an existing one
(409): which gateway and account a code sends through is the operator's business
(``broadcaster codes add --provider --account``), and an API key must not be able to reroute it.
Nor may it take a code another workspace owns (409, without naming that workspace): only an
operator shares a code (``broadcaster codes share CODE --workspace W``).
"""

from __future__ import annotations

from aiohttp import web
from sqlalchemy.exc import IntegrityError

from broadcaster.api.bodies import Fields, read_json
from broadcaster.api.context import CTX
from broadcaster.api.fields import SENDER_CHARS
from broadcaster.api.problems import Problem, from_input_error, invalid
from broadcaster.api.state import blocking, principal
from broadcaster.constants import MAX_MPS, MIN_MPS
from broadcaster.domain.wire import to_wire
from broadcaster.errors import Conflict, InputError, NotFound
from broadcaster.services.codes import (
    KINDS,
    add_code,
    get_code,
    list_codes,
    remove_code,
    validate_code,
)


async def get_codes(request: web.Request) -> web.Response:
    ctx, key = request.app[CTX], principal(request)
    codes = await blocking(request, list_codes, ctx.engine, ctx.settings, workspace=key.workspace)
    return web.json_response({"items": [c.as_dict() for c in codes]})


async def post_code(request: web.Request) -> web.Response:
    ctx, key = request.app[CTX], principal(request)
    f = Fields(await read_json(request))
    code = f.text("code", required=True, max_chars=SENDER_CHARS)
    kind = f.text("kind", required=True, max_chars=16)
    mps = f.number("mps", minimum=0, maximum=MAX_MPS)
    if mps is not None and mps < MIN_MPS:
        raise invalid(f"mps: must be at least {MIN_MPS:g} messages/s", "mps")
    assert code is not None and kind is not None
    if kind not in KINDS:
        raise invalid(f"kind: must be one of {', '.join(KINDS)}", "kind")
    try:
        validate_code(code, kind, mps)
    except InputError as exc:
        raise from_input_error(exc, "code") from None
    try:
        await blocking(request, get_code, ctx.engine, ctx.settings, code, key.workspace_id)
    except NotFound:
        pass
    else:
        raise Problem(
            409,
            f"sender code {code!r} is already registered; the operator changes it",
            field="code",
        )
    try:
        created = await blocking(
            request,
            add_code,
            ctx.engine,
            ctx.settings,
            code,
            kind,
            mps=mps,
            workspace=key.workspace,
        )
    except IntegrityError:  # registered by a concurrent request between the look-up and the insert
        raise Problem(409, f"sender code {code!r} is already registered", field="code") from None
    except Conflict:  # owned by another workspace: say so without naming it
        raise Problem(
            409,
            f"sender code {code!r} belongs to another workspace; "
            "only an operator can share it with yours",
            field="code",
            slug="code-taken",
        ) from None
    except InputError as exc:  # the default provider cannot send (no such gateway configured)
        raise from_input_error(exc, "code") from None
    return web.json_response(created.as_dict(), status=201, headers={"Location": "/v1/codes"})


async def delete_code(request: web.Request) -> web.Response:
    """The workspace's own code only (404 for one it has not); 409 while a broadcast that is not
    finished sends from it."""
    ctx, key = request.app[CTX], principal(request)
    code = request.match_info["code"]
    removed = await blocking(request, remove_code, ctx.engine, code, key.workspace)
    return web.json_response(to_wire(removed))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v1/codes", get_codes)
    app.router.add_post("/v1/codes", post_code)
    app.router.add_delete("/v1/codes/{code}", delete_code)
