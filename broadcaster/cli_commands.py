"""Sub-commands by area: recipients, codes, broadcast. Registered on the main group."""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table

from broadcaster.cli import (
    ASCII_FLOAT,
    ASCII_INT,
    console,
    emit,
    engine,
    handles_errors,
    json_option,
    kv_table,
    render_broadcast,
    safe,
    settings,
)
from broadcaster.domain.wire import to_wire


@click.group()
def recipients() -> None:
    """Recipient files."""


def _render_check(d: dict[str, Any]) -> None:
    kv_table({k: v for k, v in d.items() if k != "errors"}, title=f"check of {d['source']}")
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
@click.option("--workspace", help="Count the recipients this workspace's opt-outs would refuse.")
@json_option
@handles_errors
def recipients_check(
    file: str,
    text: str | None,
    region: str | None,
    sheet: str | None,
    window: str | None,
    tz: str,
    workspace: str | None,
    as_json: bool,
) -> None:
    """Dry run: valid, invalid and duplicate recipients of FILE; nothing is stored."""
    from broadcaster.services.broadcasts import check_recipients, suppressed_in

    look = suppressed_in(engine(), workspace) if workspace else None
    report = check_recipients(
        file,
        settings(),
        text=text,
        region=region,
        sheet=sheet,
        window=window,
        tz=tz,
        suppressed=look,
    )
    emit(report.as_dict(), as_json, _render_check)


@click.group()
def codes() -> None:
    """Sender codes (long, short, alphanumeric) and their rates."""


def _render_codes(rows: list[dict[str, Any]]) -> None:
    t = Table("code", "kind", "msg/s", "provider", "account")
    for r in rows:
        t.add_row(
            safe(r["code"]),
            safe(r["kind"]),
            f"{r['mps']:g}",
            safe(r["provider"]),
            safe(r["account"] or ""),
        )
    console.print(t)


@codes.command("add")
@click.argument("code")
@click.option("--kind", type=click.Choice(["long", "short", "alphanumeric"]), required=True)
@click.option("--mps", type=ASCII_FLOAT, help="Messages (segments) per second; default by kind.")
@click.option("--provider", help="Gateway for this code (default: BROADCASTER_PROVIDER).")
@click.option("--account", help="Provider account, for an account-wide ceiling.")
@click.option("--workspace", default="default", show_default=True, help="Workspace of the code.")
@json_option
@handles_errors
def codes_add(
    code: str,
    kind: str,
    mps: float | None,
    provider: str | None,
    account: str | None,
    workspace: str,
    as_json: bool,
) -> None:
    """Register sender CODE (or update it); a code another workspace owns is refused (exit 4)."""
    from broadcaster.services.codes import add_code

    row = add_code(
        engine(),
        settings(),
        code,
        kind,
        mps=mps,
        provider=provider,
        account=account,
        workspace=workspace,
    )
    emit(row.as_dict(), as_json, lambda d: _render_codes([d]))


@codes.command("share")
@click.argument("code")
@click.option("--workspace", required=True, help="Workspace that may send from CODE too.")
@json_option
@handles_errors
def codes_share(code: str, workspace: str, as_json: bool) -> None:
    """Let another workspace send from CODE too: one code, one rate, the owner's route."""
    from broadcaster.services.codes import share_code

    row, owner = share_code(engine(), settings(), code, workspace)
    data = {**row.as_dict(), "workspace": workspace, "owner": owner}
    emit(data, as_json, lambda d: kv_table(d, title=f"{code} shared by {owner} with {workspace}"))


@codes.command("list")
@click.option("--workspace", default="default", show_default=True, help="Whose codes.")
@json_option
@handles_errors
def codes_list(workspace: str, as_json: bool) -> None:
    """List sender codes."""
    from broadcaster.services.codes import list_codes

    rows = [c.as_dict() for c in list_codes(engine(), settings(), workspace)]
    emit(rows, as_json, _render_codes)


@click.group()
def broadcast() -> None:
    """Create, inspect and control broadcasts."""


@broadcast.command("create")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--from", "sender", required=True, help="Sender code.")
@click.option("--text", help="Template: {0} or <0> for columns, {name} for header names.")
@click.option("--name", help="Broadcast name (default: the file name).")
@click.option(
    "--at", help="Start time, ISO 8601 (default: now); over a minute in the past needs --now."
)
@click.option("--now", "start_now", is_flag=True, help="Start at once, whatever --at says.")
@click.option(
    "--tz",
    default="UTC",
    show_default=True,
    help="Time zone of --at, and of --window for numbers that span several zones.",
)
@click.option("--region", help="ISO region for national numbers.")
@click.option("--sheet", help="Excel sheet name.")
@click.option(
    "--window",
    help="Quiet hours: send only HH:MM-HH:MM in each recipient's local time (e.g. 08:00-21:00).",
)
@click.option(
    "--validity", help="Unsent this long after the start (2h, 30m, seconds): EXPIRED unsent."
)
@click.option("--wait", is_flag=True, help="Show progress until the broadcast ends.")
@json_option
@handles_errors
def broadcast_create(
    file: str,
    sender: str,
    text: str | None,
    name: str | None,
    at: str | None,
    start_now: bool,
    tz: str,
    region: str | None,
    sheet: str | None,
    window: str | None,
    validity: str | None,
    wait: bool,
    as_json: bool,
) -> None:
    """Create a broadcast from a recipient FILE (CSV, TXT, XLSX, JSON)."""
    from broadcaster.services.broadcasts import NewBroadcast, create_from_file

    req = NewBroadcast(
        sender=sender,
        text=text,
        name=name,
        at=at,
        tz=tz,
        region=region,
        start_now=start_now,
        window=window,
        validity=validity,
    )
    view = create_from_file(engine(), settings(), file, req, sheet=sheet)
    if wait:
        from broadcaster.cli_progress import wait_for

        view = wait_for(view["id"], as_json)
    emit(view, as_json, kv_table)


@broadcast.command("get")
@click.argument("broadcast_id", type=ASCII_INT)
@json_option
@handles_errors
def broadcast_get(broadcast_id: int, as_json: bool) -> None:
    """Show a broadcast: status, expected, sent, delivered, failed."""
    from broadcaster.services.broadcasts import get_broadcast

    view = get_broadcast(engine(), broadcast_id)
    emit(view, as_json, render_broadcast)


def _control(action: str, broadcast_id: int, as_json: bool) -> None:
    from broadcaster.services import control

    eng = engine()
    if action == "resume":
        result: Any = {
            "id": broadcast_id,
            "status": control.resume(eng, settings(), None, broadcast_id),
        }
    elif action == "suspend":
        result = {"id": broadcast_id, "status": control.suspend(eng, broadcast_id)}
    else:
        # --json uses the HTTP API's names (messagesRemoved), like every other output.
        result = to_wire(getattr(control, action)(eng, broadcast_id))
    emit(result, as_json, kv_table)


def _control_command(action: str, doc: str) -> click.Command:
    @broadcast.command(action, help=doc)
    @click.argument("broadcast_id", type=ASCII_INT)
    @json_option
    @handles_errors
    def command(broadcast_id: int, as_json: bool) -> None:
        _control(action, broadcast_id, as_json)

    return command


_control_command("suspend", "Pause a SCHEDULED or RUNNING broadcast; unsent messages stay QUEUE.")
_control_command("resume", "Continue a SUSPENDED broadcast exactly where it stopped.")
_control_command("stop", "Stop for good; unsent messages end CANCELLED.")
_control_command("delete", "Remove a broadcast with its messages (stop a RUNNING one first).")


#: Modules that contribute commands through a ``COMMANDS`` tuple, one per area.
COMMAND_MODULES = (
    "broadcaster.cli_run",
    "broadcaster.cli_api",
    "broadcaster.cli_watch",
    "broadcaster.cli_workers",
    "broadcaster.cli_compliance",
)


def register(main: click.Group) -> None:
    import importlib

    for group in (recipients, codes, broadcast):
        main.add_command(group)
    for name in COMMAND_MODULES:
        for command in importlib.import_module(name).COMMANDS:
            main.add_command(command)
