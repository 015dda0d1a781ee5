"""Broadcasts, their messages and row errors in SQL: batched inserts, compare-and-set updates."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from broadcaster.domain.states import STAGING_STATES, BroadcastStatus, MessageStatus
from broadcaster.store.db import utcnow
from broadcaster.store.models import broadcasts, messages, row_errors

#: A broadcast still being imported (or being discarded) does not exist for any reader.
_NOT_STAGING = broadcasts.c.status.not_in(sorted(STAGING_STATES))


def insert_broadcast(conn: Connection, **values: Any) -> int:
    now = utcnow()
    return int(
        conn.execute(
            sa.insert(broadcasts)
            .values(created_at=now, updated_at=now, **values)
            .returning(broadcasts.c.id)
        ).scalar_one()
    )


def _insert_ignoring_duplicates(conn: Connection) -> Any:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(messages).on_conflict_do_nothing(
        index_elements=["broadcast_id", "recipient"]
    )


def insert_messages(conn: Connection, rows: Sequence[dict[str, Any]]) -> set[int]:
    """Insert a batch; a recipient already in the broadcast is skipped by the unique index.

    Returns the lines actually stored, so the caller can report the duplicates by line.
    """
    if not rows:
        return set()
    stmt = _insert_ignoring_duplicates(conn).returning(messages.c.line)
    return {r[0] for r in conn.execute(stmt, list(rows))}


def insert_row_errors(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        conn.execute(sa.insert(row_errors), list(rows))


def get_broadcast(
    conn: Connection, broadcast_id: int, workspace_id: int | None = None
) -> dict[str, Any] | None:
    q = sa.select(broadcasts).where(broadcasts.c.id == broadcast_id, _NOT_STAGING)
    if workspace_id is not None:
        q = q.where(broadcasts.c.workspace_id == workspace_id)
    row = conn.execute(q).mappings().first()
    return dict(row) if row else None


def list_broadcasts(
    conn: Connection,
    workspace_id: int,
    *,
    status: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[dict[str, Any]]:
    q = sa.select(broadcasts).where(broadcasts.c.workspace_id == workspace_id, _NOT_STAGING)
    if status:
        q = q.where(broadcasts.c.status == status)
    q = q.order_by(broadcasts.c.id.desc()).limit(limit).offset(offset)
    return [dict(r) for r in conn.execute(q).mappings()]


def status_counts(conn: Connection, broadcast_id: int) -> dict[str, int]:
    """Messages per status: the ground truth the counters are derived from."""
    q = (
        sa.select(messages.c.status, sa.func.count())
        .where(messages.c.broadcast_id == broadcast_id)
        .group_by(messages.c.status)
    )
    return {status: int(n) for status, n in conn.execute(q)}


def set_counters(conn: Connection, broadcast_id: int, **counters: int) -> None:
    conn.execute(
        sa.update(broadcasts)
        .where(broadcasts.c.id == broadcast_id)
        .values(updated_at=utcnow(), **counters)
    )


def compare_and_set_status(
    conn: Connection,
    broadcast_id: int,
    allowed_from: frozenset[BroadcastStatus],
    to: BroadcastStatus,
    **values: Any,
) -> bool:
    """Move a broadcast to ``to`` only if it is in ``allowed_from`` now; True when it moved."""
    result = conn.execute(
        sa.update(broadcasts)
        .where(
            broadcasts.c.id == broadcast_id,
            broadcasts.c.status.in_([s.value for s in allowed_from]),
        )
        .values(status=to.value, updated_at=utcnow(), **values)
    )
    return result.rowcount == 1


def due_broadcasts(conn: Connection, now: datetime, limit: int = 100) -> list[int]:
    q = (
        sa.select(broadcasts.c.id)
        .where(broadcasts.c.status == BroadcastStatus.SCHEDULED.value, broadcasts.c.start_at <= now)
        .order_by(broadcasts.c.start_at)
        .limit(limit)
    )
    return [int(r[0]) for r in conn.execute(q)]


def row_error_page(
    conn: Connection, broadcast_id: int, *, limit: int, offset: int = 0
) -> list[dict[str, Any]]:
    q = (
        sa.select(row_errors.c.line, row_errors.c.value, row_errors.c.reason)
        .where(row_errors.c.broadcast_id == broadcast_id)
        .order_by(row_errors.c.line, row_errors.c.id)
        .limit(limit)
        .offset(offset)
    )
    return [dict(r) for r in conn.execute(q).mappings()]


def queued_count(conn: Connection, broadcast_id: int) -> int:
    return int(
        conn.execute(
            sa.select(sa.func.count()).where(
                messages.c.broadcast_id == broadcast_id,
                messages.c.status == MessageStatus.QUEUE.value,
            )
        ).scalar_one()
    )


def claim_unstarted(conn: Connection, broadcast_id: int, workspace_id: int) -> bool:
    """Hold a broadcast of this workspace that never started (SCHEDULED, no ``started_at``) for
    an edit: the UPDATE locks its row until the transaction ends, so the poller cannot start it
    half-edited. False when it is not so (started, final, or not this workspace's)."""
    result = conn.execute(
        sa.update(broadcasts)
        .where(
            broadcasts.c.id == broadcast_id,
            broadcasts.c.workspace_id == workspace_id,
            broadcasts.c.status == BroadcastStatus.SCHEDULED.value,
            broadcasts.c.started_at.is_(None),
        )
        .values(updated_at=utcnow())
    )
    return result.rowcount == 1


def clear_recipients(conn: Connection, broadcast_id: int) -> None:
    """Drop a broadcast's messages and row errors (an edit replaces its recipient list)."""
    conn.execute(sa.delete(messages).where(messages.c.broadcast_id == broadcast_id))
    conn.execute(sa.delete(row_errors).where(row_errors.c.broadcast_id == broadcast_id))


def update_broadcast(conn: Connection, broadcast_id: int, **values: Any) -> None:
    conn.execute(
        sa.update(broadcasts)
        .where(broadcasts.c.id == broadcast_id)
        .values(updated_at=utcnow(), **values)
    )


def past_validity(conn: Connection, now: datetime) -> list[int]:
    """Started, unfinished broadcasts (RUNNING or SUSPENDED) whose validity has run out by ``now``.

    Few broadcasts are active at once, so the deadline is compared here rather than in SQL,
    where date arithmetic differs between SQLite and PostgreSQL.
    """
    rows = conn.execute(
        sa.select(broadcasts.c.id, broadcasts.c.started_at, broadcasts.c.validity_s).where(
            broadcasts.c.status.in_(
                [BroadcastStatus.RUNNING.value, BroadcastStatus.SUSPENDED.value]
            ),
            broadcasts.c.validity_s.is_not(None),
            broadcasts.c.started_at.is_not(None),
        )
    )
    return [int(i) for i, started, validity in rows if started + timedelta(seconds=validity) <= now]


def send_rules(conn: Connection, broadcast_id: int) -> dict[str, Any] | None:
    """What decides which of a broadcast's messages may go now: window, zones, validity, start."""
    row = (
        conn.execute(
            sa.select(
                broadcasts.c.send_window,
                broadcasts.c.zones,
                broadcasts.c.validity_s,
                broadcasts.c.started_at,
            ).where(broadcasts.c.id == broadcast_id)
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


def expired_unsent_count(conn: Connection, broadcast_id: int) -> int:
    """EXPIRED messages never sent (no ``sent_at``): the broadcast's validity ran out first."""
    return int(
        conn.execute(
            sa.select(sa.func.count()).where(
                messages.c.broadcast_id == broadcast_id,
                messages.c.status == MessageStatus.EXPIRED.value,
                messages.c.sent_at.is_(None),
            )
        ).scalar_one()
    )
