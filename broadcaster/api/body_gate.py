"""How many big request bodies one API process holds at once, in all and per workspace.

Each JSON or raw body is capped (``json_max_bytes``, 16 MiB) and its parse is charged to a
memory budget (``json_max_memory_bytes``), but nothing bounded how many were in memory at once:
a tenant within its request rate (a burst of 100 per key, four keys' worth per workspace) could
post a hundred 16 MB bodies together, each held while it is read and parsed and stored, and
take gigabytes of the process that serves every tenant. A body of ``BIG_BODY_BYTES`` or more
now takes a slot for the rest of its request: ``big_bodies`` slots per process (the others wait
up to ``big_body_wait_s``, then 503 with Retry-After), at most ``big_bodies_per_workspace`` of
them for one workspace (one more is a 429 at once: it is that tenant's own concurrency).
Small bodies, which are most requests, never wait here; uploads stream to disk and do not
count.
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from collections.abc import Awaitable, Callable

from aiohttp import web

from broadcaster.api.problems import Problem
from broadcaster.api.state import request_key

#: A body this big or bigger takes a slot (the size from which JSON is parsed on a thread too).
BIG_BODY_BYTES = 1024 * 1024
#: Where the application keeps its gate (:func:`broadcaster.api.v1.setup` puts it there).
GATE_KEY: web.AppKey[BodyGate] = web.AppKey("body_gate")
#: The workspace whose request holds a slot, set while it holds it ("" before authentication).
_HOLDER = request_key("big_body_holder", str)


class BodyGate:
    """Slots for big bodies of one API process (its event loop: not thread-safe, not needed)."""

    def __init__(self, total: int, per_workspace: int, wait_s: float) -> None:
        self.total = total
        self.per_workspace = per_workspace
        self.wait_s = wait_s
        self._free = asyncio.Semaphore(total)
        self._held: Counter[str] = Counter()

    async def enter(self, request: web.Request, workspace: str | None) -> None:
        """Take a slot for ``request`` (once: a request that holds one keeps it)."""
        if _HOLDER in request:
            return
        holder = workspace or ""
        if workspace is not None and self._held[holder] >= self.per_workspace:
            raise Problem(
                429,
                f"this workspace already sends {self.per_workspace} bodies of "
                f"{BIG_BODY_BYTES:,} bytes or more at once (big_bodies_per_workspace): wait for "
                "one to finish, or upload the recipients as a file",
                headers={"Retry-After": "1"},
            )
        try:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can time out after the acquire
            # succeeded and lose that slot for good
            async with asyncio.timeout(self.wait_s):
                await self._free.acquire()
        except TimeoutError:
            raise Problem(
                503,
                f"the server is reading {self.total} big request bodies already (big_bodies): "
                "retry shortly, or upload the recipients as a file",
                headers={"Retry-After": str(max(1, math.ceil(self.wait_s)))},
            ) from None
        self._held[holder] += 1
        request[_HOLDER] = holder

    def leave(self, request: web.Request) -> None:
        """Give back the slot ``request`` holds, if any."""
        holder = request.pop(_HOLDER, None)
        if holder is None:
            return
        self._held[holder] -= 1
        if self._held[holder] <= 0:
            del self._held[holder]
        self._free.release()


@web.middleware
async def body_gate_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Whatever slot the request took is given back when its handler is done, however."""
    try:
        return await handler(request)
    finally:
        if _HOLDER in request:
            request.app[GATE_KEY].leave(request)
