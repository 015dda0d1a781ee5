"""Signed-request nonces in SQL: one atomic "remember unless seen" and an expiry sweep.

``remember`` is a single ``INSERT … ON CONFLICT (key_prefix, nonce) DO UPDATE … WHERE
expires_at <= :now RETURNING``: a fresh nonce is inserted, an expired one (not yet swept) is
taken again, and a live one matches nothing, so two API processes racing on one nonce cannot
both win (the primary key decides; PostgreSQL re-checks the WHERE under the row lock, SQLite
serialises writers).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from broadcaster.store.models import signed_nonces

sn = signed_nonces


def remember(
    conn: Connection, key_prefix: str, nonce: str, *, now: datetime, expires_at: datetime
) -> bool:
    """Record the nonce until ``expires_at``; False when it is already recorded and still live."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    insert = dialect.insert(sn).values(key_prefix=key_prefix, nonce=nonce, expires_at=expires_at)
    stmt = insert.on_conflict_do_update(
        index_elements=[sn.c.key_prefix, sn.c.nonce],
        set_={"expires_at": insert.excluded.expires_at},
        where=sn.c.expires_at <= now,
    ).returning(sn.c.nonce)
    return conn.execute(stmt).first() is not None


def sweep(conn: Connection, *, now: datetime, limit: int) -> int:
    """Delete up to ``limit`` expired nonces (oldest first); returns how many went."""
    oldest = sa.select(sn.c.key_prefix, sn.c.nonce).where(sn.c.expires_at <= now)
    oldest = oldest.order_by(sn.c.expires_at).limit(limit)
    doomed = [tuple(r) for r in conn.execute(oldest)]
    if not doomed:
        return 0
    conn.execute(sa.delete(sn).where(sa.tuple_(sn.c.key_prefix, sn.c.nonce).in_(doomed)))
    return len(doomed)


def wait_at_most(conn: Connection, wait_ms: int) -> None:
    """Bound how long the next statements of this transaction wait for a lock, milliseconds;
    on PostgreSQL also commit without waiting for the WAL flush.

    SQLite's busy timeout is the connection's (the engine sets a minute): the caller restores it
    with :func:`restore_wait`. PostgreSQL's ``SET LOCAL`` ends with the transaction by itself.

    Why an asynchronous commit is safe here: WAL is flushed in order, so the request's own
    durable write (a create, a send) flushes the nonce's commit record before it, which is
    earlier in the log. A database crash can only forget nonces of requests that stored nothing
    durable afterwards (reads, refusals); replaying those duplicates nothing. The flush was
    ~10 ms of each signed request on this machine's PostgreSQL, the rest under 1 ms.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text(f"SET LOCAL lock_timeout = {int(wait_ms)}"))
        conn.execute(sa.text("SET LOCAL synchronous_commit = off"))
    elif conn.dialect.name == "sqlite":
        conn.exec_driver_sql(f"PRAGMA busy_timeout = {int(wait_ms)}")


def restore_wait(conn: Connection, wait_ms: int) -> None:
    """Put SQLite's busy timeout back to the engine's own (PostgreSQL needs nothing)."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(f"PRAGMA busy_timeout = {int(wait_ms)}")
