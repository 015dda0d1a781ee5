"""Contacts of a workspace: create, read, search by identifier, change, erase (issue 15).

A contact is seed 003's: a ``contactID``, identifiers of the types ``EMAIL``, ``MOBILE``,
``APP_ALIAS``, ``EXTERNAL`` (each value names one contact per workspace), and attributes that
placeholders read. Erasure removes identifiers and attributes and masks the number in the
workspace's past messages; the suppression list is kept (an opt-out still blocks the number).
Imports live in :mod:`broadcaster.services.contact_import`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from broadcaster.domain.contacts import (
    IdentifierType,
    identifier_type,
    identifier_value,
    merge_attributes,
)
from broadcaster.errors import Conflict, InputError, NotFound
from broadcaster.services.views import ContactErased, ContactView, Identifier, Page
from broadcaster.store import codes_repo, contacts_repo
from broadcaster.store.db import Connection, Engine, utcnow

#: Most contacts one page returns.
MAX_PAGE = 1000
#: Most lists one contact is put in by one request.
MAX_LISTS = 100
LIST_NAME_CHARS = 100


Rows = Sequence[dict[str, Any]]
V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class Owned(Generic[V]):
    """A kind of row a workspace owns (a list, a prepared message): how one is fetched, how a
    page is, how they are shown; what reading one or a page of them is, the same for each."""

    noun: str
    fetch: Callable[[Connection, int, int], dict[str, Any] | None]
    page: Callable[..., list[dict[str, Any]]]
    render: Callable[[Connection, Rows], list[V]]

    def owned(self, conn: Connection, ws: int, row_id: int) -> dict[str, Any]:
        """The row; NotFound when there is none, or it is another workspace's."""
        row = self.fetch(conn, ws, row_id)
        if row is None:
            raise NotFound(f"{self.noun} {row_id} does not exist")
        return row

    def view(self, conn: Connection, ws: int, row_id: int) -> V:
        return self.render(conn, [self.owned(conn, ws, row_id)])[0]

    def get(self, engine: Engine, workspace: str, row_id: int) -> V:
        with engine.begin() as conn:
            return self.view(conn, codes_repo.ensure_workspace(conn, workspace), row_id)

    def list(self, engine: Engine, workspace: str, *, after: int = 0, limit: int = 100) -> Page[V]:
        limit = max(1, min(limit, MAX_PAGE))
        with engine.begin() as conn:
            ws = codes_repo.ensure_workspace(conn, workspace)
            rows = self.page(conn, ws, after=after, limit=limit + 1)
            return keyset_page(conn, rows, limit, self.render)


def keyset_page(
    conn: Connection,
    rows: list[dict[str, Any]],
    limit: int,
    render: Callable[[Connection, Sequence[dict[str, Any]]], list[V]],
) -> Page[V]:
    """A page of ``limit`` of ``rows`` (fetched ``limit + 1``: one more says a next exists)."""
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(render(conn, rows), (int(rows[-1]["id"]),) if more else None)


def views(conn: Connection, rows: Sequence[dict[str, Any]]) -> list[ContactView]:
    """Contacts as the API shows them: seed 003's ``contactID`` and ``identifiers``."""
    ids = [int(r["id"]) for r in rows]
    idents = contacts_repo.identifiers_of(conn, ids)
    lists = contacts_repo.lists_of(conn, ids)
    return [
        ContactView(
            contact_id=int(r["id"]),
            identifiers=[Identifier(k, v) for k, v in idents.get(int(r["id"]), [])],
            attributes=dict(r["attributes"] or {}),
            lists=lists.get(int(r["id"]), []),
            created_at=r["created_at"],
            updated_at=r["updated_at"],
        )
        for r in rows
    ]


def _view(conn: Connection, ws: int, contact_id: int) -> ContactView:
    row = contacts_repo.get_contact(conn, ws, contact_id)
    if row is None:
        raise NotFound(f"contact {contact_id} does not exist")
    return views(conn, [row])[0]


def parse_identifiers(
    items: Sequence[tuple[object, object]], region: str | None
) -> dict[IdentifierType, str | None]:
    """(type, value) pairs as stored values by type; a None value (a PATCH) removes that type."""
    out: dict[IdentifierType, str | None] = {}
    for raw_kind, raw_value in items:
        kind = identifier_type(raw_kind)
        if kind is IdentifierType.ID:
            raise InputError("identifiers: ID is the contactID itself; it is not set")
        if kind in out:
            raise InputError(f"identifiers: {kind.value} given twice (one value per type)")
        out[kind] = None if raw_value is None else identifier_value(kind, raw_value, region)
    return out


def list_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > LIST_NAME_CHARS:
        raise InputError(f"list: a name of 1 to {LIST_NAME_CHARS} characters")
    if any(ord(c) < 32 or c == "\x7f" for c in name):
        raise InputError("list: the name must not hold control characters")
    return name.strip()


def _claim(
    conn: Connection, ws: int, contact_id: int, idents: Mapping[IdentifierType, str | None]
) -> None:
    """Give the contact these identifiers (None removes the type); Conflict when another
    contact of the workspace holds one of the values."""
    rows: list[tuple[int, str, str]] = []
    for kind, value in idents.items():
        if value is None:
            contacts_repo.remove_identifier(conn, ws, contact_id, kind.value)
            continue
        holder = contacts_repo.owners(conn, ws, kind.value, [value]).get(value)
        if holder is not None and holder != contact_id:
            raise Conflict(f"{kind.value} {value} already belongs to contact {holder}")
        rows.append((contact_id, kind.value, value))
    contacts_repo.set_identifiers(conn, ws, rows)


def _join_lists(conn: Connection, ws: int, contact_id: int, names: Sequence[str]) -> None:
    now = utcnow()
    for name in names:
        lid = contacts_repo.ensure_list(conn, ws, list_name(name), now)
        contacts_repo.add_members(conn, lid, [contact_id], now)


def create_contact(
    engine: Engine,
    workspace: str,
    *,
    identifiers: Sequence[tuple[object, object]],
    attributes: Mapping[str, Any] | None = None,
    lists: Sequence[str] = (),
    region: str | None = None,
) -> ContactView:
    """A new contact; Conflict when one of its identifiers names another contact already."""
    idents = parse_identifiers(identifiers, region)
    if not any(v is not None for v in idents.values()):
        raise InputError("identifiers: at least one (MOBILE, EMAIL, APP_ALIAS or EXTERNAL)")
    attrs = merge_attributes({}, attributes or {})
    if len(lists) > MAX_LISTS:
        raise InputError(f"lists: at most {MAX_LISTS}")
    with engine.begin() as conn:
        ws = codes_repo.ensure_workspace(conn, workspace)
        (cid,) = contacts_repo.insert_contacts(conn, ws, [attrs], utcnow())
        _claim(conn, ws, cid, idents)
        _join_lists(conn, ws, cid, lists)
        return _view(conn, ws, cid)


def get_contact(engine: Engine, workspace: str, contact_id: int) -> ContactView:
    with engine.begin() as conn:
        ws = codes_repo.ensure_workspace(conn, workspace)
        return _view(conn, ws, contact_id)


def find_contact(
    engine: Engine, workspace: str, kind: object, value: object, region: str | None = None
) -> ContactView:
    """The contact an identifier names (seed 003 contact/get); NotFound when none does."""
    k = identifier_type(kind)
    v = identifier_value(k, value, region)
    with engine.begin() as conn:
        ws = codes_repo.ensure_workspace(conn, workspace)
        if k is IdentifierType.ID:
            return _view(conn, ws, int(v))
        cid = contacts_repo.owners(conn, ws, k.value, [v]).get(v)
        if cid is None:
            raise NotFound(f"no contact has {k.value} {v}")
        return _view(conn, ws, cid)


def list_contacts(
    engine: Engine,
    workspace: str,
    *,
    after: int = 0,
    limit: int = 100,
    identifier: tuple[object, object] | None = None,
    in_list: str | None = None,
    region: str | None = None,
) -> Page[ContactView]:
    """Contacts by id; only the one ``identifier`` names, or the members of list ``in_list``."""
    limit = max(1, min(limit, MAX_PAGE))
    by: tuple[str, str] | None = None
    with engine.begin() as conn:
        ws = codes_repo.ensure_workspace(conn, workspace)
        if identifier is not None:
            kind = identifier_type(identifier[0])
            value = identifier_value(kind, identifier[1], region)
            if kind is IdentifierType.ID:
                row = contacts_repo.get_contact(conn, ws, int(value))
                rows = [row] if row is not None and row["id"] > after else []
                return Page(views(conn, rows), None)
            by = (kind.value, value)
        list_id = None
        if in_list is not None:
            found = contacts_repo.list_by_name(conn, ws, in_list)
            if found is None:
                raise NotFound(f"list {in_list!r} does not exist")
            list_id = int(found["id"])
        rows = contacts_repo.contacts_page(
            conn, ws, after=after, limit=limit + 1, identifier=by, list_id=list_id
        )
        return keyset_page(conn, rows, limit, views)


def update_contact(
    engine: Engine,
    workspace: str,
    contact_id: int,
    *,
    identifiers: Sequence[tuple[object, object]] = (),
    attributes: Mapping[str, Any] | None = None,
    lists: Sequence[str] = (),
    region: str | None = None,
) -> ContactView:
    """Change some identifiers (a None value removes the type), merge attributes (a None value
    removes the name), add to lists. A contact is never left without any identifier."""
    idents = parse_identifiers(identifiers, region)
    with engine.begin() as conn:
        ws = codes_repo.ensure_workspace(conn, workspace)
        row = contacts_repo.get_contact(conn, ws, contact_id)
        if row is None:
            raise NotFound(f"contact {contact_id} does not exist")
        if attributes:
            merged = merge_attributes(row["attributes"] or {}, attributes)
            contacts_repo.update_attributes(conn, [(contact_id, merged)], utcnow())
        _claim(conn, ws, contact_id, idents)
        if not contacts_repo.identifiers_of(conn, [contact_id]).get(contact_id):
            raise InputError("identifiers: a contact keeps at least one (delete it instead)")
        _join_lists(conn, ws, contact_id, lists)
        return _view(conn, ws, contact_id)


def erase_contact(engine: Engine, workspace: str, contact_id: int) -> ContactErased:
    """Delete the contact's personal data: identifiers, attributes, memberships, and its number
    in the workspace's past messages (masked ``~<message id>``; unsent ones CANCELLED), their
    receipts' payloads, callbacks, row errors and inbound messages. The suppression list keeps
    the number: an opt-out still blocks it. One transaction."""
    with engine.begin() as conn:
        ws = codes_repo.ensure_workspace(conn, workspace)
        if contacts_repo.get_contact(conn, ws, contact_id) is None:
            raise NotFound(f"contact {contact_id} does not exist")
        numbers = [
            v
            for k, v in contacts_repo.identifiers_of(conn, [contact_id]).get(contact_id, [])
            if k == IdentifierType.MOBILE.value
        ]
        contacts_repo.delete_contact(conn, ws, contact_id)
        masked = sum(contacts_repo.mask_number(conn, ws, n, utcnow()) for n in numbers)
    return ContactErased(contact_id=contact_id, erased=True, messages_masked=masked)
