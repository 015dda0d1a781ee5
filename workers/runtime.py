"""Per-process singletons of a worker: one event loop, one provider session per gateway, one
Redis client, one database engine. Built lazily after fork, closed at process shutdown.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from broadcaster.config import Settings, get_settings
from broadcaster.constants import DEFAULT_REDIS_URL
from broadcaster.providers.base import Provider
from broadcaster.services.sending import SendContext
from broadcaster.store.db import engine_for

T = TypeVar("T")

_loop: asyncio.AbstractEventLoop | None = None
_providers: dict[str, Provider] = {}
_context: SendContext | None = None


def loop() -> asyncio.AbstractEventLoop:
    """The process's event loop, kept across tasks so HTTP connections are pooled."""
    global _loop
    if _loop is None or _loop.is_closed():
        try:
            import uvloop

            _loop = uvloop.new_event_loop()
        except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
            _loop = asyncio.new_event_loop()
        asyncio.set_event_loop(_loop)
    return _loop


def run(coro: Coroutine[Any, Any, T]) -> T:
    return loop().run_until_complete(coro)


def provider_for(name: str) -> Provider:
    from broadcaster.providers.registry import build_named_provider

    if name not in _providers:
        settings = get_settings()
        _providers[name] = build_named_provider(settings, name)
    return _providers[name]


def context(queue: Any) -> SendContext:
    global _context
    if _context is None:
        import redis.asyncio as aioredis

        from broadcaster.throttle import RedisTokenBucket

        settings: Settings = get_settings()
        loop()
        client = aioredis.Redis.from_url(settings.redis_url or DEFAULT_REDIS_URL)
        _context = SendContext(
            settings=settings,
            engine=engine_for(settings.database_url),
            bucket=RedisTokenBucket(client),
            queue=queue,
            provider_for=provider_for,
        )
    return _context


def reset_after_fork() -> None:
    """A forked child must not share the parent's sockets, loop or database connections."""
    global _loop, _context
    _loop = None
    _context = None
    _providers.clear()
    engine_for.cache_clear()


def shutdown() -> None:
    if _loop is not None and not _loop.is_closed():
        for provider in list(_providers.values()):
            _loop.run_until_complete(provider.close())
        _providers.clear()


_callback_session: tuple[asyncio.AbstractEventLoop, Any] | None = None


def callback_session() -> Any:
    """The process's aiohttp session for client callbacks (SSRF-guarded), on the process loop.

    Call it outside ``run``: it is opened once per loop, on that loop (after a fork the loop is
    new, so is the session).
    """
    global _callback_session
    current = loop()
    if (
        _callback_session is None
        or _callback_session[0] is not current
        or _callback_session[1].closed
    ):
        _callback_session = (current, run(_open_callback_session()))
    return _callback_session[1]


async def _open_callback_session() -> Any:
    from broadcaster.webhooks.http import make_session

    return make_session(get_settings())
