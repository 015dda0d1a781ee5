"""Broadcast and message states, and which changes between them are allowed.

Transitions are data: services look them up and write them with compare-and-set
(``UPDATE … WHERE status IN (:allowed_from)``), never check-then-write.
"""

from __future__ import annotations

from enum import StrEnum


class BroadcastStatus(StrEnum):
    #: Stored, waiting for its start time.
    SCHEDULED = "SCHEDULED"
    #: Being sent.
    RUNNING = "RUNNING"
    #: Paused by an operator or by too many gateway failures; unsent messages stay QUEUE.
    SUSPENDED = "SUSPENDED"
    #: Stopped for good; unsent messages end CANCELLED.
    STOPPED = "STOPPED"
    #: Every message reached a final or sent state.
    COMPLETED = "COMPLETED"
    #: Removed with its messages (kept only as a tombstone while the delete runs).
    DELETED = "DELETED"


class StagingStatus(StrEnum):
    """A broadcast row that is not a broadcast yet (or any more): seen by no user and no worker.

    Kept apart from :class:`BroadcastStatus` on purpose: no API filter, document or transition
    names these; only the importer (``services/importer.py``) and its sweep write them.
    """

    #: Rows are being stored in batches; one publishing transaction makes it SCHEDULED/COMPLETED.
    IMPORTING = "IMPORTING"
    #: An import that failed or was abandoned; its rows are being deleted in batches.
    DISCARDING = "DISCARDING"


#: Statuses of rows that every read of broadcasts treats as "does not exist".
STAGING_STATES: frozenset[str] = frozenset(StagingStatus)
#: Not shown, not counted, not started: staging rows and the tombstone of a delete.
INVISIBLE_BROADCAST_STATES: frozenset[str] = frozenset({*StagingStatus, BroadcastStatus.DELETED})


class BroadcastAction(StrEnum):
    START = "start"
    SUSPEND = "suspend"
    RESUME = "resume"
    #: Resume of a broadcast suspended before its start time: back to waiting for it.
    RESCHEDULE = "reschedule"
    STOP = "stop"
    COMPLETE = "complete"
    DELETE = "delete"
    #: A SCHEDULED broadcast's start time moved (``broadcaster broadcast reschedule``): it stays
    #: SCHEDULED, and only a SCHEDULED one may move.
    MOVE_START = "move-start"


B = BroadcastStatus
#: action -> (states it may start from, state it leads to)
BROADCAST_TRANSITIONS: dict[BroadcastAction, tuple[frozenset[BroadcastStatus], BroadcastStatus]] = {
    BroadcastAction.START: (frozenset({B.SCHEDULED}), B.RUNNING),
    BroadcastAction.SUSPEND: (frozenset({B.SCHEDULED, B.RUNNING}), B.SUSPENDED),
    BroadcastAction.RESUME: (frozenset({B.SUSPENDED}), B.RUNNING),
    BroadcastAction.RESCHEDULE: (frozenset({B.SUSPENDED}), B.SCHEDULED),
    BroadcastAction.STOP: (frozenset({B.SCHEDULED, B.RUNNING, B.SUSPENDED}), B.STOPPED),
    BroadcastAction.COMPLETE: (frozenset({B.SCHEDULED, B.RUNNING}), B.COMPLETED),
    BroadcastAction.DELETE: (
        frozenset({B.SCHEDULED, B.SUSPENDED, B.STOPPED, B.COMPLETED}),
        B.DELETED,
    ),
    BroadcastAction.MOVE_START: (frozenset({B.SCHEDULED}), B.SCHEDULED),
}

#: The actions an operator asks for by name (the API's routes), in the order a page offers them.
OPERATOR_ACTIONS = (
    BroadcastAction.SUSPEND,
    BroadcastAction.RESUME,
    BroadcastAction.STOP,
    BroadcastAction.DELETE,
)


#: Second chances, named as their routes: a new start for a SCHEDULED broadcast, and a new
#: broadcast of a finished one's failed messages (``services/resend.py``).
RESCHEDULE_ROUTE, RETRY_FAILED_ROUTE = "reschedule", "retry-failed"


def allowed_actions(status: str) -> list[str]:
    """The operator actions ``status`` allows (a page offers these): the transition table's,
    then reschedule (where MOVE_START may start) and retry-failed (COMPLETED or STOPPED)."""
    out = [a.value for a in OPERATOR_ACTIONS if status in BROADCAST_TRANSITIONS[a][0]]
    if status in BROADCAST_TRANSITIONS[BroadcastAction.MOVE_START][0]:
        out.append(RESCHEDULE_ROUTE)
    if status in ENDED_BROADCAST_STATES:
        out.append(RETRY_FAILED_ROUTE)
    return out


#: Broadcasts the status poller watches.
ACTIVE_BROADCAST_STATES = frozenset({B.RUNNING, B.SUSPENDED})
#: Broadcasts that ended by themselves or by an operator (the poller still recounts them a while).
ENDED_BROADCAST_STATES = frozenset({B.COMPLETED, B.STOPPED})


def broadcast_transition(
    action: BroadcastAction,
) -> tuple[frozenset[BroadcastStatus], BroadcastStatus]:
    """Where ``action`` may start from and where it leads."""
    return BROADCAST_TRANSITIONS[action]


class MessageStatus(StrEnum):
    #: Stored, not yet claimed by a worker.
    QUEUE = "QUEUE"
    #: Claimed by a worker, with a lease; sending now.
    DEQUEUED = "DEQUEUED"
    #: Accepted by the gateway.
    SENT = "SENT"
    #: The gateway refused it for good, or retries ran out.
    ERROR = "ERROR"
    #: Receipt: on its way.
    ENROUTE = "ENROUTE"
    #: Receipt: accepted by the carrier.
    ACCEPTD = "ACCEPTD"
    #: Receipt: delivered to the handset.
    DELIVRD = "DELIVRD"
    #: Receipt: undeliverable.
    UNDELIV = "UNDELIV"
    #: Receipt: validity period passed, or no receipt came in time.
    EXPIRED = "EXPIRED"
    #: Receipt: deleted by the carrier.
    DELETED = "DELETED"
    #: Receipt: rejected by the carrier.
    REJECTD = "REJECTD"
    #: Receipt: unknown outcome.
    UNKNOWN = "UNKNOWN"
    #: Refused before sending: bad number.
    INVALID_ROUTING = "INVALID_ROUTING"
    #: Refused before sending: over 10 segments.
    SEGMENTS_EXCEEDED = "SEGMENTS_EXCEEDED"
    #: Refused before sending: recipient opted out.
    BLACKLISTED = "BLACKLISTED"
    #: Refused before sending: sender code not in the workspace.
    CODE_NOT_ALLOWED = "CODE_NOT_ALLOWED"
    #: Never sent because its broadcast was stopped.
    CANCELLED = "CANCELLED"


M = MessageStatus
#: Not sent yet; a stop turns these into CANCELLED.
UNSENT_STATES = frozenset({M.QUEUE, M.DEQUEUED})
#: The gateway has it; receipts may still move it along.
IN_NETWORK_STATES = frozenset({M.SENT, M.ENROUTE, M.ACCEPTD})
#: Receipts that end a message's life.
FINAL_RECEIPT_STATES = frozenset({M.DELIVRD, M.UNDELIV, M.EXPIRED, M.DELETED, M.REJECTD, M.UNKNOWN})
#: Refused before or instead of sending.
REFUSED_STATES = frozenset(
    {M.INVALID_ROUTING, M.SEGMENTS_EXCEEDED, M.BLACKLISTED, M.CODE_NOT_ALLOWED}
)
FINAL_STATES = FINAL_RECEIPT_STATES | REFUSED_STATES | {M.ERROR, M.CANCELLED}
#: Counted as "sent" in a broadcast's numbers: the gateway accepted them.
SENT_STATES = IN_NETWORK_STATES | FINAL_RECEIPT_STATES
#: Counted as "failed".
FAILED_STATES = frozenset({M.ERROR, M.UNDELIV, M.EXPIRED, M.DELETED, M.REJECTD}) | REFUSED_STATES

#: Receipt rank: a receipt may only move a message forward, so a late ENROUTE never
#: overwrites a final DELIVRD. Equal ranks do not replace each other.
RECEIPT_RANK: dict[MessageStatus, int] = {
    M.SENT: 0,
    M.ENROUTE: 1,
    M.ACCEPTD: 2,
    **{s: 3 for s in FINAL_RECEIPT_STATES},
    # a gateway's refusal reported by receipt (seed 001: BLACKLISTED, INVALID_ROUTING…) is final
    **{s: 3 for s in REFUSED_STATES},
}


def receipt_applies(current: MessageStatus, incoming: MessageStatus) -> bool:
    """Whether a receipt saying ``incoming`` may replace ``current``.

    Receipts can arrive before the send response is stored (current DEQUEUED): they apply.
    """
    if incoming not in RECEIPT_RANK or incoming == M.SENT:
        return False
    if current == M.DEQUEUED:
        return True
    if current not in RECEIPT_RANK:
        return False
    return RECEIPT_RANK[incoming] > RECEIPT_RANK[current]
