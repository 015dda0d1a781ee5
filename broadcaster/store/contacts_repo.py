"""Contacts, their identifiers, lists with members, prepared messages: every SQL statement.

Everything is scoped by ``workspace_id``: a row of another workspace is read as absent. Pages
are keyset on ids (``id > :after ORDER BY id``). Bulk statements (an import's batch) take
whole batches: one SELECT for the owners of a batch's values, one executemany per kind of row.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from broadcaster.domain.states import MessageStatus
from broadcaster.store.models import (
    broadcasts,
    callback_deliveries,
    contact_identifiers,
    contact_lists,
    contacts,
    inbound_messages,
    list_members,
    messages,
    prepared_messages,
    receipts,
    row_errors,
)

ids_t = contact_identifiers
#: What an erased contact's past message texts become.
ERASED_TEXT = "[erased]"
#: Identifier values per IN (...) list: well under SQLite's 32,766 bound parameters.
IN_CHUNK = 5_000


def _insert(conn: Connection, table: sa.Table) -> Any:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def _one(conn: Connection, stmt: Any) -> dict[str, Any] | None:
    """The first row of ``stmt`` as a dict, or None."""
    row = conn.execute(stmt).mappings().first()
    return dict(row) if row else None


def _chunks(values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for i in range(0, len(values), IN_CHUNK):
        yield values[i : i + IN_CHUNK]


# ----------------------------------------------------------------------------- contacts


def insert_contacts(
    conn: Connection, workspace_id: int, attributes: Sequence[dict[str, str]], now: datetime
) -> list[int]:
    """New contacts, one per attributes object; their ids in the same order.

    The ids are taken first (:func:`_new_ids`) and inserted with the rows: an INSERT … RETURNING
    in parameter order runs row by row on SQLite (a million contacts: a million statements)."""
    if not attributes:
        return []
    ids = _new_ids(conn, len(attributes))
    rows = [
        {
            "id": cid,
            "workspace_id": workspace_id,
            "attributes": a,
            "created_at": now,
            "updated_at": now,
        }
        for cid, a in zip(ids, attributes, strict=True)
    ]
    conn.execute(sa.insert(contacts), rows)
    return ids


def _new_ids(conn: Connection, count: int) -> list[int]:
    """``count`` contact ids nobody has had: PostgreSQL's sequence; on SQLite past the
    AUTOINCREMENT high-water mark, which the import's transaction owns (it has written already,
    so it holds the database's one write lock) and the explicit ids then move on."""
    if conn.dialect.name == "postgresql":
        got = conn.execute(
            sa.text(
                "SELECT nextval(pg_get_serial_sequence('contacts', 'id')) "
                "FROM generate_series(1, :n)"
            ),
            {"n": count},
        )
        return [int(r[0]) for r in got]
    conn.execute(sa.update(contacts).where(sa.false()).values(id=contacts.c.id))  # take the lock
    seq = conn.execute(sa.text("SELECT seq FROM sqlite_sequence WHERE name = 'contacts'")).scalar()
    top = conn.execute(sa.select(sa.func.max(contacts.c.id))).scalar()
    start = max(int(seq or 0), int(top or 0)) + 1
    return list(range(start, start + count))


def update_attributes(
    conn: Connection, updates: Sequence[tuple[int, dict[str, str]]], now: datetime
) -> None:
    """Set (contact id, attributes) pairs; one executemany."""
    if not updates:
        return
    stmt = (
        sa.update(contacts)
        .where(contacts.c.id == sa.bindparam("cid"))
        .values(attributes=sa.bindparam("attrs"), updated_at=now)
    )
    conn.execute(stmt, [{"cid": c, "attrs": a} for c, a in updates])


def attributes_of(conn: Connection, contact_ids: Sequence[int]) -> dict[int, dict[str, str]]:
    out: dict[int, dict[str, str]] = {}
    for part in _chunks(list(contact_ids)):
        rows = conn.execute(
            sa.select(contacts.c.id, contacts.c.attributes).where(contacts.c.id.in_(list(part)))
        )
        out.update({int(r[0]): dict(r[1] or {}) for r in rows})
    return out


def _owned_row(
    conn: Connection, table: sa.Table, workspace_id: int, row_id: int
) -> dict[str, Any] | None:
    """Row ``row_id`` of ``table`` if it is the workspace's (another's reads as absent)."""
    return _one(
        conn, sa.select(table).where(table.c.id == row_id, table.c.workspace_id == workspace_id)
    )


def _delete_owned(conn: Connection, table: sa.Table, workspace_id: int, row_id: int) -> bool:
    """Delete row ``row_id`` of ``table`` if it is the workspace's; whether it was."""
    gone = conn.execute(
        sa.delete(table).where(table.c.id == row_id, table.c.workspace_id == workspace_id)
    )
    return bool(gone.rowcount)


def get_contact(conn: Connection, workspace_id: int, contact_id: int) -> dict[str, Any] | None:
    return _owned_row(conn, contacts, workspace_id, contact_id)


def contacts_page(
    conn: Connection,
    workspace_id: int,
    *,
    after: int,
    limit: int,
    identifier: tuple[str, str] | None = None,
    list_id: int | None = None,
) -> list[dict[str, Any]]:
    """Contacts by id from after ``after``; only the one ``identifier`` names, or ``list_id``'s."""
    stmt = sa.select(contacts).where(contacts.c.workspace_id == workspace_id, contacts.c.id > after)
    if identifier is not None:
        stmt = stmt.where(
            contacts.c.id.in_(
                sa.select(ids_t.c.contact_id).where(
                    ids_t.c.workspace_id == workspace_id,
                    ids_t.c.type == identifier[0],
                    ids_t.c.value == identifier[1],
                )
            )
        )
    if list_id is not None:
        stmt = stmt.where(
            contacts.c.id.in_(
                sa.select(list_members.c.contact_id).where(list_members.c.list_id == list_id)
            )
        )
    rows = conn.execute(stmt.order_by(contacts.c.id).limit(limit)).mappings()
    return [dict(r) for r in rows]


def delete_contact(conn: Connection, workspace_id: int, contact_id: int) -> bool:
    """The contact, its identifiers and memberships (explicitly: no reliance on FK cascades)."""
    conn.execute(sa.delete(ids_t).where(ids_t.c.contact_id == contact_id))
    conn.execute(sa.delete(list_members).where(list_members.c.contact_id == contact_id))
    return _delete_owned(conn, contacts, workspace_id, contact_id)


# ----------------------------------------------------------------------------- identifiers


def identifiers_of(
    conn: Connection, contact_ids: Sequence[int]
) -> dict[int, list[tuple[str, str]]]:
    """(type, value) pairs of each contact, sorted by type."""
    out: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for part in _chunks(list(contact_ids)):
        rows = conn.execute(
            sa.select(ids_t.c.contact_id, ids_t.c.type, ids_t.c.value)
            .where(ids_t.c.contact_id.in_(list(part)))
            .order_by(ids_t.c.contact_id, ids_t.c.type)
        )
        for cid, kind, value in rows:
            out[int(cid)].append((str(kind), str(value)))
    return out


def owners(conn: Connection, workspace_id: int, kind: str, values: Sequence[str]) -> dict[str, int]:
    """value -> contact id for those of ``values`` (of type ``kind``) a contact holds."""
    out: dict[str, int] = {}
    for part in _chunks(list(values)):
        rows = conn.execute(
            sa.select(ids_t.c.value, ids_t.c.contact_id).where(
                ids_t.c.workspace_id == workspace_id,
                ids_t.c.type == kind,
                ids_t.c.value.in_(list(part)),
            )
        )
        out.update({str(v): int(c) for v, c in rows})
    return out


def set_identifiers(
    conn: Connection, workspace_id: int, rows: Sequence[tuple[int, str, str]]
) -> None:
    """(contact id, type, value): each contact gets that value as its only one of the type.

    The caller has checked that no *other* contact holds a value (the primary key would refuse).
    """
    if not rows:
        return
    pairs = {(c, k) for c, k, _ in rows}
    by_kind: dict[str, list[int]] = defaultdict(list)
    for c, k in pairs:
        by_kind[k].append(c)
    for kind, cids in by_kind.items():
        for part in _chunks(cids):
            conn.execute(
                sa.delete(ids_t).where(
                    ids_t.c.workspace_id == workspace_id,
                    ids_t.c.type == kind,
                    ids_t.c.contact_id.in_(list(part)),
                )
            )
    conn.execute(
        sa.insert(ids_t),
        [
            {"workspace_id": workspace_id, "contact_id": c, "type": k, "value": v}
            for c, k, v in rows
        ],
    )


def insert_identifiers(
    conn: Connection, workspace_id: int, rows: Sequence[tuple[int, str, str]]
) -> None:
    """(contact id, type, value) of contacts that have none of these types yet (new ones)."""
    if rows:
        conn.execute(
            sa.insert(ids_t),
            [
                {"workspace_id": workspace_id, "contact_id": c, "type": k, "value": v}
                for c, k, v in rows
            ],
        )


def remove_identifier(conn: Connection, workspace_id: int, contact_id: int, kind: str) -> None:
    conn.execute(
        sa.delete(ids_t).where(
            ids_t.c.workspace_id == workspace_id,
            ids_t.c.contact_id == contact_id,
            ids_t.c.type == kind,
        )
    )


# ----------------------------------------------------------------------------- lists


def list_by_name(conn: Connection, workspace_id: int, name: str) -> dict[str, Any] | None:
    return _one(
        conn,
        sa.select(contact_lists).where(
            contact_lists.c.workspace_id == workspace_id, contact_lists.c.name == name
        ),
    )


def list_by_id(conn: Connection, workspace_id: int, list_id: int) -> dict[str, Any] | None:
    return _owned_row(conn, contact_lists, workspace_id, list_id)


def ensure_list(conn: Connection, workspace_id: int, name: str, now: datetime) -> int:
    """The id of list ``name``, created when it does not exist (two racing creators agree)."""
    conn.execute(
        _insert(conn, contact_lists)
        .values(workspace_id=workspace_id, name=name, created_at=now)
        .on_conflict_do_nothing(index_elements=["workspace_id", "name"])
    )
    row = list_by_name(conn, workspace_id, name)
    assert row is not None
    return int(row["id"])


def _page(
    conn: Connection, table: sa.Table, workspace_id: int, after: int, limit: int
) -> list[dict[str, Any]]:
    """Rows of ``table`` of the workspace by id, from after ``after``."""
    rows = conn.execute(
        sa.select(table)
        .where(table.c.workspace_id == workspace_id, table.c.id > after)
        .order_by(table.c.id)
        .limit(limit)
    ).mappings()
    return [dict(r) for r in rows]


def lists_page(
    conn: Connection, workspace_id: int, *, after: int, limit: int
) -> list[dict[str, Any]]:
    return _page(conn, contact_lists, workspace_id, after, limit)


def member_counts(conn: Connection, list_ids: Sequence[int]) -> dict[int, int]:
    if not list_ids:
        return {}
    rows = conn.execute(
        sa.select(list_members.c.list_id, sa.func.count())
        .where(list_members.c.list_id.in_(list(list_ids)))
        .group_by(list_members.c.list_id)
    )
    return {int(lid): int(n) for lid, n in rows}


def lists_of(conn: Connection, contact_ids: Sequence[int]) -> dict[int, list[str]]:
    """Names of the lists each contact belongs to."""
    out: dict[int, list[str]] = defaultdict(list)
    for part in _chunks(list(contact_ids)):
        rows = conn.execute(
            sa.select(list_members.c.contact_id, contact_lists.c.name)
            .join(contact_lists, contact_lists.c.id == list_members.c.list_id)
            .where(list_members.c.contact_id.in_(list(part)))
            .order_by(list_members.c.contact_id, contact_lists.c.name)
        )
        for cid, name in rows:
            out[int(cid)].append(str(name))
    return out


def add_members(conn: Connection, list_id: int, contact_ids: Iterable[int], now: datetime) -> int:
    """Add contacts to a list; those already members are left alone. Returns how many were new."""
    rows = [
        {"list_id": list_id, "contact_id": c, "added_at": now} for c in dict.fromkeys(contact_ids)
    ]
    if not rows:
        return 0
    stmt = (
        _insert(conn, list_members)
        .on_conflict_do_nothing(index_elements=["list_id", "contact_id"])
        .returning(list_members.c.contact_id)
    )
    return len(conn.execute(stmt, rows).all())  # executemany's rowcount is not a total on psycopg


def remove_members(conn: Connection, list_id: int, contact_ids: Sequence[int]) -> int:
    if not contact_ids:
        return 0
    gone = conn.execute(
        sa.delete(list_members).where(
            list_members.c.list_id == list_id, list_members.c.contact_id.in_(list(contact_ids))
        )
    )
    return int(gone.rowcount)


def owned_contacts(conn: Connection, workspace_id: int, contact_ids: Sequence[int]) -> set[int]:
    """Which of ``contact_ids`` are contacts of the workspace."""
    if not contact_ids:
        return set()
    rows = conn.execute(
        sa.select(contacts.c.id).where(
            contacts.c.workspace_id == workspace_id, contacts.c.id.in_(list(contact_ids))
        )
    )
    return {int(r[0]) for r in rows}


def delete_list(conn: Connection, workspace_id: int, list_id: int) -> bool:
    conn.execute(sa.delete(list_members).where(list_members.c.list_id == list_id))
    conn.execute(
        sa.update(prepared_messages)
        .where(prepared_messages.c.list_id == list_id)
        .values(list_id=None)
    )
    return _delete_owned(conn, contact_lists, workspace_id, list_id)


def members_page(
    conn: Connection, list_id: int, *, after: int, limit: int
) -> list[tuple[int, dict[str, str], str | None]]:
    """(contact id, attributes, MOBILE or None) of a list's members by contact id: what a list
    broadcast renders, a page at a time."""
    mobile = (
        sa.select(ids_t.c.value)
        .where(ids_t.c.contact_id == contacts.c.id, ids_t.c.type == "MOBILE")
        .scalar_subquery()
    )
    rows = conn.execute(
        sa.select(contacts.c.id, contacts.c.attributes, mobile)
        .join(list_members, list_members.c.contact_id == contacts.c.id)
        .where(list_members.c.list_id == list_id, contacts.c.id > after)
        .order_by(contacts.c.id)
        .limit(limit)
    )
    return [(int(r[0]), dict(r[1] or {}), r[2]) for r in rows]


# ----------------------------------------------------------------------------- prepared messages


def insert_template(
    conn: Connection, workspace_id: int, values: dict[str, Any], now: datetime
) -> int:
    return int(
        conn.execute(
            sa.insert(prepared_messages)
            .values(workspace_id=workspace_id, created_at=now, updated_at=now, **values)
            .returning(prepared_messages.c.id)
        ).scalar_one()
    )


def get_template(conn: Connection, workspace_id: int, template_id: int) -> dict[str, Any] | None:
    return _owned_row(conn, prepared_messages, workspace_id, template_id)


def update_template(
    conn: Connection, workspace_id: int, template_id: int, values: dict[str, Any], now: datetime
) -> bool:
    done = conn.execute(
        sa.update(prepared_messages)
        .where(
            prepared_messages.c.id == template_id,
            prepared_messages.c.workspace_id == workspace_id,
        )
        .values(updated_at=now, **values)
    )
    return bool(done.rowcount)


def templates_page(
    conn: Connection, workspace_id: int, *, after: int, limit: int
) -> list[dict[str, Any]]:
    return _page(conn, prepared_messages, workspace_id, after, limit)


def delete_template(conn: Connection, workspace_id: int, template_id: int) -> bool:
    return _delete_owned(conn, prepared_messages, workspace_id, template_id)


def list_names(conn: Connection, list_ids: Sequence[int]) -> dict[int, str]:
    if not list_ids:
        return {}
    rows = conn.execute(
        sa.select(contact_lists.c.id, contact_lists.c.name).where(
            contact_lists.c.id.in_(list(list_ids))
        )
    )
    return {int(i): str(n) for i, n in rows}


# ----------------------------------------------------------------------------- erasure


def _masked(column: Any, id_column: Any) -> Any:
    """``~<row id>``: unique per row (the (broadcast, recipient) index holds), no digits of the
    number left."""
    return sa.literal("~") + sa.cast(id_column, sa.String)


def mask_number(conn: Connection, workspace_id: int, number: str, now: datetime) -> int:
    """Remove ``number`` (E.164) from the workspace's past messages and everything that copies
    it: message rows (recipient masked, text erased; unsent ones CANCELLED first), receipts' raw
    payloads, callback payloads, row errors and inbound messages. Returns messages masked."""
    own = sa.select(broadcasts.c.id).where(broadcasts.c.workspace_id == workspace_id)
    ids = [
        int(r[0])
        for r in conn.execute(
            sa.select(messages.c.id).where(
                messages.c.recipient == number, messages.c.broadcast_id.in_(own)
            )
        )
    ]
    for part in _chunks(ids):
        conn.execute(
            sa.update(messages)
            .where(messages.c.id.in_(list(part)), messages.c.status == MessageStatus.QUEUE)
            .values(status=MessageStatus.CANCELLED, error="contact erased", updated_at=now)
        )
        conn.execute(
            sa.update(messages)
            .where(messages.c.id.in_(list(part)))
            .values(
                recipient=_masked(messages.c.recipient, messages.c.id),
                text=ERASED_TEXT,  # rendered from the contact's attributes: personal too
                updated_at=now,
            )
        )
        conn.execute(
            sa.update(receipts).where(receipts.c.message_id.in_(list(part))).values(raw=None)
        )
        conn.execute(
            sa.update(callback_deliveries)
            .where(callback_deliveries.c.message_id.in_(list(part)))
            .values(payload=None)
        )
    conn.execute(
        sa.update(row_errors)
        .where(row_errors.c.broadcast_id.in_(own), row_errors.c.value.in_(_forms(number)))
        .values(value="~")
    )
    conn.execute(
        sa.update(inbound_messages)
        .where(inbound_messages.c.workspace_id == workspace_id, inbound_messages.c.sender == number)
        .values(sender=_masked(inbound_messages.c.sender, inbound_messages.c.id))
    )
    return len(ids)


def _forms(number: str) -> list[str]:
    """Spellings of an E.164 number a file may have held: ``+48505…`` and ``48505…``."""
    return [number, number.lstrip("+")]
