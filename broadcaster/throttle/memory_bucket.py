"""The in-memory twin of ``RedisTokenBucket``: same arithmetic, one process, injectable clock."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from broadcaster.throttle.bucket import (
    Grant,
    Limit,
    available,
    check_request,
    idle_ttl_ms,
    refill,
    wait_for,
)

#: Expired buckets are swept every this many ``take`` calls, so memory stays flat.
SWEEP_EVERY_CALLS = 1_000


@dataclass(slots=True)
class _State:
    level: float
    updated_s: float
    expires_s: float


class MemoryTokenBucket:
    """Buckets in a dict, for tests and single-process runs; ``clock`` returns seconds."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, _State] = {}
        self._calls = 0

    async def take(self, limits: Sequence[Limit], tokens: int, *, min_tokens: int = 1) -> Grant:
        check_request(limits, tokens, min_tokens)
        if tokens == 0:
            return Grant(granted=0, wait_s=0.0)
        # No await below: like the Lua script, the whole decision is atomic.
        now_s = self._clock()
        self._sweep(now_s)
        levels = [self._level(limit, now_s) for limit in limits]
        grant = min(
            tokens,
            *(available(lv, lim, min_tokens) for lv, lim in zip(levels, limits, strict=True)),
        )
        if grant < min_tokens:
            grant = 0
        wait_s = 0.0
        for level, limit in zip(levels, limits, strict=True):
            left = level - grant
            if grant < tokens:
                wait_s = max(wait_s, wait_for(left, limit, min_tokens))
            self._buckets[limit.key] = _State(left, now_s, now_s + idle_ttl_ms(left, limit) / 1000)
        return Grant(granted=grant, wait_s=wait_s)

    def ttl_ms(self, key: str) -> int | None:
        """Milliseconds until ``key`` expires if left idle, ``None`` if absent (Redis' PTTL)."""
        state = self._buckets.get(key)
        if state is None or state.expires_s <= self._clock():
            return None
        return round((state.expires_s - self._clock()) * 1000)

    def _level(self, limit: Limit, now_s: float) -> float:
        state = self._buckets.get(limit.key)
        if state is None or state.expires_s <= now_s:
            return limit.burst  # missing or expired: a full bucket, as in Redis
        return refill(state.level, now_s - state.updated_s, limit)

    def _sweep(self, now_s: float) -> None:
        self._calls += 1
        if self._calls % SWEEP_EVERY_CALLS == 0:
            self._buckets = {k: s for k, s in self._buckets.items() if s.expires_s > now_s}
