"""Broadcasts, their messages and row errors in SQL: batched inserts, compare-and-set updates."""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from broadcaster.domain.states import (
    ACTIVE_BROADCAST_STATES,
    ENDED_BROADCAST_STATES,
    STAGING_STATES,
    UNSENT_STATES,
    BroadcastStatus,
    MessageStatus,
)
from broadcaster.store.db import utcnow
from broadcaster.store.models import broadcasts, messages, row_errors

#: A broadcast still being imported (or being discarded) does not exist for any reader.
_NOT_STAGING = broadcasts.c.status.not_in(sorted(STAGING_STATES))


def insert_broadcast(conn: Connection, **values: Any) -> int:
    now = utcnow()
    return int(
        conn.execute(
            sa.insert(broadcasts)
            .values(created_at=now, updated_at=now, **values)
            .returning(broadcasts.c.id)
        ).scalar_one()
    )


def _insert_ignoring_duplicates(conn: Connection) -> Any:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(messages).on_conflict_do_nothing(
        index_elements=["broadcast_id", "recipient"]
    )


def insert_messages(conn: Connection, rows: Sequence[dict[str, Any]]) -> set[int]:
    """Insert a batch; a recipient already in the broadcast is skipped by the unique index.

    Returns the lines actually stored, so the caller can report the duplicates by line.
    """
    if not rows:
        return set()
    stmt = _insert_ignoring_duplicates(conn).returning(messages.c.line)
    return {r[0] for r in conn.execute(stmt, list(rows))}


def insert_row_errors(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        conn.execute(sa.insert(row_errors), list(rows))


#: Columns of an import's message rows, in the order of the tuples :func:`store_messages` takes.
MESSAGE_ROW_COLUMNS = (
    "line",
    "recipient",
    "text",
    "encoding",
    "segments",
    "status",
    "external_id",
    "client_id",
    "tz",
    "error",
)
#: Columns of an import's row-error tuples (:func:`store_row_errors`).
ERROR_ROW_COLUMNS = ("line", "value", "reason")
#: The per-transaction staging table the COPY path fills before its INSERT … ON CONFLICT.
_PG_STAGE = "broadcaster_import_stage"
_PG_STAGE_DDL = (
    f"CREATE TEMP TABLE IF NOT EXISTS {_PG_STAGE} (line integer, recipient text, text text, "
    "encoding text, segments integer, status text, external_id text, client_id text, tz text, "
    "error text) "
    "ON COMMIT DELETE ROWS"
)
_COLUMNS_SQL = ", ".join(MESSAGE_ROW_COLUMNS)


#: SQLite page cache (KiB) of a connection while it stores import batches. A batch's recipients
#: are random keys of the (broadcast, recipient) index, about one of its pages dirtied per row;
#: with the default 2 MB cache SQLite spills dirty pages to the WAL in the middle of the
#: transaction, some several times (1,000,000 rows: 10 s of the 21 s of CPU were the kernel's,
#: 5.5 s with this cache). A bound whatever the file's size: a batch of INSERT_BATCH_ROWS rows
#: dirties at most ~20 MB of pages.
IMPORT_CACHE_KIB = 32 * 1024


@contextmanager
def import_cache(conn: Connection) -> Iterator[None]:
    """On SQLite, ``conn`` keeps IMPORT_CACHE_KIB of page cache inside the block (enter it
    outside the transaction: the cache is set back to its size after the commit, before the
    pooled connection serves anyone else). Elsewhere a no-op."""
    if conn.dialect.name != "sqlite":
        yield
        return
    raw = conn.connection.dbapi_connection
    assert raw is not None
    (before,) = raw.execute("PRAGMA cache_size").fetchone()
    raw.execute(f"PRAGMA cache_size=-{IMPORT_CACHE_KIB}")
    try:
        yield
    finally:
        raw.execute(f"PRAGMA cache_size={int(before)}")


def store_messages(
    conn: Connection, broadcast_id: int, created_at: datetime, rows: Sequence[tuple[Any, ...]]
) -> list[int]:
    """Store an import batch (tuples in MESSAGE_ROW_COLUMNS order, in line order); return the
    lines *not* stored because their recipient is already in the broadcast (the unique index
    decides, so the first line of a number wins, in this batch or an earlier one).

    The import path, without SQLAlchemy's per-row parameter handling (it cost more than the
    INSERT): PostgreSQL COPYs into a temporary table and inserts from it with ON CONFLICT DO
    NOTHING; SQLite runs one ``executemany`` of INSERT OR IGNORE.
    """
    if not rows:
        return []
    if conn.dialect.name == "postgresql":
        return _pg_store_messages(conn, broadcast_id, created_at, rows)
    return _sqlite_store_messages(conn, broadcast_id, created_at, rows)


def _sqlite_store_messages(
    conn: Connection, broadcast_id: int, created_at: datetime, rows: Sequence[tuple[Any, ...]]
) -> list[int]:
    stamp = _sqlite_datetime(conn, created_at)
    # The two values every row shares are literals of the statement (an int, and a quoted
    # string SQLAlchemy made of a datetime): no new tuple per row to prepend them.
    literal = "'" + str(stamp).replace("'", "''") + "'"
    sql = (
        f"INSERT OR IGNORE INTO messages (broadcast_id, created_at, {_COLUMNS_SQL}) "
        f"VALUES ({int(broadcast_id)}, {literal}, {', '.join('?' * len(MESSAGE_ROW_COLUMNS))})"
    )
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        # This transaction holds SQLite's write lock, so the rows stored now are exactly those
        # after the highest rowid seen here (rowids grow by one per insert).
        before = cursor.execute("SELECT coalesce(max(rowid), 0) FROM messages").fetchone()[0]
        cursor.executemany(sql, rows)
        if cursor.rowcount == len(rows):
            return []  # the common batch: no duplicates, nothing to look up
        cursor.execute("SELECT line FROM messages WHERE rowid > ?", (before,))
        kept = {line for (line,) in cursor.fetchall()}
    finally:
        cursor.close()
    return [row[0] for row in rows if row[0] not in kept]


def _sqlite_datetime(conn: Connection, value: datetime) -> Any:
    """``value`` as SQLAlchemy stores a DateTime on this dialect (the raw path bypasses it)."""
    process = messages.c.created_at.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
    return process(value) if process is not None else value


def _pg_store_messages(
    conn: Connection, broadcast_id: int, created_at: datetime, rows: Sequence[tuple[Any, ...]]
) -> list[int]:
    driver = conn.connection.driver_connection
    assert driver is not None
    with driver.cursor() as cur:
        cur.execute(_PG_STAGE_DDL)
        with cur.copy(f"COPY {_PG_STAGE} ({_COLUMNS_SQL}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cur.execute(
            f"INSERT INTO messages (broadcast_id, created_at, {_COLUMNS_SQL}) "
            f"SELECT %s, %s, {_COLUMNS_SQL} FROM {_PG_STAGE} ORDER BY line "
            "ON CONFLICT (broadcast_id, recipient) DO NOTHING RETURNING line",
            (broadcast_id, created_at),
        )
        kept = {line for (line,) in cur.fetchall()}
        cur.execute(f"DELETE FROM {_PG_STAGE}")  # the next batch of this transaction starts empty
    if len(kept) == len(rows):
        return []
    return [row[0] for row in rows if row[0] not in kept]


def store_row_errors(conn: Connection, broadcast_id: int, rows: Sequence[tuple[Any, ...]]) -> None:
    """Store an import batch's row errors (tuples in ERROR_ROW_COLUMNS order): COPY on
    PostgreSQL, one ``executemany`` on SQLite."""
    if not rows:
        return
    columns = ", ".join(ERROR_ROW_COLUMNS)
    if conn.dialect.name == "postgresql":
        driver = conn.connection.driver_connection
        assert driver is not None
        with (
            driver.cursor() as cur,
            cur.copy(f"COPY row_errors (broadcast_id, {columns}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row((broadcast_id, *row))
        return
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(
            f"INSERT INTO row_errors (broadcast_id, {columns}) VALUES (?, ?, ?, ?)",
            [(broadcast_id, *row) for row in rows],
        )
    finally:
        cursor.close()


def get_broadcast(
    conn: Connection, broadcast_id: int, workspace_id: int | None = None
) -> dict[str, Any] | None:
    q = sa.select(broadcasts).where(broadcasts.c.id == broadcast_id, _NOT_STAGING)
    if workspace_id is not None:
        q = q.where(broadcasts.c.workspace_id == workspace_id)
    row = conn.execute(q).mappings().first()
    return dict(row) if row else None


def list_broadcasts(
    conn: Connection,
    workspace_id: int,
    *,
    status: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[dict[str, Any]]:
    q = sa.select(broadcasts).where(broadcasts.c.workspace_id == workspace_id, _NOT_STAGING)
    if status:
        q = q.where(broadcasts.c.status == status)
    q = q.order_by(broadcasts.c.id.desc()).limit(limit).offset(offset)
    return [dict(r) for r in conn.execute(q).mappings()]


def status_counts(conn: Connection, broadcast_id: int) -> dict[str, int]:
    """Messages per status: the ground truth the counters are derived from."""
    q = (
        sa.select(messages.c.status, sa.func.count())
        .where(messages.c.broadcast_id == broadcast_id)
        .group_by(messages.c.status)
    )
    return {status: int(n) for status, n in conn.execute(q)}


def set_counters(conn: Connection, broadcast_id: int, **counters: int) -> None:
    conn.execute(
        sa.update(broadcasts)
        .where(broadcasts.c.id == broadcast_id)
        .values(updated_at=utcnow(), **counters)
    )


def compare_and_set_status(
    conn: Connection,
    broadcast_id: int,
    allowed_from: frozenset[BroadcastStatus],
    to: BroadcastStatus,
    *,
    only_if_all_sent: bool = False,
    due_by: datetime | None = None,
    **values: Any,
) -> bool:
    """Move a broadcast to ``to`` only if it is in ``allowed_from`` now; True when it moved.

    ``only_if_all_sent`` adds "no message is left unsent" to the same UPDATE, so completing
    cannot race a message put back in the queue between a check and the write. ``due_by`` adds
    "its start time is not after this": the scheduler read it as due, and an edit that moved
    the start later meanwhile must win over that reading.
    """
    values.setdefault("updated_at", utcnow())
    statement = _cas_statement(allowed_from, to, only_if_all_sent, due_by is not None, *values)
    params = {"bid": broadcast_id, **{f"v_{k}": v for k, v in values.items()}}
    if due_by is not None:
        params["due_by"] = due_by
    return conn.execute(statement, params).rowcount == 1


@functools.cache
def _cas_statement(
    allowed_from: frozenset[BroadcastStatus],
    to: BroadcastStatus,
    only_if_all_sent: bool,
    with_due_by: bool,
    *columns: str,
) -> sa.Update:
    """One statement per shape of transition, built once: the poller completes and the control
    tasks move broadcasts on every tick, and building an UPDATE costs more than running it."""
    where = [
        broadcasts.c.id == sa.bindparam("bid"),
        broadcasts.c.status.in_(sorted(s.value for s in allowed_from)),
    ]
    if only_if_all_sent:
        where.append(~_unsent_exists(sa.bindparam("bid")))
    if with_due_by:
        where.append(broadcasts.c.start_at <= sa.bindparam("due_by", type_=sa.DateTime()))
    assignments = {c: sa.bindparam(f"v_{c}", type_=broadcasts.c[c].type) for c in columns}
    return sa.update(broadcasts).where(*where).values(status=to.value, **assignments)


def _unsent_exists(broadcast_id: Any) -> Any:
    return sa.exists().where(
        messages.c.broadcast_id == broadcast_id,
        messages.c.status.in_([s.value for s in UNSENT_STATES]),
    )


def add_consecutive_failures(conn: Connection, broadcast_id: int, failures: int) -> int:
    """Add ``failures`` to the broadcast's streak of gateway failures; the new streak."""
    counter = broadcasts.c.consecutive_failures
    conn.execute(
        sa.update(broadcasts)
        .where(broadcasts.c.id == broadcast_id)
        .values(consecutive_failures=counter + failures)
    )
    return int(conn.execute(sa.select(counter).where(broadcasts.c.id == broadcast_id)).scalar_one())


def reset_consecutive_failures(conn: Connection, broadcast_id: int) -> None:
    """A send went through: the streak of gateway failures starts again from zero."""
    conn.execute(
        sa.update(broadcasts).where(broadcasts.c.id == broadcast_id).values(consecutive_failures=0)
    )


_WATCHED = sa.select(broadcasts.c.id, broadcasts.c.status, broadcasts.c.sender_code).where(
    sa.or_(
        broadcasts.c.status.in_(sorted(s.value for s in ACTIVE_BROADCAST_STATES)),
        sa.and_(
            broadcasts.c.status.in_(sorted(s.value for s in ENDED_BROADCAST_STATES)),
            broadcasts.c.ended_at >= sa.bindparam("ended_after", type_=sa.DateTime()),
        ),
    )
)


def watched(conn: Connection, ended_after: datetime) -> list[tuple[int, str, str]]:
    """(id, status, sender code) of active broadcasts and of those ended since ``ended_after``."""
    rows = conn.execute(_WATCHED, {"ended_after": ended_after})
    return [(int(i), s, c) for i, s, c in rows]


def workspace_of(conn: Connection, broadcast_id: int) -> int | None:
    """The workspace that owns a broadcast, or None when there is no such broadcast."""
    owner = conn.execute(
        sa.select(broadcasts.c.workspace_id).where(broadcasts.c.id == broadcast_id)
    ).scalar()
    return None if owner is None else int(owner)


def delete_with_messages(conn: Connection, broadcast_id: int) -> int:
    """Remove a broadcast, its messages and its row errors; how many messages went."""
    removed = conn.execute(
        sa.delete(messages).where(messages.c.broadcast_id == broadcast_id)
    ).rowcount
    conn.execute(sa.delete(row_errors).where(row_errors.c.broadcast_id == broadcast_id))
    conn.execute(sa.delete(broadcasts).where(broadcasts.c.id == broadcast_id))
    return int(removed)


def due_broadcasts(conn: Connection, now: datetime, limit: int = 100) -> list[int]:
    q = (
        sa.select(broadcasts.c.id)
        .where(broadcasts.c.status == BroadcastStatus.SCHEDULED.value, broadcasts.c.start_at <= now)
        .order_by(broadcasts.c.start_at)
        .limit(limit)
    )
    return [int(r[0]) for r in conn.execute(q)]


def row_error_page(
    conn: Connection, broadcast_id: int, *, limit: int, offset: int = 0
) -> list[dict[str, Any]]:
    q = (
        sa.select(row_errors.c.line, row_errors.c.value, row_errors.c.reason)
        .where(row_errors.c.broadcast_id == broadcast_id)
        .order_by(row_errors.c.line, row_errors.c.id)
        .limit(limit)
        .offset(offset)
    )
    return [dict(r) for r in conn.execute(q).mappings()]


def queued_count(conn: Connection, broadcast_id: int) -> int:
    return int(
        conn.execute(
            sa.select(sa.func.count()).where(
                messages.c.broadcast_id == broadcast_id,
                messages.c.status == MessageStatus.QUEUE.value,
            )
        ).scalar_one()
    )


def claim_unstarted(conn: Connection, broadcast_id: int, workspace_id: int) -> bool:
    """Hold a broadcast of this workspace that never started (SCHEDULED, no ``started_at``) for
    an edit: the UPDATE locks its row until the transaction ends, so the poller cannot start it
    half-edited. False when it is not so (started, final, or not this workspace's)."""
    result = conn.execute(
        sa.update(broadcasts)
        .where(
            broadcasts.c.id == broadcast_id,
            broadcasts.c.workspace_id == workspace_id,
            broadcasts.c.status == BroadcastStatus.SCHEDULED.value,
            broadcasts.c.started_at.is_(None),
        )
        .values(updated_at=utcnow())
    )
    return result.rowcount == 1


def clear_recipients(conn: Connection, broadcast_id: int) -> None:
    """Drop a broadcast's messages and row errors (an edit replaces its recipient list)."""
    conn.execute(sa.delete(messages).where(messages.c.broadcast_id == broadcast_id))
    conn.execute(sa.delete(row_errors).where(row_errors.c.broadcast_id == broadcast_id))


def update_broadcast(conn: Connection, broadcast_id: int, **values: Any) -> None:
    conn.execute(
        sa.update(broadcasts)
        .where(broadcasts.c.id == broadcast_id)
        .values(updated_at=utcnow(), **values)
    )


def past_validity(conn: Connection, now: datetime) -> list[int]:
    """Started, unfinished broadcasts (RUNNING or SUSPENDED) whose validity has run out by ``now``.

    Few broadcasts are active at once, so the deadline is compared here rather than in SQL,
    where date arithmetic differs between SQLite and PostgreSQL.
    """
    rows = conn.execute(
        sa.select(broadcasts.c.id, broadcasts.c.started_at, broadcasts.c.validity_s).where(
            broadcasts.c.status.in_([s.value for s in ACTIVE_BROADCAST_STATES]),
            broadcasts.c.validity_s.is_not(None),
            broadcasts.c.started_at.is_not(None),
        )
    )
    return [int(i) for i, started, validity in rows if started + timedelta(seconds=validity) <= now]


def send_rules(conn: Connection, broadcast_id: int) -> dict[str, Any] | None:
    """What decides which of a broadcast's messages may go now: window, zones, validity, start."""
    row = (
        conn.execute(
            sa.select(
                broadcasts.c.send_window,
                broadcasts.c.zones,
                broadcasts.c.validity_s,
                broadcasts.c.started_at,
            ).where(broadcasts.c.id == broadcast_id)
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


def expired_unsent_count(conn: Connection, broadcast_id: int) -> int:
    """EXPIRED messages never sent (no ``sent_at``): the broadcast's validity ran out first."""
    return int(
        conn.execute(
            sa.select(sa.func.count()).where(
                messages.c.broadcast_id == broadcast_id,
                messages.c.status == MessageStatus.EXPIRED.value,
                messages.c.sent_at.is_(None),
            )
        ).scalar_one()
    )
