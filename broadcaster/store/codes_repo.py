"""Workspaces and sender codes in SQL."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from broadcaster.domain.states import BroadcastStatus, StagingStatus
from broadcaster.store.db import utcnow
from broadcaster.store.models import (
    broadcasts,
    sender_code_owners,
    sender_code_shares,
    sender_codes,
    workspaces,
)

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


def workspace_name(conn: Connection, workspace_id: int) -> str | None:
    row = conn.execute(sa.select(workspaces.c.name).where(workspaces.c.id == workspace_id)).first()
    return str(row.name) if row else None


def code_owner(conn: Connection, code: str) -> int | None:
    """The id of the workspace that owns sender code ``code``, or None when nobody does yet."""
    row = conn.execute(
        sa.select(sender_code_owners.c.workspace_id).where(sender_code_owners.c.code == code)
    ).first()
    return int(row.workspace_id) if row else None


def claim_code(conn: Connection, code: str, workspace_id: int) -> None:
    """Make ``workspace_id`` the owner; an IntegrityError when another claim came first."""
    conn.execute(
        sa.insert(sender_code_owners).values(
            code=code, workspace_id=workspace_id, created_at=utcnow()
        )
    )


def is_shared_with(conn: Connection, code: str, workspace_id: int) -> bool:
    row = conn.execute(
        sa.select(sa.literal(1)).where(
            sender_code_shares.c.code == code, sender_code_shares.c.workspace_id == workspace_id
        )
    ).first()
    return row is not None


def add_share(conn: Connection, code: str, workspace_id: int) -> None:
    """Let ``workspace_id`` use ``code`` too (idempotent)."""
    if not is_shared_with(conn, code, workspace_id):
        conn.execute(
            sa.insert(sender_code_shares).values(
                code=code, workspace_id=workspace_id, created_at=utcnow()
            )
        )


def shared_with(conn: Connection, code: str) -> list[str]:
    """Names of the workspaces ``code`` is shared with, sorted."""
    rows = conn.execute(
        sa.select(workspaces.c.name)
        .join(sender_code_shares, sender_code_shares.c.workspace_id == workspaces.c.id)
        .where(sender_code_shares.c.code == code)
        .order_by(workspaces.c.name)
    )
    return [r[0] for r in rows]


def update_shared_copies(
    conn: Connection, code: str, owner_id: int, key: str, **values: Any
) -> None:
    """The owner changed ``code``: the same values in every workspace it is shared with."""
    shared = sa.select(sender_code_shares.c.workspace_id).where(sender_code_shares.c.code == key)
    conn.execute(
        sa.update(sender_codes)
        .where(
            sender_codes.c.code == code,
            sender_codes.c.workspace_id != owner_id,
            sender_codes.c.workspace_id.in_(shared),
        )
        .values(**values)
    )


#: Broadcasts that may still send: a code they use cannot be removed under them.
_UNFINISHED = (
    *StagingStatus,
    BroadcastStatus.SCHEDULED,
    BroadcastStatus.RUNNING,
    BroadcastStatus.SUSPENDED,
)


def in_use(conn: Connection, workspace_ids: list[int], code: str) -> tuple[int, str, int] | None:
    """The id, status and workspace id of the oldest broadcast of one of ``workspace_ids`` that
    is not finished and sends from ``code``; None when there is none."""
    row = conn.execute(
        sa.select(broadcasts.c.id, broadcasts.c.status, broadcasts.c.workspace_id)
        .where(
            broadcasts.c.workspace_id.in_(workspace_ids),
            broadcasts.c.sender_code == code,
            broadcasts.c.status.in_([s.value for s in _UNFINISHED]),
        )
        .order_by(broadcasts.c.id)
        .limit(1)
    ).first()
    return None if row is None else (int(row[0]), str(row[1]), int(row[2]))


def shared_workspace_ids(conn: Connection, key: str) -> list[int]:
    """Ids of the workspaces the code of owner key ``key`` is shared with."""
    rows = conn.execute(
        sa.select(sender_code_shares.c.workspace_id).where(sender_code_shares.c.code == key)
    )
    return [int(r[0]) for r in rows]


def delete_code(conn: Connection, workspace_ids: list[int], code: str, key: str) -> None:
    """Remove ``code`` from ``workspace_ids``: their rows and their shares of it."""
    conn.execute(
        sa.delete(sender_codes).where(
            sender_codes.c.workspace_id.in_(workspace_ids), sender_codes.c.code == code
        )
    )
    conn.execute(
        sa.delete(sender_code_shares).where(
            sender_code_shares.c.code == key, sender_code_shares.c.workspace_id.in_(workspace_ids)
        )
    )


def release_code(conn: Connection, key: str) -> None:
    """Nobody owns the code of owner key ``key`` any more: the first to register it next will."""
    conn.execute(sa.delete(sender_code_owners).where(sender_code_owners.c.code == key))
