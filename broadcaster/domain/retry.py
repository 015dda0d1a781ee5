"""When a message a passing fault refused is sent again: exponential backoff with jitter, inside
a retry window.

The adapter's own in-request attempts (``providers/http.py``) ride out a blip of a second or
two; this schedule is for what outlasts them (a gateway overloaded or restarting for minutes):
the message goes back to the queue with a not-before time, so no worker waits and a message
is never finalized by a fault that passes. Pure: time and the jitter draw are passed in.
"""

from __future__ import annotations

from datetime import datetime, timedelta

#: The first wait after a message's in-request attempts failed, doubling each time...
RETRY_BASE_S = 30.0
#: ...never longer than this between two sends.
RETRY_CAP_S = 600.0
#: How long after its first retryable failure a message is still tried (GOV.UK Notify: ~4 h).
RETRY_WINDOW_S = 4 * 3600.0
#: The doubling stops here (2**30 × any base is past every cap; avoids huge floats).
MAX_DOUBLINGS = 30
#: The share of each wait that is random: half fixed, half drawn ("equal jitter"), so a crowd
#: refused together spreads out but no retry comes back at once.
JITTER_SHARE = 0.5


def retry_delay_s(retries: int, *, jitter: float, base_s: float, cap_s: float) -> float:
    """Seconds before the next send after ``retries`` earlier queue-level retries (0: first).

    ``jitter`` is a draw in [0, 1); the wait is in [ceiling × (1 - JITTER_SHARE), ceiling) where
    ceiling = min(cap, base × 2**retries).
    """
    ceiling = min(cap_s, base_s * 2.0 ** min(max(retries, 0), MAX_DOUBLINGS))
    return ceiling * (1.0 - JITTER_SHARE + JITTER_SHARE * min(max(jitter, 0.0), 1.0))


def next_retry_at(
    *,
    now: datetime,
    first_failed_at: datetime,
    retries: int,
    jitter: float,
    base_s: float = RETRY_BASE_S,
    cap_s: float = RETRY_CAP_S,
    window_s: float = RETRY_WINDOW_S,
) -> datetime | None:
    """When to send again, or None when the window is exhausted (the message ends ERROR).

    The last retry is moved forward to the window's end rather than dropped, so a message gets
    its try at the end of the window; a failure at or after the end is final.
    """
    deadline = first_failed_at + timedelta(seconds=window_s)
    if now >= deadline:
        return None
    at = now + timedelta(seconds=retry_delay_s(retries, jitter=jitter, base_s=base_s, cap_s=cap_s))
    return min(at, deadline)
