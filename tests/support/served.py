"""Serve an aiohttp ``web.Application`` on a loopback port from a background thread.

Integration tests drive the stack synchronously while a fake gateway must answer the stack's
worker processes and post receipts to its API; the fake runs on its own event loop here::

    with ServedApp(fake.app()) as served:
        served.url("/raven/v2")      # http://127.0.0.1:PORT/raven/v2
        served.call(lambda: len(fake.accepted))   # read the fake's state on its own loop
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from aiohttp import web

from tests.support.services import free_port, wait_port

T = TypeVar("T")
#: Seconds a read of the fake's state may wait for its loop.
CALL_TIMEOUT_S = 30.0


class ServedApp:
    """One application on one port, in one daemon thread with its own loop."""

    def __init__(self, app: web.Application) -> None:
        self.app, self.port = app, free_port()
        self.loop = asyncio.new_event_loop()
        self._runner = web.AppRunner(app)
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def call(self, fn: Callable[[], T]) -> T:
        """``fn()`` run on the app's loop, so it sees a consistent state."""

        async def run() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(CALL_TIMEOUT_S)

    def run(self, make: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """``await make()`` on the app's loop (a fake that calls out, e.g. delivers an MO)."""
        return asyncio.run_coroutine_threadsafe(make(), self.loop).result(CALL_TIMEOUT_S)

    def __enter__(self) -> ServedApp:
        self._thread.start()

        async def start() -> None:
            await self._runner.setup()
            await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

        asyncio.run_coroutine_threadsafe(start(), self.loop).result(CALL_TIMEOUT_S)
        wait_port(self.port)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self.loop).result(CALL_TIMEOUT_S)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(CALL_TIMEOUT_S)
        self.loop.close()
