"""Receipts that arrive together, applied together: an asyncio collector in front of the store.

Each request hands its receipt to :meth:`ReceiptGroups.submit` and waits. A group is applied by
:func:`broadcaster.services.receipts.apply_receipts` in one transaction on a thread of its own,
one group at a time; while one is being applied the next gathers. A group starts, once the
previous one has committed:

- at once when every connection that posted lately (``SOURCE_HORIZON_S``) is waiting in it: no
  one else is coming, so waiting would only add latency (a lone gateway connection never waits);
- at once when it holds ``max_group`` receipts;
- else when its first receipt has waited ``window_s``: a connection still answering its last
  receipt, or one that went quiet, holds a group up by that much at most.

With a fixed window alone, a gateway's 16 connections came back spread over more than the
window and split into groups of ~8, each paying a transaction: on this 2-core machine the
group's fixed cost (transaction, statements, thread hand-offs) was most of a receipt's CPU.
Each request's answer is set only once its group has committed: a gateway's 2xx always means
the receipt is stored.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor

from broadcaster.providers.base import Receipt
from broadcaster.services.receipts import Applied, Incoming, Outcome

#: The longest a group's first receipt waits for company (s).
WINDOW_S = 0.010
#: The most receipts one transaction carries.
MAX_GROUP = 256
#: A connection that posted a receipt within this long (s) is expected to post again.
SOURCE_HORIZON_S = 1.0

ApplyGroup = Callable[[Sequence[Incoming]], list[Outcome]]


class ReceiptGroups:
    """Collects receipts and applies them in groups, one group at a time."""

    def __init__(
        self, apply: ApplyGroup, *, window_s: float = WINDOW_S, max_group: int = MAX_GROUP
    ) -> None:
        self._apply = apply
        self.window_s, self.max_group = window_s, max_group
        self._pending: list[tuple[str, Receipt, asyncio.Future[Applied], Hashable | None]] = []
        #: loop.time() at which the first receipt now pending arrived.
        self._first_at = 0.0
        #: Connection → loop.time() of its last receipt (pruned when a group starts).
        self._sources: dict[Hashable, float] = {}
        #: Pending receipts that came with no connection to tell (never "everyone is here").
        self._anonymous = 0
        self._closing = False
        self._timer: asyncio.TimerHandle | None = None
        self._runner: asyncio.Task[None] | None = None
        # One thread: groups are applied one after another (the next gathers meanwhile).
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="receipt-groups")
        #: Sizes of the groups applied so far (for benchmarks and tests).
        self.groups_applied = 0
        self.receipts_applied = 0

    async def submit(
        self, provider: str, receipt: Receipt, source: Hashable | None = None
    ) -> Applied:
        """Apply ``receipt`` (from route ``provider``) with its group; returns after the commit.

        ``source`` names the connection it came on (one receipt at a time per connection, as
        HTTP/1.1 answers in order): a group whose every recent connection is in it starts at
        once. Raises what applying this receipt alone raised, when the group fell back to one
        by one.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Applied] = loop.create_future()
        now = loop.time()
        if not self._pending:
            self._first_at = now
        self._pending.append((provider, receipt, future, source))
        if source is None:
            self._anonymous += 1
        else:
            self._sources[source] = now
        if self._runner is None:
            if self._ready():
                self._start()
            elif self._timer is None:
                self._timer = loop.call_later(self.window_s, self._start)
        # Shielded: a gateway that hangs up does not take its receipt out of a group in flight.
        return await asyncio.shield(future)

    def _ready(self) -> bool:
        """Whether the gathering group should start without waiting out its window."""
        pending = len(self._pending)
        return pending >= self.max_group or (self._anonymous == 0 and pending >= len(self._sources))

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
                if after_a_group and not self._closing and not self._ready():
                    wait_s = self._first_at + self.window_s - loop.time()
                    if wait_s > 0:  # its window is still open: the timer or submit() starts it
                        self._timer = loop.call_later(wait_s, self._start)
                        return
                after_a_group = True
                group = self._pending[: self.max_group]
                del self._pending[: self.max_group]
                self._first_at = loop.time()  # what a full group left over goes next anyway
                self._anonymous = sum(1 for *_, source in self._pending if source is None)
                horizon = self._first_at - SOURCE_HORIZON_S
                self._sources = {s: t for s, t in self._sources.items() if t >= horizon}
                items = [(p, r) for p, r, _, _ in group]
                try:
                    outcomes = await loop.run_in_executor(self._pool, self._apply, items)
                except Exception as exc:  # noqa: BLE001 - every waiter gets the answer
                    outcomes = [exc] * len(group)
                self.groups_applied += 1
                self.receipts_applied += len(group)
                for (_, _, future, _), outcome in zip(group, outcomes, strict=True):
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
