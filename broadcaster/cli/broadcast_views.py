"""``broadcaster broadcast list | messages | report``: what broadcasts hold, page by page.

The same reads as ``GET /v1/broadcasts``, ``/v1/broadcasts/{id}/messages`` and
``/v1/broadcasts/{id}/report`` (``services/queries.py``, ``services/reports.py``): ``--json``
prints the HTTP bodies, ``nextCursor`` included, and ``--cursor`` takes it back.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich import box
from rich.table import Column, Table

from broadcaster.cli._output import (
    ASCII_INT,
    console,
    emit,
    engine,
    handles_errors,
    json_option,
    safe,
    settings,
    short_time,
)
from broadcaster.cli.broadcast import ANY_WORKSPACE, broadcast
from broadcaster.constants import ID64_MAX, INT32_MAX
from broadcaster.domain.states import BroadcastStatus, MessageStatus
from broadcaster.domain.wire import decode_cursor, encode_cursor
from broadcaster.errors import InputError

LISTED = [s.value for s in BroadcastStatus if s is not BroadcastStatus.DELETED]
#: Most items one page shows (the HTTP API's page_max).
PAGE_MAX = 500


class Cursor(click.ParamType):
    """A ``nextCursor`` a previous page printed (``--json``, or the hint under a table)."""

    name = "cursor"

    def __init__(self, maxima: tuple[int, ...]) -> None:
        self.maxima = maxima

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, tuple):
            return value
        try:
            return decode_cursor(str(value), self.maxima)
        except ValueError:
            self.fail(f"{safe(value)} is not a cursor a previous page printed", param, ctx)


LIMIT = click.option(
    "--limit", type=click.IntRange(1, PAGE_MAX), default=50, show_default=True, help="Page size."
)


def _page_out(page: Any) -> dict[str, Any]:
    return {"items": page.items, "nextCursor": encode_cursor(page.next_after)}


def _next_hint(data: dict[str, Any], command: str) -> None:
    if data["nextCursor"]:
        console.print(f"more: {command} --cursor {data['nextCursor']}", highlight=False)


def _render_list(data: dict[str, Any]) -> None:
    """One line per broadcast that fits an 80-column terminal: the counters as
    expected/sent/delivered/failed, then progress and the ETA (as the dashboard's list)."""
    t = Table(
        "id",
        Column("name", overflow="fold", min_width=8, ratio=1),
        Column("status", no_wrap=True),
        Column("start", no_wrap=True),
        Column("exp/sent/dlv/fail", justify="right", no_wrap=True),
        Column("done", justify="right", no_wrap=True),
        Column("ETA", justify="right", no_wrap=True),
        box=box.SIMPLE_HEAD,
    )
    for b in data["items"]:
        counts = "/".join(
            f"{b[k]:,}"
            for k in ("expectedMessages", "sentMessages", "deliveredMessages", "failedMessages")
        )
        t.add_row(
            str(b["id"]),
            safe(b["name"]),
            safe(b["status"]),
            safe(short_time(b["startDate"])),
            counts,
            "" if b.get("progress") is None else f"{100 * b['progress']:.0f}%",
            duration(b.get("etaSeconds")),
        )
    console.print(t)
    if not data["items"]:
        console.print("no broadcasts", highlight=False)
    _next_hint(data, "broadcaster broadcast list")


def duration(seconds: int | None) -> str:
    """An ETA as ``45 s``, ``3 min 20 s`` or ``2 h 05 min``; empty when there is none."""
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


@broadcast.command(
    "list",
    epilog="Example: broadcaster broadcast list --status RUNNING --workspace acme --json",
)
@click.option("--status", type=click.Choice(LISTED), help="Only broadcasts in this state.")
@click.option("--workspace", default="default", show_default=True, help="Whose broadcasts.")
@LIMIT
@click.option("--cursor", type=Cursor((INT32_MAX,)), help="The next page (printed by the last).")
@json_option
@handles_errors
def broadcast_list(
    status: str | None,
    workspace: str,
    limit: int,
    cursor: tuple[int, ...] | None,
    as_json: bool,
) -> None:
    """Broadcasts of a workspace, newest first (counters as the poller last saw them), with
    progress and the ETA from the segments left and the code's rate, as GET /v1/broadcasts."""
    from broadcaster.services import progress, queries

    eng = engine()
    ws = queries.workspace_scope(eng, workspace)
    assert ws is not None
    page = queries.list_broadcasts(eng, ws, status=status, after=cursor, limit=limit)
    items = progress.with_progress(eng, settings(), ws, page.items)
    emit({"items": items, "nextCursor": encode_cursor(page.next_after)}, as_json, _render_list)


def _render_messages(broadcast_id: int) -> Any:
    def render(data: dict[str, Any]) -> None:
        t = Table("id", "line", "to", "status", "attempts", Column("error", overflow="fold"))
        for m in data["items"]:
            t.add_row(
                str(m["id"]),
                "" if m["line"] is None else str(m["line"]),
                safe(m["to"]),
                safe(m["status"]),
                str(m["attempts"]),
                safe(m["error"] or ""),
            )
        console.print(t)
        _next_hint(data, f"broadcaster broadcast messages {broadcast_id}")

    return render


@broadcast.command(
    "messages",
    epilog="Example: broadcaster broadcast messages 12 --status UNDELIV --limit 100",
)
@click.argument("broadcast_id", type=ASCII_INT)
@click.option(
    "--status", type=click.Choice([s.value for s in MessageStatus]), help="Only this status."
)
@ANY_WORKSPACE
@LIMIT
@click.option("--cursor", type=Cursor((ID64_MAX,)), help="The next page (printed by the last).")
@json_option
@handles_errors
def broadcast_messages(
    broadcast_id: int,
    status: str | None,
    workspace: str | None,
    limit: int,
    cursor: tuple[int, ...] | None,
    as_json: bool,
) -> None:
    """A broadcast's messages in id order, a page at a time, with their attempts and errors."""
    from broadcaster.services import queries

    eng = engine()
    page = queries.list_messages(
        eng,
        queries.workspace_scope(eng, workspace),
        broadcast_id,
        status=status,
        after=cursor,
        limit=limit,
    )
    emit(_page_out(page), as_json, _render_messages(broadcast_id))


@broadcast.command(
    "report",
    epilog="Example: broadcaster broadcast report 12 --format xlsx -o results.xlsx",
)
@click.argument("broadcast_id", type=ASCII_INT)
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "xlsx"]), default="csv", show_default=True
)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, writable=True, allow_dash=True),
    help="File to write (- for standard output).",
)
@ANY_WORKSPACE
@json_option
@handles_errors
def broadcast_report(
    broadcast_id: int, fmt: str, output: str, workspace: str | None, as_json: bool
) -> None:
    """Per-recipient results, as GET /v1/broadcasts/ID/report: one row per message (and, in
    XLSX, a sheet of row errors). The file appears whole or not at all."""
    from broadcaster.services import queries, reports

    eng = engine()
    queries.require_broadcast(eng, broadcast_id, queries.workspace_scope(eng, workspace))
    if output == "-":
        out = sys.stdout.buffer
        reports.write_report(eng, broadcast_id, fmt, out.write)
        out.flush()
        return
    written = _write_whole(
        Path(output), lambda write: reports.write_report(eng, broadcast_id, fmt, write)
    )
    result = {"id": broadcast_id, "format": fmt, "file": str(output), "bytes": written}
    emit(
        result, as_json, lambda d: console.print(f"wrote {safe(d['file'])} ({d['bytes']:,} bytes)")
    )


def _write_whole(path: Path, fill: Callable[[Callable[[bytes], None]], None]) -> int:
    """Fill a temporary file beside ``path``, then rename it over ``path``: never half a file."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    except OSError as exc:
        raise InputError(f"{path}: cannot write there ({exc.strerror or exc})") from None
    size = 0
    try:
        with os.fdopen(fd, "wb") as f:

            def write(piece: bytes) -> None:
                nonlocal size
                f.write(piece)
                size += len(piece)

            fill(write)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return size


COMMANDS: tuple[click.Command, ...] = ()
