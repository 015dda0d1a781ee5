"""``/v1/messages``: send one (seed 001 single send), send a batch with placeholders, read one."""

from __future__ import annotations

from aiohttp import web

from broadcaster.api.bodies import (
    ID,
    ID64_MAX,
    MAX_PHONE_CHARS,
    Fields,
    client_ids,
    decode_cursor,
    encode_cursor,
    page_limit,
    path_id,
    read_json,
    recipient_rows,
)
from broadcaster.api.context import CTX
from broadcaster.api.fields import MAX_TEXT_CHARS, SENDER_CHARS, positional_template, region_field
from broadcaster.api.problems import invalid
from broadcaster.api.state import blocking, principal, state
from broadcaster.api.wire import json_answer
from broadcaster.domain.phones import PhoneRefusal, normalize_phone
from broadcaster.domain.segments import measure
from broadcaster.domain.states import MessageStatus
from broadcaster.domain.wire import iso8601, to_wire
from broadcaster.ingest import RecipientTable
from broadcaster.services import queries
from broadcaster.services.broadcasts import NewBroadcast, create_from_table
from broadcaster.services.messages import get_message, send_one

#: Row-error reasons that mean "the number is bad" (the batch answer's ``invalidNumber``).
NUMBER_REASONS = frozenset(r.value for r in PhoneRefusal)


async def send_message(request: web.Request) -> web.Response:
    ctx, key = request.app[CTX], principal(request)
    f = Fields(await read_json(request))
    sender = f.text("from", required=True, max_chars=SENDER_CHARS)
    to = f.text("to", required=True, max_chars=64)
    text = f.text("text", required=True, max_chars=MAX_TEXT_CHARS)
    assert sender is not None and to is not None and text is not None
    region, callbacks = region_field(f), f.callbacks()
    request_dr = f.flag("requestDR", True)  # false: no receipt asked, no client callback
    external_id, client_id = client_ids(f)
    template = positional_template(text)
    if template.positional:
        raise invalid(
            "text: a single message has no placeholders; send params with /v1/messages/batch",
            "text",
        )
    if measure(template.render(())).exceeded:
        raise invalid(
            "text: over 10 segments (1,600 GSM characters, 670 UCS-2)",
            "text",
            slug="segments-exceeded",
            messageStatus=MessageStatus.SEGMENTS_EXCEEDED.value,
        )
    view = await blocking(
        request,
        send_one,
        ctx.engine,
        ctx.settings,
        sender=sender,
        to=to,
        text=text,
        region=region,
        workspace=key.workspace,
        callbacks=callbacks,
        request_dr=request_dr,
        external_id=external_id,
        client_id=client_id,
    )
    out = {
        "from": sender,
        **to_wire(view),
        "requestDR": request_dr,
        "callbacks": list(callbacks),
    }
    return web.json_response(out, status=202, headers={"Location": f"/v1/messages/{view.id}"})


async def send_batch(request: web.Request) -> web.Response:
    ctx, key, limits = request.app[CTX], principal(request), state(request).limits
    f = Fields(await read_json(request))
    sender = f.text("from", required=True, max_chars=SENDER_CHARS)
    text = f.text("text", required=True, max_chars=MAX_TEXT_CHARS)
    name = f.text("name", max_chars=200)
    assert sender is not None and text is not None
    positional_template(text)
    items = f.items(
        "to", required=True, max_items=limits.batch_max_recipients, aliases=("recipients",)
    )
    if not items:
        raise invalid("to: at least one recipient", "to")
    rows = recipient_rows(items, "to", client_ids(f))
    table = RecipientTable(source="batch", format="json", columns=None, meta={}, rows=iter(rows))
    req = NewBroadcast(
        sender=sender,
        text=text,
        name=name or f"batch of {len(rows)}",
        region=region_field(f),
        workspace=key.workspace,
        request_dr=f.flag("requestDR", True),
        callbacks=f.callbacks(),
        max_text_bytes=limits.batch_max_text_bytes,
    )
    view = await blocking(request, create_from_table, ctx.engine, ctx.settings, table, req)
    msgs, errors = await blocking(request, queries.batch_outcome, ctx.engine, view.id)
    queued = any(m["status"] == MessageStatus.QUEUE.value for m in msgs)
    return web.json_response(
        {
            "broadcastId": view.id,
            "from": sender,
            "text": text,
            "status": MessageStatus.QUEUE.value if queued else view.status,
            "date": iso8601(view.created_at),
            "ids": [{"id": m["id"], "mobile": m["recipient"], "status": m["status"]} for m in msgs],
            "invalidNumber": [e["value"] for e in errors if e["reason"] in NUMBER_REASONS],
            "rowErrors": [
                {"line": e["line"], "value": e["value"], "reason": e["reason"]} for e in errors
            ],
        },
        status=202,
        headers={"Location": f"/v1/broadcasts/{view.id}"},
    )


async def read_message(request: web.Request) -> web.Response:
    ctx, key = request.app[CTX], principal(request)
    view = await blocking(
        request, get_message, ctx.engine, path_id(request, what="message"), key.workspace_id
    )
    return json_answer(view)


async def search_recipient(request: web.Request) -> web.Response:
    """A number's messages across the workspace's broadcasts (the dashboard's search)."""
    ctx, key = request.app[CTX], principal(request)
    raw = request.query.get("recipient", "")
    if not raw or len(raw) > MAX_PHONE_CHARS:
        raise invalid(
            f"recipient: a phone number, at most {MAX_PHONE_CHARS} characters", "recipient"
        )
    number = normalize_phone(raw, ctx.settings.default_region)
    if number.e164 is None:
        reason = number.reason.value if number.reason else "invalid"
        raise invalid(f"recipient: not a phone number ({reason})", "recipient")
    page = await blocking(
        request,
        queries.recipient_messages,
        ctx.engine,
        key.workspace_id,
        number.e164,
        after=decode_cursor(request, (ID64_MAX,)),
        limit=page_limit(request),
    )
    return json_answer(
        {
            "recipient": number.e164,
            "items": page.items,
            "nextCursor": encode_cursor(page.next_after),
        }
    )


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/messages", send_message)
    app.router.add_get("/v1/messages", search_recipient)
    app.router.add_post("/v1/messages/batch", send_batch)
    app.router.add_get(f"/v1/messages/{ID}", read_message)
