"""Receipts that arrive together, applied together: an asyncio collector in front of the store.

Each request hands its receipt to :meth:`ReceiptGroups.submit` and waits. The first receipt of a
quiet moment opens a short window (``window_s``); what arrives in it (up to ``max_group``) is one
group, applied by :func:`broadcaster.services.receipts.apply_receipts` in one transaction on a
thread of its own. While a group is being applied the next one gathers; it starts once the
previous one has committed and its own first receipt has waited ``window_s`` (at once when full).
Without that wait, the few receipts that came in during an apply went as a small group of their
own while a gateway's other connections were still answering theirs, each group paying a
transaction. Each request's answer is set only once its group has committed: a gateway's 2xx
always means the receipt is stored.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from broadcaster.providers.base import Receipt
from broadcaster.services.receipts import Applied, Incoming, Outcome

#: How long the first receipt of a quiet moment waits for company (s).
WINDOW_S = 0.003
#: The most receipts one transaction carries.
MAX_GROUP = 256

ApplyGroup = Callable[[Sequence[Incoming]], list[Outcome]]


class ReceiptGroups:
    """Collects receipts and applies them in groups, one group at a time."""

    def __init__(
        self, apply: ApplyGroup, *, window_s: float = WINDOW_S, max_group: int = MAX_GROUP
    ) -> None:
        self._apply = apply
        self.window_s, self.max_group = window_s, max_group
        self._pending: list[tuple[str, Receipt, asyncio.Future[Applied]]] = []
        #: loop.time() at which the first receipt now pending arrived.
        self._first_at = 0.0
        self._closing = False
        self._timer: asyncio.TimerHandle | None = None
        self._runner: asyncio.Task[None] | None = None
        # One thread: groups are applied one after another (the next gathers meanwhile).
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="receipt-groups")
        #: Sizes of the groups applied so far (for benchmarks and tests).
        self.groups_applied = 0
        self.receipts_applied = 0

    async def submit(self, provider: str, receipt: Receipt) -> Applied:
        """Apply ``receipt`` (from route ``provider``) with its group; returns after the commit.

        Raises what applying this receipt alone raised, when the group fell back to one by one.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Applied] = loop.create_future()
        if not self._pending:
            self._first_at = loop.time()
        self._pending.append((provider, receipt, future))
        if self._runner is None:
            if len(self._pending) >= self.max_group:
                self._start()
            elif self._timer is None:
                self._timer = loop.call_later(self.window_s, self._start)
        # Shielded: a gateway that hangs up does not take its receipt out of a group in flight.
        return await asyncio.shield(future)

    def _start(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._runner is None:
            self._runner = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        after_a_group = False
        try:
            while self._pending:
                if after_a_group and not self._closing and len(self._pending) < self.max_group:
                    wait_s = self._first_at + self.window_s - loop.time()
                    if wait_s > 0:  # its window is still open: the timer or submit() starts it
                        self._timer = loop.call_later(wait_s, self._start)
                        return
                after_a_group = True
                group = self._pending[: self.max_group]
                del self._pending[: self.max_group]
                self._first_at = loop.time()  # what a full group left over goes next anyway
                items = [(p, r) for p, r, _ in group]
                try:
                    outcomes = await loop.run_in_executor(self._pool, self._apply, items)
                except Exception as exc:  # noqa: BLE001 - every waiter gets the answer
                    outcomes = [exc] * len(group)
                self.groups_applied += 1
                self.receipts_applied += len(group)
                for (_, _, future), outcome in zip(group, outcomes, strict=True):
                    if future.done():
                        continue
                    if isinstance(outcome, Exception):
                        future.set_exception(outcome)
                    else:
                        future.set_result(outcome)
        finally:
            self._runner = None

    async def close(self) -> None:
        """Finish the groups gathered so far, then stop the thread."""
        self._closing = True
        if self._pending and self._runner is None:
            self._start()
        if self._runner is not None:
            with contextlib.suppress(Exception):
                await self._runner
        self._pool.shutdown(wait=True)
