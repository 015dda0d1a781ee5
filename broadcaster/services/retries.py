"""Messages a passing fault refused: back to the queue with a retry time, or ERROR once the
retry window is spent.

The decision is made where the send's result is recorded, in the same transaction, so a
message is never both waiting and finished. Only a ``retryable`` result comes here: the adapter
saw an answer that refused it (429, 5xx) or a connection that never opened, or proved with a
look-up that the gateway does not hold it, so a later send is no duplicate. An unknown outcome
never comes here: the message stays claimed and the poller asks the gateway (lease recovery).

Waiting messages are plain QUEUE rows with ``retry_at`` in the future: dispatch and the claim
skip them until then, and the beat tick's top-up picks them up when due (no Celery ETA holds
them, so a restart loses none). Stop cancels them, suspend holds them, completion waits for them.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime

from broadcaster.config import Settings
from broadcaster.domain.retry import next_retry_at
from broadcaster.domain.wire import iso8601
from broadcaster.store import messages_repo
from broadcaster.store.db import Connection

#: One jitter source for the process.
_JITTER = random.Random()


def retry_window_s(settings: Settings) -> float:
    """The retry window, never past the validity period (no message is tried after it)."""
    return min(settings.retry_window_s, settings.validity_s)


def schedule_retries(
    conn: Connection,
    settings: Settings,
    refused: Sequence[tuple[int, str, int]],
    now: datetime,
    *,
    jitter: random.Random = _JITTER,
    deadline: datetime | None = None,
) -> list[tuple[int, str]]:
    """Requeue each (message id, reason, claim) for later; returns those whose window is spent.

    ``deadline`` (the broadcast's validity end, if it has one) cuts every message's window
    short: no retry is scheduled after it.

    ``claim`` is the message's attempt count when this send claimed it; a message claimed again
    since (its lease ran out, the poller found it absent, another worker took it) is skipped.
    The returned pairs carry the final reason (sends made, last refusal) for ``record_failed``.
    """
    reasons = {mid: (reason, claim) for mid, reason, claim in refused}
    requeue: list[tuple[int, int, datetime, str]] = []
    exhausted: list[tuple[int, str]] = []
    for state in messages_repo.retry_states(conn, list(reasons)):
        reason, claim = reasons[state.id]
        if state.attempts != claim:
            continue
        first = state.retry_since or now
        window_s = retry_window_s(settings)
        if deadline is not None:
            window_s = min(window_s, (deadline - first).total_seconds())
        at = next_retry_at(
            now=now,
            first_failed_at=first,
            retries=max(state.attempts - 1, 0),
            jitter=jitter.random(),
            base_s=settings.retry_base_s,
            cap_s=settings.retry_cap_s,
            window_s=window_s,
        )
        if at is None:
            exhausted.append((state.id, _final_reason(state, reason)))
        else:
            requeue.append((state.id, claim, at, reason))
    messages_repo.requeue_for_retry(conn, requeue, now)
    return exhausted


def _final_reason(state: messages_repo.RetryState, reason: str) -> str:
    since = iso8601(state.retry_since) or "now"
    return f"retry window exhausted after {state.attempts} sends since {since}: {reason}"


def retry_summary(conn: Connection, broadcast_id: int) -> tuple[int, datetime | None]:
    """(messages waiting for a retry, the earliest retry time or None when none waits)."""
    waiting, first = messages_repo.retry_summary(conn, broadcast_id)
    return waiting, first if waiting else None
