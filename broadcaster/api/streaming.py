"""Stream the pieces a synchronous generator makes into an HTTP response, pulled on demand.

The generator (a report reading SQL pages) is advanced on the report pool one piece at a time,
and only after the previous piece is written to the client: a client that reads slowly, or not
at all, holds no thread, only a paused generator (a page of rows at most). So idle readers cannot
exhaust the pool, and a big report shares it with small ones slice by slice (an empty piece is a
slice of work that had nothing to send yet).

A client that makes no progress for ``write_timeout_s`` (the kernel's and the transport's buffers
are full and it reads nothing) is dropped: its connection is aborted and its generator closed.
A client that goes away is noticed within half a second, even while a slice runs. The number of
reports a workspace streams at once is bounded by :class:`WorkspaceSlots`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections import Counter
from collections.abc import Generator
from typing import Any

from aiohttp import web

log = logging.getLogger(__name__)

_POLL_S = 0.5
_DONE = object()


class WriteTimeout(ConnectionError):
    """The client read nothing for the write timeout: it was dropped."""


class WorkspaceSlots:
    """How many reports each workspace streams at once (in this process), capped at ``limit``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._running: Counter[int] = Counter()

    def try_take(self, workspace_id: int) -> bool:
        """Take a slot; False when the workspace already streams ``limit`` reports."""
        if self._running[workspace_id] >= self.limit:
            return False
        self._running[workspace_id] += 1
        return True

    def give_back(self, workspace_id: int) -> None:
        self._running[workspace_id] -= 1
        if self._running[workspace_id] <= 0:
            del self._running[workspace_id]

    def running(self, workspace_id: int) -> int:
        return self._running[workspace_id]


def _gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


async def _next_piece(request: web.Request, future: asyncio.Future[Any]) -> Any:
    """The generator's next piece; raises ConnectionResetError when the client leaves meanwhile."""
    while True:
        done, _ = await asyncio.wait({future}, timeout=_POLL_S)
        if done:
            return future.result()
        if _gone(request):
            raise ConnectionResetError("the client went away")


async def _write(
    request: web.Request, response: Any, piece: bytes | None, timeout_s: float
) -> None:
    """Write ``piece`` (None: the end), dropping a client that takes in nothing for ``timeout_s``."""
    try:
        writing = response.write_eof() if piece is None else response.write(piece)
        await asyncio.wait_for(writing, timeout_s)
    except TimeoutError:
        if request.transport is not None:
            request.transport.abort()
        raise WriteTimeout(f"the client read nothing for {timeout_s:g} s") from None


async def stream_pieces(
    request: web.Request,
    response: web.StreamResponse,
    pool: concurrent.futures.Executor,
    pieces: Generator[bytes, None, None],
    *,
    write_timeout_s: float,
) -> None:
    """Pull ``pieces`` on ``pool`` and write each into the prepared ``response``.

    An error of the generator is re-raised here; the headers are already sent by then, so the
    caller cuts the connection and the client sees a truncated body rather than a complete-looking
    file. A client that leaves or stalls raises a ConnectionError. The generator is closed in
    every case (deleting its temporary files), never while it runs.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] | None = None
    try:
        while True:
            future = loop.run_in_executor(pool, next, pieces, _DONE)
            piece = await _next_piece(request, future)
            if piece is _DONE:
                break
            if piece:
                await _write(request, response, piece, write_timeout_s)
        await _write(request, response, None, write_timeout_s)
    finally:
        if future is not None and not future.done():
            # A slice is running on the pool: let it end (one slice) before closing the generator.
            await asyncio.wait({future})
        await loop.run_in_executor(pool, pieces.close)
