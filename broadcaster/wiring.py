"""The composition root: how api/, cli/ and workers/ build the engine, the gateways, the send
context and the task queue. One place, so a process never holds two adapters (two connection
pools, two concurrency limits) for one gateway, nor two engines for one database.

Nothing here runs at import: every builder is called by the process that owns the result (a
worker after fork, the API when its app is made, a CLI command when it starts).
"""

from __future__ import annotations

from collections.abc import Iterator

from broadcaster.config import Settings
from broadcaster.constants import DEFAULT_REDIS_URL
from broadcaster.providers.base import Provider
from broadcaster.services.dispatch import TaskQueue
from broadcaster.services.sending import SendContext
from broadcaster.store.db import Engine, engine_for
from broadcaster.throttle import TokenBucket


def engine(settings: Settings) -> Engine:
    """The process's engine for ``settings.database_url`` (one per URL per process)."""
    return engine_for(settings.database_url)


class ProviderCache:
    """The adapters of one process, built on first use, one per routing key (an account's
    name or a built-in provider), each keeping its HTTP session for connection pooling.

    Callable, so it is what a ``provider_for`` parameter takes.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._built: dict[str, Provider] = {}

    def __call__(self, name: str) -> Provider:
        from broadcaster.providers.registry import build_named_provider

        provider = self._built.get(name)
        if provider is None:
            provider = self._built[name] = build_named_provider(self.settings, name)
        return provider

    def values(self) -> Iterator[Provider]:
        return iter(list(self._built.values()))

    def clear(self) -> None:
        """Forget the adapters without closing them (after a fork: their sockets are the
        parent's)."""
        self._built.clear()

    async def close(self) -> None:
        """Close every adapter's session, then forget them."""
        for provider in self.values():
            await provider.close()
        self._built.clear()


def redis_bucket(settings: Settings) -> TokenBucket:
    """The token buckets every process shares, in Redis (one client per call: a process keeps
    the context it is part of)."""
    import redis.asyncio as aioredis

    from broadcaster.throttle import RedisTokenBucket

    return RedisTokenBucket(aioredis.Redis.from_url(settings.redis_url or DEFAULT_REDIS_URL))


def send_context(
    settings: Settings,
    queue: TaskQueue,
    providers: ProviderCache,
    bucket: TokenBucket | None = None,
) -> SendContext:
    """What the send path holds across chunks; ``bucket`` defaults to Redis's."""
    return SendContext(
        settings=settings,
        engine=engine(settings),
        bucket=bucket if bucket is not None else redis_bucket(settings),
        queue=queue,
        provider_for=providers,
    )


def celery_queue() -> TaskQueue:
    """The task queue behind Celery. Imported late: the API is handed it by the command line
    that composes it, never imports the workers itself."""
    from workers.tasks import QUEUE

    return QUEUE
