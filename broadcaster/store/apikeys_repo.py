"""API keys in SQL: insert, list, revoke, the look-up by prefix that authentication needs and
the look-up by public key that seed 004's signed URLs need."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from broadcaster.store.db import utcnow
from broadcaster.store.models import api_keys, workspaces


def insert_key(conn: Connection, workspace_id: int, prefix: str, **values: Any) -> None:
    """A new key row (``key_hash``, ``secret``, ``public_key``, ``seed_secret``)."""
    conn.execute(
        sa.insert(api_keys).values(
            workspace_id=workspace_id, prefix=prefix, created_at=utcnow(), **values
        )
    )


def list_keys(conn: Connection, workspace: str | None = None) -> list[dict[str, Any]]:
    """Every key's prefix, workspace name, dates and whether it signs; never a secret."""
    q = (
        sa.select(
            api_keys.c.prefix,
            workspaces.c.name.label("workspace"),
            api_keys.c.created_at,
            api_keys.c.revoked_at,
            api_keys.c.secret.is_not(None).label("signing"),
        )
        .join(workspaces, workspaces.c.id == api_keys.c.workspace_id)
        .order_by(api_keys.c.id)
    )
    if workspace is not None:
        q = q.where(workspaces.c.name == workspace)
    return [{**r, "signing": bool(r["signing"])} for r in conn.execute(q).mappings()]


def revocation_of(
    conn: Connection, prefix: str, workspace_id: int | None = None
) -> tuple[int, datetime | None] | None:
    """(id, revoked at) of the key with ``prefix`` (of ``workspace_id`` when given), or None."""
    q = sa.select(api_keys.c.id, api_keys.c.revoked_at).where(api_keys.c.prefix == prefix)
    if workspace_id is not None:
        q = q.where(api_keys.c.workspace_id == workspace_id)
    row = conn.execute(q).first()
    return None if row is None else (int(row.id), row.revoked_at)


def live_keys_locked(conn: Connection, workspace_id: int) -> int:
    """Unrevoked keys of the workspace, its row locked (PostgreSQL) until the transaction ends,
    so that concurrent creations count one after the other."""
    conn.execute(
        sa.select(workspaces.c.id).where(workspaces.c.id == workspace_id).with_for_update()
    ).first()
    return int(
        conn.execute(
            sa.select(sa.func.count())
            .select_from(api_keys)
            .where(api_keys.c.workspace_id == workspace_id, api_keys.c.revoked_at.is_(None))
        ).scalar_one()
    )


def revoke(conn: Connection, key_id: int, at: datetime) -> None:
    conn.execute(sa.update(api_keys).where(api_keys.c.id == key_id).values(revoked_at=at))


def find_by_prefix(conn: Connection, prefix: str) -> Any:
    """The key row with its workspace name (id, key_hash, secret, revoked_at, workspace_id, name)."""
    return conn.execute(
        sa.select(
            api_keys.c.id,
            api_keys.c.key_hash,
            api_keys.c.secret,
            api_keys.c.revoked_at,
            api_keys.c.workspace_id,
            workspaces.c.name,
        )
        .join(workspaces, workspaces.c.id == api_keys.c.workspace_id)
        .where(api_keys.c.prefix == prefix)
    ).first()


def by_public_key(conn: Connection, public_key: str) -> dict[str, Any] | None:
    """The key row with its workspace name, revoked or not (the caller decides)."""
    row = (
        conn.execute(
            sa.select(
                api_keys.c.id,
                api_keys.c.prefix,
                api_keys.c.secret,
                api_keys.c.seed_secret,
                api_keys.c.revoked_at,
                api_keys.c.workspace_id,
                workspaces.c.name,
            )
            .join(workspaces, workspaces.c.id == api_keys.c.workspace_id)
            .where(api_keys.c.public_key == public_key)
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None
