"""Prepared messages (``/v1/templates``, seed 003's messages) and sending one to a contact.

A prepared message has an id (seed 003's ``messageId``), a name, a text with placeholders, a
sender code and optionally a list (the seed's "message's group"). :func:`send_single` is seed
003's ``sendSingle``: it renders the text for one contact (the request's parameters first,
then the contact's attributes), adds the contact to the message's list and stores a
one-recipient broadcast that starts now, which the scheduler sends like any other (once).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from broadcaster.config import Settings
from broadcaster.domain.contacts import IdentifierType, template_values
from broadcaster.domain.templates import Template, parse_template
from broadcaster.errors import InputError, NotFound
from broadcaster.ingest import RecipientRow, RecipientTable
from broadcaster.services.broadcasts import NewBroadcast, create_from_table, require_code
from broadcaster.services.contacts import Owned, list_name
from broadcaster.services.views import Page, SentSingle, TemplateView
from broadcaster.store import codes_repo, contacts_repo, messages_repo, optouts_repo
from broadcaster.store.db import Connection, Engine, utcnow

NAME_CHARS = 200
MAX_TEXT_CHARS = 1_600


class SendRefused(InputError):
    """sendSingle cannot send: no such message or contact, no mobile, a suppressed number."""


def _views(conn: Connection, rows: Sequence[dict[str, Any]]) -> list[TemplateView]:
    names = contacts_repo.list_names(conn, [int(r["list_id"]) for r in rows if r["list_id"]])
    return [
        TemplateView(
            id=int(r["id"]),
            name=r["name"],
            text=r["text"],
            sender=r["sender_code"],
            list=names.get(int(r["list_id"])) if r["list_id"] else None,
            created_at=r["created_at"],
            updated_at=r["updated_at"],
        )
        for r in rows
    ]


TEMPLATES = Owned("template", contacts_repo.get_template, contacts_repo.templates_page, _views)


def _values(conn: Connection, ws: int, workspace: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    """Checked columns of a prepared message from the fields given (absent ones untouched)."""
    out: dict[str, Any] = {}
    if fields.get("name") is not None:
        name = str(fields["name"]).strip()
        if not name or len(name) > NAME_CHARS:
            raise InputError(f"name: 1 to {NAME_CHARS} characters")
        out["name"] = name
    if fields.get("text") is not None:
        text = str(fields["text"])
        if len(text) > MAX_TEXT_CHARS:
            raise InputError(f"text: at most {MAX_TEXT_CHARS:,} characters")
        parse_template(text)  # TemplateError names the column
        out["text"] = text
    if fields.get("sender") is not None:
        require_code(conn, ws, str(fields["sender"]), workspace)
        out["sender_code"] = str(fields["sender"])
    if "list" in fields:
        given = fields["list"]
        out["list_id"] = (
            None
            if given is None
            else contacts_repo.ensure_list(conn, ws, list_name(given), utcnow())
        )
    return out


def create_template(
    engine: Engine,
    workspace: str,
    *,
    name: str,
    text: str,
    sender: str,
    list_: str | None = None,
) -> TemplateView:
    """A prepared message; its list is created when it does not exist."""
    with engine.begin() as conn:
        ws = codes_repo.ensure_workspace(conn, workspace)
        fields = {"name": name, "text": text, "sender": sender, "list": list_}
        tid = contacts_repo.insert_template(
            conn, ws, _values(conn, ws, workspace, fields), utcnow()
        )
        return TEMPLATES.view(conn, ws, tid)


def get_template(engine: Engine, workspace: str, template_id: int) -> TemplateView:
    return TEMPLATES.get(engine, workspace, template_id)


def list_templates(
    engine: Engine, workspace: str, *, after: int = 0, limit: int = 100
) -> Page[TemplateView]:
    return TEMPLATES.list(engine, workspace, after=after, limit=limit)


def update_template(
    engine: Engine, workspace: str, template_id: int, fields: Mapping[str, Any]
) -> TemplateView:
    """Change name, text, sender or list (``list`` None: no list)."""
    with engine.begin() as conn:
        ws = codes_repo.ensure_workspace(conn, workspace)
        TEMPLATES.owned(conn, ws, template_id)
        values = _values(conn, ws, workspace, fields)
        if values:
            contacts_repo.update_template(conn, ws, template_id, values, utcnow())
        return TEMPLATES.view(conn, ws, template_id)


def delete_template(engine: Engine, workspace: str, template_id: int) -> None:
    with engine.begin() as conn:
        ws = codes_repo.ensure_workspace(conn, workspace)
        if not contacts_repo.delete_template(conn, ws, template_id):
            raise NotFound(f"template {template_id} does not exist")


def _recipient(
    conn: Connection, ws: int, template_id: int, contact_id: int
) -> tuple[dict[str, Any], dict[str, Any], str]:
    """The prepared message, the contact and its number; SendRefused saying which is missing."""
    template = contacts_repo.get_template(conn, ws, template_id)
    if template is None:
        raise SendRefused(f"messageId {template_id}: no such message")
    contact = contacts_repo.get_contact(conn, ws, contact_id)
    if contact is None:
        raise SendRefused(f"recipientId {contact_id}: no such contact")
    mobile = next(
        (
            v
            for k, v in contacts_repo.identifiers_of(conn, [contact_id]).get(contact_id, [])
            if k == IdentifierType.MOBILE.value
        ),
        None,
    )
    if mobile is None:
        raise SendRefused(f"recipientId {contact_id}: the contact has no MOBILE identifier")
    if optouts_repo.numbers_among(conn, ws, [mobile]):
        raise SendRefused(f"recipientId {contact_id}: the number is on the suppression list")
    return template, contact, mobile


def send_single(
    engine: Engine,
    settings: Settings,
    workspace: str,
    template_id: int,
    contact_id: int,
    *,
    positional: Sequence[str] = (),
    named: Mapping[str, str] | None = None,
) -> SentSingle:
    """Send prepared message ``template_id`` to contact ``contact_id`` once; the broadcast and
    message ids. SendRefused for what seed 003 answers 400 (a missing value included)."""
    with engine.begin() as conn:
        ws = codes_repo.ensure_workspace(conn, workspace)
        template, contact, mobile = _recipient(conn, ws, template_id, contact_id)
        if template["list_id"] is not None:
            contacts_repo.add_members(conn, int(template["list_id"]), [contact_id], utcnow())
    parsed = parse_template(template["text"])
    columns, params = template_values(parsed, contact["attributes"] or {}, positional, named)
    _require_values(parsed, columns, params)
    table = RecipientTable(
        source=f"sendSingle {template_id}",
        format="json",
        columns=columns,
        rows=iter([RecipientRow(1, mobile, params, client_id=str(contact_id))]),
    )
    req = NewBroadcast(
        sender=template["sender_code"],
        text=template["text"],
        name=f"sendSingle message {template_id} to contact {contact_id}",
        workspace=workspace,
        start_now=True,
    )
    view = create_from_table(engine, settings, table, req)
    with engine.connect() as conn:
        mid = messages_repo.only_message_id(conn, view.id)
    return SentSingle(broadcast_id=view.id, message_id=mid)


def _require_values(template: Template, columns: Sequence[str], params: Sequence[str]) -> None:
    """SendRefused naming the placeholders neither the parameters nor the attributes fill:
    refused before anything is stored."""
    empty = [f"{{{i}}}" for i in sorted(template.positional) if i >= len(params) or not params[i]]
    empty += [f"{{{c}}}" for c, p in zip(columns, params, strict=True) if c and not p]
    if empty:
        raise SendRefused("no value for " + ", ".join(empty) + " (parameters or attributes)")
