"""``broadcaster contacts import|list|get|delete``: a workspace's contacts (issue 15).

``--json`` prints what the HTTP API answers (``contactID``, ``identifiers``, ``nextCursor``: the
same opaque cursor as GET /v1/contacts, which ``--cursor`` takes back).
"""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table

from broadcaster.cli._output import (
    ASCII_INT,
    console,
    emit,
    engine,
    handles_errors,
    json_option,
    kv_table,
    safe,
    settings,
)
from broadcaster.cli.broadcast_views import Cursor
from broadcaster.constants import ID64_MAX
from broadcaster.domain.wire import encode_cursor

WORKSPACE = click.option(
    "--workspace", default="default", show_default=True, help="Whose contacts."
)
#: ``contacts list`` search options and the identifier type each names.
SEARCH = {"mobile": "MOBILE", "email": "EMAIL", "external": "EXTERNAL", "app_alias": "APP_ALIAS"}


@click.group()
def contacts() -> None:
    """Contacts: identifiers (MOBILE, EMAIL, EXTERNAL, APP_ALIAS), attributes, lists."""


def _render_import(report: dict[str, Any]) -> None:
    kv_table(report, title="contacts import")
    for e in report["errors"]:
        console.print(f"  line {e['line']}: {safe(e['reason'])}", highlight=False)


@contacts.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--list", "into", required=True, help="The list the contacts join (created if new).")
@click.option(
    "--by",
    type=click.Choice(["MOBILE", "EXTERNAL"], case_sensitive=False),
    default="MOBILE",
    show_default=True,
    help="The identifier a row is matched to a known contact by.",
)
@click.option("--region", help="ISO region for national numbers, e.g. MX.")
@click.option("--sheet", help="Excel sheet name.")
@click.option(
    "--columns",
    help="Names of the cells after the phone in a file without a header row, in order "
    "(e.g. first_name,tier; email and external name those identifiers).",
)
@WORKSPACE
@json_option
@handles_errors
def contacts_import(
    file: str,
    into: str,
    by: str,
    region: str | None,
    sheet: str | None,
    columns: str | None,
    workspace: str,
    as_json: bool,
) -> None:
    """Upsert the contacts of FILE (CSV, TXT, XLSX, JSON) into a list, all or nothing.

    The phone column is the MOBILE; columns headed email, external, app_alias are those
    identifiers; other named columns are attributes. A file without a header row names its
    cells with --columns. Bad rows are listed and skipped."""
    from broadcaster.cli.progress import ImportBar
    from broadcaster.services.contact_import import import_file, parse_columns

    with ImportBar(file, disabled=as_json) as bar:  # a bar once it takes over a second
        report = import_file(
            engine(migrate=True),
            settings(),
            file,
            workspace,
            into,
            by=by,
            region=region,
            sheet=sheet,
            columns=parse_columns(columns),
            on_progress=bar,
        )
    emit(report, as_json, _render_import)


def _render_page(page: dict[str, Any]) -> None:
    t = Table("contactID", "identifiers", "attributes", "lists")
    for c in page["items"]:
        t.add_row(
            str(c["contactID"]),
            safe(", ".join(f"{i['type']}={i['value']}" for i in c["identifiers"])),
            safe(", ".join(f"{k}={v}" for k, v in c["attributes"].items())[:80]),
            safe(", ".join(c["lists"])),
        )
    console.print(t)
    if page["nextCursor"] is not None:
        console.print(f"more: --cursor {page['nextCursor']}", highlight=False)


@contacts.command("list")
@WORKSPACE
@click.option("--list", "in_list", help="Only members of this list.")
@click.option("--mobile", help="Only the contact with this MOBILE.")
@click.option("--email", help="Only the contact with this EMAIL.")
@click.option("--external", help="Only the contact with this EXTERNAL id.")
@click.option("--app-alias", "app_alias", help="Only the contact with this APP_ALIAS.")
@click.option("--region", help="ISO region for a national --mobile.")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@click.option(
    "--cursor",
    type=Cursor((ID64_MAX,)),
    help="The next page: the nextCursor the last page printed (as GET /v1/contacts pages).",
)
@click.option("--after", type=ASCII_INT, default=0, help="Only contactIDs above this (paging).")
@json_option
@handles_errors
def contacts_list(
    workspace: str,
    in_list: str | None,
    region: str | None,
    limit: int,
    cursor: tuple[int, ...] | None,
    after: int,
    as_json: bool,
    **search: str | None,
) -> None:
    """The workspace's contacts by contactID."""
    from broadcaster.errors import InputError
    from broadcaster.services.contacts import list_contacts

    given = [(SEARCH[k], v) for k, v in search.items() if v is not None]
    if len(given) > 1:
        raise InputError("search by one identifier at a time")
    page = list_contacts(
        engine(),
        workspace,
        after=max(after, cursor[0]) if cursor else after,
        limit=limit,
        identifier=given[0] if given else None,
        in_list=in_list,
        region=region or settings().default_region,
    )
    emit({"items": page.items, "nextCursor": encode_cursor(page.next_after)}, as_json, _render_page)


def _render_contact(view: dict[str, Any]) -> None:
    kv_table({"contactID": view["contactID"], "lists": ", ".join(view["lists"])}, "contact")
    kv_table({i["type"]: i["value"] for i in view["identifiers"]}, "identifiers")
    kv_table(view["attributes"], "attributes")


@contacts.command("get")
@click.argument("contact_id", type=ASCII_INT)
@WORKSPACE
@json_option
@handles_errors
def contacts_get(contact_id: int, workspace: str, as_json: bool) -> None:
    """One contact: identifiers, attributes, lists."""
    from broadcaster.services.contacts import get_contact

    emit(get_contact(engine(), workspace, contact_id), as_json, _render_contact)


@contacts.command("delete")
@click.argument("contact_id", type=ASCII_INT)
@WORKSPACE
@json_option
@handles_errors
def contacts_delete(contact_id: int, workspace: str, as_json: bool) -> None:
    """Erase a contact: its identifiers, attributes, and its number in past messages
    (the suppression list keeps an opted-out number)."""
    from broadcaster.services.contacts import erase_contact

    emit(erase_contact(engine(migrate=True), workspace, contact_id), as_json, kv_table)


COMMANDS = (contacts,)
