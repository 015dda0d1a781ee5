"""Workspaces and sender codes in SQL."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from broadcaster.store.db import utcnow
from broadcaster.store.models import sender_codes, workspaces

DEFAULT_WORKSPACE = "default"


def ensure_workspace(conn: Connection, name: str = DEFAULT_WORKSPACE) -> int:
    """The id of workspace ``name``, created on first use."""
    row = conn.execute(sa.select(workspaces.c.id).where(workspaces.c.name == name)).first()
    if row:
        return int(row.id)
    return int(
        conn.execute(
            sa.insert(workspaces).values(name=name, created_at=utcnow()).returning(workspaces.c.id)
        ).scalar_one()
    )


def find_code(conn: Connection, workspace_id: int, code: str) -> dict[str, Any] | None:
    row = (
        conn.execute(
            sa.select(sender_codes).where(
                sender_codes.c.workspace_id == workspace_id, sender_codes.c.code == code
            )
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


def insert_code(conn: Connection, workspace_id: int, **values: Any) -> dict[str, Any]:
    conn.execute(
        sa.insert(sender_codes).values(workspace_id=workspace_id, created_at=utcnow(), **values)
    )
    found = find_code(conn, workspace_id, values["code"])
    assert found is not None
    return found


def update_code(conn: Connection, code_id: int, **values: Any) -> None:
    conn.execute(sa.update(sender_codes).where(sender_codes.c.id == code_id).values(**values))


def list_codes(conn: Connection, workspace_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        sa.select(sender_codes)
        .where(sender_codes.c.workspace_id == workspace_id)
        .order_by(sender_codes.c.code)
    ).mappings()
    return [dict(r) for r in rows]
