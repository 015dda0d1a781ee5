"""Create a broadcast at most once per key: the ``imported_files`` ledger.

The key (a file's content hash, or a task's id) is written in the *same transaction* that
publishes the broadcast it made (the importer's ``on_publish`` hook: the broadcast's rows are
stored in earlier short transactions, hidden until then). So after a crash anywhere, the key is
known if and only if the broadcast exists: a process that dies between batches leaves no key
(and a hidden import the sweep removes), so the file is imported again, once; a restarted
watcher, or a Celery task delivered a second time, finds the key and reports the broadcast it
already made instead of making another.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from broadcaster.domain.states import BroadcastStatus
from broadcaster.services.importer import PublishHook
from broadcaster.services.views import BroadcastView
from broadcaster.store import broadcasts_repo, imports_repo
from broadcaster.store.db import Connection, Engine, utcnow

#: What a create use case returns (a broadcast view, or one with more besides).
T = TypeVar("T")

#: Bytes read per step while hashing a file (memory stays flat for any size).
HASH_CHUNK_BYTES = 1024 * 1024
#: Longest name the ledger keeps (the column's width).
NAME_CHARS = 300


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
    row = imports_repo.find_key(conn, key)
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


class KeyTaken(Exception):
    """Raised in the publishing transaction: another import published this key first."""

    def __init__(self, known: Known) -> None:
        super().__init__(f"already imported as broadcast {known.broadcast_id}")
        self.known = known


def _live(conn: Connection, key: str) -> Known | None:
    """The key's entry if its broadcast still exists (a deleted broadcast frees its key)."""
    known = find(conn, key)
    return known if known is not None and _exists(conn, known.broadcast_id) else None


def claim_key(key: str, name: str) -> PublishHook:
    """The publish hook that records ``key`` for the broadcast being published, or raises
    :class:`KeyTaken` (rolling the publication back) when a live broadcast holds it already."""

    def claim(conn: Connection, broadcast_id: int) -> None:
        known = find(conn, key)
        if known is not None:
            if _exists(conn, known.broadcast_id):
                raise KeyTaken(known)
            # Held by a deleted broadcast: free that entry only, never one just committed.
            imports_repo.free_key(conn, key, known.broadcast_id)
        if not imports_repo.record_key(conn, key, name[:NAME_CHARS], broadcast_id, utcnow()):
            # A concurrent publisher committed it while we waited (PostgreSQL).
            taken = find(conn, key)
            assert taken is not None
            raise KeyTaken(taken)

    return claim


def create_once(
    engine: Engine, key: str, name: str, create: Callable[[PublishHook], T]
) -> tuple[T | None, Known | None]:
    """Run ``create(on_publish)`` so that ``key`` is recorded as the broadcast is published,
    unless ``key`` is known.

    A known key whose broadcast has since been deleted is free again (deleting a broadcast and
    dropping its file once more imports it anew).

    Returns ``(view, None)`` when it created (``view`` is what ``create`` returned and must hold
    the broadcast's ``id``), or ``(None, known)`` when the key was already there, before or
    during the import. Two callers racing on one key: the second to publish finds the key (or,
    on PostgreSQL, waits for the first's commit and then finds it), and nothing of its import
    is kept.
    """
    with engine.connect() as conn:
        known = _live(conn, key)  # no work at all for a file imported before
    if known is not None:
        return None, known
    try:
        return create(claim_key(key, name)), None
    except KeyTaken as exc:
        return None, exc.known


def create_for_task(
    engine: Engine,
    task_id: str | None,
    name: str,
    create: Callable[[PublishHook | None], BroadcastView],
) -> BroadcastView:
    """Run a create use case at most once per Celery task id; ``create`` gets the publish hook
    to pass on (``on_publish=``) to the create use case.

    A task delivered again after its worker died (acks_late) finds the broadcast its first run
    published and returns that broadcast now. Admin scripts may pass their own ``task_id`` as an
    idempotency key, so a retried call cannot make a second broadcast either. Without a task id
    (called directly) it simply creates.
    """
    from broadcaster.services.broadcasts import get_broadcast

    if not task_id:
        return create(None)
    view, known = create_once(engine, task_key(task_id), f"task:{task_id}", create)
    if known is not None:
        return get_broadcast(engine, int(known.broadcast_id or 0))
    assert view is not None
    return view
