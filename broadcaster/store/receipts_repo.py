"""The receipt history: every receipt a route delivered, applied or not, kept for audit."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from broadcaster.store import messages_repo
from broadcaster.store.messages_repo import Advance
from broadcaster.store.models import receipts

_INSERT = sa.insert(receipts)
_HISTORY = (
    sa.select(
        receipts.c.status,
        receipts.c.applied,
        receipts.c.reported_at,
        receipts.c.received_at,
        receipts.c.provider,
    )
    .where(receipts.c.message_id == sa.bindparam("mid"))
    .order_by(receipts.c.id)
)

# PostgreSQL: a group's message moves and its history rows in one statement, each column one
# array parameter (``unnest``), sent in binary (``%(…)b``). executemany sent one Bind/Execute
# per row and the text form of an array escapes each element in Python: for groups of ~10
# receipts that per-row work was most of the API's CPU per receipt (measured: see the README).
# The moves are compare-and-sets on the status the group read; the caller rolls back when
# fewer rows moved than asked. The history's ids follow arrival order (WITH ORDINALITY), which
# the history reads by.
_GROUP_PG = """
WITH moved AS (
    UPDATE messages AS m
    SET status = v.st, updated_at = %(now)b, gateway_id = coalesce(m.gateway_id, v.gid)
    FROM unnest(%(ids)b::bigint[], %(seen)b::text[], %(st)b::text[], %(to_gids)b::text[])
        AS v(id, seen, st, gid)
    WHERE m.id = v.id AND m.status = v.seen
    RETURNING m.id
), kept AS (
    INSERT INTO receipts
        (message_id, provider, gateway_id, status, applied, reported_at, received_at, raw)
    SELECT r.mid, r.provider, r.gid, r.st, r.applied, r.rep, r.recv, r.raw::json
    FROM unnest(%(mids)b::bigint[], %(providers)b::text[], %(gids)b::text[], %(sts)b::text[],
                %(applied)b::boolean[], %(reps)b::text[], %(recvs)b::timestamp[],
                %(raws)b::text[])
        WITH ORDINALITY AS r(mid, provider, gid, st, applied, rep, recv, raw, n)
    ORDER BY r.n
)
SELECT count(*) FROM moved
"""
#: (array parameter, ``receipts`` column) of the history rows.
_COLUMNS = (
    ("mids", "message_id"),
    ("providers", "provider"),
    ("gids", "gateway_id"),
    ("sts", "status"),
    ("applied", "applied"),
    ("reps", "reported_at"),
    ("recvs", "received_at"),
)


def insert(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """One row or a group's rows in one statement (keys: the ``receipts`` columns but id)."""
    if rows:
        conn.execute(_INSERT, list(rows))


def store_group(
    conn: Connection, moves: Sequence[Advance], rows: Sequence[dict[str, Any]], now: datetime
) -> bool:
    """A group's message moves (:func:`messages_repo.advance_many`) and its history rows.

    False when a message was no longer at the status the group read: the caller must roll back
    (some rows may have moved). Each message appears once among ``moves``.
    """
    if conn.dialect.name != "postgresql":
        if not messages_repo.advance_many(conn, moves, now):
            return False
        insert(conn, rows)
        return True
    params: dict[str, Any] = {name: [r[col] for r in rows] for name, col in _COLUMNS}
    params["raws"] = [json.dumps(r["raw"]) for r in rows]  # what sa.JSON stores (None: null)
    params.update(
        now=now,
        ids=[m.message_id for m in moves],
        seen=[m.seen for m in moves],
        st=[m.to for m in moves],
        to_gids=[m.gateway_id for m in moves],
    )
    moved = conn.exec_driver_sql(_GROUP_PG, params).scalar_one()
    return int(moved) == len(moves)


def history(conn: Connection, message_id: int) -> list[dict[str, Any]]:
    """A message's receipts in arrival order."""
    return [dict(r) for r in conn.execute(_HISTORY, {"mid": message_id}).mappings()]
