"""Read queries of the HTTP API: workspace ownership, keyset pages, report pages, queue depth.

Pages are keyset (``WHERE id > :after ORDER BY id LIMIT n``), never OFFSET: page 5,000 of a
million-message broadcast costs what page 1 costs.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from broadcaster.domain.states import (
    INVISIBLE_BROADCAST_STATES,
    STAGING_STATES,
    UNSENT_STATES,
    MessageStatus,
)
from broadcaster.store.models import broadcasts, messages, row_errors

#: Deleted, or still being imported: no page, count or look-up shows it.
_SHOWN = broadcasts.c.status.not_in(sorted(INVISIBLE_BROADCAST_STATES))

#: Columns of one report row, in order (the report's header names them for users).
REPORT_COLUMNS = (
    messages.c.id,
    messages.c.line,
    messages.c.recipient,
    messages.c.status,
    messages.c.segments,
    messages.c.encoding,
    messages.c.gateway_id,
    messages.c.error,
    messages.c.created_at,
    messages.c.sent_at,
    messages.c.updated_at,
    messages.c.text,
    messages.c.external_id,
    messages.c.client_id,
)
MESSAGE_PAGE_COLUMNS = (
    messages.c.id,
    messages.c.line,
    messages.c.recipient,
    messages.c.status,
    messages.c.segments,
    messages.c.encoding,
    messages.c.attempts,
    messages.c.gateway_id,
    messages.c.error,
    messages.c.created_at,
    messages.c.sent_at,
    messages.c.updated_at,
)


def owned_broadcast(
    conn: Connection, broadcast_id: int, workspace_id: int | None
) -> dict[str, Any] | None:
    """The broadcast if it exists, is not deleted and belongs to the workspace (None: any
    workspace, the operator's command line); else None."""
    q = sa.select(broadcasts).where(broadcasts.c.id == broadcast_id, _SHOWN)
    if workspace_id is not None:
        q = q.where(broadcasts.c.workspace_id == workspace_id)
    row = conn.execute(q).mappings().first()
    return dict(row) if row else None


def broadcasts_page(
    conn: Connection, workspace_id: int, *, status: str | None, before_id: int | None, limit: int
) -> list[dict[str, Any]]:
    """Newest first; ``before_id`` is the last id of the previous page."""
    q = sa.select(broadcasts).where(
        broadcasts.c.workspace_id == workspace_id,
        _SHOWN,
    )
    if status:
        q = q.where(broadcasts.c.status == status)
    if before_id is not None:
        q = q.where(broadcasts.c.id < before_id)
    return [
        dict(r) for r in conn.execute(q.order_by(broadcasts.c.id.desc()).limit(limit)).mappings()
    ]


def messages_page(
    conn: Connection, broadcast_id: int, *, status: str | None, after_id: int | None, limit: int
) -> list[dict[str, Any]]:
    q = sa.select(*MESSAGE_PAGE_COLUMNS).where(messages.c.broadcast_id == broadcast_id)
    if status:
        q = q.where(messages.c.status == status)
    if after_id is not None:
        q = q.where(messages.c.id > after_id)
    return [dict(r) for r in conn.execute(q.order_by(messages.c.id).limit(limit)).mappings()]


def row_errors_page(
    conn: Connection, broadcast_id: int, *, after: tuple[int, int] | None, limit: int
) -> list[dict[str, Any]]:
    """File order: by line, then id; ``after`` is the (line, id) of the previous page's last row."""
    line = sa.func.coalesce(row_errors.c.line, 0)
    q = sa.select(
        row_errors.c.id, line.label("line"), row_errors.c.value, row_errors.c.reason
    ).where(row_errors.c.broadcast_id == broadcast_id)
    if after is not None:
        q = q.where(sa.or_(line > after[0], sa.and_(line == after[0], row_errors.c.id > after[1])))
    return [
        dict(r) for r in conn.execute(q.order_by(line, row_errors.c.id).limit(limit)).mappings()
    ]


def report_page(
    conn: Connection, broadcast_id: int, *, after_id: int, limit: int
) -> list[tuple[Any, ...]]:
    q = (
        sa.select(*REPORT_COLUMNS)
        .where(messages.c.broadcast_id == broadcast_id, messages.c.id > after_id)
        .order_by(messages.c.id)
        .limit(limit)
    )
    return [tuple(r) for r in conn.execute(q)]


def recipients_by_line(conn: Connection, broadcast_id: int) -> list[dict[str, Any]]:
    """Every message of a (small) broadcast in input order: what a batch send answers with."""
    q = (
        sa.select(messages.c.id, messages.c.recipient, messages.c.status, messages.c.line)
        .where(messages.c.broadcast_id == broadcast_id)
        .order_by(messages.c.line, messages.c.id)
    )
    return [dict(r) for r in conn.execute(q).mappings()]


def queue_depth(conn: Connection) -> dict[str, int]:
    """QUEUE messages per sender code, over every workspace."""
    q = (
        sa.select(broadcasts.c.sender_code, sa.func.count())
        .select_from(messages.join(broadcasts, broadcasts.c.id == messages.c.broadcast_id))
        .where(
            messages.c.status == MessageStatus.QUEUE.value,
            broadcasts.c.status.not_in(sorted(STAGING_STATES)),  # not waiting to be sent yet
        )
        .group_by(broadcasts.c.sender_code)
    )
    return {str(code): int(n) for code, n in conn.execute(q)}


def message_details(conn: Connection, broadcast_id: int, limit: int) -> list[dict[str, Any]]:
    """The first ``limit`` messages of a broadcast with their texts (seed 004's ``<message>``)."""
    q = (
        sa.select(
            messages.c.id,
            messages.c.recipient,
            messages.c.text,
            messages.c.encoding,
            messages.c.status,
            messages.c.client_id,
            messages.c.route,
            messages.c.created_at,
            messages.c.sent_at,
        )
        .where(messages.c.broadcast_id == broadcast_id)
        .order_by(messages.c.id)
        .limit(limit)
    )
    return [dict(r) for r in conn.execute(q).mappings()]


#: Characters of a stored timestamp's text (``YYYY-MM-DD HH:MM[:SS]``) that name its bucket.
_BUCKET_CHARS = {"minute": 16, "second": 19}
_PG_BUCKET = {"minute": "YYYY-MM-DD HH24:MI", "second": "YYYY-MM-DD HH24:MI:SS"}


def _bucket(conn: Connection, column: Any, step: str) -> Any:
    """``column`` truncated to its minute or second as text, in SQL (SQLite stores ISO text)."""
    if conn.dialect.name == "postgresql":
        return sa.func.to_char(column, _PG_BUCKET[step])
    return sa.func.substr(column, 1, _BUCKET_CHARS[step])


def timeline_counts(
    conn: Connection,
    broadcast_id: int,
    step: str,
    failed: frozenset[str],
    *,
    before: str | None = None,
    limit: int | None = None,
) -> dict[str, list[tuple[str, int]]]:
    """Per bucket: messages sent (by ``sent_at``), delivered and failed (by their last change).

    Grouped in SQL: a million-message broadcast answers with one row per minute, not per message.
    Each series is its newest ``limit`` buckets older than ``before`` (text as the buckets
    read, ``YYYY-MM-DD HH:MM[:SS]``), newest first.
    """
    changed = sa.func.coalesce(messages.c.updated_at, messages.c.created_at)
    series = {
        "sent": (messages.c.sent_at, messages.c.sent_at.is_not(None)),
        "delivered": (changed, messages.c.status == MessageStatus.DELIVRD.value),
        "failed": (changed, messages.c.status.in_(sorted(failed))),
    }
    out: dict[str, list[tuple[str, int]]] = {}
    for name, (column, cond) in series.items():
        bucket = _bucket(conn, column, step).label("bucket")
        q = (
            sa.select(bucket, sa.func.count())
            .where(messages.c.broadcast_id == broadcast_id, cond)
            .group_by(bucket)
            .order_by(bucket.desc())
        )
        if before is not None:
            q = q.where(_bucket(conn, column, step) < before)
        if limit is not None:
            q = q.limit(limit)
        out[name] = [(str(b), int(n)) for b, n in conn.execute(q)]
    return out


#: Most (status, error) pairs a breakdown lists; the rest of a status is one OTHER_REASONS row.
BREAKDOWN_MAX_REASONS = 100
OTHER_REASONS = "(other reasons)"


def status_breakdown(conn: Connection, broadcast_id: int) -> list[tuple[str, str | None, int]]:
    """(status, error, count) of a broadcast's messages, most frequent first.

    At most :data:`BREAKDOWN_MAX_REASONS` pairs (gateways write the errors: a million distinct
    texts must not make a million rows), then per status the count left as ``OTHER_REASONS``.
    """
    n = sa.func.count().label("n")
    mine = messages.c.broadcast_id == broadcast_id
    q = (
        sa.select(messages.c.status, messages.c.error, n)
        .where(mine)
        .group_by(messages.c.status, messages.c.error)
        .order_by(n.desc(), messages.c.status, messages.c.error)
        .limit(BREAKDOWN_MAX_REASONS)
    )
    rows = [(str(s), e, int(c)) for s, e, c in conn.execute(q)]
    listed: dict[str, int] = {}
    for status, _, count in rows:
        listed[status] = listed.get(status, 0) + count
    totals = sa.select(messages.c.status, n).where(mine).group_by(messages.c.status)
    for status, total in conn.execute(totals):
        rest = int(total) - listed.get(str(status), 0)
        if rest > 0:
            rows.append((str(status), OTHER_REASONS, rest))
    return rows


def unsent_segments(conn: Connection, broadcast_ids: list[int]) -> dict[int, tuple[int, int]]:
    """broadcast id -> (unsent messages, their segments): what is left to send."""
    if not broadcast_ids:
        return {}
    q = (
        sa.select(
            messages.c.broadcast_id,
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(messages.c.segments), 0),
        )
        .where(
            messages.c.broadcast_id.in_(broadcast_ids),
            messages.c.status.in_(sorted(s.value for s in UNSENT_STATES)),
        )
        .group_by(messages.c.broadcast_id)
    )
    return {int(b): (int(n), int(s)) for b, n, s in conn.execute(q)}


def recipient_messages(
    conn: Connection, workspace_id: int, recipient: str, *, before_id: int | None, limit: int
) -> list[dict[str, Any]]:
    """A number's messages across the workspace's shown broadcasts, newest first."""
    q = (
        sa.select(*MESSAGE_PAGE_COLUMNS, messages.c.broadcast_id, broadcasts.c.name)
        .select_from(messages.join(broadcasts, broadcasts.c.id == messages.c.broadcast_id))
        .where(
            messages.c.recipient == recipient,
            broadcasts.c.workspace_id == workspace_id,
            _SHOWN,
        )
    )
    if before_id is not None:
        q = q.where(messages.c.id < before_id)
    return [dict(r) for r in conn.execute(q.order_by(messages.c.id.desc()).limit(limit)).mappings()]
