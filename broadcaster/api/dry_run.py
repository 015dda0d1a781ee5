"""``POST /v1/broadcasts/dry-run``: an uploaded recipient file checked as a broadcast would read
it (the fields of an upload), nothing stored: counts, the first rendered messages, the ETA."""

from __future__ import annotations

from aiohttp import web

from broadcaster.api.bodies import Fields
from broadcaster.api.context import CTX
from broadcaster.api.fields import (
    MAX_TEXT_CHARS,
    SENDER_CHARS,
    parse_text,
    region_field,
    timezone_field,
    window_field,
)
from broadcaster.api.problems import Problem, from_input_error, invalid
from broadcaster.api.state import blocking, principal
from broadcaster.api.uploads import receive_upload
from broadcaster.errors import FileRejected, NotFound
from broadcaster.services.dry_run import dry_run


async def check_upload(request: web.Request) -> web.Response:
    if request.content_type != "multipart/form-data":
        raise Problem(415, "upload the file as multipart/form-data", field="Content-Type")
    ctx, key = request.app[CTX], principal(request)
    async with receive_upload(request) as upload:
        f = Fields(upload.fields, form=True)
        sender = f.text("from", max_chars=SENDER_CHARS, aliases=("shortcode",))
        text = f.text("text", max_chars=MAX_TEXT_CHARS)
        if text is not None:
            parse_text(text)
        try:
            out = await blocking(
                request,
                dry_run,
                ctx.engine,
                ctx.settings,
                upload.path,
                workspace=key.workspace,
                workspace_id=key.workspace_id,
                sender=sender,
                text=text,
                region=region_field(f),
                sheet=f.text("sheet", max_chars=100),
                window=window_field(f),
                tz=timezone_field(f),
            )
        except NotFound as exc:
            raise invalid(f"from: {exc}", "from") from None
        except FileRejected as exc:
            if str(exc.reason).startswith("template uses"):
                raise from_input_error(exc, "text") from None
            raise
    return web.json_response({**out, "source": upload.filename})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/broadcasts/dry-run", check_upload)
