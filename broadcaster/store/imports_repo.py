"""A staged import in SQL: the hidden broadcast's heartbeat, its publication, its removal in
batches, and the ``imported_files`` ledger row written in the publishing transaction.

Every change of a staged broadcast is a compare-and-set on its status, so the importer, its own
clean-up and the poller's sweep can race without one undoing the other: a sweep that took a
broadcast (IMPORTING → DISCARDING) makes the importer's next heartbeat fail, and a heartbeat
that came first makes the sweep skip it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from broadcaster.domain.states import STAGING_STATES, BroadcastStatus, StagingStatus
from broadcaster.store.models import broadcasts, imported_files, messages, row_errors

S = StagingStatus
_STAGING = sorted(STAGING_STATES)


def staging_commit(conn: Connection) -> None:
    """This transaction stores rows of a broadcast still IMPORTING: on PostgreSQL its commit
    need not wait for the WAL flush (``synchronous_commit = off``, this transaction only).

    Safe for all or nothing: a crash loses only the newest such commits, never one before a
    durable commit, and the publishing transaction is durable as always, so a published import
    has every batch; one not yet published is invisible and goes to the sweep either way.
    SQLite already commits without a sync in WAL mode (``synchronous=NORMAL``)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")


def heartbeat(conn: Connection, broadcast_id: int, now: datetime) -> bool:
    """Say "still importing" (the sweep goes by ``updated_at``); False if it was taken away.

    The first write of every batch's transaction, so it is also where that transaction waits
    for the write lock.
    """
    result = conn.execute(
        sa.update(broadcasts)
        .where(broadcasts.c.id == broadcast_id, broadcasts.c.status == S.IMPORTING.value)
        .values(updated_at=now)
    )
    return result.rowcount == 1


def publish(
    conn: Connection, broadcast_id: int, status: BroadcastStatus, now: datetime, **values: Any
) -> bool:
    """IMPORTING → ``status``: from this commit on, the broadcast exists for everyone."""
    result = conn.execute(
        sa.update(broadcasts)
        .where(broadcasts.c.id == broadcast_id, broadcasts.c.status == S.IMPORTING.value)
        .values(status=status.value, updated_at=now, **values)
    )
    return result.rowcount == 1


def take_for_discard(
    conn: Connection, broadcast_id: int, stale_before: datetime | None = None
) -> bool:
    """IMPORTING → DISCARDING (also true when it is DISCARDING already).

    With ``stale_before`` (the sweep), an IMPORTING row is taken only if its last heartbeat is
    older: a live import is left alone.
    """
    importing = broadcasts.c.status == S.IMPORTING.value
    if stale_before is not None:
        importing = sa.and_(importing, broadcasts.c.updated_at < stale_before)
    result = conn.execute(
        sa.update(broadcasts)
        .where(
            broadcasts.c.id == broadcast_id,
            sa.or_(importing, broadcasts.c.status == S.DISCARDING.value),
        )
        .values(status=S.DISCARDING.value)
    )
    return result.rowcount == 1


def abandoned(conn: Connection, stale_before: datetime, limit: int) -> list[int]:
    """Staged broadcasts nobody is importing any more: no heartbeat since ``stale_before``, or
    already being discarded (a clean-up that died half-way)."""
    q = (
        sa.select(broadcasts.c.id)
        .where(
            broadcasts.c.status.in_(_STAGING),
            sa.or_(
                broadcasts.c.status == S.DISCARDING.value,
                broadcasts.c.updated_at < stale_before,
            ),
        )
        .order_by(broadcasts.c.id)
        .limit(limit)
    )
    return [int(r[0]) for r in conn.execute(q)]


def _discarding(broadcast_id: int) -> Any:
    return sa.exists().where(
        broadcasts.c.id == broadcast_id, broadcasts.c.status == S.DISCARDING.value
    )


def delete_rows(conn: Connection, broadcast_id: int, limit: int) -> int:
    """Delete up to ``limit`` messages, else row errors, of a DISCARDING broadcast; how many.

    Bounded, so a million staged rows go in many short transactions, not one long one. The
    status guard makes it a no-op on any broadcast that is not being discarded.
    """
    for table in (messages, row_errors):
        some = (
            sa.select(table.c.id)
            .where(table.c.broadcast_id == broadcast_id, _discarding(broadcast_id))
            .limit(limit)
            .scalar_subquery()
        )
        n = conn.execute(sa.delete(table).where(table.c.id.in_(some))).rowcount
        if n:
            return int(n)
    return 0


def delete_broadcast(conn: Connection, broadcast_id: int) -> bool:
    """The emptied row itself, only while DISCARDING."""
    result = conn.execute(
        sa.delete(broadcasts).where(
            broadcasts.c.id == broadcast_id, broadcasts.c.status == S.DISCARDING.value
        )
    )
    return result.rowcount == 1


# ---------------------------------------------------------------------------- the ledger


def find_key(conn: Connection, key: str) -> dict[str, Any] | None:
    row = (
        conn.execute(sa.select(imported_files).where(imported_files.c.sha256 == key))
        .mappings()
        .first()
    )
    return dict(row) if row else None


def free_key(conn: Connection, key: str, broadcast_id: int | None) -> None:
    """Forget a key whose broadcast (``broadcast_id``) is gone: the file may be imported again.

    Only that entry: a concurrent import that just recorded the key for its new broadcast keeps it.
    """
    held_by = (
        imported_files.c.broadcast_id.is_(None)
        if broadcast_id is None
        else imported_files.c.broadcast_id == broadcast_id
    )
    conn.execute(sa.delete(imported_files).where(imported_files.c.sha256 == key, held_by))


def record_key(conn: Connection, key: str, name: str, broadcast_id: int, now: datetime) -> bool:
    """Write ``key`` → ``broadcast_id``; False when another transaction holds the key already.

    ``ON CONFLICT DO NOTHING``: on PostgreSQL a concurrent publisher of the same key makes this
    wait for its commit and then insert nothing, instead of failing on the primary key.
    """
    # A stale key naming this id (ids reused after a delete) would call this file "already
    # imported" as an unrelated broadcast.
    conn.execute(
        sa.delete(imported_files).where(
            imported_files.c.broadcast_id == broadcast_id, imported_files.c.sha256 != key
        )
    )
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = (
        dialect.insert(imported_files)
        .values(sha256=key, name=name, broadcast_id=broadcast_id, created_at=now)
        .on_conflict_do_nothing(index_elements=["sha256"])
        .returning(imported_files.c.sha256)
    )
    return conn.execute(stmt).first() is not None
