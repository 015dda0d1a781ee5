"""``broadcaster broadcast retry-failed | reschedule``: the same use cases as
``POST /v1/broadcasts/{id}/retry-failed`` and ``/reschedule`` (``services/resend.py``)."""

from __future__ import annotations

import click

from broadcaster.cli._output import (
    ASCII_INT,
    console,
    emit,
    engine,
    handles_errors,
    json_option,
    render_broadcast,
)
from broadcaster.cli.broadcast import ANY_WORKSPACE, broadcast


@broadcast.command(
    "retry-failed",
    epilog="Example: broadcaster broadcast retry-failed 12   (again: the same new broadcast)",
)
@click.argument("broadcast_id", type=ASCII_INT)
@ANY_WORKSPACE
@json_option
@handles_errors
def broadcast_retry_failed(broadcast_id: int, workspace: str | None, as_json: bool) -> None:
    """Re-send the ERROR and UNDELIV messages of a finished (COMPLETED or STOPPED) broadcast as
    a new broadcast that starts now, once per recipient: a second call shows the same one."""
    from broadcaster.services import resend
    from broadcaster.services.queries import workspace_scope

    eng = engine(migrate=True)
    made = resend.retry_failed(eng, broadcast_id, workspace_scope(eng, workspace))
    if not as_json:
        said = "new broadcast" if made.created else "made earlier: broadcast"
        console.print(
            f"retry of broadcast {broadcast_id}: {said} {made.view.id} "
            f"({made.view.expected_messages:,} messages)",
            highlight=False,
        )
    emit(made.view, as_json, render_broadcast)


@broadcast.command(
    "reschedule",
    epilog="Example: broadcaster broadcast reschedule 12 --at 2026-12-24T09:00 "
    "--tz America/Mexico_City",
)
@click.argument("broadcast_id", type=ASCII_INT)
@click.option("--at", required=True, help="New start, ISO 8601 (or 'now').")
@click.option("--tz", help="Time zone of --at (default: the broadcast's own).")
@ANY_WORKSPACE
@json_option
@handles_errors
def broadcast_reschedule(
    broadcast_id: int, at: str, tz: str | None, workspace: str | None, as_json: bool
) -> None:
    """Move the start of a SCHEDULED broadcast (cancel one with: broadcaster broadcast stop)."""
    from broadcaster.services import resend
    from broadcaster.services.queries import workspace_scope

    eng = engine(migrate=True)
    view = resend.reschedule(eng, broadcast_id, at, tz, workspace_scope(eng, workspace))
    emit(view, as_json, render_broadcast)


COMMANDS: tuple[click.Command, ...] = ()
