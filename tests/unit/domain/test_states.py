"""The transition tables and the receipt ordering rule."""

from __future__ import annotations

import pytest

from broadcaster.domain.states import (
    FAILED_STATES,
    FINAL_STATES,
    REFUSED_STATES,
    BroadcastAction,
    BroadcastStatus,
    MessageStatus,
    broadcast_transition,
    receipt_applies,
)

B, A, M = BroadcastStatus, BroadcastAction, MessageStatus


@pytest.mark.parametrize(
    "action, current, allowed, to",
    [
        (A.START, B.SCHEDULED, True, B.RUNNING),
        (A.START, B.SUSPENDED, False, None),
        (A.SUSPEND, B.RUNNING, True, B.SUSPENDED),
        (A.SUSPEND, B.SCHEDULED, True, B.SUSPENDED),
        (A.SUSPEND, B.COMPLETED, False, None),
        (A.RESUME, B.SUSPENDED, True, B.RUNNING),
        (A.RESUME, B.RUNNING, False, None),
        (A.RESCHEDULE, B.SUSPENDED, True, B.SCHEDULED),
        (A.RESCHEDULE, B.RUNNING, False, None),
        (A.STOP, B.RUNNING, True, B.STOPPED),
        (A.STOP, B.SUSPENDED, True, B.STOPPED),
        (A.STOP, B.STOPPED, False, None),
        (A.STOP, B.COMPLETED, False, None),
        (A.DELETE, B.RUNNING, False, None),  # stop first
        (A.DELETE, B.STOPPED, True, B.DELETED),
        (A.DELETE, B.COMPLETED, True, B.DELETED),
        (A.DELETE, B.SCHEDULED, True, B.DELETED),
        (A.COMPLETE, B.RUNNING, True, B.COMPLETED),
        (A.COMPLETE, B.SUSPENDED, False, None),
        (A.MOVE_START, B.SCHEDULED, True, B.SCHEDULED),
        (A.MOVE_START, B.RUNNING, False, None),
    ],
)
def test_broadcast_transitions(action, current, allowed, to):
    sources, target = broadcast_transition(action)
    assert (current in sources) is allowed
    if allowed:
        assert target is to


@pytest.mark.parametrize(
    "current, incoming, applies",
    [
        (M.DEQUEUED, M.DELIVRD, True),  # receipt before the send response
        (M.SENT, M.ENROUTE, True),
        (M.SENT, M.DELIVRD, True),
        (M.ENROUTE, M.ACCEPTD, True),
        (M.ACCEPTD, M.DELIVRD, True),
        (M.DELIVRD, M.ENROUTE, False),  # a late ENROUTE never overwrites a final DELIVRD
        (M.DELIVRD, M.DELIVRD, False),  # idempotent
        (M.DELIVRD, M.UNDELIV, False),  # the first final receipt wins
        (M.ACCEPTD, M.ENROUTE, False),
        (M.QUEUE, M.DELIVRD, False),
        (M.CANCELLED, M.DELIVRD, False),
        (M.ERROR, M.DELIVRD, False),
        (M.SENT, M.SENT, False),
    ],
)
def test_receipt_ordering(current, incoming, applies):
    assert receipt_applies(current, incoming) is applies


def test_every_state_is_final_or_moves_on():
    moving = {M.QUEUE, M.DEQUEUED, M.SENT, M.ENROUTE, M.ACCEPTD}
    assert moving | FINAL_STATES == set(M)
    assert not moving & FINAL_STATES


@pytest.mark.parametrize("refusal", sorted(REFUSED_STATES))
def test_a_gateway_refusal_receipt_is_final_and_keeps_its_name(refusal: MessageStatus) -> None:
    # seed 001 posts BLACKLISTED, INVALID_ROUTING… as receipts: they apply and end the message
    assert receipt_applies(MessageStatus.SENT, refusal)
    assert receipt_applies(MessageStatus.ENROUTE, refusal)
    assert not receipt_applies(refusal, MessageStatus.DELIVRD)
    assert refusal in FAILED_STATES
