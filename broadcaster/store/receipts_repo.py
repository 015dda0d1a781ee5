"""The receipt history: every receipt a route delivered, applied or not, kept for audit."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

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


def insert(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """One row or a group's rows in one statement (keys: the ``receipts`` columns but id)."""
    if rows:
        conn.execute(_INSERT, list(rows))


def history(conn: Connection, message_id: int) -> list[dict[str, Any]]:
    """A message's receipts in arrival order."""
    return [dict(r) for r in conn.execute(_HISTORY, {"mid": message_id}).mappings()]
