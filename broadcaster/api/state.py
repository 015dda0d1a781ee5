"""What the v1 API keeps per application: limits, rate buckets, nonces, thread pools.

Services are synchronous (SQLAlchemy Core), so handlers call them through :func:`blocking`, on a
small thread pool: the event loop never waits on the database.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web

from broadcaster.api.limits import ApiLimits
from broadcaster.api.ratelimit import KeyBuckets
from broadcaster.api.signatures import NonceStore
from broadcaster.services.apikeys import Principal

T = TypeVar("T")

STATE_KEY = web.AppKey("v1_state", object)


def request_key(name: str, kind: type) -> Any:
    """A typed request key where aiohttp has them (3.13+), else the plain name."""
    maker = getattr(web, "RequestKey", None)
    return maker(name, kind) if maker is not None else name


PRINCIPAL = request_key("principal", Principal)


@dataclass
class ApiState:
    limits: ApiLimits
    buckets: KeyBuckets
    #: One bucket per workspace, over all its keys (``workspace_rate_factor``).
    workspace_buckets: KeyBuckets
    nonces: NonceStore
    db_pool: ThreadPoolExecutor
    report_pool: ThreadPoolExecutor
    #: Where big JSON bodies are parsed (``bodies.read_json``), off the event loop.
    parse_pool: ThreadPoolExecutor
    #: Unix time source for signature windows (tests move it).
    wall_clock: Callable[[], float]

    async def close(self) -> None:
        await self.nonces.close()
        self.db_pool.shutdown(wait=False, cancel_futures=True)
        self.report_pool.shutdown(wait=False, cancel_futures=True)
        self.parse_pool.shutdown(wait=False, cancel_futures=True)


def state(request: web.Request) -> ApiState:
    return request.app[STATE_KEY]  # type: ignore[return-value]


def principal(request: web.Request) -> Principal:
    """The authenticated key of this request (the auth middleware put it there)."""
    return request[PRINCIPAL]  # type: ignore[no-any-return]


async def blocking(request: web.Request, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Run a synchronous service call on the database pool."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(
        state(request).db_pool, functools.partial(fn, *args, **kwargs)
    )
