"""Stream bytes a synchronous producer writes (in a thread) into an HTTP response.

The producer (a report writer reading SQL pages) runs on the report pool and hands each piece to
``write``, which waits while the bounded queue is full: a slow client slows the producer down
instead of piling bytes up in memory. A client that goes away makes the next ``write`` raise, so
the producer stops within one piece.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Callable
from typing import Any

from aiohttp import web

log = logging.getLogger(__name__)

#: Pieces in flight between the producer thread and the response (each up to ~64 KiB).
QUEUE_PIECES = 8
_POLL_S = 0.5


class ClientGone(Exception):
    """The response was abandoned; the producer must stop."""


_DONE = object()


class _Pipe:
    """The thread side: ``write`` puts pieces on the loop's queue, waiting while it is full."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.pieces: asyncio.Queue[Any] = asyncio.Queue(maxsize=QUEUE_PIECES)
        self.abandoned = threading.Event()

    def put(self, item: Any) -> None:
        future = asyncio.run_coroutine_threadsafe(self.pieces.put(item), self.loop)
        while True:
            if self.abandoned.is_set():
                future.cancel()
                raise ClientGone()
            try:
                future.result(timeout=_POLL_S)
                return
            except concurrent.futures.TimeoutError:
                continue

    def write(self, data: bytes) -> None:
        """Send ``data``; an empty write is a heartbeat that only checks the client is still there."""
        if data:
            self.put(data)
        elif self.abandoned.is_set():
            raise ClientGone()

    def run(self, produce: Callable[[Callable[[bytes], None]], Any]) -> None:
        try:
            produce(self.write)
            self.put(_DONE)
        except ClientGone:
            pass
        except BaseException as exc:  # noqa: BLE001 - handed to the event loop side
            if not self.abandoned.is_set():
                self.put(exc)


def _gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


async def stream_from_thread(
    request: web.Request,
    response: web.StreamResponse,
    pool: concurrent.futures.Executor,
    produce: Callable[[Callable[[bytes], None]], Any],
) -> None:
    """Run ``produce(write)`` on ``pool`` and copy what it writes into the prepared ``response``.

    An error of the producer is re-raised here; the headers are already sent by then, so the
    connection is cut and the client sees a truncated body rather than a complete-looking file.
    While the producer is silent (XLSX rows go to a temporary file first) the connection is
    checked every half second, so a client that left stops the producer at its next heartbeat.
    """
    loop = asyncio.get_running_loop()
    pipe = _Pipe(loop)
    task = loop.run_in_executor(pool, pipe.run, produce)
    try:
        while True:
            try:
                item = await asyncio.wait_for(pipe.pieces.get(), _POLL_S)
            except TimeoutError:
                if _gone(request):
                    raise ConnectionResetError("the client went away") from None
                continue
            if item is _DONE:
                break
            if isinstance(item, BaseException):
                raise item
            await response.write(item)
        await response.write_eof()
    finally:
        pipe.abandoned.set()
        while not pipe.pieces.empty():
            pipe.pieces.get_nowait()
        await task
