"""Operator control of a broadcast: start, suspend, resume, stop, delete.

Control is database state, not signals (listmonk's lesson): a sending chunk's next claim
filters on RUNNING, so a suspend stops it within one sub-batch. Every change is a
compare-and-set against the transition table; losing a race is an ``InvalidTransition``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from broadcaster.config import Settings
from broadcaster.domain.states import BroadcastAction, BroadcastStatus, broadcast_transition
from broadcaster.errors import InvalidTransition, NotFound
from broadcaster.services.dispatch import TaskQueue, dispatch
from broadcaster.services.transitions import try_transition
from broadcaster.store import broadcasts_repo, messages_repo
from broadcaster.store.db import Connection, Engine, utcnow


@dataclass(frozen=True, slots=True)
class ControlResult:
    """What an operator action did: the broadcast and its status after it (suspend, resume)."""

    id: int
    status: str


@dataclass(frozen=True, slots=True)
class Stopped(ControlResult):
    """A stop, and how many unsent messages it cancelled."""

    cancelled: int


@dataclass(frozen=True, slots=True)
class Deleted(ControlResult):
    """A delete, and how many messages it removed."""

    messages_removed: int


def _current(conn: Connection, broadcast_id: int, workspace_id: int | None) -> dict[str, Any]:
    row = broadcasts_repo.get_broadcast(conn, broadcast_id, workspace_id)
    if row is None or row["status"] == BroadcastStatus.DELETED.value:
        raise NotFound(f"broadcast {broadcast_id} does not exist")
    return row


def transition(
    conn: Connection,
    broadcast_id: int,
    action: BroadcastAction,
    workspace_id: int | None = None,
    **values: Any,
) -> BroadcastStatus:
    """Apply ``action`` with compare-and-set; raise InvalidTransition when it is not allowed now."""
    current = _current(conn, broadcast_id, workspace_id)
    if not try_transition(conn, broadcast_id, action, **values):
        latest = _current(conn, broadcast_id, workspace_id)["status"]
        raise InvalidTransition(
            f"broadcast {broadcast_id}", latest or current["status"], action.value
        )
    return broadcast_transition(action)[1]


def start(
    engine: Engine,
    settings: Settings,
    queue: TaskQueue,
    broadcast_id: int,
    due_by: datetime | None = None,
) -> bool:
    """SCHEDULED → RUNNING and fan out; False if someone else started it first.

    ``due_by``: start only if its start time is still at or before it (the scheduler's "now"),
    so a start time edited to later between the scheduler's read and this write holds.
    """
    with engine.begin() as conn:
        try:
            transition(
                conn,
                broadcast_id,
                BroadcastAction.START,
                started_at=utcnow(),
                consecutive_failures=0,
                due_by=due_by,
            )
        except (InvalidTransition, NotFound):
            return False
    dispatch(engine, settings, queue, broadcast_id, max_chunks=settings.dispatch_window)
    return True


def suspend(
    engine: Engine, broadcast_id: int, workspace_id: int | None = None, reason: str | None = None
) -> ControlResult:
    with engine.begin() as conn:
        status = transition(
            conn,
            broadcast_id,
            BroadcastAction.SUSPEND,
            workspace_id,
            status_reason=reason or "suspended by operator",
        )
    return ControlResult(id=broadcast_id, status=status.value)


def resume(
    engine: Engine,
    settings: Settings,
    queue: TaskQueue | None,
    broadcast_id: int,
    workspace_id: int | None = None,
) -> ControlResult:
    """SUSPENDED → RUNNING; the QUEUE messages left are fanned out again, none twice.

    Without a queue (the command line), the next poller tick fans it out.
    """
    with engine.begin() as conn:
        # Messages stamped by chunks that ended on the suspend are free to carry again.
        messages_repo.undispatch_queued(conn, broadcast_id)
        # Suspended before its start time: it waits for that time again instead of sending now.
        current = _current(conn, broadcast_id, workspace_id)
        action = (
            BroadcastAction.RESCHEDULE if current["start_at"] > utcnow() else BroadcastAction.RESUME
        )
        try:
            status = transition(
                conn, broadcast_id, action, workspace_id, status_reason=None, consecutive_failures=0
            )
        except InvalidTransition as exc:  # name what the operator asked for
            raise InvalidTransition(exc.entity, exc.current, BroadcastAction.RESUME.value) from None
    if queue is not None and status is BroadcastStatus.RUNNING:
        dispatch(engine, settings, queue, broadcast_id, max_chunks=settings.dispatch_window)
    return ControlResult(id=broadcast_id, status=status.value)


def stop(engine: Engine, broadcast_id: int, workspace_id: int | None = None) -> Stopped:
    """Final: unsent messages end CANCELLED in the same transaction as the status change."""
    now = utcnow()
    with engine.begin() as conn:
        status = transition(
            conn,
            broadcast_id,
            BroadcastAction.STOP,
            workspace_id,
            ended_at=now,
            status_reason="stopped by operator",
        )
        cancelled = messages_repo.cancel_unsent(conn, broadcast_id, now)
    return Stopped(id=broadcast_id, status=status.value, cancelled=cancelled)


def delete(engine: Engine, broadcast_id: int, workspace_id: int | None = None) -> Deleted:
    """Remove a broadcast with its messages and row errors; a RUNNING one must be stopped first."""
    with engine.begin() as conn:
        transition(conn, broadcast_id, BroadcastAction.DELETE, workspace_id)
        removed = broadcasts_repo.delete_with_messages(conn, broadcast_id)
    return Deleted(id=broadcast_id, status=BroadcastStatus.DELETED.value, messages_removed=removed)
