"""When a receipt group starts (issue 17): at once when every connection that posted lately is
waiting in it, else when its first receipt has waited the window, and never before the previous
group has committed."""

from __future__ import annotations

import asyncio
import threading
import time

from broadcaster.domain.states import MessageStatus
from broadcaster.providers.base import Receipt
from broadcaster.services.receipt_groups import ReceiptGroups
from broadcaster.services.receipts import Applied


def _receipt(n: int) -> Receipt:
    return Receipt(reference=str(n), gateway_id=None, status=MessageStatus.DELIVRD, raw={})


class Recorder:
    """An apply that records each group's references (and can be held back)."""

    def __init__(self) -> None:
        self.groups: list[list[str]] = []
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, items):
        self.gate.wait(10)
        self.groups.append([r.reference for _, r in items])
        return [Applied(1, r.status.value, True, 1) for _, r in items]


async def test_a_lone_connection_does_not_wait_out_the_window():
    apply = Recorder()
    groups = ReceiptGroups(apply, window_s=30)
    try:
        started = time.monotonic()
        for n in range(3):  # one connection: one receipt at a time, each answered at once
            await groups.submit("sim", _receipt(n), "conn-a")
        assert time.monotonic() - started < 5
        assert apply.groups == [["0"], ["1"], ["2"]]
    finally:
        await groups.close()


async def test_a_group_waits_for_a_known_connection_up_to_the_window():
    apply = Recorder()
    groups = ReceiptGroups(apply, window_s=0.5)
    try:
        await asyncio.gather(  # both connections are known now
            groups.submit("sim", _receipt(0), "a"), groups.submit("sim", _receipt(1), "b")
        )
        first = asyncio.create_task(groups.submit("sim", _receipt(2), "a"))
        await asyncio.sleep(0.05)
        assert not first.done()  # b has not posted yet: the group gathers
        await groups.submit("sim", _receipt(3), "b")  # everyone is here: starts at once
        await first
        assert apply.groups[-1] == ["2", "3"]
        started = time.monotonic()
        await groups.submit("sim", _receipt(4), "a")  # b stays quiet: the window bounds it
        assert 0.3 < time.monotonic() - started < 5
        assert apply.groups[-1] == ["4"]
    finally:
        await groups.close()


async def test_receipts_arriving_during_an_apply_go_next_together():
    apply = Recorder()
    groups = ReceiptGroups(apply, window_s=30)
    try:
        apply.gate.clear()  # the first group is held in its apply
        tasks = [asyncio.create_task(groups.submit("sim", _receipt(0), "a"))]
        await asyncio.sleep(0.05)
        tasks += [
            asyncio.create_task(groups.submit("sim", _receipt(n), f"c{n}")) for n in range(1, 4)
        ]
        await asyncio.sleep(0.05)
        tasks.append(asyncio.create_task(groups.submit("sim", _receipt(4), "a")))
        await asyncio.sleep(0.05)
        apply.gate.set()  # a, c1..c3 are all waiting: the next group starts without the window
        await asyncio.wait_for(asyncio.gather(*tasks), 5)
        assert apply.groups == [["0"], ["1", "2", "3", "4"]]
    finally:
        await groups.close()
