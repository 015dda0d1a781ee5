"""Second chances for a broadcast: re-send its failed messages once, or move its start.

``retry_failed`` re-queues the ERROR and UNDELIV messages of a finished broadcast as a new
broadcast, exactly once per recipient: the new broadcast records its source (``retry_of``,
unique), so a repeated or concurrent call finds it instead of making another, and the copy is
one INSERT … SELECT in the transaction that creates it (all of them or none).

``reschedule`` gives a SCHEDULED broadcast a new start, by compare-and-set on SCHEDULED: the beat
tick that would start it and the reschedule cannot both win.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from broadcaster.domain.counts import derive_counters
from broadcaster.domain.schedule import refuse_past_start, start_time_utc, zone
from broadcaster.domain.states import (
    ENDED_BROADCAST_STATES,
    BroadcastAction,
    BroadcastStatus,
    MessageStatus,
)
from broadcaster.errors import Conflict, InvalidTransition, NotFound
from broadcaster.services.broadcasts import get_broadcast, require_code
from broadcaster.services.transitions import try_transition
from broadcaster.services.views import BroadcastDetail
from broadcaster.store import broadcasts_repo, codes_repo, queries_repo, resend_repo
from broadcaster.store.db import Connection, Engine, IntegrityError, utcnow

#: What a retry re-sends: the gateway refused it, or the carrier could not deliver it.
RETRIED = (MessageStatus.ERROR, MessageStatus.UNDELIV)
RETRY_ACTION = "retry the failed messages of"
RESCHEDULE_ACTION = "reschedule"
#: Columns a retry broadcast takes from its source as they are.
_INHERITED = (
    "workspace_id",
    "sender_code",
    "template",
    "timezone",
    "request_dr",
    "callbacks",
    "owner",
    "send_window",
    "validity_s",
    "zones",
)


@dataclass(frozen=True, slots=True)
class Retry:
    """The retry broadcast's view, and whether this call made it (False: it existed already)."""

    view: BroadcastDetail
    created: bool


def _source(conn: Connection, broadcast_id: int, workspace_id: int | None) -> dict[str, Any]:
    row = queries_repo.owned_broadcast(conn, broadcast_id, workspace_id)
    if row is None:
        raise NotFound(f"broadcast {broadcast_id} does not exist")
    return row


def retry_failed(engine: Engine, broadcast_id: int, workspace_id: int | None = None) -> Retry:
    """The broadcast re-sending ``broadcast_id``'s ERROR/UNDELIV messages, made on first call.

    NotFound for another workspace's broadcast; InvalidTransition while it is not finished
    (COMPLETED or STOPPED); Conflict when it has nothing to retry.
    """
    try:
        with engine.begin() as conn:
            src = _source(conn, broadcast_id, workspace_id)
            made = resend_repo.retry_of(conn, broadcast_id)
            if made is None:
                made = _make_retry(conn, src)
                created = True
            else:
                created = False
    except IntegrityError:  # a concurrent call made it between our look-up and our insert
        with engine.connect() as conn:
            made = resend_repo.retry_of(conn, broadcast_id)
        if made is None:
            raise
        created = False
    return Retry(view=get_broadcast(engine, made), created=created)


def _make_retry(conn: Connection, src: dict[str, Any]) -> int:
    bid = int(src["id"])
    if src["status"] not in ENDED_BROADCAST_STATES:
        raise InvalidTransition(f"broadcast {bid}", src["status"], RETRY_ACTION)
    if resend_repo.count_in(conn, bid, RETRIED) == 0:
        raise Conflict(f"broadcast {bid} has no ERROR or UNDELIV message to retry")
    ws = int(src["workspace_id"])
    require_code(conn, ws, src["sender_code"], codes_repo.workspace_name(conn, ws) or "")
    now = utcnow()
    new_id = broadcasts_repo.insert_broadcast(
        conn,
        **{k: src[k] for k in _INHERITED},
        name=f"retry of #{bid}: {src['name']}"[:200],
        source=f"retry of broadcast {bid}",
        status=BroadcastStatus.SCHEDULED.value,
        start_at=now,
        retry_of=bid,
    )
    resend_repo.copy_messages(conn, bid, new_id, ws, RETRIED, now)
    counts = broadcasts_repo.status_counts(conn, new_id)
    values: dict[str, Any] = derive_counters(counts)
    if counts.get(MessageStatus.QUEUE.value, 0) == 0:  # every one of them opted out since
        values.update(
            status=BroadcastStatus.COMPLETED.value,
            started_at=now,
            ended_at=now,
            status_reason="no sendable recipients",
        )
    broadcasts_repo.update_broadcast(conn, new_id, **values)
    return new_id


def reschedule(
    engine: Engine,
    broadcast_id: int,
    at: str,
    tz: str | None = None,
    workspace_id: int | None = None,
    *,
    start_now_hint: str = "give --at now",
) -> BroadcastDetail:
    """A SCHEDULED broadcast starts at ``at`` instead (wall time in ``tz``, default: its own
    zone); a time over a minute past is refused as creating one refuses it."""
    with engine.connect() as conn:
        current = _source(conn, broadcast_id, workspace_id)
    tz = tz or current["timezone"]
    zone(tz)
    now = utcnow()
    start_at = start_time_utc(at, tz, now)
    refuse_past_start(start_at, now, start_now_hint)
    with engine.begin() as conn:
        moved = try_transition(
            conn, broadcast_id, BroadcastAction.MOVE_START, start_at=start_at, timezone=tz
        )
        if not moved:
            latest = _source(conn, broadcast_id, workspace_id)["status"]
            raise InvalidTransition(f"broadcast {broadcast_id}", latest, RESCHEDULE_ACTION)
    return get_broadcast(engine, broadcast_id)
