"""API keys in SQL: the look-up by public key that seed 004's signed URLs need."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from broadcaster.store.models import api_keys, workspaces


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
