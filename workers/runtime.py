"""Per-process singletons of a worker: one event loop, one provider session per gateway, one
Redis client, one database engine. Built lazily after fork, closed at process shutdown.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from broadcaster import wiring
from broadcaster.config import get_settings
from broadcaster.providers.base import Provider
from broadcaster.services.dispatch import TaskQueue
from broadcaster.services.sending import SendContext
from broadcaster.store.db import engine_for

T = TypeVar("T")

_loop: asyncio.AbstractEventLoop | None = None
_providers: wiring.ProviderCache | None = None
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


def providers() -> wiring.ProviderCache:
    """The process's gateways (``broadcaster/wiring.py``), built after fork."""
    global _providers
    if _providers is None:
        _providers = wiring.ProviderCache(get_settings())
    return _providers


def provider_for(name: str) -> Provider:
    return providers()(name)


def context(queue: TaskQueue) -> SendContext:
    global _context
    if _context is None:
        loop()  # the Redis client binds to the process loop
        _context = wiring.send_context(get_settings(), queue, providers())
    return _context


def reset_after_fork() -> None:
    """A forked child must not share the parent's sockets, loop or database connections."""
    global _loop, _context, _providers
    _loop = None
    _context = None
    _providers = None
    engine_for.cache_clear()


def shutdown() -> None:
    global _providers
    if _loop is not None and not _loop.is_closed() and _providers is not None:
        _loop.run_until_complete(_providers.close())
        _providers = None


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
