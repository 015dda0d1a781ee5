"""``/v1/broadcasts``: create (JSON list or file upload), list, read, control, pages, report."""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web
from sqlalchemy.engine import Engine

from broadcaster.api.bodies import (
    ID,
    ID64_MAX,
    INT32_MAX,
    Fields,
    client_ids,
    decode_cursor,
    encode_cursor,
    is_json,
    page_limit,
    path_id,
    query_choice,
    read_json,
    recipient_rows,
)
from broadcaster.api.context import CTX
from broadcaster.api.fields import (
    MAX_TEXT_CHARS,
    NAME_CHARS,
    SENDER_CHARS,
    parse_text,
    positional_template,
    region_field,
    start_date_field,
    timezone_field,
    validity_field,
    window_field,
)
from broadcaster.api.problems import Problem, from_input_error, invalid
from broadcaster.api.state import STATE_KEY, blocking, principal, state
from broadcaster.api.streaming import WorkspaceSlots, stream_pieces
from broadcaster.api.uploads import receive_upload
from broadcaster.api.wire import json_answer, page_answer
from broadcaster.config import Settings
from broadcaster.domain.states import BroadcastStatus, MessageStatus
from broadcaster.domain.wire import to_wire
from broadcaster.errors import FileRejected, NotFound
from broadcaster.ingest import RecipientTable, open_recipients
from broadcaster.services import control, progress, queries, reports
from broadcaster.services.apikeys import Principal
from broadcaster.services.broadcasts import NewBroadcast, create_from_table, get_broadcast
from broadcaster.services.contact_lists import create_list_broadcast
from broadcaster.services.contacts import LIST_NAME_CHARS
from broadcaster.services.views import BroadcastView
from broadcaster.store.db import utcnow

log = logging.getLogger(__name__)

LISTED_STATUSES = tuple(s.value for s in BroadcastStatus if s is not BroadcastStatus.DELETED)
MESSAGE_STATUSES = tuple(s.value for s in MessageStatus)
#: Reports each workspace streams now (the per-workspace cap of ``report_per_workspace``).
REPORT_SLOTS = web.AppKey("report_slots", WorkspaceSlots)
#: Retry-After of a report refused because the workspace streams its maximum, seconds.
REPORT_RETRY_AFTER_S = 5
#: A timeline cursor is Unix seconds of a bucket, before the year 9000 (the latest start date).
TIMELINE_CURSOR_MAX = 221_845_392_000


def _bid(request: web.Request) -> int:
    """A broadcast id: broadcasts.id is an INTEGER, so larger numbers name no broadcast."""
    return path_id(request, INT32_MAX, "broadcast")


def _new_broadcast(f: Fields, key: Principal, *, text_required: bool) -> NewBroadcast:
    """The broadcast's fields, checked one by one so a refusal names its field."""
    sender = f.text("from", required=text_required, max_chars=SENDER_CHARS, aliases=("shortcode",))
    text = f.text("text", required=text_required, max_chars=MAX_TEXT_CHARS)
    if text is not None:
        parse_text(text)
    tz = timezone_field(f)
    return NewBroadcast(
        sender=sender or "",
        text=text,
        name=f.text("name", max_chars=NAME_CHARS),
        at=start_date_field(f, tz, utcnow()),
        tz=tz,
        region=region_field(f),
        workspace=key.workspace,
        request_dr=f.flag("requestDR", True),
        callbacks=f.callbacks(),
        window=window_field(f),
        validity=validity_field(f),
    )


def _created(view: BroadcastView) -> web.Response:
    links = {
        "self": f"/v1/broadcasts/{view.id}",
        "messages": f"/v1/broadcasts/{view.id}/messages",
        "errors": f"/v1/broadcasts/{view.id}/errors",
        "report": f"/v1/broadcasts/{view.id}/report",
    }
    return json_answer(
        {**to_wire(view), "links": links}, status=201, headers={"Location": links["self"]}
    )


async def _create_from_json(request: web.Request) -> web.Response:
    ctx, key = request.app[CTX], principal(request)
    f = Fields(await read_json(request))
    req = _new_broadcast(f, key, text_required=True)
    assert req.text is not None
    audience = f.text("list", max_chars=LIST_NAME_CHARS)
    if audience is not None:
        return await _create_for_list(request, f, req, audience)
    positional_template(req.text)
    items = f.items("recipients", required=True, max_items=ctx.settings.max_rows, aliases=("to",))
    if not items:
        raise invalid("recipients: at least one recipient", "recipients")
    table = RecipientTable(
        source=req.name or "json",
        format="json",
        columns=None,
        meta={},
        rows=iter(recipient_rows(items, "recipients", client_ids(f))),
    )
    return _created(
        await blocking(request, create_from_table, ctx.engine, ctx.settings, table, req)
    )


async def _create_for_list(
    request: web.Request, f: Fields, req: NewBroadcast, audience: str
) -> web.Response:
    """To the members of a contact list, rendered from their attributes (issue 15)."""
    if f.data.get("recipients") is not None or f.data.get("to") is not None:
        raise invalid("list: give a list or recipients, not both", "list")
    ctx = request.app[CTX]
    try:
        view = await blocking(
            request, create_list_broadcast, ctx.engine, ctx.settings, audience, req
        )
    except NotFound as exc:
        raise invalid(f"list: {exc}", "list") from None
    return _created(view)


def _create_from_file(
    engine: Engine,
    settings: Settings,
    path: Path,
    filename: str,
    sheet: str | None,
    req: NewBroadcast,
    max_file_bytes: int,
) -> BroadcastView:
    with open_recipients(
        path,
        sheet=sheet,
        max_rows=settings.max_rows,
        max_file_bytes=max_file_bytes,
        source=filename,
    ) as table:
        if not (req.text or table.meta.get("text")):
            raise invalid('text: is required (or upload a JSON batch with a "text" field)', "text")
        if not (req.sender or table.meta.get("from")):
            raise invalid('from: is required (or upload a JSON batch with a "from" field)', "from")
        try:
            return create_from_table(engine, settings, table, req)
        except FileRejected as exc:
            if exc.reason.startswith("template uses"):
                raise from_input_error(exc, "text") from None
            raise


async def _create_from_upload(request: web.Request) -> web.Response:
    ctx, key, limits = request.app[CTX], principal(request), state(request).limits
    async with receive_upload(request) as upload:
        f = Fields(upload.fields, form=True)
        req = _new_broadcast(f, key, text_required=False)
        sheet = f.text("sheet", max_chars=100)
        if req.name is None:
            req = replace(req, name=upload.filename[:NAME_CHARS])
        view = await blocking(
            request,
            _create_from_file,
            ctx.engine,
            ctx.settings,
            upload.path,
            upload.filename,
            sheet,
            req,
            limits.upload_max_bytes,
        )
    return _created(view)


async def create_broadcast(request: web.Request) -> web.Response:
    if request.content_type == "multipart/form-data":
        return await _create_from_upload(request)
    if is_json(request):
        return await _create_from_json(request)
    raise Problem(
        415,
        "send the recipients as application/json, or upload a file as multipart/form-data",
        field="Content-Type",
    )


async def list_broadcasts(request: web.Request) -> web.Response:
    ctx, key = request.app[CTX], principal(request)
    status = query_choice(request, "status", LISTED_STATUSES)
    page = await blocking(
        request,
        queries.list_broadcasts,
        ctx.engine,
        key.workspace_id,
        status=status,
        after=decode_cursor(request, (INT32_MAX,)),
        limit=page_limit(request),
    )
    items = await blocking(
        request, progress.with_progress, ctx.engine, ctx.settings, key.workspace_id, page.items
    )
    return page_answer(items, page.next_after)


async def read_broadcast(request: web.Request) -> web.Response:
    ctx, key = request.app[CTX], principal(request)
    return json_answer(
        await blocking(request, get_broadcast, ctx.engine, _bid(request), workspace=key.workspace)
    )


async def _reason(request: web.Request) -> str | None:
    return Fields(await read_json(request, optional=True)).text("reason", max_chars=300)


async def suspend(request: web.Request) -> web.Response:
    ctx, key, bid = request.app[CTX], principal(request), _bid(request)
    reason = await _reason(request)
    await blocking(request, control.suspend, ctx.engine, bid, key.workspace_id, reason)
    return json_answer(
        await blocking(request, get_broadcast, ctx.engine, bid, workspace=key.workspace)
    )


async def resume(request: web.Request) -> web.Response:
    ctx, key, bid = request.app[CTX], principal(request), _bid(request)
    await _reason(request)
    await blocking(
        request, control.resume, ctx.engine, ctx.settings, ctx.queue, bid, key.workspace_id
    )
    return json_answer(
        await blocking(request, get_broadcast, ctx.engine, bid, workspace=key.workspace)
    )


async def stop(request: web.Request) -> web.Response:
    ctx, key, bid = request.app[CTX], principal(request), _bid(request)
    await _reason(request)
    result = await blocking(request, control.stop, ctx.engine, bid, key.workspace_id)
    view = await blocking(request, get_broadcast, ctx.engine, bid, workspace=key.workspace)
    return json_answer({**to_wire(view), "cancelled": result.cancelled})


async def delete(request: web.Request) -> web.Response:
    ctx, key, bid = request.app[CTX], principal(request), _bid(request)
    result = await blocking(request, control.delete, ctx.engine, bid, key.workspace_id)
    return json_answer(result)


async def list_messages(request: web.Request) -> web.Response:
    ctx, key = request.app[CTX], principal(request)
    status = query_choice(request, "status", MESSAGE_STATUSES)
    page = await blocking(
        request,
        queries.list_messages,
        ctx.engine,
        key.workspace_id,
        _bid(request),
        status=status,
        after=decode_cursor(request, (ID64_MAX,)),
        limit=page_limit(request),
    )
    return page_answer(page.items, page.next_after)


async def list_errors(request: web.Request) -> web.Response:
    ctx, key = request.app[CTX], principal(request)
    page = await blocking(
        request,
        queries.list_row_errors,
        ctx.engine,
        key.workspace_id,
        _bid(request),
        after=decode_cursor(request, (INT32_MAX, ID64_MAX)),
        limit=page_limit(request),
    )
    return page_answer(page.items, page.next_after)


async def timeline(request: web.Request) -> web.Response:
    """At most TIMELINE_MAX_BUCKETS of the newest buckets; ``nextCursor`` pages to older ones."""
    ctx, key = request.app[CTX], principal(request)
    step = query_choice(request, "step", queries.TIMELINE_STEPS, "minute")
    before = decode_cursor(request, (TIMELINE_CURSOR_MAX,))
    out = await blocking(
        request,
        queries.timeline,
        ctx.engine,
        key.workspace_id,
        _bid(request),
        step or "minute",
        before=datetime.fromtimestamp(before[0], UTC) if before else None,
    )
    nxt = out.next_before
    cursor = encode_cursor((int(nxt.timestamp()),) if nxt else None)
    return json_answer({"step": out.step, "buckets": out.buckets, "nextCursor": cursor})


async def breakdown(request: web.Request) -> web.Response:
    ctx, key = request.app[CTX], principal(request)
    return json_answer(
        await blocking(request, queries.breakdown, ctx.engine, key.workspace_id, _bid(request))
    )


async def report(request: web.Request) -> web.StreamResponse:
    ctx, key, bid = request.app[CTX], principal(request), _bid(request)
    fmt = query_choice(request, "format", reports.FORMATS, "csv")
    assert fmt is not None
    await blocking(request, queries.require_broadcast, ctx.engine, bid, key.workspace_id)
    return await stream_download(
        request,
        key.workspace_id,
        lambda: reports.report_chunks(ctx.engine, bid, fmt),
        content_type=reports.CONTENT_TYPES[fmt],
        filename=f"broadcast-{bid}.{fmt}",
    )


async def stream_download(
    request: web.Request,
    workspace_id: int,
    make_pieces: Callable[[], Generator[bytes, None, None]],
    *,
    content_type: str,
    filename: str,
) -> web.StreamResponse:
    """A file made piece by piece on the report pool (a report, the opt-out export), counted
    against the workspace's ``report_per_workspace`` downloads at once (429 beyond)."""
    slots, limits = request.app[REPORT_SLOTS], state(request).limits
    if not slots.try_take(workspace_id):
        raise Problem(
            429,
            f"this workspace already downloads {slots.limit} reports at once "
            f"(report_per_workspace); retry when one ends",
            headers={"Retry-After": str(REPORT_RETRY_AFTER_S)},
        )
    try:
        response = web.StreamResponse(
            headers={
                "Content-Type": content_type,
                "Content-Disposition": f'attachment; filename="{filename}"',
            }
        )
        await response.prepare(request)
        try:
            await stream_pieces(
                request,
                response,
                state(request).report_pool,
                make_pieces(),
                write_timeout_s=limits.report_write_timeout_s,
            )
        except ConnectionError as exc:
            log.info("download %s abandoned: %s", filename, exc or type(exc).__name__)
        except Exception:
            # The status line is gone already: cut the connection so the client sees a
            # truncated transfer, never a short file that looks complete.
            log.exception("download %s failed while streaming", filename)
            if request.transport is not None:
                request.transport.close()
        return response
    finally:
        slots.give_back(workspace_id)


def add_routes(app: web.Application) -> None:
    app[REPORT_SLOTS] = WorkspaceSlots(app[STATE_KEY].limits.report_per_workspace)  # type: ignore[attr-defined]
    r = app.router
    r.add_post("/v1/broadcasts", create_broadcast)
    r.add_get("/v1/broadcasts", list_broadcasts)
    r.add_get(f"/v1/broadcasts/{ID}", read_broadcast)
    r.add_delete(f"/v1/broadcasts/{ID}", delete)
    r.add_post(f"/v1/broadcasts/{ID}/suspend", suspend)
    r.add_post(f"/v1/broadcasts/{ID}/resume", resume)
    r.add_post(f"/v1/broadcasts/{ID}/stop", stop)
    r.add_get(f"/v1/broadcasts/{ID}/messages", list_messages)
    r.add_get(f"/v1/broadcasts/{ID}/errors", list_errors)
    r.add_get(f"/v1/broadcasts/{ID}/report", report)
    r.add_get(f"/v1/broadcasts/{ID}/timeline", timeline)
    r.add_get(f"/v1/broadcasts/{ID}/breakdown", breakdown)
