"""``broadcaster broadcast``: create, inspect and control broadcasts."""

from __future__ import annotations

import click

from broadcaster.cli._output import (
    ASCII_INT,
    emit,
    engine,
    handles_errors,
    json_option,
    kv_table,
    render_broadcast,
    settings,
)

#: ``--workspace`` of the commands that take a broadcast id: without it, the operator reaches any
#: workspace's broadcast; with it, another workspace's id is "not found" (exit 3), as over HTTP.
ANY_WORKSPACE = click.option(
    "--workspace", help="Only a broadcast of this workspace (default: any workspace's)."
)


@click.group(epilog="Example: broadcaster broadcast list --status RUNNING")
def broadcast() -> None:
    """Create, inspect and control broadcasts."""


@broadcast.command(
    "create",
    epilog="Example: broadcaster broadcast create clients.csv --from 55501 "
    "--text 'Hi {name}, your order shipped' --at 2026-12-24T09:00 --tz America/Mexico_City",
)
@click.argument("file", type=click.Path(dir_okay=False), required=False)
@click.option(
    "--list",
    "audience",
    help="Instead of FILE: the members of this contact list ({name} from their attributes).",
)
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
@click.option(
    "--workspace", default="default", show_default=True, help="Workspace of the broadcast."
)
@json_option
@handles_errors
def broadcast_create(
    file: str | None,
    audience: str | None,
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
    workspace: str,
    as_json: bool,
) -> None:
    """Create a broadcast from a recipient FILE (CSV, TXT, XLSX, JSON) or a contact --list."""
    from broadcaster.cli.progress import ImportBar
    from broadcaster.errors import InputError
    from broadcaster.services.broadcasts import NewBroadcast, create_from_file
    from broadcaster.services.contact_lists import create_list_broadcast

    if (file is None) == (audience is None):
        raise InputError("give a recipient FILE or --list NAME (one of them)")

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
        workspace=workspace,
    )
    if audience is not None:
        view = create_list_broadcast(engine(migrate=True), settings(), audience, req)
    else:
        assert file is not None
        with ImportBar(file, disabled=as_json) as bar:
            view = create_from_file(
                engine(migrate=True), settings(), file, req, sheet=sheet, on_progress=bar
            )
    if wait:
        from broadcaster.cli.progress import wait_for

        view = wait_for(view.id, as_json)
    emit(view, as_json, kv_table)


@broadcast.command("get", epilog="Example: broadcaster broadcast get 12 --json")
@click.argument("broadcast_id", type=ASCII_INT)
@ANY_WORKSPACE
@json_option
@handles_errors
def broadcast_get(broadcast_id: int, workspace: str | None, as_json: bool) -> None:
    """Show a broadcast: status, expected, sent, delivered, failed."""
    from broadcaster.services.broadcasts import get_broadcast

    view = get_broadcast(engine(), broadcast_id, workspace=workspace)
    emit(view, as_json, render_broadcast)


def _control(action: str, broadcast_id: int, workspace: str | None, as_json: bool) -> None:
    from broadcaster.services import control
    from broadcaster.services.queries import workspace_scope

    eng = engine(migrate=True)
    ws = workspace_scope(eng, workspace)
    if action == "resume":
        result: control.ControlResult = control.resume(eng, settings(), None, broadcast_id, ws)
    else:
        result = getattr(control, action)(eng, broadcast_id, ws)
    # --json uses the HTTP API's names (messagesRemoved), like every other output.
    emit(result, as_json, kv_table)


def _control_command(action: str, doc: str) -> click.Command:
    @broadcast.command(action, help=doc, epilog=f"Example: broadcaster broadcast {action} 12")
    @click.argument("broadcast_id", type=ASCII_INT)
    @ANY_WORKSPACE
    @json_option
    @handles_errors
    def command(broadcast_id: int, workspace: str | None, as_json: bool) -> None:
        _control(action, broadcast_id, workspace, as_json)

    return command


_control_command("suspend", "Pause a SCHEDULED or RUNNING broadcast; unsent messages stay QUEUE.")
_control_command("resume", "Continue a SUSPENDED broadcast exactly where it stopped.")
_control_command(
    "stop", "Stop for good (a SCHEDULED one is cancelled); unsent messages end CANCELLED."
)
_control_command("delete", "Remove a broadcast with its messages (stop a RUNNING one first).")

COMMANDS: tuple[click.Command, ...] = (broadcast,)
