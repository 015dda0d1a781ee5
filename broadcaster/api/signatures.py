"""Request signatures (seed 004's "signature over the parameters", made precise).

A key created with a signing secret must sign every request::

    X-Timestamp: 1767225600                       (Unix seconds)
    X-Nonce:     3f9c2a7e0b1d4c55                  (8-64 of A-Z a-z 0-9 - _, never reused)
    X-Signature: hex(HMAC-SHA256(secret, canonical))

    canonical = METHOD "\\n" PATH_AND_QUERY "\\n" X-Timestamp "\\n" X-Nonce "\\n" hex(SHA-256(body))

``PATH_AND_QUERY`` is the request target exactly as sent (``/v1/broadcasts?limit=10``); the body
is the raw bytes (empty: SHA-256 of nothing). A request is refused when its timestamp is more
than the window (300 s) from the server's clock, when the signature is wrong, or when its nonce
was already seen inside the window. Nonces are remembered for twice the window, in the database
(:class:`DatabaseNonces`, see ``broadcaster/services/nonces.py`` for why not Redis): shared by
every API process and kept through a Redis flush or restart. When the nonce store cannot answer,
the request is refused with 503 (:class:`NonceStoreUnavailable`), never let through unchecked.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Protocol

from broadcaster.constants import NONCE_KEY_PREFIX
from broadcaster.services.nonces import NonceLedger

log = logging.getLogger(__name__)

TIMESTAMP_HEADER = "X-Timestamp"
NONCE_HEADER = "X-Nonce"
SIGNATURE_HEADER = "X-Signature"
SIGNATURE_HEADERS = (TIMESTAMP_HEADER, NONCE_HEADER, SIGNATURE_HEADER)
NONCE_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
__all__ = ["NONCE_KEY_PREFIX"]  # moved to broadcaster.constants; importable from here still
#: Most nonces the in-memory store keeps; beyond it the oldest are forgotten first.
MEMORY_NONCES_MAX = 1_000_000


def body_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def canonical(method: str, path_qs: str, timestamp: str, nonce: str, body_sha256: str) -> bytes:
    return "\n".join((method.upper(), path_qs, timestamp, nonce, body_sha256)).encode()


def sign(
    secret: str, method: str, path_qs: str, timestamp: str, nonce: str, body: bytes = b""
) -> str:
    """The X-Signature value of a request (clients do exactly this)."""
    msg = canonical(method, path_qs, timestamp, nonce, body_digest(body))
    return hmac.new(secret.encode(), msg, hashlib.sha256).hexdigest()


def signature_matches(
    secret: str,
    presented: str,
    method: str,
    path_qs: str,
    timestamp: str,
    nonce: str,
    body_sha256: str,
) -> bool:
    expected = hmac.new(
        secret.encode(), canonical(method, path_qs, timestamp, nonce, body_sha256), hashlib.sha256
    ).hexdigest()
    return hmac.compare_digest(expected, presented.lower().removeprefix("sha256="))


def timestamp_skew_s(timestamp: str, now_s: float) -> float | None:
    """How far the request's clock is from ours, seconds; None when it is not an integer."""
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        return None
    return abs(now_s - int(timestamp))


class NonceStoreUnavailable(Exception):
    """The nonce store did not answer: whether a nonce was seen is unknown, so refuse (503)."""


class NonceStore(Protocol):
    async def remember(self, key: str, ttl_s: int) -> bool:
        """Record ``key`` (``<key prefix>:<nonce>``); False when it was already recorded and not
        yet expired. Raises :class:`NonceStoreUnavailable` when the store cannot answer."""
        ...

    async def close(self) -> None: ...


@dataclass
class MemoryNonces:
    """Nonces of this process, expired lazily in arrival order."""

    max_entries: int = MEMORY_NONCES_MAX
    clock: Callable[[], float] = time.monotonic
    _expiry: dict[str, float] = field(default_factory=dict)
    _order: deque[tuple[float, str]] = field(default_factory=deque)

    async def remember(self, key: str, ttl_s: int) -> bool:
        now = self.clock()
        while self._order and (self._order[0][0] <= now or len(self._order) >= self.max_entries):
            expires, old = self._order.popleft()
            if self._expiry.get(old) == expires:
                del self._expiry[old]
        if self._expiry.get(key, 0.0) > now:
            return False
        self._expiry[key] = now + ttl_s
        self._order.append((now + ttl_s, key))
        return True

    async def close(self) -> None:
        pass


class RedisNonces:
    """Nonces in Redis (``SET key 1 NX EX ttl``): shared, but forgotten by a flush or restart of
    a Redis without persistence, so not the API's default (:class:`DatabaseNonces` is)."""

    def __init__(self, url: str) -> None:
        import redis.asyncio as aioredis

        self._redis = aioredis.Redis.from_url(url)

    async def remember(self, key: str, ttl_s: int) -> bool:
        from redis.exceptions import RedisError

        try:
            return bool(await self._redis.set(NONCE_KEY_PREFIX + key, b"1", nx=True, ex=ttl_s))
        except (RedisError, OSError) as exc:
            log.warning("nonce store (Redis) unavailable: signed requests refused: %s", exc)
            raise NonceStoreUnavailable(f"Redis did not answer: {exc}") from exc

    async def close(self) -> None:
        await self._redis.aclose()


class DatabaseNonces:
    """Nonces in the database (the API's default): durable and shared by every API process.

    Each ``remember`` is one primary-key insert on ``executor`` (the API's database pool), so the
    event loop never waits on SQL.
    """

    def __init__(self, ledger: NonceLedger, executor: Executor | None = None) -> None:
        self.ledger, self._executor = ledger, executor

    async def remember(self, key: str, ttl_s: int) -> bool:
        prefix, _, nonce = key.partition(":")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(
                self._executor, self.ledger.remember, prefix, nonce, ttl_s
            )
        except Exception as exc:  # noqa: BLE001 - any failure means "unknown": fail closed
            log.warning("nonce store (database) unavailable: signed requests refused: %s", exc)
            raise NonceStoreUnavailable(f"the database did not answer: {exc}") from exc

    async def close(self) -> None:
        pass


def nonce_store(ledger: NonceLedger, executor: Executor | None = None) -> NonceStore:
    """The API's nonce store: the database of ``ledger`` (see ``services/nonces.py`` for why)."""
    return DatabaseNonces(ledger, executor)
