"""``broadcaster codes``: sender codes, their rates, owners and shares."""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table

from broadcaster.cli._output import (
    ASCII_FLOAT,
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
        engine(migrate=True),
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

    row, owner = share_code(engine(migrate=True), settings(), code, workspace)
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


@codes.command("remove", epilog="Example: broadcaster codes remove 55501 --workspace acme")
@click.argument("code")
@click.option("--workspace", default="default", show_default=True, help="Workspace of the code.")
@json_option
@handles_errors
def codes_remove(code: str, workspace: str, as_json: bool) -> None:
    """Remove sender CODE from a workspace; refused (exit 4) while a broadcast that is not
    finished sends from it. Its owner removing it removes it where it is shared too."""
    from broadcaster.domain.wire import to_wire
    from broadcaster.services.codes import remove_code

    removed = to_wire(remove_code(engine(migrate=True), code, workspace))
    emit(removed, as_json, lambda d: kv_table(d, title=f"{code} removed from {workspace}"))


COMMANDS: tuple[click.Command, ...] = (codes,)
