"""The simulator's delivery receipts: status changes on a timer, posted by a few workers.

Twenty thousand accepted messages must not become twenty thousand sleeping tasks, so every
pending status change is one small tuple in a heap ordered by due time. One scheduler task pops
what is due, records the new status in the store, and hands jobs with callback URLs to a
bounded queue that ``callback_workers`` workers drain with their own session. A failed post
(the receiver may be briefly down) goes back into the heap with a doubled delay until
``callback_max_attempts``; then it counts as failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import time

import aiohttp

from broadcaster.simulator.config import Dice
from broadcaster.simulator.store import Counters, MessageStore, iso_ms

log = logging.getLogger(__name__)

#: (due monotonic s, tie-break, store generation, slot, status, attempt, callback URLs)
Job = tuple[float, int, int, int, str, int, tuple[str, ...]]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class ReceiptDispatcher:
    """Schedules each accepted message's status changes and posts them to its callbacks."""

    def __init__(self, store: MessageStore, counters: Counters, dice: Dice) -> None:
        self.store, self.counters, self.dice = store, counters, dice
        self._heap: list[Job] = []
        self._seq = itertools.count()
        self._wake = asyncio.Event()
        self._queue: asyncio.Queue[Job] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None
        self._in_flight = 0

    # -- scheduling ------------------------------------------------------------------------------

    def schedule(self, slot: int, urls: tuple[str, ...]) -> None:
        """Plan ``slot``'s receipts: ENROUTE at half the delay if configured, then a final one."""
        config = self.dice.config
        now = time.monotonic()
        if config.dlr_enroute:
            self._push(now + config.dlr_delay_s / 2, slot, "ENROUTE", 0, urls)
        self._push(now + config.dlr_delay_s, slot, self.dice.final_status(), 0, urls)

    def _push(
        self,
        due: float,
        slot: int,
        status: str,
        attempt: int,
        urls: tuple[str, ...],
        generation: int | None = None,
    ) -> None:
        gen = self.store.generation if generation is None else generation
        heapq.heappush(self._heap, (due, next(self._seq), gen, slot, status, attempt, urls))
        if self._heap[0][0] == due:
            self._wake.set()

    @property
    def pending(self) -> int:
        """Status changes and receipt posts not done yet."""
        queued = self._queue.qsize() if self._queue is not None else 0
        return len(self._heap) + queued + self._in_flight

    def clear(self) -> None:
        """Drop everything pending (the store was reset; in-flight posts are skipped)."""
        self._heap.clear()
        if self._queue is not None:
            while not self._queue.empty():
                self._queue.get_nowait()
                self._queue.task_done()

    # -- running ---------------------------------------------------------------------------------

    async def start(self, workers: int) -> None:
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=workers))
        self._queue = asyncio.Queue(maxsize=workers * 4)
        self._tasks = [asyncio.create_task(self._schedule_loop())]
        self._tasks += [asyncio.create_task(self._work_loop()) for _ in range(workers)]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._session is not None:
            await self._session.close()

    async def _schedule_loop(self) -> None:
        assert self._queue is not None
        while True:
            if not self._heap:
                self._wake.clear()
                await self._wake.wait()
                continue
            wait_s = self._heap[0][0] - time.monotonic()
            if wait_s > 0:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait_s)
                continue
            job = heapq.heappop(self._heap)
            _, _, gen, slot, status, attempt, urls = job
            if gen != self.store.generation:
                continue
            if attempt == 0:
                self.store.set_status(slot, status, now_ms())
            if urls:
                await self._queue.put(job)

    async def _work_loop(self) -> None:
        assert self._queue is not None
        while True:
            job = await self._queue.get()
            self._in_flight += 1
            try:
                await self._deliver(job)
            except Exception:  # a worker must outlive any one receipt
                log.exception("receipt delivery failed")
            finally:
                self._in_flight -= 1
                self._queue.task_done()

    async def _deliver(self, job: Job) -> None:
        _, _, gen, slot, status, attempt, urls = job
        if gen != self.store.generation:
            return
        config = self.dice.config
        row = self.store.row(slot)
        payload = {
            "id": row["id"],
            "externalId": row["externalId"],
            "status": status,
            "date": iso_ms(now_ms()),
            "from": row["from"],
            "to": row["to"],
        }
        for url in urls:
            if await self._post(url, payload, config.callback_timeout_s):
                self.counters.receipts_sent += 1
            elif attempt + 1 < config.callback_max_attempts:
                retry_s = config.callback_retry_s * 2**attempt
                self._push(time.monotonic() + retry_s, slot, status, attempt + 1, (url,), gen)
            else:
                self.counters.receipts_failed += 1

    async def _post(self, url: str, payload: dict[str, object], timeout_s: float) -> bool:
        assert self._session is not None
        try:
            async with self._session.post(
                url, json=payload, timeout=aiohttp.ClientTimeout(total=timeout_s)
            ) as resp:
                await resp.read()
                return 200 <= resp.status < 300
        except (aiohttp.ClientError, TimeoutError, OSError):
            return False
