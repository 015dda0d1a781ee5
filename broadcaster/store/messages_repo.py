"""Message rows on the send path: dispatch marks, leased claims, results, receipts, recovery.

Every state change is a compare-and-set on ``status`` so concurrent workers, the poller and
receipt handlers can race without losing or repeating a message.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

from broadcaster.constants import ERROR_TEXT_CHARS
from broadcaster.domain.states import (
    IN_NETWORK_STATES,
    STAGING_STATES,
    BroadcastStatus,
    MessageStatus,
)
from broadcaster.store import optouts_repo
from broadcaster.store.db import utcnow
from broadcaster.store.models import broadcasts, messages, sender_codes, workspaces
from broadcaster.store.sql import not_for_index

M = MessageStatus
#: Status as a filter on rows found by id: never the index to find them by (see NotForIndex).
_status = not_for_index(messages.c.status)
#: The gateway has these; receipts may still move them (sorted: the SQL text stays the same).
_IN_NETWORK = sorted(s.value for s in IN_NETWORK_STATES)


@dataclass(frozen=True, slots=True)
class Claimed:
    id: int
    recipient: str
    text: str
    encoding: str
    segments: int
    #: Sends of this message so far, this claim's included: it names the claim (see requeue).
    attempts: int = 0


def _due(now: Any) -> Any:
    """Not waiting for a retry time (never retried, or its time has come)."""
    return sa.or_(messages.c.retry_at.is_(None), messages.c.retry_at <= now)


def _in_window(closed_zones: Sequence[str]) -> Any:
    """Not to a recipient whose zone's send window is closed now (quiet hours); no zone: open."""
    if not closed_zones:
        return sa.true()
    return sa.or_(messages.c.tz.is_(None), messages.c.tz.not_in(list(closed_zones)))


#: The poller and the chunk tasks dispatch on every tick and every chunk: their statements are
#: built once (building one costs more CPU than SQLite takes to run it on an indexed seek).
_FREE = sa.and_(
    sa.or_(
        messages.c.dispatched_at.is_(None),
        messages.c.dispatched_at < sa.bindparam("stale", type_=sa.DateTime()),
    ),
    _due(sa.bindparam("now", type_=sa.DateTime())),
)
_PICK = (
    sa.select(messages.c.id)
    .where(
        messages.c.broadcast_id == sa.bindparam("bid"),
        messages.c.status == M.QUEUE.value,
        _FREE,
    )
    .order_by(messages.c.id)
    .limit(sa.bindparam("limit", type_=sa.Integer()))
)
_STAMP = (
    sa.update(messages)
    .where(messages.c.id.in_(sa.bindparam("ids", expanding=True)), _status == M.QUEUE.value, _FREE)
    .values(dispatched_at=sa.bindparam("now", type_=sa.DateTime()))
    .returning(messages.c.id)
)
_IN_QUEUE_WINDOW = sa.select(sa.func.count()).where(
    messages.c.broadcast_id == sa.bindparam("bid"),
    messages.c.status == M.QUEUE.value,
    messages.c.dispatched_at >= sa.bindparam("live_after", type_=sa.DateTime()),
)


def mark_dispatched(
    conn: Connection,
    broadcast_id: int,
    *,
    limit: int,
    now: datetime,
    stale_before: datetime,
    closed_zones: Sequence[str] = (),
) -> list[int]:
    """Pick up to ``limit`` QUEUE messages no live chunk carries, stamp them, return their ids.

    The stamp is itself a compare-and-set, so two dispatchers never both enqueue one message.
    Messages to ``closed_zones`` (quiet hours) are left waiting.
    """
    params = {"bid": broadcast_id, "now": now, "stale": stale_before, "limit": limit}
    pick, stamp = _PICK, _STAMP
    if closed_zones:
        pick = pick.where(_in_window(closed_zones))
        stamp = stamp.where(_in_window(closed_zones))
    ids = [r[0] for r in conn.execute(pick, params)]
    if not ids:
        return []
    stamped = conn.execute(stamp, {**params, "ids": ids})
    return sorted(r[0] for r in stamped)


def count_in_queue_window(conn: Connection, broadcast_id: int, live_after: datetime) -> int:
    """QUEUE messages a live chunk task is carrying (stamped after ``live_after``)."""
    found = conn.execute(_IN_QUEUE_WINDOW, {"bid": broadcast_id, "live_after": live_after})
    return int(found.scalar_one())


def restamp(conn: Connection, ids: Sequence[int], at: datetime) -> None:
    """A chunk handed back with a countdown: keep its messages out of the stale pool until then."""
    if ids:
        conn.execute(
            sa.update(messages)
            .where(messages.c.id.in_(list(ids)), _status == M.QUEUE.value)
            .values(dispatched_at=at)
        )


def queued_segments(
    conn: Connection, ids: Sequence[int], closed_zones: Sequence[str] = ()
) -> list[tuple[int, int]]:
    """(id, segments) of the still-QUEUE messages among ``ids`` not waiting for a retry or for
    their send window, in order."""
    rows = conn.execute(
        sa.select(messages.c.id, messages.c.segments)
        .where(
            messages.c.id.in_(list(ids)),
            _status == M.QUEUE.value,
            _due(utcnow()),
            _in_window(closed_zones),
        )
        .order_by(messages.c.id)
    )
    return [(int(i), int(s)) for i, s in rows]


# The hot statements are built once: building one per call cost more CPU than SQLite running it.
def _claim_statement(chosen: Any) -> Any:
    """The claim, its ids matched by ``chosen``."""
    return (
        sa.update(messages)
        .where(
            chosen,
            _status == M.QUEUE.value,
            _due(sa.bindparam("now", type_=sa.DateTime())),
            sa.exists().where(
                broadcasts.c.id == sa.bindparam("bid"),
                broadcasts.c.status == BroadcastStatus.RUNNING.value,
            ),
            # a number suppressed after import (a STOP mid-broadcast) is not sent from now on
            optouts_repo.not_suppressed_at_claim(sa.bindparam("bid")),
        )
        .values(
            status=M.DEQUEUED.value,
            lease_until=sa.bindparam("lease_until", type_=sa.DateTime()),
            attempts=messages.c.attempts + 1,
            updated_at=sa.bindparam("now", type_=sa.DateTime()),
            route=sa.bindparam("route", type_=sa.String()),
        )
        .returning(
            messages.c.id,
            messages.c.recipient,
            messages.c.text,
            messages.c.encoding,
            messages.c.segments,
            messages.c.attempts,
        )
    )


_CLAIM = _claim_statement(messages.c.id.in_(sa.bindparam("ids", expanding=True)))
# PostgreSQL: the ids as one array (one SQL text for any claim size, no IN list expanded per
# call): the send workers claim ~10 at a time, many times a second.
_CLAIM_PG = _claim_statement(
    messages.c.id == sa.any_(sa.bindparam("ids", type_=postgresql.ARRAY(sa.BigInteger)))
)

# The same, for a broadcast with quiet hours: not to a recipient whose zone is closed now.
_OUTSIDE_CLOSED = sa.or_(
    messages.c.tz.is_(None), messages.c.tz.not_in(sa.bindparam("closed", expanding=True))
)
_CLAIM_IN_WINDOW = _CLAIM.where(_OUTSIDE_CLOSED)
_CLAIM_IN_WINDOW_PG = _CLAIM_PG.where(_OUTSIDE_CLOSED)
# Plain comparisons in the executemany statements: executemany cannot expand an IN list.
_RECORD_SENT = (
    sa.update(messages)
    .where(
        messages.c.id == sa.bindparam("mid"),
        messages.c.status != M.QUEUE.value,
        messages.c.status != M.CANCELLED.value,
    )
    .values(
        gateway_id=sa.func.coalesce(sa.bindparam("gid", type_=sa.String()), messages.c.gateway_id),
        sent_at=sa.bindparam("now", type_=sa.DateTime()),
        lease_until=None,
        updated_at=sa.bindparam("now", type_=sa.DateTime()),
        error=None,
        status=sa.case(
            (messages.c.status == M.DEQUEUED.value, M.SENT.value), else_=messages.c.status
        ),
    )
)
_RECORD_FAILED = (
    sa.update(messages)
    .where(messages.c.id == sa.bindparam("mid"), messages.c.status == M.DEQUEUED.value)
    .values(
        status=M.ERROR.value,
        error=sa.bindparam("err", type_=sa.String()),
        lease_until=None,
        updated_at=sa.bindparam("now", type_=sa.DateTime()),
    )
)


def claim(
    conn: Connection,
    broadcast_id: int,
    ids: Sequence[int],
    *,
    now: datetime,
    lease_s: float,
    route: str | None = None,
    closed_zones: Sequence[str] = (),
) -> list[Claimed]:
    """QUEUE → DEQUEUED with a lease, only while the broadcast is RUNNING (one statement).

    A suspend or stop committed before this runs makes it claim nothing: that is how sending
    chunks see control within one sub-batch. ``route`` (the account or provider about to send
    them) is recorded so that only that route's receipts apply to them. Messages to
    ``closed_zones`` (their send window is closed now) stay QUEUE.
    """
    params: dict[str, Any] = {
        "ids": list(ids),
        "bid": broadcast_id,
        "lease_until": now + timedelta(seconds=lease_s),
        "now": now,
        "route": route,
    }
    pg = conn.dialect.name == "postgresql"
    if closed_zones:
        stmt = _CLAIM_IN_WINDOW_PG if pg else _CLAIM_IN_WINDOW
        rows = conn.execute(stmt, {**params, "closed": list(closed_zones)})
    else:
        rows = conn.execute(_CLAIM_PG if pg else _CLAIM, params)
    return sorted((Claimed(*r) for r in rows), key=lambda c: c.id)


# PostgreSQL: the same as one UPDATE … FROM unnest(…), the ids and gateway ids as two arrays
# sent in binary: executemany sent one Bind/Execute per row (the send workers record up to 50
# results at a time).
_RECORD_SENT_PG = f"""
UPDATE messages AS m
SET gateway_id = coalesce(v.gid, m.gateway_id), sent_at = %(now)b, lease_until = NULL,
    updated_at = %(now)b, error = NULL,
    status = CASE WHEN m.status = '{M.DEQUEUED.value}' THEN '{M.SENT.value}' ELSE m.status END
FROM unnest(%(ids)b::bigint[], %(gids)b::text[]) AS v(id, gid)
WHERE m.id = v.id AND m.status != '{M.QUEUE.value}' AND m.status != '{M.CANCELLED.value}'
"""


def record_sent(conn: Connection, results: Sequence[tuple[int, str | None]], now: datetime) -> None:
    """Store gateway ids; DEQUEUED becomes SENT, but a receipt that came first keeps its status."""
    if not results:
        return
    if conn.dialect.name == "postgresql":
        # one row per message, as the statements one after another would leave it: the last
        # gateway id given wins, a missing one keeps what came before
        gids: dict[int, str | None] = {}
        for mid, gid in results:
            gids[mid] = gid if gid is not None else gids.get(mid)
        conn.exec_driver_sql(
            _RECORD_SENT_PG, {"ids": list(gids), "gids": list(gids.values()), "now": now}
        )
        return
    conn.execute(_RECORD_SENT, [{"mid": mid, "gid": gid, "now": now} for mid, gid in results])


def record_failed(conn: Connection, results: Sequence[tuple[int, str]], now: datetime) -> None:
    """DEQUEUED → ERROR with the reason."""
    if results:
        conn.execute(
            _RECORD_FAILED,
            [{"mid": mid, "err": err[:ERROR_TEXT_CHARS], "now": now} for mid, err in results],
        )


@dataclass(frozen=True, slots=True)
class RetryState:
    """What the retry schedule needs of a message a passing fault refused."""

    id: int
    attempts: int
    retry_since: datetime | None


def retry_states(conn: Connection, ids: Sequence[int]) -> list[RetryState]:
    """The still-DEQUEUED messages among ``ids`` (a stop or a receipt may have come first)."""
    if not ids:
        return []
    rows = conn.execute(
        sa.select(messages.c.id, messages.c.attempts, messages.c.retry_since).where(
            messages.c.id.in_(list(ids)), _status == M.DEQUEUED.value
        )
    )
    return [RetryState(int(i), int(a), s) for i, a, s in rows]


_REQUEUE = (
    sa.update(messages)
    .where(
        messages.c.id == sa.bindparam("mid"),
        messages.c.status == M.DEQUEUED.value,
        messages.c.attempts == sa.bindparam("claim"),
    )
    .values(
        status=M.QUEUE.value,
        retry_at=sa.bindparam("at", type_=sa.DateTime()),
        retry_since=sa.func.coalesce(
            messages.c.retry_since, sa.bindparam("now", type_=sa.DateTime())
        ),
        error=sa.bindparam("err", type_=sa.String()),
        lease_until=None,
        dispatched_at=None,
        updated_at=sa.bindparam("now", type_=sa.DateTime()),
    )
)


def requeue_for_retry(
    conn: Connection, rows: Sequence[tuple[int, int, datetime, str]], now: datetime
) -> None:
    """(id, claim, retry at, reason): DEQUEUED → QUEUE, not to be claimed before its time.

    The gateway does not hold these (the refusal was an answer, or the connection never opened),
    so sending again later is no duplicate. ``claim`` is the message's ``attempts`` when this
    send claimed it: a message the poller released and another worker claimed since (a lease
    that ran out) is that worker's, and is left alone, or its own answer would find it QUEUE.
    """
    if rows:
        conn.execute(
            _REQUEUE,
            [
                {"mid": m, "claim": n, "at": at, "err": err[:ERROR_TEXT_CHARS], "now": now}
                for m, n, at, err in rows
            ],
        )


def retry_summary(conn: Connection, broadcast_id: int) -> tuple[int, datetime | None]:
    """(messages waiting for a retry, the earliest retry time) of one broadcast."""
    count, first = conn.execute(
        sa.select(sa.func.count(), sa.func.min(messages.c.retry_at)).where(
            messages.c.broadcast_id == broadcast_id,
            messages.c.retry_at.is_not(None),
            _status == M.QUEUE.value,
        )
    ).one()
    return int(count), first


def waiting_by_zone(
    conn: Connection, broadcast_id: int, closed_zones: Sequence[str]
) -> dict[str, int]:
    """QUEUE messages per zone among ``closed_zones``: those waiting for their send window."""
    if not closed_zones:
        return {}
    rows = conn.execute(
        sa.select(messages.c.tz, sa.func.count())
        .where(
            messages.c.broadcast_id == broadcast_id,
            messages.c.status == M.QUEUE.value,
            messages.c.tz.in_(list(closed_zones)),
        )
        .group_by(messages.c.tz)
    )
    return {str(tz): int(n) for tz, n in rows}


def expire_unsent(
    conn: Connection, broadcast_id: int, now: datetime, reason: str
) -> list[tuple[int, int]]:
    """Every QUEUE message of a broadcast whose validity has passed: EXPIRED, never sent.

    DEQUEUED ones are in flight (their answer decides them). Returns (message id, broadcast id)
    of each, for the client callbacks.
    """
    rows = conn.execute(
        sa.update(messages)
        .where(messages.c.broadcast_id == broadcast_id, messages.c.status == M.QUEUE.value)
        .values(
            status=M.EXPIRED.value,
            updated_at=now,
            dispatched_at=None,
            error=reason[:ERROR_TEXT_CHARS],
        )
        .returning(messages.c.id)
    )
    return [(int(r[0]), broadcast_id) for r in rows]


def release(conn: Connection, ids: Sequence[int], now: datetime) -> int:
    """DEQUEUED → QUEUE for messages the gateway proved it never got; they will be sent again."""
    if not ids:
        return 0
    return conn.execute(
        sa.update(messages)
        .where(messages.c.id.in_(list(ids)), _status == M.DEQUEUED.value)
        .values(status=M.QUEUE.value, lease_until=None, dispatched_at=None, updated_at=now)
    ).rowcount


def expired_leases(conn: Connection, now: datetime, limit: int = 500) -> list[dict[str, Any]]:
    rows = conn.execute(
        sa.select(
            messages.c.id,
            messages.c.broadcast_id,
            broadcasts.c.sender_code,
            broadcasts.c.workspace_id,
        )
        .join(broadcasts, broadcasts.c.id == messages.c.broadcast_id)
        .where(messages.c.status == M.DEQUEUED.value, messages.c.lease_until < now)
        .order_by(messages.c.lease_until)
        .limit(limit)
    ).mappings()
    return [dict(r) for r in rows]


def extend_lease(conn: Connection, ids: Sequence[int], until: datetime) -> None:
    if ids:
        conn.execute(
            sa.update(messages)
            .where(messages.c.id.in_(list(ids)), _status == M.DEQUEUED.value)
            .values(lease_until=until)
        )


def undispatch_queued(conn: Connection, broadcast_id: int) -> None:
    """Free a broadcast's QUEUE messages from the chunks that carried them (they ended)."""
    conn.execute(
        sa.update(messages)
        .where(messages.c.broadcast_id == broadcast_id, messages.c.status == M.QUEUE.value)
        .values(dispatched_at=None)
    )


def only_message_id(conn: Connection, broadcast_id: int) -> int:
    """The id of a one-message broadcast's message."""
    return int(
        conn.execute(
            sa.select(messages.c.id).where(messages.c.broadcast_id == broadcast_id)
        ).scalar_one()
    )


def cancel_unsent(conn: Connection, broadcast_id: int, now: datetime) -> int:
    """A stopped broadcast: every QUEUE message ends CANCELLED (DEQUEUED ones are in flight)."""
    return conn.execute(
        sa.update(messages)
        .where(messages.c.broadcast_id == broadcast_id, messages.c.status == M.QUEUE.value)
        .values(status=M.CANCELLED.value, updated_at=now, dispatched_at=None)
    ).rowcount


_EXPIRE_SILENT = (
    sa.update(messages)
    # lease_until IS NULL changes no answer (writing sent_at always clears the lease) and lets
    # the (status, lease_until, sent_at) index seek the old ones instead of reading every row.
    .where(
        messages.c.status.in_(_IN_NETWORK),
        messages.c.lease_until.is_(None),
        messages.c.sent_at < sa.bindparam("sent_before", type_=sa.DateTime()),
        # a broadcast sent with requestDR false asked for no receipt: its silence is normal
        messages.c.broadcast_id.not_in(
            sa.select(broadcasts.c.id).where(broadcasts.c.request_dr.is_(False))
        ),
    )
    .values(
        status=M.EXPIRED.value,
        updated_at=sa.bindparam("now", type_=sa.DateTime()),
        error="no receipt within the validity period",
    )
    .returning(messages.c.id, messages.c.broadcast_id)
)


def expire_silent(conn: Connection, sent_before: datetime, now: datetime) -> list[tuple[int, int]]:
    """Sent long ago and no final receipt: EXPIRED (the validity period passed); every tick.

    Returns (message id, broadcast id) of each message expired, for the client callbacks.
    """
    rows = conn.execute(_EXPIRE_SILENT, {"sent_before": sent_before, "now": now})
    return [(int(m), int(b)) for m, b in rows]


# The message with what tells its route (recorded at the claim; for rows claimed before
# migration 0005, its sender code's), its workspace (for the metrics) and whether its broadcast
# wants status callbacks and has a URL for them (a group asks for the callback target only then).
_FOR_RECEIPT = (
    sa.select(
        messages.c.id,
        messages.c.status,
        messages.c.broadcast_id,
        messages.c.gateway_id,
        messages.c.route,
        broadcasts.c.sender_code,
        broadcasts.c.request_dr,
        # a URL list that is neither JSON null nor empty (enqueue parses it; here only a hint)
        sa.and_(
            sa.cast(broadcasts.c.callbacks, sa.Text) != sa.literal_column("'null'"),
            sa.cast(broadcasts.c.callbacks, sa.Text) != sa.literal_column("'[]'"),
        ).label("has_callbacks"),
        workspaces.c.name.label("workspace"),
        sender_codes.c.provider.label("code_provider"),
        sender_codes.c.account.label("code_account"),
    )
    .join(broadcasts, broadcasts.c.id == messages.c.broadcast_id)
    .join(workspaces, workspaces.c.id == broadcasts.c.workspace_id)
    .outerjoin(
        sender_codes,
        sa.and_(
            sender_codes.c.workspace_id == broadcasts.c.workspace_id,
            sender_codes.c.code == broadcasts.c.sender_code,
        ),
    )
)
# Built once: constructing these per receipt cost more CPU than SQLite running them.
_FOR_RECEIPT_BY_ID = _FOR_RECEIPT.where(messages.c.id == sa.bindparam("mid"))
# Gateway ids are the gateway's own: two routes may both have a "1". Only this route's count.
_FOR_RECEIPT_BY_GATEWAY_ID = _FOR_RECEIPT.where(
    messages.c.gateway_id == sa.bindparam("gid", type_=sa.String()),
    sa.or_(
        messages.c.route == sa.bindparam("route", type_=sa.String()), messages.c.route.is_(None)
    ),
)
_ADVANCE = (
    sa.update(messages)
    .where(
        messages.c.id == sa.bindparam("mid"),
        messages.c.status.in_(sa.bindparam("allowed", expanding=True)),
    )
    .values(
        status=sa.bindparam("to", type_=sa.String()),
        updated_at=sa.bindparam("now", type_=sa.DateTime()),
    )
)
_ADVANCE_KEEPING_GATEWAY_ID = _ADVANCE.values(
    gateway_id=sa.func.coalesce(messages.c.gateway_id, sa.bindparam("gid", type_=sa.String()))
)
# A message of a broadcast still being imported does not exist yet for any reader.
_MESSAGE = sa.select(messages).where(
    messages.c.id == sa.bindparam("mid"),
    ~sa.exists().where(
        broadcasts.c.id == messages.c.broadcast_id,
        broadcasts.c.status.in_(sorted(STAGING_STATES)),
    ),
)


def find_for_receipt(
    conn: Connection, reference: str | None, gateway_id: str | None, route: str | None = None
) -> dict[str, Any] | None:
    """The message a receipt speaks of: by our reference first, else by the gateway's id.

    The row carries ``route`` (None before migration 0005) and its code's ``code_provider`` and
    ``code_account``: the caller decides whether the receipt's route may touch it.
    """
    row = None
    mid = receipt_reference_id(reference)
    if mid is not None:
        row = conn.execute(_FOR_RECEIPT_BY_ID, {"mid": mid}).mappings().first()
    if row is None and gateway_id:
        row = (
            conn.execute(_FOR_RECEIPT_BY_GATEWAY_ID, {"gid": gateway_id, "route": route})
            .mappings()
            .first()
        )
    return dict(row) if row else None


def advance_status(
    conn: Connection,
    message_id: int,
    allowed_from: Sequence[MessageStatus],
    to: MessageStatus,
    now: datetime,
    gateway_id: str | None = None,
) -> bool:
    """``allowed_from`` → ``to``; a gateway id fills in only where none is stored yet."""
    params = {
        "mid": message_id,
        "allowed": [s.value for s in allowed_from],
        "to": to.value,
        "now": now,
    }
    if gateway_id:
        result = conn.execute(_ADVANCE_KEEPING_GATEWAY_ID, {**params, "gid": gateway_id})
    else:
        result = conn.execute(_ADVANCE, params)
    return result.rowcount == 1


def get_message(conn: Connection, message_id: int) -> dict[str, Any] | None:
    row = conn.execute(_MESSAGE, {"mid": message_id}).mappings().first()
    return dict(row) if row else None


def in_network_gateway_ids(conn: Connection, broadcast_id: int, *, limit: int) -> list[str]:
    """Distinct gateway ids (jobs) of a broadcast's messages still waiting for a final state."""
    rows = conn.execute(
        sa.select(messages.c.gateway_id)
        .distinct()
        .where(
            messages.c.broadcast_id == broadcast_id,
            messages.c.gateway_id.is_not(None),
            messages.c.status.in_(_IN_NETWORK),
        )
        .limit(limit)
    )
    return [r[0] for r in rows]


_RECORD_REFUSED = _RECORD_FAILED.values(status=sa.bindparam("st", type_=sa.String()))


def record_refused(
    conn: Connection, results: Sequence[tuple[int, str, str]], now: datetime
) -> None:
    """DEQUEUED → the gateway's refusal name (``BLACKLISTED``, ``SEGMENTS_EXCEEDED``…) with why."""
    if results:
        conn.execute(
            _RECORD_REFUSED,
            [
                {"mid": mid, "st": st, "err": err[:ERROR_TEXT_CHARS], "now": now}
                for mid, st, err in results
            ],
        )


# --- receipts in groups -------------------------------------------------------------------------

#: The largest id a BIGINT holds: a reference beyond it names no message (and must not reach SQL).
MAX_MESSAGE_ID = 2**63 - 1
_FOR_RECEIPTS_BY_IDS = _FOR_RECEIPT.where(messages.c.id.in_(sa.bindparam("mids", expanding=True)))
_FOR_RECEIPTS_BY_GATEWAY_IDS = _FOR_RECEIPT.where(
    messages.c.gateway_id.in_(sa.bindparam("gids", expanding=True)),
    sa.or_(
        messages.c.route.in_(sa.bindparam("routes", expanding=True)), messages.c.route.is_(None)
    ),
).order_by(messages.c.id)
# One shape for every message of a group: a compare-and-set on the status the group read, so a
# row another writer moved meanwhile is not overwritten (the caller sees the short row count).
_ADVANCE_SEEN = (
    sa.update(messages)
    .where(
        messages.c.id == sa.bindparam("mid"),
        messages.c.status == sa.bindparam("seen", type_=sa.String()),
    )
    .values(
        status=sa.bindparam("to", type_=sa.String()),
        updated_at=sa.bindparam("now", type_=sa.DateTime()),
        gateway_id=sa.func.coalesce(messages.c.gateway_id, sa.bindparam("gid", type_=sa.String())),
    )
)


def receipt_reference_id(reference: str | None) -> int | None:
    """Our message id in a receipt's reference, or None when it cannot be one."""
    if reference and reference.isascii() and reference.isdigit():
        mid = int(reference)
        return mid if mid <= MAX_MESSAGE_ID else None
    return None


@functools.cache
def _for_receipts_by_id_array() -> str:
    """PostgreSQL: the same, with the ids as one array sent in binary (one SQL text for every
    group size, no IN list expanded per call, no array escaped element by element in Python)."""
    stmt = _FOR_RECEIPT.where(
        messages.c.id == sa.any_(sa.bindparam("mids", type_=postgresql.ARRAY(sa.BigInteger)))
    )
    sql = str(stmt.compile(dialect=postgresql.psycopg.dialect()))
    assert sql.count("%(mids)s") == 1, sql  # the statement's only parameter
    return sql.replace("%(mids)s", "%(mids)b")


def find_many_by_id(conn: Connection, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """:func:`find_for_receipt`'s rows for many references at once, by message id."""
    if not ids:
        return {}
    if conn.dialect.name == "postgresql":
        rows = conn.exec_driver_sql(_for_receipts_by_id_array(), {"mids": sorted(set(ids))})
    else:
        rows = conn.execute(_FOR_RECEIPTS_BY_IDS, {"mids": sorted(set(ids))})
    return {int(r[0]): r._asdict() for r in rows}  # column 0 is the id


def find_many_by_gateway_id(
    conn: Connection, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], dict[str, Any]]:
    """(gateway id, route) → the message :func:`find_for_receipt` finds by gateway id.

    One statement for the group; a message claimed before routes were recorded (route NULL)
    matches any route, as in the one-receipt look-up, and the lowest id wins.
    """
    if not keys:
        return {}
    gids = sorted({g for g, _ in keys})
    routes = sorted({r for _, r in keys})
    found: dict[tuple[str, str], dict[str, Any]] = {}
    wanted = set(keys)
    for r in conn.execute(
        _FOR_RECEIPTS_BY_GATEWAY_IDS, {"gids": gids, "routes": routes}
    ).mappings():
        for route in [r["route"]] if r["route"] is not None else routes:
            key = (r["gateway_id"], route)
            if key in wanted and key not in found:
                found[key] = dict(r)
    return found


@dataclass(frozen=True, slots=True)
class Advance:
    """One message's move in a group: from the status the group read to its last receipt's."""

    message_id: int
    seen: str
    to: str
    gateway_id: str | None


def advance_many(conn: Connection, moves: Sequence[Advance], now: datetime) -> bool:
    """Every move in one statement; False when any row was no longer at its ``seen`` status.

    On False the caller must roll back: some of the rows moved, the others did not.
    """
    if not moves:
        return True
    result = conn.execute(
        _ADVANCE_SEEN,
        [
            {"mid": m.message_id, "seen": m.seen, "to": m.to, "gid": m.gateway_id, "now": now}
            for m in moves
        ],
    )
    return int(result.rowcount) == len(moves)
