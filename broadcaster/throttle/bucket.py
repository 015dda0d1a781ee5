"""The token-bucket interface: limits, grants, and the arithmetic both backends share.

A bucket of ``capacity`` tokens refills continuously at ``rate_per_s`` tokens per second; one
token is one SMS segment. ``take`` asks several buckets at once (a sender code's and a provider
account's) and grants the minimum over them, deducting it from all of them atomically.

Guarantee (per bucket, any interval of length ``T`` seconds of the Redis server's clock)::

    tokens granted  <=  max(capacity, largest min_tokens asked) + rate_per_s * T

(give or take ``TOKEN_EPSILON`` of float slack). ``max(capacity, min_tokens)`` is the burst: a bucket starts full, and a *full* bucket may lend up
to ``min_tokens`` even when that is more than its capacity (it goes into debt, repaid by the
refill), so a 3-segment message can pass a 1 segment/s long code instead of waiting forever.
Callers that never ask for ``min_tokens > capacity`` get the textbook bound ``capacity + rate*T``.
The long-run rate is exact: debt is paid back before anything else is granted.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

#: Tokens are granted whole; this absorbs float error so 2.9999999999 refilled tokens count as 3.
TOKEN_EPSILON = 1e-6
#: An idle bucket's key expires after this many times its refill time (empty or in debt → full).
#: Expiry is lossless because by then the bucket is full, which is what a missing key means.
IDLE_TTL_REFILLS = 3
#: Floor of the idle TTL, so a fast bucket's key does not churn between two close calls.
IDLE_TTL_MIN_MS = 1_000
#: Ceiling of the idle TTL (7 days), so an absurdly slow rate cannot overflow PEXPIRE.
IDLE_TTL_MAX_MS = 604_800_000


@dataclass(frozen=True, slots=True)
class Limit:
    """One bucket: its full Redis key, its refill rate and its burst, both in tokens (segments)."""

    key: str
    rate_per_s: float
    capacity: float | None = None  #: burst in tokens; ``None`` means ``max(1, rate_per_s)``

    def __post_init__(self) -> None:
        if not (self.rate_per_s > 0 and math.isfinite(self.rate_per_s)):
            raise ValueError(
                f"{self.key}: rate_per_s must be a positive number, not {self.rate_per_s!r}"
            )
        if self.capacity is not None and not (self.capacity > 0 and math.isfinite(self.capacity)):
            raise ValueError(
                f"{self.key}: capacity must be a positive number, not {self.capacity!r}"
            )

    @property
    def burst(self) -> float:
        """Capacity in tokens, with the default applied: ``max(1, rate_per_s)`` (one second's worth)."""
        return self.capacity if self.capacity is not None else max(1.0, self.rate_per_s)


@dataclass(frozen=True, slots=True)
class Grant:
    """What ``take`` gave: ``granted`` tokens, to be spent now (holding them defeats the limit)."""

    granted: int
    #: 0 when everything asked for was granted; otherwise seconds until at least ``min_tokens``
    #: more could be granted (if nobody else takes them first).
    wait_s: float


class TokenBucket(Protocol):
    """A set of token buckets shared by every process that uses the same store."""

    async def take(self, limits: Sequence[Limit], tokens: int, *, min_tokens: int = 1) -> Grant:
        """Grant between 0 and ``tokens`` tokens from every bucket in ``limits`` at once.

        The grant is the minimum available over the buckets, deducted from all of them, and is 0
        when fewer than ``min_tokens`` are available (a 3-segment message is never half-granted).
        """
        ...


async def acquire(
    bucket: TokenBucket,
    limits: Sequence[Limit],
    tokens: int,
    *,
    max_wait_s: float,
    min_tokens: int = 1,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
) -> Grant:
    """Take tokens, sleeping while nothing is granted and the waits total at most ``max_wait_s``.

    Returns the first non-zero grant (possibly partial: send it now, then ask again), or a grant
    of 0 whose ``wait_s`` is longer than the budget left: hand the work back to the queue with
    that countdown. It never collects tokens across sleeps, because tokens held while sleeping
    would be spent later in one burst above the rate.
    """
    waited_s = 0.0
    while True:
        grant = await bucket.take(limits, tokens, min_tokens=min_tokens)
        if grant.granted > 0 or grant.wait_s <= 0 or waited_s + grant.wait_s > max_wait_s:
            return grant
        await sleep(grant.wait_s)
        waited_s += grant.wait_s


def check_request(limits: Sequence[Limit], tokens: int, min_tokens: int) -> None:
    """Raise ``ValueError`` for a request no bucket could answer sensibly."""
    if not limits:
        raise ValueError("take() needs at least one Limit")
    if len({limit.key for limit in limits}) != len(limits):
        raise ValueError("take() got the same bucket key twice")
    if tokens < 0:
        raise ValueError(f"tokens must be >= 0, not {tokens}")
    if min_tokens < 1 or (tokens > 0 and min_tokens > tokens):
        raise ValueError(f"min_tokens must be between 1 and tokens ({tokens}), not {min_tokens}")


def refill(level: float, elapsed_s: float, limit: Limit) -> float:
    """The level after ``elapsed_s`` seconds of refill, capped at the burst (clock steps back: 0)."""
    return min(limit.burst, level + max(0.0, elapsed_s) * limit.rate_per_s)


def available(level: float, limit: Limit, min_tokens: int) -> int:
    """Whole tokens one bucket can grant now; a full bucket lends up to ``min_tokens`` (debt)."""
    whole = math.floor(level + TOKEN_EPSILON)
    if level + TOKEN_EPSILON >= limit.burst:
        whole = max(whole, min_tokens)
    return whole


def wait_for(level: float, limit: Limit, min_tokens: int) -> float:
    """Seconds until one bucket at ``level`` can grant ``min_tokens`` (or is full, if that is less)."""
    need = min(float(min_tokens), limit.burst)
    return max(0.0, need - level) / limit.rate_per_s


def idle_ttl_ms(level: float, limit: Limit) -> int:
    """Milliseconds of idleness after which the bucket's key may vanish (it is full by then)."""
    refill_s = max(limit.burst, limit.burst - level) / limit.rate_per_s
    return min(IDLE_TTL_MAX_MS, max(IDLE_TTL_MIN_MS, math.ceil(IDLE_TTL_REFILLS * refill_s * 1000)))
