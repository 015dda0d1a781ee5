"""The suppression list in SQL: one row per (workspace, E.164 number), with its source.

The send claim reads it with a NOT EXISTS on the primary key (``messages_repo._CLAIM``); imports
mark suppressed recipients ``BLACKLISTED`` with one set-based UPDATE (:func:`blacklist_queued`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from broadcaster.domain.states import MessageStatus
from broadcaster.store.models import broadcasts, messages, optouts
from broadcaster.store.sql import not_for_index

#: Where an entry came from.
SOURCE_INBOUND = "inbound"  # a STOP keyword (a START removes only these)
SOURCE_GATEWAY = "gateway"  # a BLACKLISTED receipt or refusal
SOURCE_OPERATOR = "operator"
SOURCE_IMPORT = "import"
SOURCES = (SOURCE_INBOUND, SOURCE_GATEWAY, SOURCE_OPERATOR, SOURCE_IMPORT)

#: Why a message of a suppressed number ended BLACKLISTED (its ``error`` column).
SUPPRESSED_REASON = "recipient opted out (suppression list)"


def _upsert(conn: Connection) -> Any:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(optouts)


def add(
    conn: Connection,
    workspace_id: int,
    rows: Iterable[tuple[str, str, str | None]],
    now: datetime,
) -> int:
    """Add (number, source, detail) rows; a number already listed keeps its first entry.

    Returns how many numbers were new.
    """
    values = [
        {
            "workspace_id": workspace_id,
            "number": n,
            "source": s,
            "detail": (d or None) and d[:200],
            "created_at": now,
        }
        for n, s, d in rows
    ]
    if not values:
        return 0
    stmt = (
        _upsert(conn)
        .on_conflict_do_nothing(index_elements=["workspace_id", "number"])
        .returning(optouts.c.number)
    )
    return len(conn.execute(stmt, values).all())


def remove(
    conn: Connection, workspace_id: int, number: str, *, sources: Sequence[str] | None = None
) -> bool:
    """Delete one entry (only of ``sources`` when given); True when one was deleted."""
    stmt = sa.delete(optouts).where(
        optouts.c.workspace_id == workspace_id, optouts.c.number == number
    )
    if sources is not None:
        stmt = stmt.where(optouts.c.source.in_(list(sources)))
    return bool(conn.execute(stmt).rowcount)


def get(conn: Connection, workspace_id: int, number: str) -> dict[str, Any] | None:
    row = (
        conn.execute(
            sa.select(optouts).where(
                optouts.c.workspace_id == workspace_id, optouts.c.number == number
            )
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


def page(
    conn: Connection, workspace_id: int, *, after: str = "", limit: int = 100
) -> list[dict[str, Any]]:
    """Entries of one workspace ordered by number, from after ``after`` (keyset paging)."""
    rows = conn.execute(
        sa.select(optouts.c.number, optouts.c.source, optouts.c.detail, optouts.c.created_at)
        .where(optouts.c.workspace_id == workspace_id, optouts.c.number > after)
        .order_by(optouts.c.number)
        .limit(limit)
    ).mappings()
    return [dict(r) for r in rows]


def numbers_among(conn: Connection, workspace_id: int, numbers: Sequence[str]) -> set[str]:
    """Which of ``numbers`` are suppressed in the workspace (for a dry run's batch)."""
    if not numbers:
        return set()
    statement = _NUMBERS_AMONG_PG if conn.dialect.name == "postgresql" else _NUMBERS_AMONG_SQLITE
    rows = conn.execute(statement, {"ws": workspace_id, "numbers": json.dumps(list(numbers))})
    return {str(r[0]) for r in rows}


# One parameter for the whole list, whatever its length: ``IN`` over a 5,000-number list made
# SQLAlchemy name and render 5,000 bind parameters per import batch (~10 µs per row, most of a
# batch's storing time). Both statements are parsed once and cached. A JSON text, not a
# PostgreSQL array: psycopg dumps an array element by element with a regular expression each
# (~15 µs a row in the profile), json.dumps is one C call.
_NUMBERS_AMONG_PG = sa.text(
    "SELECT number FROM optouts WHERE workspace_id = :ws "
    "AND number IN (SELECT json_array_elements_text(CAST(:numbers AS json)))"
)
_NUMBERS_AMONG_SQLITE = sa.text(
    "SELECT number FROM optouts WHERE workspace_id = :ws "
    "AND number IN (SELECT value FROM json_each(:numbers))"
)


def _suppressed(workspace: Any) -> Any:
    return sa.exists().where(
        optouts.c.workspace_id == workspace, optouts.c.number == messages.c.recipient
    )


def not_suppressed_at_claim(broadcast_id: Any) -> Any:
    """The claim's guard: no opt-out of the broadcast's workspace holds the recipient.

    A confirmation (``reply_to_inbound`` set) is exempt: its scalar subquery is NULL, and
    ``workspace_id = NULL`` matches nothing.
    """
    ws = (
        sa.select(broadcasts.c.workspace_id)
        .where(broadcasts.c.id == broadcast_id, broadcasts.c.reply_to_inbound.is_(None))
        .scalar_subquery()
    )
    return ~_suppressed(ws)


def blacklist_queued(
    conn: Connection,
    broadcast_id: int,
    now: datetime,
    ids: Sequence[int] | None = None,
) -> int:
    """QUEUE → BLACKLISTED for the broadcast's suppressed recipients (among ``ids`` if given).

    At import (``ids`` None) and for the messages a claim refused. Returns how many.
    """
    ws = (
        sa.select(broadcasts.c.workspace_id)
        .where(broadcasts.c.id == broadcast_id, broadcasts.c.reply_to_inbound.is_(None))
        .scalar_subquery()
    )
    by_id = ids is not None  # a claim's few ids: found by primary key, not the status index
    status = not_for_index(messages.c.status) if by_id else messages.c.status
    stmt = (
        sa.update(messages)
        .where(
            (not_for_index(messages.c.broadcast_id) if by_id else messages.c.broadcast_id)
            == broadcast_id,
            status == MessageStatus.QUEUE.value,
            _suppressed(ws),
        )
        .values(
            status=MessageStatus.BLACKLISTED.value,
            error=SUPPRESSED_REASON,
            updated_at=now,
        )
    )
    if ids is not None:
        if not ids:
            return 0
        stmt = stmt.where(messages.c.id.in_(list(ids)))
    return int(conn.execute(stmt).rowcount)


def workspace_of_message(conn: Connection, message_id: int) -> int | None:
    """The workspace of a message's broadcast (a gateway's BLACKLISTED names a message)."""
    row = conn.execute(
        sa.select(broadcasts.c.workspace_id, messages.c.recipient)
        .join(messages, messages.c.broadcast_id == broadcasts.c.id)
        .where(messages.c.id == message_id)
    ).first()
    return int(row[0]) if row else None


def add_from_messages(
    conn: Connection, message_ids: Sequence[int], detail: str, now: datetime
) -> int:
    """Suppress the recipients of messages a gateway refused as BLACKLISTED (source gateway).

    One INSERT … SELECT; a number already listed keeps its first entry. Returns rows added.
    """
    if not message_ids:
        return 0
    picked = (
        sa.select(
            broadcasts.c.workspace_id,
            messages.c.recipient,
            sa.literal(SOURCE_GATEWAY),
            sa.literal(detail[:200]),
            sa.literal(now, sa.DateTime()),
        )
        .join(broadcasts, broadcasts.c.id == messages.c.broadcast_id)
        .where(messages.c.id.in_(list(message_ids)))
        .distinct()
    )
    stmt = (
        _upsert(conn)
        .from_select(["workspace_id", "number", "source", "detail", "created_at"], picked)
        .on_conflict_do_nothing(index_elements=["workspace_id", "number"])
    )
    return max(int(conn.execute(stmt).rowcount), 0)
