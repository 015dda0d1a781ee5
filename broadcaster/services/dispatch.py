"""Fan a running broadcast out as chunk tasks: a bounded window per broadcast, refilled as
chunks finish and topped up by the poller.

A window (not a million ids enqueued at once) keeps the broker small and memory flat, lets
broadcasts share workers fairly, and makes a lost chunk detectable: a QUEUE message stamped
long ago that nobody claimed was carried by a task that died with its worker or its Redis.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

from broadcaster.config import Settings
from broadcaster.services.send_windows import gate_for
from broadcaster.store import messages_repo
from broadcaster.store.db import Engine, utcnow


class TaskQueue(Protocol):
    """Where chunk tasks go: Celery in production, a list in tests."""

    def send_chunk(self, broadcast_id: int, ids: list[int], countdown_s: float = 0.0) -> None: ...


def stale_before(settings: Settings, now: datetime) -> datetime:
    return now - timedelta(seconds=settings.redispatch_after_s)


def dispatch(
    engine: Engine,
    settings: Settings,
    queue: TaskQueue,
    broadcast_id: int,
    *,
    max_chunks: int,
    now: datetime | None = None,
) -> int:
    """Enqueue up to ``max_chunks`` chunks of unclaimed, uncarried messages; returns how many.

    Messages whose send window is closed now are left waiting (services/send_windows.py).
    """
    now = now or utcnow()
    with engine.connect() as conn:
        window = gate_for(conn, broadcast_id, now)
    if window.shut:
        return 0
    sent = 0
    for _ in range(max_chunks):
        with engine.begin() as conn:
            ids = messages_repo.mark_dispatched(
                conn,
                broadcast_id,
                limit=settings.chunk_size,
                now=now,
                stale_before=stale_before(settings, now),
                closed_zones=window.closed_zones,
            )
        if not ids:
            break
        queue.send_chunk(broadcast_id, ids)
        sent += 1
    return sent


def top_up(
    engine: Engine,
    settings: Settings,
    queue: TaskQueue,
    broadcast_id: int,
    now: datetime | None = None,
) -> int:
    """Bring a broadcast's in-flight chunks back up to the window (after loss or a slow start)."""
    now = now or utcnow()
    with engine.connect() as conn:
        carried = messages_repo.count_in_queue_window(
            conn, broadcast_id, stale_before(settings, now)
        )
    live_chunks = -(-carried // settings.chunk_size)
    return dispatch(
        engine,
        settings,
        queue,
        broadcast_id,
        max_chunks=max(0, settings.dispatch_window - live_chunks),
        now=now,
    )
