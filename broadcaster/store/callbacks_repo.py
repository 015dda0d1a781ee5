"""The client-callback outbox in SQL: enqueue in the caller's transaction, leased claims, results.

A pending row is due when ``next_attempt_at <= now``. Claiming moves ``next_attempt_at`` to the
end of a lease in one compare-and-set ``UPDATE … WHERE outcome = 'pending' AND next_attempt_at
<= :now``: once one worker's claim commits, the row is no longer due, so a second worker's claim
matches nothing (PostgreSQL re-checks the WHERE after waiting on the row lock; SQLite serialises
writers). Results are written with ``WHERE next_attempt_at = :lease``, so a worker whose lease ran
out (and whose row another worker has claimed since) cannot overwrite the newer attempt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from broadcaster.constants import ERROR_TEXT_CHARS
from broadcaster.store.models import broadcasts, callback_deliveries, messages

cd = callback_deliveries


class Outcome(StrEnum):
    #: Waiting for its first or next attempt (or being delivered, under a lease).
    PENDING = "pending"
    #: The client answered 2xx.
    DELIVERED = "delivered"
    #: The client refused it for good (4xx), or attempts ran out.
    FAILED = "failed"
    #: The URL is not allowed (not http(s), credentials, or a non-public address); never POSTed.
    REFUSED = "refused"


@dataclass(frozen=True, slots=True)
class Target:
    """What an enqueue needs to know about a broadcast (and, for one message, its recipient)."""

    request_dr: bool
    callbacks: Any  # JSON as stored: a list of URLs (or a comma-separated string)
    sender_code: str
    recipient: str | None = None
    #: The client's own ids for the message (seed 001), echoed in its callbacks.
    external_id: str | None = None
    client_id: str | None = None


@dataclass(frozen=True, slots=True)
class Claimed:
    id: int
    message_id: int
    url: str
    payload: dict[str, Any]
    attempts: int  # including this one
    lease_until: datetime


_TARGET_FOR_MESSAGE = (
    sa.select(
        broadcasts.c.request_dr,
        broadcasts.c.callbacks,
        broadcasts.c.sender_code,
        messages.c.recipient,
        messages.c.external_id,
        messages.c.client_id,
    )
    .select_from(messages.join(broadcasts, broadcasts.c.id == messages.c.broadcast_id))
    .where(messages.c.id == sa.bindparam("mid"), messages.c.broadcast_id == sa.bindparam("bid"))
)  # built once: it runs for every receipt


def target_for_message(conn: Connection, message_id: int, broadcast_id: int) -> Target | None:
    """One indexed query: the broadcast's callback settings and the message's recipient."""
    row = conn.execute(_TARGET_FOR_MESSAGE, {"mid": message_id, "bid": broadcast_id}).first()
    return Target(bool(row[0]), row[1], row[2], row[3], row[4], row[5]) if row else None


# Built once, like _TARGET_FOR_MESSAGE: a statement built per call cost more CPU (its cache key)
# than the database answering it, once per receipt group and per send batch.
_TARGET_FOR_BROADCAST = sa.select(
    broadcasts.c.request_dr, broadcasts.c.callbacks, broadcasts.c.sender_code
).where(broadcasts.c.id == sa.bindparam("bid"))
_IDENTITIES = sa.select(
    messages.c.id, messages.c.recipient, messages.c.external_id, messages.c.client_id
).where(
    messages.c.broadcast_id == sa.bindparam("bid"),
    messages.c.id.in_(sa.bindparam("mids", expanding=True)),
)


def target_for_broadcast(conn: Connection, broadcast_id: int) -> Target | None:
    row = conn.execute(_TARGET_FOR_BROADCAST, {"bid": broadcast_id}).first()
    return Target(bool(row[0]), row[1], row[2]) if row else None


def identities(
    conn: Connection, broadcast_id: int, message_ids: Sequence[int]
) -> dict[int, tuple[str, str | None, str | None]]:
    """Message id → (recipient, the client's externalId, clientId), in one query."""
    rows = conn.execute(_IDENTITIES, {"bid": broadcast_id, "mids": list(message_ids)})
    return {int(i): (str(r), e, c) for i, r, e, c in rows}


def insert(conn: Connection, rows: Sequence[dict[str, Any]]) -> int:
    """Insert outbox rows; one already there for (message, status, url) is skipped. Returns rows added."""
    if not rows:
        return 0
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = (
        dialect.insert(cd)
        .on_conflict_do_nothing(index_elements=["message_id", "status", "url"])
        .returning(cd.c.id)
    )
    return len(conn.execute(stmt, list(rows)).all())


def due_ids(conn: Connection, now: datetime, limit: int) -> list[tuple[int, datetime]]:
    """(id, next_attempt_at) of pending rows due at ``now``, oldest due first."""
    rows = conn.execute(
        sa.select(cd.c.id, cd.c.next_attempt_at)
        .where(cd.c.outcome == Outcome.PENDING.value, cd.c.next_attempt_at <= now)
        .order_by(cd.c.next_attempt_at, cd.c.id)
        .limit(limit)
    )
    return [(int(i), t) for i, t in rows]


def claim(
    conn: Connection, ids: Sequence[int], *, now: datetime, lease_until: datetime
) -> list[Claimed]:
    """Lease the rows among ``ids`` that are still pending and due; count the attempt now.

    Counting at claim time means a worker killed mid-POST still uses up an attempt, so a row that
    crashes its worker cannot loop forever.
    """
    if not ids:
        return []
    rows = conn.execute(
        sa.update(cd)
        .where(
            cd.c.id.in_(list(ids)),
            cd.c.outcome == Outcome.PENDING.value,
            cd.c.next_attempt_at <= now,
        )
        .values(next_attempt_at=lease_until, attempts=cd.c.attempts + 1, updated_at=now)
        .returning(cd.c.id, cd.c.message_id, cd.c.url, cd.c.payload, cd.c.attempts)
    )
    return sorted(
        (
            Claimed(int(r[0]), int(r[1]), r[2], dict(r[3] or {}), int(r[4]), lease_until)
            for r in rows
        ),
        key=lambda c: c.id,
    )


def record(conn: Connection, results: Sequence[dict[str, Any]], now: datetime) -> int:
    """Write attempt results: keys ``rid``, ``lease`` (the claim's), ``outcome``, ``next_at``, ``err``.

    A result whose lease is no longer the row's (another worker re-claimed it) is dropped.
    Returns rows written.
    """
    if not results:
        return 0
    stmt = (
        sa.update(cd)
        .where(
            cd.c.id == sa.bindparam("rid"),
            cd.c.outcome == Outcome.PENDING.value,
            cd.c.next_attempt_at == sa.bindparam("lease"),
        )
        .values(
            outcome=sa.bindparam("new_outcome"),
            next_attempt_at=sa.bindparam("next_at"),
            last_error=sa.bindparam("err"),
            updated_at=now,
        )
    )
    params = [
        {
            "rid": r["rid"],
            "lease": r["lease"],
            "new_outcome": r["outcome"],
            "next_at": r["next_at"],
            "err": r["err"][:ERROR_TEXT_CHARS] if r["err"] else None,
        }
        for r in results
    ]
    return max(conn.execute(stmt, params).rowcount, 0)


def for_message(conn: Connection, message_id: int) -> list[dict[str, Any]]:
    """The outbox rows of one message, oldest first (for views and tests)."""
    rows = conn.execute(
        sa.select(cd).where(cd.c.message_id == message_id).order_by(cd.c.id)
    ).mappings()
    return [dict(r) for r in rows]
