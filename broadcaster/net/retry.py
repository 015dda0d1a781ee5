"""The one HTTP retry policy: which statuses are worth another try, what ``Retry-After`` says,
and how long to back off. Gateways (providers/http.py) and client webhooks
(services/client_callbacks.py) both use it, so a 425 or an HTTP-date Retry-After means the same
to both.

Statuses: 408 (request timeout), 425 (too early), 429 (too many requests) and every 5xx except
those that say the request itself can never work (501 not implemented, 505 version not
supported, 506, 508, 510, 511: configuration, not load). Everything else 4xx is final.

Backoff: before attempt n+1 wait ``min(cap, base × 2^(n-1))`` scaled by a jitter in [½, 1]
(a burst of failures does not come back at once, and no wait is near zero); a ``Retry-After``
is a floor, plus up to 10 % so requests refused together do not return together.
"""

from __future__ import annotations

import math
import random
import time
from email.utils import parsedate_to_datetime

#: 4xx statuses that mean "later", not "never".
RETRYABLE_4XX = frozenset({408, 425, 429})
#: 5xx statuses that mean "never": the server cannot serve this request however often asked.
FINAL_5XX = frozenset({501, 505, 506, 508, 510, 511})
#: The lowest share of the backoff ceiling a jittered wait can be.
JITTER_FLOOR = 0.5
#: At most this share is added to a Retry-After.
RETRY_AFTER_JITTER = 0.1


def is_retryable(status: int) -> bool:
    """Whether an HTTP ``status`` is worth another try (see the module docstring)."""
    if status in RETRYABLE_4XX:
        return True
    return 500 <= status <= 599 and status not in FINAL_5XX


def parse_retry_after(
    value: str | None, *, cap_s: float, now_epoch_s: float | None = None
) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date.

    None when absent or unreadable; never negative; at most ``cap_s`` (a server asking for a day
    is broken, not authoritative). Fractional seconds are accepted (some gateways send them).
    """
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None or when.tzinfo is None:
            return None
        now = time.time() if now_epoch_s is None else now_epoch_s
        seconds = when.timestamp() - now
    if math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), cap_s)


def backoff_s(
    attempt: int,
    *,
    base_s: float,
    cap_s: float,
    rng: random.Random | None = None,
    retry_after_s: float | None = None,
) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based), with jitter."""
    dice = rng or random
    ceiling = min(cap_s, base_s * 2.0 ** (max(attempt, 1) - 1))
    delay = ceiling * (JITTER_FLOOR + (1.0 - JITTER_FLOOR) * dice.random())
    if retry_after_s is not None:
        delay = max(delay, retry_after_s * (1.0 + RETRY_AFTER_JITTER * dice.random()))
    return delay
