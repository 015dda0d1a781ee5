"""Lists of contacts (static membership) and broadcasts to a list (issue 15).

A list broadcast is an ordinary broadcast whose recipient table is the list's members, read a
page at a time: each member's ``MOBILE`` is the number and its attributes fill the named
placeholders. A member without a mobile, or without a value a placeholder needs, is a row error;
a suppressed number is stored ``BLACKLISTED`` by the importer. From there on it is the same
exactly-once path as any broadcast (:func:`services.broadcasts.create_from_table`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

from broadcaster.config import Settings
from broadcaster.domain.contacts import template_values
from broadcaster.domain.templates import Template, parse_template
from broadcaster.errors import Conflict, InputError, NotFound
from broadcaster.ingest import RecipientRow, RecipientTable, RowProblem
from broadcaster.services.broadcasts import NewBroadcast, create_from_table
from broadcaster.services.contacts import Owned, list_name
from broadcaster.services.views import (
    BroadcastView,
    ListView,
    MembersAdded,
    MembersRemoved,
    Page,
    base_fields_of,
)
from broadcaster.store import codes_repo, contacts_repo
from broadcaster.store.db import Connection, Engine, utcnow

#: Members read per query while a list broadcast is stored.
MEMBER_PAGE = 5_000
#: Most contacts one request adds to or removes from a list.
MAX_MEMBERS_PER_REQUEST = 10_000


def _views(conn: Connection, rows: Sequence[dict[str, Any]]) -> list[ListView]:
    counts = contacts_repo.member_counts(conn, [int(r["id"]) for r in rows])
    return [
        ListView(
            id=int(r["id"]),
            name=r["name"],
            members=counts.get(int(r["id"]), 0),
            created_at=r["created_at"],
        )
        for r in rows
    ]


LISTS = Owned("list", contacts_repo.list_by_id, contacts_repo.lists_page, _views)


def create_list(engine: Engine, workspace: str, name: str) -> ListView:
    """A new, empty list; Conflict when the workspace has one of that name."""
    clean = list_name(name)
    with engine.begin() as conn:
        ws = codes_repo.ensure_workspace(conn, workspace)
        if contacts_repo.list_by_name(conn, ws, clean) is not None:
            raise Conflict(f"list {clean!r} exists already")
        lid = contacts_repo.ensure_list(conn, ws, clean, utcnow())
        return LISTS.view(conn, ws, lid)


def get_list(engine: Engine, workspace: str, list_id: int) -> ListView:
    return LISTS.get(engine, workspace, list_id)


def list_lists(
    engine: Engine, workspace: str, *, after: int = 0, limit: int = 100
) -> Page[ListView]:
    return LISTS.list(engine, workspace, after=after, limit=limit)


def delete_list(engine: Engine, workspace: str, list_id: int) -> None:
    """The list and its memberships; its contacts stay, prepared messages lose their list."""
    with engine.begin() as conn:
        ws = codes_repo.ensure_workspace(conn, workspace)
        LISTS.owned(conn, ws, list_id)
        contacts_repo.delete_list(conn, ws, list_id)


def _members_of(conn: Connection, ws: int, contact_ids: Sequence[int]) -> list[int]:
    if len(contact_ids) > MAX_MEMBERS_PER_REQUEST:
        raise InputError(f"contactIDs: at most {MAX_MEMBERS_PER_REQUEST:,} per request")
    ids = list(dict.fromkeys(contact_ids))
    unknown = sorted(set(ids) - contacts_repo.owned_contacts(conn, ws, ids))
    if unknown:
        shown = ", ".join(str(i) for i in unknown[:10])
        raise InputError(f"contactIDs: no contact {shown} in this workspace")
    return ids


def change_members(
    engine: Engine, workspace: str, list_id: int, contact_ids: Sequence[int], *, add: bool
) -> MembersAdded | MembersRemoved:
    """Add (or remove) contacts; an unknown contactID refuses the whole request."""
    with engine.begin() as conn:
        ws = codes_repo.ensure_workspace(conn, workspace)
        LISTS.owned(conn, ws, list_id)
        ids = _members_of(conn, ws, contact_ids)
        if add:
            changed = contacts_repo.add_members(conn, list_id, ids, utcnow())
        else:
            changed = contacts_repo.remove_members(conn, list_id, ids)
        view = LISTS.view(conn, ws, list_id)
    if add:
        return MembersAdded(**base_fields_of(view, ListView), added=changed)
    return MembersRemoved(**base_fields_of(view, ListView), removed=changed)


def _member_rows(
    engine: Engine, list_id: int, template: Template
) -> Iterator[RecipientRow | RowProblem]:
    """The list's members as recipient rows (line n: the n-th member by contactID)."""
    after, line = 0, 0
    while True:
        with engine.connect() as conn:
            page = contacts_repo.members_page(conn, list_id, after=after, limit=MEMBER_PAGE)
        for cid, attributes, mobile in page:
            line += 1
            if mobile is None:
                yield RowProblem.of(line, f"contact {cid}", "no MOBILE identifier")
                continue
            _, params = template_values(template, attributes)
            yield RecipientRow(line, mobile, params, client_id=str(cid))
        if len(page) < MEMBER_PAGE:
            return
        after = page[-1][0]


def list_table(engine: Engine, workspace: str, name: str, text: str) -> RecipientTable:
    """A recipient table over list ``name``'s members for ``text``; NotFound for no such list,
    InputError for a ``{0}`` (a list has no positional values: its attributes are named)."""
    template = parse_template(text)
    if template.positional:
        raise InputError(
            "text: a list broadcast fills {name} placeholders from each contact's attributes; "
            "it has no {0}, {1}…"
        )
    with engine.begin() as conn:
        ws = codes_repo.ensure_workspace(conn, workspace)
        found = contacts_repo.list_by_name(conn, ws, list_name(name))
    if found is None:
        raise NotFound(f"list {name!r} does not exist")
    columns, _ = template_values(template, {})
    return RecipientTable(
        source=f"list {found['name']}",
        format="list",
        columns=columns,
        rows=_member_rows(engine, int(found["id"]), template),
    )


def create_list_broadcast(
    engine: Engine, settings: Settings, name: str, req: NewBroadcast
) -> BroadcastView:
    """A broadcast to every member of list ``name``, rendered from their attributes now."""
    if not req.text:
        raise InputError("text: is required for a list broadcast")
    table = list_table(engine, req.workspace, name, req.text)
    if req.name is None:
        req = replace(req, name=table.source)
    return create_from_table(engine, settings, table, req)
