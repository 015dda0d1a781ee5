"""Commands of the HTTP API area: API keys (one workspace each, shown once)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click
from rich.table import Table

from broadcaster.cli._output import (
    console,
    emit,
    engine,
    handles_errors,
    json_option,
    kv_table,
    safe,
)


@click.group()
def apikey() -> None:
    """API keys for the HTTP API: create (shown once), list, revoke."""


@apikey.command("create")
@click.option(
    "--workspace", required=True, help="Workspace the key acts for (created on first use)."
)
@click.option(
    "--signing", is_flag=True, help="Also make a signing secret: every request must then be signed."
)
@json_option
@handles_errors
def apikey_create(workspace: str, signing: bool, as_json: bool) -> None:
    """Create a key for WORKSPACE. The key is printed once and cannot be shown again."""
    from broadcaster.services.apikeys import create_key

    created = create_key(engine(migrate=True), workspace, signing=signing)

    def render(d: dict[str, Any]) -> None:
        kv_table({k: v for k, v in d.items() if v is not None}, title="new API key")
        console.print(
            "[bold yellow]Store the key now: only its hash is kept, it cannot be shown again.[/]"
        )
        console.print(
            f"Use it as: Authorization: Bearer {safe(d['key'])}", highlight=False, soft_wrap=True
        )

    emit(created.as_dict(), as_json, render)


def _render_keys(rows: list[dict[str, Any]]) -> None:
    t = Table("prefix", "workspace", "created", "revoked", "signing")
    for r in rows:
        t.add_row(
            safe(r["prefix"]),
            safe(r["workspace"]),
            str(r["created_at"])[:19],
            str(r["revoked_at"])[:19] if r["revoked_at"] else "",
            "yes" if r["signing"] else "",
        )
    console.print(t)


@apikey.command("list")
@click.option("--workspace", help="Only this workspace's keys.")
@json_option
@handles_errors
def apikey_list(workspace: str | None, as_json: bool) -> None:
    """List keys by prefix (secrets are never shown)."""
    from broadcaster.services.apikeys import list_keys

    emit([_as_text(r) for r in list_keys(engine(), workspace)], as_json, _render_keys)


@apikey.command("revoke")
@click.argument("prefix")
@json_option
@handles_errors
def apikey_revoke(prefix: str, as_json: bool) -> None:
    """Revoke the key with PREFIX (the 12 characters after bk_); it stops working at once."""
    from broadcaster.services.apikeys import revoke_key

    emit(_as_text(revoke_key(engine(migrate=True), prefix)), as_json, kv_table)


def _as_text(row: dict[str, Any]) -> dict[str, Any]:
    """A key's row with its times as ``str()`` prints them (``2026-12-01 15:30:00.123456``):
    ``apikey list``/``revoke --json`` printed them so before ``emit`` wrote times in ISO 8601,
    and scripts may parse them."""
    return {k: str(v) if isinstance(v, datetime) else v for k, v in row.items()}


COMMANDS: tuple[click.Command, ...] = (apikey,)
