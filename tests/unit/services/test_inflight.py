"""In-flight sends: every result is recorded exactly once, the limit holds, flushes batch."""

from __future__ import annotations

import asyncio
import random

from broadcaster.domain.states import MessageStatus
from broadcaster.providers.base import SendResult
from broadcaster.services.inflight import InFlight


async def test_every_result_recorded_once_while_flushes_race_the_sends():
    recorded: list[list[SendResult]] = []
    # record a copy, as the real recorder writes a batch at once: later appends must not count
    flow = InFlight(
        20, lambda batch: recorded.append(list(batch)), flush_results=7, flush_interval_s=0.001
    )
    peak = 0
    rng = random.Random(1)

    async def send(i: int) -> list[SendResult]:
        nonlocal peak
        peak = max(peak, flow.count)
        await asyncio.sleep(rng.random() / 200)  # answers arrive out of order, across flushes
        return [SendResult(str(i), MessageStatus.SENT)]

    for i in range(500):
        await flow.room()
        flow.launch(send(i))
    await flow.close()
    refs = [r.reference for batch in recorded for r in batch]
    assert sorted(refs, key=int) == [str(i) for i in range(500)]  # none lost, none twice
    assert peak <= 20
    assert max(len(b) for b in recorded) <= 7 + 20  # batches, not one write per result


async def test_a_failing_send_frees_its_slot_and_the_rest_is_recorded():
    recorded: list[SendResult] = []
    flow = InFlight(2, recorded.extend)

    async def boom() -> list[SendResult]:
        raise RuntimeError("adapter bug")

    async def ok() -> list[SendResult]:
        return [SendResult("1", MessageStatus.SENT)]

    flow.launch(boom())
    flow.launch(ok())
    await flow.close()
    assert [r.reference for r in recorded] == ["1"] and flow.count == 0


async def test_room_waits_for_a_group_of_free_slots():
    flow = InFlight(4, lambda batch: None)
    gates = [asyncio.Event() for _ in range(4)]

    async def wait(e: asyncio.Event) -> list[SendResult]:
        await e.wait()
        return []

    for g in gates:
        flow.launch(wait(g))
    waiter = asyncio.create_task(flow.room(at_least=2))
    gates[0].set()
    await asyncio.sleep(0.01)
    assert not waiter.done()  # one free slot is not a group
    gates[1].set()
    assert await asyncio.wait_for(waiter, 1) == 2
    for g in gates[2:]:
        g.set()
    await flow.close()


async def test_sends_run_on_at_most_limit_lanes_and_close_ends_them():
    loop = asyncio.get_running_loop()
    created = 0

    def counting_factory(loop: asyncio.AbstractEventLoop, coro, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal created
        created += 1
        return asyncio.Task(coro, loop=loop, **kwargs)

    before = len(asyncio.all_tasks())  # this test's own task
    recorded: list[SendResult] = []
    loop.set_task_factory(counting_factory)
    try:
        flow = InFlight(5, recorded.extend, flush_interval_s=0.001)

        async def send(i: int) -> list[SendResult]:
            await asyncio.sleep(0.001 * (i % 3))
            return [SendResult(str(i), MessageStatus.SENT)]

        for i in range(200):
            await flow.room()
            flow.launch(send(i))
        await flow.close()
    finally:
        loop.set_task_factory(None)
    assert sorted(int(r.reference) for r in recorded) == list(range(200))
    assert created <= 5 + 1  # five lanes and the writer, not a task per message
    await asyncio.sleep(0)  # every task has finished
    assert len(asyncio.all_tasks()) == before  # parked lanes ended on close


async def test_sends_launched_past_the_limit_wait_for_a_lane():
    recorded: list[SendResult] = []
    flow = InFlight(2, recorded.extend)

    async def send(i: int) -> list[SendResult]:
        await asyncio.sleep(0.001)
        return [SendResult(str(i), MessageStatus.SENT)]

    for i in range(6):  # no room() in between: four wait for the two lanes
        flow.launch(send(i))
    assert flow.count == 6
    await flow.close()
    assert sorted(int(r.reference) for r in recorded) == list(range(6)) and flow.count == 0
