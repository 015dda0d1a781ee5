"""A contact import's staging table and the one set-based publication of it (every statement).

The rows of a file go to a TEMPORARY table of the import's own connection, a batch per short
transaction: on SQLite a temporary table lives in the connection's temp database, so writing
it takes no lock on the main database (other writers are never held up by the staging); on
PostgreSQL it is private to the session. A row of the same key as an earlier one merges into
it there (its attributes and identifiers win, the first line stays). Nothing is visible to
anyone until :func:`publish`, which applies every staged row in one transaction of a few
set-based statements (no per-row round trip): all or nothing, with the lock held only for
those statements. A process that dies leaves nothing: its temporary tables go with its
connection.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

#: Identifier columns of a staged row, by type.
COLUMNS = {"MOBILE": "mobile", "EMAIL": "email", "EXTERNAL": "external", "APP_ALIAS": "app_alias"}
STAGE = "contact_import_stage"
ERRORS = "contact_import_errors"
#: A staged row: (line, key value, mobile, email, external, app_alias, attributes as JSON).
StagedRow = tuple[int, str, str | None, str | None, str | None, str | None, str]
_FIELDS = ("line", "key_value", *COLUMNS.values(), "attributes")


def _sqlite(conn: Connection) -> bool:
    return conn.dialect.name == "sqlite"


def create(conn: Connection) -> None:
    """(Re)create the connection's staging tables, empty (outside any transaction of note)."""
    drop(conn)
    conn.exec_driver_sql(
        f"CREATE TEMPORARY TABLE {STAGE} (key_value TEXT PRIMARY KEY, line INTEGER NOT NULL, "
        "mobile TEXT, email TEXT, external TEXT, app_alias TEXT, attributes TEXT NOT NULL, "
        "contact_id BIGINT, is_new INTEGER NOT NULL DEFAULT 0)"
    )
    conn.exec_driver_sql(
        f"CREATE TEMPORARY TABLE {ERRORS} (line INTEGER NOT NULL, value TEXT, reason TEXT)"
    )


def drop(conn: Connection) -> None:
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {STAGE}")
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {ERRORS}")


#: Attributes as the JSON text staged (one encoder for every row: ``json.dumps`` builds one
#: per call).
attributes_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def stage(conn: Connection, rows: Sequence[StagedRow]) -> None:
    """Add a batch (one row per key: the caller merged the batch's own repeats); a key staged
    by an earlier batch merges: the new row's attributes and identifiers win, its line goes."""
    if not rows:
        return
    merge = ", ".join(f"{c} = coalesce(excluded.{c}, {STAGE}.{c})" for c in COLUMNS.values())
    if _sqlite(conn):
        merged = f"json_patch({STAGE}.attributes, excluded.attributes)"
    else:
        merged = f"({STAGE}.attributes::jsonb || excluded.attributes::jsonb)::text"
    upsert = f"ON CONFLICT (key_value) DO UPDATE SET {merge}, attributes = {merged}"  # noqa: S608
    names = ", ".join(_FIELDS)
    driver: Any = conn.connection.driver_connection
    if _sqlite(conn):
        cur = driver.cursor()
        try:
            cur.executemany(
                f"INSERT INTO {STAGE} ({names}) VALUES ({', '.join('?' * len(_FIELDS))}) {upsert}",
                rows,
            )
        finally:
            cur.close()
        return
    load = f"{STAGE}_load"
    with driver.cursor() as cur:
        cur.execute(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {load} (LIKE {STAGE} INCLUDING DEFAULTS)"
        )
        with cur.copy(f"COPY {load} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cur.execute(f"INSERT INTO {STAGE} ({names}) SELECT {names} FROM {load} {upsert}")
        cur.execute(f"TRUNCATE {load}")


def prepare(conn: Connection, key: str) -> list[str]:
    """Before the publishing transaction (the staging tables only, so no lock on the
    database): index the identifier columns some staged row fills, for the look-up of rows of
    the file that claim one value; those identifier types, for :func:`publish`."""
    present: list[str] = []
    for kind, column in COLUMNS.items():
        if kind == key:
            continue
        used = conn.exec_driver_sql(
            f"SELECT 1 FROM {STAGE} WHERE {column} IS NOT NULL LIMIT 1"
        ).first()
        if used is None:
            continue
        present.append(kind)
        conn.exec_driver_sql(
            f"CREATE INDEX IF NOT EXISTS {STAGE}_{column} ON {STAGE} ({column}, line) "
            f"WHERE {column} IS NOT NULL"
        )
    return present


@dataclass(frozen=True, slots=True)
class Published:
    """What :func:`publish` did: contacts created and updated, row errors it found (all of
    them counted, the first ``shown`` by line kept)."""

    created: int
    updated: int
    errors: int
    first_errors: list[tuple[int, str, str]]


def publish(
    conn: Connection,
    workspace_id: int,
    list_id: int | None,
    key: str,
    now: datetime,
    shown: int,
    kinds: Sequence[str],
) -> Published:
    """Apply every staged row inside the caller's transaction: look up each key's contact,
    create the unknown ones, merge attributes (the file wins), give each contact the row's
    identifiers that nobody else holds (one holder per value: a contact of the workspace, else
    the file's first row of it; the others are row errors and are stored without it), add
    every one to ``list_id``. ``kinds``: the identifier types besides the key that staged rows
    fill (:func:`prepare`)."""
    ws = {"ws": workspace_id}
    _run(
        conn,
        f"UPDATE {STAGE} SET contact_id = i.contact_id FROM contact_identifiers i "
        f"WHERE i.value = {STAGE}.key_value AND i.type = :key AND i.workspace_id = :ws",
        key=key,
        **ws,
    )
    _new_ids(conn)
    attrs = "attributes" if _sqlite(conn) else "attributes::json"
    _run(
        conn,
        "INSERT INTO contacts (id, workspace_id, attributes, created_at, updated_at) "
        f"SELECT contact_id, :ws, {attrs}, :now, :now FROM {STAGE} WHERE is_new = 1",
        now=now,
        **ws,
    )
    created, staged = conn.execute(
        sa.text(f"SELECT coalesce(sum(is_new), 0), count(*) FROM {STAGE}")
    ).one()
    if staged > created:  # some rows are contacts that exist: their attributes merge
        merged = (
            "json_patch(contacts.attributes, s.attributes)"
            if _sqlite(conn)
            else "(contacts.attributes::jsonb || s.attributes::jsonb)::json"
        )
        _run(
            conn,
            f"UPDATE contacts SET attributes = {merged}, updated_at = :now FROM {STAGE} s "
            "WHERE contacts.id = s.contact_id AND s.is_new = 0",
            now=now,
        )
    for kind in kinds:
        _claim(conn, workspace_id, kind, COLUMNS[kind])
    _run(
        conn,
        "INSERT INTO contact_identifiers (value, type, workspace_id, contact_id) "
        f"SELECT key_value, :key, :ws, contact_id FROM {STAGE} WHERE is_new = 1",
        key=key,
        **ws,
    )
    if list_id is not None:
        _run(
            conn,
            "INSERT INTO list_members (list_id, contact_id, added_at) "
            f"SELECT :lid, contact_id, :now FROM {STAGE} WHERE true "
            "ON CONFLICT (list_id, contact_id) DO NOTHING",
            lid=list_id,
            now=now,
        )
    errors = int(conn.execute(sa.text(f"SELECT count(*) FROM {ERRORS}")).scalar_one())
    first = conn.execute(
        sa.text(f"SELECT line, value, reason FROM {ERRORS} ORDER BY line LIMIT :n"), {"n": shown}
    )
    return Published(
        int(created),
        int(staged) - int(created),
        errors,
        [(int(line), str(v), str(r)) for line, v, r in first],
    )


def _run(conn: Connection, sql: str, **params: Any) -> None:
    stmt = sa.text(sql)
    if "now" in params:
        stmt = stmt.bindparams(sa.bindparam("now", type_=sa.DateTime))
    conn.execute(stmt, params)


def _new_ids(conn: Connection) -> None:
    """Ids for the staged keys no contact holds (``is_new``). PostgreSQL: the sequence. SQLite:
    past the AUTOINCREMENT high-water mark, read after taking the database's write lock (so no
    other writer takes the same ids); inserting them moves the mark on."""
    if not _sqlite(conn):
        _run(
            conn,
            f"UPDATE {STAGE} SET contact_id = nextval(pg_get_serial_sequence('contacts', 'id')), "
            "is_new = 1 WHERE contact_id IS NULL",
        )
        return
    conn.exec_driver_sql("UPDATE contacts SET id = id WHERE 0")  # take the write lock
    top = conn.exec_driver_sql(
        "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'contacts'), 0), "
        "coalesce((SELECT max(id) FROM contacts), 0))"
    ).scalar_one()
    _run(
        conn,
        # rowid order is staging order, which is the order of the keys' first lines
        f"UPDATE {STAGE} SET contact_id = :top + r.n, is_new = 1 FROM "
        f"(SELECT rowid AS rid, row_number() OVER (ORDER BY rowid) AS n FROM {STAGE} "
        f"WHERE contact_id IS NULL) r WHERE {STAGE}.rowid = r.rid",
        top=int(top),
    )


def _claim(conn: Connection, workspace_id: int, kind: str, column: str) -> None:
    """Give the staged contacts their ``kind`` identifier from ``column`` where they may: a
    value another contact of the workspace holds, or an earlier row of the file claimed, is a
    row error and is not stored; a contact's old value of the type gives way to the new one."""
    params = {"ws": workspace_id, "kind": kind}
    held = (
        f"FROM contact_identifiers i WHERE i.value = {STAGE}.{column} AND i.type = :kind "
        f"AND i.workspace_id = :ws AND i.contact_id <> {STAGE}.contact_id"
    )
    reason = f"'{kind} ' || {STAGE}.{column} || ' belongs to contact ' || "
    _run(
        conn,
        f"INSERT INTO {ERRORS} (line, value, reason) SELECT {STAGE}.line, {STAGE}.{column}, "
        f"{reason} i.contact_id FROM {STAGE} JOIN contact_identifiers i "
        f"ON i.value = {STAGE}.{column} AND i.type = :kind AND i.workspace_id = :ws "
        f"AND i.contact_id <> {STAGE}.contact_id",
        **params,
    )
    _run(conn, f"UPDATE {STAGE} SET {column} = NULL WHERE EXISTS (SELECT 1 {held})", **params)
    # Two rows of the file with one value: the first one's contact holds it.
    first = (
        f"(SELECT min(f.line) FROM {STAGE} f WHERE f.{column} = {STAGE}.{column} "
        f"AND f.{column} IS NOT NULL)"
    )
    _run(
        conn,
        f"INSERT INTO {ERRORS} (line, value, reason) SELECT {STAGE}.line, {STAGE}.{column}, "
        f"{reason} w.contact_id FROM {STAGE} JOIN {STAGE} w ON w.{column} = {STAGE}.{column} "
        f"AND w.line = {first} WHERE {STAGE}.line <> w.line",
    )
    _run(
        conn,
        f"UPDATE {STAGE} SET {column} = NULL WHERE {column} IS NOT NULL AND line > {first}",
    )
    _run(
        conn,
        "DELETE FROM contact_identifiers WHERE workspace_id = :ws AND type = :kind AND "
        f"contact_id IN (SELECT contact_id FROM {STAGE} WHERE is_new = 0 "
        f"AND {column} IS NOT NULL)",
        **params,
    )
    _run(
        conn,
        "INSERT INTO contact_identifiers (value, type, workspace_id, contact_id) "
        f"SELECT {column}, :kind, :ws, contact_id FROM {STAGE} WHERE {column} IS NOT NULL",
        **params,
    )
