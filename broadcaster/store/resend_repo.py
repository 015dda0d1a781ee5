"""SQL of ``retry-failed``: the retry broadcast of a source, and copying its failed messages."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from broadcaster.domain.states import MessageStatus
from broadcaster.store.models import broadcasts, messages, optouts
from broadcaster.store.optouts_repo import SUPPRESSED_REASON

#: Columns a retry copies from each failed message (the rest starts afresh).
_COPIED = ("line", "recipient", "text", "encoding", "segments", "external_id", "client_id", "tz")


def retry_of(conn: Connection, source_id: int) -> int | None:
    """The id of the broadcast that re-sends ``source_id``'s failed messages, or None."""
    found = conn.execute(
        sa.select(broadcasts.c.id).where(broadcasts.c.retry_of == source_id)
    ).scalar()
    return None if found is None else int(found)


def count_in(conn: Connection, broadcast_id: int, statuses: Iterable[MessageStatus]) -> int:
    """Messages of ``broadcast_id`` in one of ``statuses``."""
    return int(
        conn.execute(
            sa.select(sa.func.count()).where(
                messages.c.broadcast_id == broadcast_id,
                messages.c.status.in_([s.value for s in statuses]),
            )
        ).scalar_one()
    )


def copy_messages(
    conn: Connection,
    source_id: int,
    target_id: int,
    workspace_id: int,
    statuses: Iterable[MessageStatus],
    now: datetime,
) -> int:
    """One INSERT … SELECT: each message of ``source_id`` in ``statuses`` once more in
    ``target_id``, QUEUE with no attempts, or BLACKLISTED when its number opted out since (the
    workspace's suppression list). How many were copied."""
    opted_out = (
        sa.select(sa.literal(1))
        .where(optouts.c.workspace_id == workspace_id, optouts.c.number == messages.c.recipient)
        .exists()
    )
    status = sa.case((opted_out, MessageStatus.BLACKLISTED.value), else_=MessageStatus.QUEUE.value)
    error = sa.case((opted_out, SUPPRESSED_REASON), else_=sa.null())
    picked = sa.select(
        sa.literal(target_id),
        *(messages.c[name] for name in _COPIED),
        status,
        error,
        sa.literal(now, sa.DateTime),
    ).where(
        messages.c.broadcast_id == source_id,
        messages.c.status.in_([s.value for s in statuses]),
    )
    columns = ["broadcast_id", *_COPIED, "status", "error", "created_at"]
    result = conn.execute(sa.insert(messages).from_select(columns, picked.order_by(messages.c.id)))
    return int(result.rowcount)
