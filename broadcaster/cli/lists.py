"""``broadcaster lists …`` and ``broadcaster templates …``: a workspace's contact lists and
prepared messages (issue 15's ``/v1/lists`` and ``/v1/templates``) on the command line.

``--json`` prints what the HTTP API answers (``items``, ``nextCursor``: the same opaque cursor as
GET /v1/lists and /v1/templates, which ``--cursor`` takes back; a list's ``members``, a
template's ``from`` and ``list``). Contacts join lists through ``contacts import --list``.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any

import click
from rich.table import Column, Table

from broadcaster.cli._output import (
    ASCII_INT,
    console,
    emit,
    engine,
    handles_errors,
    json_option,
    kv_table,
    safe,
    short_time,
)
from broadcaster.cli.broadcast_views import Cursor
from broadcaster.constants import INT32_MAX
from broadcaster.domain.wire import encode_cursor

WORKSPACE = click.option(
    "--workspace", default="default", show_default=True, help="Whose lists or templates."
)


def _more(page: dict[str, Any], command: str) -> None:
    if not page["items"]:
        console.print("none", highlight=False)
    if page["nextCursor"] is not None:
        console.print(f"more: {command} --cursor {page['nextCursor']}", highlight=False)


def _service(name: str) -> Callable[..., Any]:
    """``module.function`` of broadcaster.services, imported when a command runs (the command
    line's start stays free of the services' imports)."""
    module, _, function = name.partition(".")
    return getattr(import_module(f"broadcaster.services.{module}"), function)  # type: ignore[no-any-return]


def _page_command(group: click.Group, noun: str, fetch: str, render: Callable[[Any], None]) -> None:
    """``GROUP list``: a page of the workspace's NOUNs by id (``fetch`` names the service's
    keyset listing, as the HTTP list route calls it)."""

    @group.command("list", help=f"The workspace's {noun}, by id.")
    @WORKSPACE
    @click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
    @click.option(
        "--cursor",
        type=Cursor((INT32_MAX,)),
        help="The next page: the nextCursor the last page printed (as the HTTP list pages).",
    )
    @click.option("--after", type=ASCII_INT, default=0, help="Only ids above this (paging).")
    @json_option
    @handles_errors
    def command(
        workspace: str, limit: int, cursor: tuple[int, ...] | None, after: int, as_json: bool
    ) -> None:
        start = max(after, cursor[0]) if cursor else after
        page = _service(fetch)(engine(), workspace, after=start, limit=limit)
        emit({"items": page.items, "nextCursor": encode_cursor(page.next_after)}, as_json, render)


def _delete_command(group: click.Group, noun: str, remove: str, after: str, doc: str) -> None:
    """``GROUP delete ID``: the service ``remove(engine, workspace, id)``, NotFound for
    another workspace's."""

    @group.command("delete", help=doc)
    @click.argument("row_id", metavar="ID", type=ASCII_INT)
    @WORKSPACE
    @json_option
    @handles_errors
    def command(row_id: int, workspace: str, as_json: bool) -> None:
        _service(remove)(engine(migrate=True), workspace, row_id)
        emit(
            {"id": row_id, "deleted": True},
            as_json,
            lambda d: console.print(f"{noun} {d['id']} deleted{after}", highlight=False),
        )


@click.group("lists")
def lists_group() -> None:
    """Static lists of contacts, with their member counts (a broadcast sends to one with
    ``broadcast create --list NAME``)."""


def _render_lists(page: dict[str, Any]) -> None:
    t = Table("id", Column("name", overflow="fold"), "members", "created")
    for item in page["items"]:
        t.add_row(
            str(item["id"]),
            safe(item["name"]),
            f"{item['members']:,}",
            short_time(item["createdAt"]),
        )
    console.print(t)
    _more(page, "broadcaster lists list")


@lists_group.command("create")
@click.argument("name")
@WORKSPACE
@json_option
@handles_errors
def lists_create(name: str, workspace: str, as_json: bool) -> None:
    """A new empty list NAME (contacts join it with ``contacts import FILE --list NAME``)."""
    from broadcaster.services.contact_lists import create_list

    emit(create_list(engine(migrate=True), workspace, name), as_json, kv_table)


@click.group("templates")
def templates_group() -> None:
    """Prepared messages: a name, a text with placeholders, a sender code and a list (seed
    003's ``sendSingle`` sends one; ``POST /v1/templates`` makes one)."""


def _render_templates(page: dict[str, Any]) -> None:
    t = Table(
        "id",
        Column("name", overflow="fold"),
        "from",
        Column("list", overflow="fold"),
        Column("text", overflow="fold", ratio=1),
    )
    for item in page["items"]:
        t.add_row(
            str(item["id"]),
            safe(item["name"]),
            safe(item["from"]),
            safe(item["list"] or ""),
            safe(item["text"]),
        )
    console.print(t)
    _more(page, "broadcaster templates list")


@templates_group.command("create")
@click.argument("name")
@click.option("--text", required=True, help="The message, with placeholders: {0}, {first_name}.")
@click.option("--from", "sender", required=True, help="The sender code it is sent from.")
@click.option("--list", "in_list", help="The list it belongs to (created if new).")
@WORKSPACE
@json_option
@handles_errors
def templates_create(
    name: str, text: str, sender: str, in_list: str | None, workspace: str, as_json: bool
) -> None:
    """A prepared message NAME, as POST /v1/templates."""
    from broadcaster.services.prepared import create_template

    made = create_template(
        engine(migrate=True), workspace, name=name, text=text, sender=sender, list_=in_list
    )
    emit(made, as_json, kv_table)


@templates_group.command("get")
@click.argument("template_id", type=ASCII_INT)
@WORKSPACE
@json_option
@handles_errors
def templates_get(template_id: int, workspace: str, as_json: bool) -> None:
    """One prepared message."""
    from broadcaster.services.prepared import get_template

    emit(get_template(engine(), workspace, template_id), as_json, kv_table)


_page_command(
    lists_group,
    "lists, with how many contacts each holds",
    "contact_lists.list_lists",
    _render_lists,
)
_delete_command(
    lists_group,
    "list",
    "contact_lists.delete_list",
    "; its contacts stay",
    "Delete list ID: its contacts stay (only their membership goes).",
)
_page_command(templates_group, "prepared messages", "prepared.list_templates", _render_templates)
_delete_command(
    templates_group,
    "template",
    "prepared.delete_template",
    "",
    "Delete prepared message ID (messages it sent keep their results).",
)

COMMANDS = (lists_group, templates_group)
