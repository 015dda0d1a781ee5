"""Inbound (MO) messages and per-workspace settings in SQL."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from broadcaster.store.models import broadcasts, inbound_messages, workspace_settings

im = inbound_messages


def insert_once(conn: Connection, row: dict[str, Any]) -> tuple[int, bool]:
    """Store one inbound message; (id, True) when new, (the stored id, False) when the route
    already holds that gateway id (a gateway retrying its webhook)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = (
        dialect.insert(im)
        .values(**row)
        .on_conflict_do_nothing(index_elements=["route", "gateway_id"])
        .returning(im.c.id)
    )
    new = conn.execute(stmt).scalar()
    if new is not None:
        return int(new), True
    old = conn.execute(
        sa.select(im.c.id).where(im.c.route == row["route"], im.c.gateway_id == row["gateway_id"])
    ).scalar_one()
    return int(old), False


def get(conn: Connection, inbound_id: int) -> dict[str, Any] | None:
    row = conn.execute(sa.select(im).where(im.c.id == inbound_id)).mappings().first()
    return dict(row) if row else None


def page(
    conn: Connection, workspace_id: int, *, before: int | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """A workspace's inbound messages, newest first, ids below ``before`` (keyset paging)."""
    stmt = sa.select(im).where(im.c.workspace_id == workspace_id)
    if before is not None:
        stmt = stmt.where(im.c.id < before)
    rows = conn.execute(stmt.order_by(im.c.id.desc()).limit(limit)).mappings()
    return [dict(r) for r in rows]


def reply_of(conn: Connection, inbound_id: int) -> int | None:
    """The broadcast that confirmed inbound message ``inbound_id``, if one was made."""
    row = conn.execute(
        sa.select(broadcasts.c.id).where(broadcasts.c.reply_to_inbound == inbound_id)
    ).first()
    return int(row[0]) if row else None


def mark_reply(conn: Connection, broadcast_id: int, inbound_id: int) -> None:
    """Tie a confirmation broadcast to its inbound message (unique: a second one fails)."""
    conn.execute(
        sa.update(broadcasts)
        .where(broadcasts.c.id == broadcast_id)
        .values(reply_to_inbound=inbound_id)
    )


def settings_of(conn: Connection, workspace_id: int) -> dict[str, Any]:
    """A workspace's stored settings ({} when it has none)."""
    row = conn.execute(
        sa.select(workspace_settings.c.settings).where(
            workspace_settings.c.workspace_id == workspace_id
        )
    ).first()
    return dict(row[0]) if row and isinstance(row[0], dict) else {}


def save_settings(
    conn: Connection, workspace_id: int, values: dict[str, Any], now: datetime
) -> None:
    """Replace a workspace's settings (read, merge, then save: the caller merges)."""
    updated = conn.execute(
        sa.update(workspace_settings)
        .where(workspace_settings.c.workspace_id == workspace_id)
        .values(settings=values, updated_at=now)
    ).rowcount
    if not updated:
        conn.execute(
            sa.insert(workspace_settings).values(
                workspace_id=workspace_id, settings=values, updated_at=now
            )
        )
