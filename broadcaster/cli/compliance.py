"""``broadcaster inbound …`` and ``broadcaster optouts …``: replies received and the suppression
list of a workspace (issue 13). Registered through ``COMMANDS`` like the other areas."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from broadcaster.cli._output import (
    console,
    emit,
    engine,
    handles_errors,
    json_option,
    safe,
    settings,
    short_time,
)

WORKSPACE = click.option(
    "--workspace", default="default", show_default=True, help="Whose messages or list."
)
REGION = click.option("--region", help="ISO region for national numbers, e.g. MX.")


@click.group()
def inbound() -> None:
    """Inbound (MO) messages: replies received on the workspace's codes."""


def _render_inbound(rows: list[dict[str, Any]]) -> None:
    t = Table("id", "date", "from", "to", "keyword", "text", "route")
    for r in rows:
        t.add_row(
            str(r["id"]),
            safe(r["date"]),
            safe(r["from"]),
            safe(r["to"]),
            safe(r["keyword"]),
            safe(r["text"][:60]),
            safe(r["route"]),
        )
    console.print(t)


@inbound.command("list")
@WORKSPACE
@click.option("--limit", type=click.IntRange(1, 500), default=100, show_default=True)
@click.option("--before", type=click.IntRange(1), help="Only messages with a lower id (paging).")
@json_option
@handles_errors
def inbound_list(workspace: str, limit: int, before: int | None, as_json: bool) -> None:
    """The workspace's inbound messages, newest first."""
    from broadcaster.services.inbound import list_inbound

    emit(list_inbound(engine(), workspace, before=before, limit=limit), as_json, _render_inbound)


@inbound.command("settings")
@WORKSPACE
@click.option("--set", "changes", multiple=True, metavar="KEY=JSON", help="e.g. replies='{…}'.")
@json_option
@handles_errors
def inbound_settings(workspace: str, changes: tuple[str, ...], as_json: bool) -> None:
    """Show or change keyword lists (``keywords``), reply texts (``replies``) and the
    ``inbound_callback_url``; a value is JSON (``null`` removes the key)."""
    from broadcaster.errors import InputError
    from broadcaster.net import guard as netguard
    from broadcaster.services.inbound import update_settings, workspace_settings

    parsed: dict[str, Any] = {}
    for item in changes:
        key, sep, raw = item.partition("=")
        if not sep:
            raise InputError(f"--set {item!r}: expected KEY=JSON")
        try:
            parsed[key] = json.loads(raw)
        except ValueError:
            parsed[key] = raw  # a bare string, e.g. a URL
    url = parsed.get("inbound_callback_url")
    if isinstance(url, str):
        netguard.check_callback_url_static(url, allow_private=settings().callback_allow_private)
    eng = engine()
    got = update_settings(eng, workspace, parsed) if parsed else workspace_settings(eng, workspace)
    emit(got, as_json, _render_settings)


def _render_settings(data: dict[str, Any]) -> None:
    """The settings as one row per value (``replies.help_reply``, ``keywords.OPT_OUT``), lists
    joined by commas: a table for people, never the JSON document ``--json`` prints."""
    if not data:
        console.print(
            "no settings of its own: the default keywords and replies apply "
            "(change one with --set KEY=JSON)",
            highlight=False,
        )
        return
    t = Table("setting", "value", show_header=False, box=None)
    for key, value in _flat(data):
        t.add_row(f"[bold]{safe(key)}[/]", safe(value))
    console.print(t)


def _flat(data: Any, prefix: str = "") -> list[tuple[str, str]]:
    if isinstance(data, dict):
        if not data:
            return [(prefix, "(none)")] if prefix else []
        return [row for k, v in data.items() for row in _flat(v, f"{prefix}.{k}" if prefix else k)]
    if isinstance(data, list):
        return [(prefix, ", ".join(str(v) for v in data) or "(none)")]
    return [(prefix, "" if data is None else str(data))]


@click.group()
def optouts() -> None:
    """The suppression list: numbers that get nothing more (STOP replies, gateways, operators)."""


def _render_optouts(rows: list[dict[str, Any]]) -> None:
    t = Table("number", "source", "since", "detail")
    for r in rows:
        t.add_row(
            safe(r["number"]),
            safe(r["source"]),
            short_time(r["createdAt"]),
            safe(r["detail"] or ""),
        )
    console.print(t)


@optouts.command("list")
@WORKSPACE
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@click.option("--after", default="", help="Only numbers sorting after this one (paging).")
@json_option
@handles_errors
def optouts_list(workspace: str, limit: int, after: str, as_json: bool) -> None:
    """Entries of the workspace's suppression list, by number."""
    from broadcaster.services.optouts import list_optouts

    emit(list_optouts(engine(), workspace, after=after, limit=limit), as_json, _render_optouts)


@optouts.command("add")
@click.argument("number")
@WORKSPACE
@REGION
@click.option("--detail", help="Why (kept with the entry).")
@json_option
@handles_errors
def optouts_add(
    number: str, workspace: str, region: str | None, detail: str | None, as_json: bool
) -> None:
    """Suppress NUMBER (source operator); an entry already there is kept as it was."""
    from broadcaster.services.optouts import add_optout

    got = add_optout(
        engine(), workspace, number, region=region or settings().default_region, detail=detail
    )
    emit(got, as_json, lambda d: _render_optouts([d]))


@optouts.command("remove")
@click.argument("number")
@WORKSPACE
@REGION
@json_option
@handles_errors
def optouts_remove(number: str, workspace: str, region: str | None, as_json: bool) -> None:
    """Take NUMBER off the list, whatever its source (exit 3 when it is not on it)."""
    from broadcaster.services.optouts import remove_optout

    remove_optout(engine(), workspace, number, region=region or settings().default_region)
    emit({"removed": number}, as_json, lambda d: console.print(f"removed {safe(d['removed'])}"))


@optouts.command("import")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@WORKSPACE
@REGION
@json_option
@handles_errors
def optouts_import(file: Path, workspace: str, region: str | None, as_json: bool) -> None:
    """Add the numbers of a CSV (``number[,detail]``, header optional), all or nothing."""
    from broadcaster.errors import FileRejected, InputError
    from broadcaster.services.optouts import import_csv

    try:
        text = file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise FileRejected(str(file), "not UTF-8 text") from None
    try:
        got = import_csv(engine(), workspace, text, region=region or settings().default_region)
    except InputError as exc:
        raise FileRejected(str(file), str(exc)) from None
    emit(got, as_json, lambda d: console.print(f"read {d['read']}, added {d['added']}"))


@optouts.command("export")
@WORKSPACE
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path))
@handles_errors
def optouts_export(workspace: str, output: Path | None) -> None:
    """Every entry as CSV (``number,source,detail,created_at``), to stdout or --output."""
    from broadcaster.services.optouts import export_pieces

    pieces = export_pieces(engine(), workspace)
    if output is None:
        for piece in pieces:
            sys.stdout.buffer.write(piece)
        sys.stdout.buffer.flush()
        return
    with output.open("wb") as f:
        for piece in pieces:
            f.write(piece)


COMMANDS = (inbound, optouts)
