"""Requests per API key: a token bucket per key, in this process's memory.

Each process enforces the rate on its own, so N API processes behind a balancer allow up to N
times the rate; the limit protects the database from one runaway client, it is not billing.
Time is passed in (``now_s``) so tests need no sleeping.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class KeyBuckets:
    rate_per_s: float
    burst: int
    clock: Callable[[], float] = time.monotonic
    # key -> (tokens, last refill time)
    _state: dict[str, tuple[float, float]] = field(default_factory=dict)

    def take(self, key: str, now_s: float | None = None) -> float:
        """Take one token for ``key``: 0.0 when allowed, else seconds until one is available."""
        now = self.clock() if now_s is None else now_s
        tokens, last = self._state.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate_per_s)
        if tokens >= 1.0:
            self._state[key] = (tokens - 1.0, now)
            return 0.0
        self._state[key] = (tokens, now)
        return (1.0 - tokens) / self.rate_per_s if self.rate_per_s > 0 else float("inf")
