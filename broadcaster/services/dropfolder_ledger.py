"""Create a broadcast at most once per key: the ``imported_files`` ledger.

The key (a file's content hash, or a task's id) is written in the *same transaction* as the
broadcast it made. So after a crash anywhere, the key is known if and only if the broadcast
exists: a restarted watcher, or a Celery task delivered a second time, finds the key and reports
the broadcast it already made instead of making another.

The broadcast service is written against an ``Engine``; :class:`ConnectionAsEngine` hands it the
ledger's open connection, so its inserts join the ledger's transaction instead of opening their
own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from broadcaster.domain.states import BroadcastStatus
from broadcaster.store import broadcasts_repo
from broadcaster.store.db import utcnow
from broadcaster.store.models import imported_files

#: Bytes read per step while hashing a file (memory stays flat for any size).
HASH_CHUNK_BYTES = 1024 * 1024
#: Longest name the ledger keeps (the column's width).
NAME_CHARS = 300


class ConnectionAsEngine:
    """An Engine look-alike whose ``begin()`` and ``connect()`` hand out one open connection.

    The caller owns the transaction: nothing is committed until the caller's ``begin()`` block
    ends, and an exception anywhere rolls back the service's writes together with the ledger's.
    """

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self.dialect = conn.dialect

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        yield self._conn

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        yield self._conn


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def task_key(task_id: str) -> str:
    """The ledger key of a Celery task: a redelivered task (same id) finds its broadcast."""
    return hashlib.sha256(f"task:{task_id}".encode()).hexdigest()


@dataclass(frozen=True)
class Known:
    """A key already in the ledger: what it made, and when."""

    key: str
    name: str
    broadcast_id: int | None
    created_at: Any


def find(conn: Connection, key: str) -> Known | None:
    row = (
        conn.execute(sa.select(imported_files).where(imported_files.c.sha256 == key))
        .mappings()
        .first()
    )
    if row is None:
        return None
    return Known(row["sha256"], row["name"], row["broadcast_id"], row["created_at"])


def _exists(conn: Connection, broadcast_id: int | None) -> bool:
    if broadcast_id is None:
        return False
    row = broadcasts_repo.get_broadcast(conn, broadcast_id)
    return row is not None and row["status"] != BroadcastStatus.DELETED.value


def lookup(engine: Engine, key: str) -> Known | None:
    with engine.connect() as conn:
        return find(conn, key)


def create_once(
    engine: Engine, key: str, name: str, create: Callable[[Connection], dict[str, Any]]
) -> tuple[dict[str, Any] | None, Known | None]:
    """Run ``create(conn)`` and record ``key`` in one transaction, unless ``key`` is known.

    A known key whose broadcast has since been deleted is free again (deleting a broadcast and
    dropping its file once more imports it anew).

    Returns ``(view, None)`` when it created (``view`` is what ``create`` returned and must hold
    the broadcast's ``id``), or ``(None, known)`` when the key was already there. Two callers
    racing on one key: the second one's insert fails on the primary key (IntegrityError, after
    the first commits on PostgreSQL) and nothing of it is kept.
    """
    with engine.begin() as conn:
        known = find(conn, key)
        if known is not None and _exists(conn, known.broadcast_id):
            return None, known
        if known is not None:  # its broadcast was deleted since: the key is free again
            conn.execute(sa.delete(imported_files).where(imported_files.c.sha256 == key))
        # The ledger row first: on PostgreSQL a concurrent import of the same key waits here.
        conn.execute(
            sa.insert(imported_files).values(
                sha256=key, name=name[:NAME_CHARS], broadcast_id=None, created_at=utcnow()
            )
        )
        view = create(conn)
        # SQLite hands a deleted broadcast's id out again: a stale key naming that id is dropped,
        # or its file would be "already imported" as this new, unrelated broadcast.
        conn.execute(
            sa.delete(imported_files).where(
                imported_files.c.broadcast_id == int(view["id"]), imported_files.c.sha256 != key
            )
        )
        conn.execute(
            sa.update(imported_files)
            .where(imported_files.c.sha256 == key)
            .values(broadcast_id=int(view["id"]))
        )
        return view, None


def create_for_task(
    engine: Engine, task_id: str | None, name: str, create: Callable[[Engine], dict[str, Any]]
) -> dict[str, Any]:
    """Run a create use case at most once per Celery task id; ``create`` gets an Engine to use.

    A task delivered again after its worker died (acks_late) finds the broadcast its first run
    committed and returns that broadcast now. Admin scripts may pass their own ``task_id`` as an
    idempotency key, so a retried call cannot make a second broadcast either. Without a task id
    (called directly) it simply creates.
    """
    from broadcaster.services.broadcasts import get_broadcast

    if not task_id:
        return create(engine)
    view, known = create_once(
        engine,
        task_key(task_id),
        f"task:{task_id}",
        lambda conn: create(ConnectionAsEngine(conn)),  # type: ignore[arg-type]
    )
    if known is not None:
        return get_broadcast(engine, int(known.broadcast_id or 0))
    assert view is not None
    return view
