"""Commands of the HTTP API area: API keys (one workspace each, shown once)."""

from __future__ import annotations

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
    short_time,
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

    emit(created, as_json, render)


def _render_keys(rows: list[dict[str, Any]]) -> None:
    """The table of ``apikey list`` (``emit`` hands renderers the wire form, camelCase)."""
    t = Table("prefix", "workspace", "created", "revoked", "signing")
    for r in rows:
        t.add_row(
            safe(r["prefix"]),
            safe(r["workspace"]),
            short_time(r["createdAt"]),
            short_time(r["revokedAt"]),
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

    emit(list_keys(engine(), workspace), as_json, _render_keys)


@apikey.command("revoke")
@click.argument("prefix")
@click.option(
    "--workspace", help="Only a key of this workspace (default: any workspace's, by its prefix)."
)
@json_option
@handles_errors
def apikey_revoke(prefix: str, workspace: str | None, as_json: bool) -> None:
    """Revoke the key with PREFIX (the 12 characters after bk_); it stops working at once.
    With --workspace, another workspace's key is not found (exit 3) and stays live."""
    from broadcaster.services.apikeys import revoke_key
    from broadcaster.services.queries import workspace_scope

    eng = engine(migrate=True)
    emit(revoke_key(eng, prefix, workspace_scope(eng, workspace)), as_json, kv_table)


COMMANDS: tuple[click.Command, ...] = (apikey,)
