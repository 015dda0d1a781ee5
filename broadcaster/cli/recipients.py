"""``broadcaster recipients``: check a recipient file without storing anything."""

from __future__ import annotations

from typing import Any

import click
from rich.table import Column, Table

from broadcaster.cli._output import (
    console,
    emit,
    engine,
    handles_errors,
    json_option,
    kv_table,
    safe,
    settings,
)


@click.group()
def recipients() -> None:
    """Recipient files."""


def _render_check(d: dict[str, Any]) -> None:
    kv_table({k: v for k, v in d.items() if k != "errors"}, title=f"check of {d['source']}")
    if d.get("preview"):
        t = Table("line", "to", "segments", Column("text", overflow="fold"), title="first messages")
        for m in d["preview"]:
            t.add_row(
                str(m["line"]), safe(m["to"]), f"{m['segments']} {m['encoding']}", safe(m["text"])
            )
        console.print(t)
    if d["errors"]:
        t = Table("line", "value", "reason", title="row errors (first 50)")
        for e in d["errors"]:
            t.add_row(str(e["line"]), safe(e["value"]), safe(e["reason"]))
        console.print(t)


@recipients.command("check")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--text", help="Message template, to check placeholders and count segments.")
@click.option("--region", help="ISO region for national numbers, e.g. MX.")
@click.option("--sheet", help="Excel sheet name (default: the first).")
@click.option("--window", help="Send window HH:MM-HH:MM: say how many would wait if sent now.")
@click.option("--tz", default="UTC", show_default=True, help="Zone of numbers of several zones.")
@click.option(
    "--workspace",
    default="default",
    show_default=True,
    help="Count the recipients this workspace's opt-outs would refuse (BLACKLISTED at import).",
)
@click.option(
    "--preview",
    type=click.IntRange(0, 1000),
    default=0,
    help="Print the first N messages as they would be sent.",
)
@json_option
@handles_errors
def recipients_check(
    file: str,
    text: str | None,
    region: str | None,
    sheet: str | None,
    window: str | None,
    tz: str,
    workspace: str,
    preview: int,
    as_json: bool,
) -> None:
    """Dry run: valid, invalid and duplicate recipients of FILE; nothing is stored."""
    from broadcaster.services.broadcasts import check_recipients, suppressed_in

    look = suppressed_in(engine(), workspace)
    report = check_recipients(
        file,
        settings(),
        text=text,
        region=region,
        sheet=sheet,
        window=window,
        tz=tz,
        suppressed=look,
        preview=preview,
    )
    emit(report.as_wire(), as_json, _render_check)


COMMANDS: tuple[click.Command, ...] = (recipients,)
