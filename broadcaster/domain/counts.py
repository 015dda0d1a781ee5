"""Broadcast counters derived from message states, so they can never drift from the truth."""

from __future__ import annotations

from broadcaster.domain.states import FAILED_STATES, SENT_STATES, MessageStatus


def derive_counters(counts: dict[str, int], expired_unsent: int = 0) -> dict[str, int]:
    """expected = every state counted once; sent = the gateway took it; failed includes refusals.

    ``expired_unsent``: EXPIRED messages that never reached the gateway (a broadcast's validity
    ran out while they waited): failed, but not sent.
    """
    return {
        "expected": sum(counts.values()),
        "sent": sum(n for s, n in counts.items() if MessageStatus(s) in SENT_STATES)
        - expired_unsent,
        "delivered": counts.get(MessageStatus.DELIVRD.value, 0),
        "failed": sum(n for s, n in counts.items() if MessageStatus(s) in FAILED_STATES),
    }
