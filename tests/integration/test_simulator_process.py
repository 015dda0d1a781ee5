"""The adapter against the simulator running in its own process (on uvloop), faults mixed in."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from broadcaster.domain.states import FINAL_RECEIPT_STATES, MessageStatus
from broadcaster.providers.base import OutboundMessage
from broadcaster.providers.messangi import MessangiProvider
from tests.support.services import free_port
from tests.support.simulator import SimulatorProcess

M = MessageStatus


@pytest.fixture
def simulator() -> Iterator[SimulatorProcess]:
    with SimulatorProcess(seed=2024, dlr_delay_s=0.2, dlr_enroute=True) as sim:
        yield sim


@dataclass
class Receiver:
    """A receipt endpoint of our own, in the test's loop."""

    url: str
    bodies: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    port = free_port()
    got = Receiver(f"http://127.0.0.1:{port}/dlr")

    async def receive(request: web.Request) -> web.Response:
        got.bodies.append(await request.json())
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/dlr", receive)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield got
    await runner.cleanup()


def messages(n: int, prefix: str, sender: str = "12345") -> list[OutboundMessage]:
    return [
        OutboundMessage(
            reference=f"{prefix}{i}", sender=sender, to=f"+1555{i:07d}", text=f"message {i}"
        )
        for i in range(n)
    ]


async def test_every_message_accepted_exactly_once_through_faults(
    simulator: SimulatorProcess, receiver: Receiver
) -> None:
    # Given a gateway where one request in five meets a fault: 429, 500, an answer that comes
    # after the client's timeout, a drop before storing, a drop after storing
    simulator.reconfigure(
        share_429=0.05,
        retry_after_s=1,
        share_500=0.05,
        share_slow=0.03,
        slow_s=2.0,
        share_drop_before=0.035,
        share_drop_after=0.035,
    )
    provider = MessangiProvider(
        simulator.base_url,
        simulator.api_key,
        timeout_s=1.0,
        max_attempts=10,
        concurrency=50,
        deadline_s=60.0,
        callback_url=receiver.url,
        backoff_base_s=0.05,
        backoff_cap_s=1.0,
        settle_s=0.2,
    )
    batch = messages(2000, "ext-")

    # When all 2,000 are sent through the adapter
    started = time.monotonic()
    try:
        results = await provider.send_batch(batch)
    finally:
        await provider.close()
    elapsed_s = time.monotonic() - started

    # Then every result is SENT with its own gateway id, and the gateway accepted each
    # externalId exactly once although it saw more POSTs than that
    assert [r.status for r in results] == [M.SENT] * 2000, [
        r for r in results if r.status != M.SENT
    ][:3]
    assert not any(r.unknown for r in results)
    assert len({r.gateway_id for r in results}) == 2000
    stats = await asyncio.to_thread(simulator.stats)
    assert stats["accepted_total"] == 2000 and stats["duplicates"] == []
    assert stats["posts_total"] > 2000 and stats["lookups_total"] > 0
    assert set(stats["faults"]) == {"429", "500", "slow", "drop_before", "drop_after"}
    for probe in ("ext-0", "ext-999", "ext-1999"):
        assert await asyncio.to_thread(simulator.external_count, probe) == 1
    retried = sum(r.attempts > 1 for r in results)
    print(
        f"\n2,000 messages through {sum(stats['faults'].values())} faults in {elapsed_s:.1f}s: "
        f"{stats['posts_total']} POSTs, {stats['lookups_total']} look-ups, {retried} retried; "
        f"faults {stats['faults']}"
    )

    # And each message's receipts reach our receiver: one ENROUTE, then one final status
    await simulator.until(lambda s: s["receipts_sent"] >= 4000 and s["receipts_pending"] == 0)
    by_ref: dict[str, list[str]] = defaultdict(list)
    parse = provider.parse_receipt
    for body in receiver.bodies:
        receipt = parse(body)
        assert receipt.reference is not None
        by_ref[receipt.reference].append(receipt.status)
    assert set(by_ref) == {m.reference for m in batch}
    for statuses in by_ref.values():
        finals = [s for s in statuses if s in FINAL_RECEIPT_STATES]
        assert len(statuses) == 2 and M.ENROUTE in statuses and len(finals) == 1
        assert finals[0] in (M.DELIVRD, M.UNDELIV)
    assert stats["receipts_failed"] == 0


def test_runtime_control_and_stats(simulator: SimulatorProcess) -> None:
    async def send(n: int, prefix: str, sender: str) -> list[Any]:
        provider = MessangiProvider(
            simulator.base_url,
            simulator.api_key,
            timeout_s=2.0,
            max_attempts=3,
            concurrency=10,
            deadline_s=10.0,
        )
        try:
            return await provider.send_batch(messages(n, prefix, sender))
        finally:
            await provider.close()

    # 401 at runtime: change the key under the adapter
    simulator.reconfigure(api_key="rotated")
    assert {r.status for r in asyncio.run(send(3, "k", "777"))} == {M.ERROR}
    simulator.reconfigure(
        api_key="simulator-key", fault_script=["500", "ok", "429"], retry_after_s=0
    )
    results = asyncio.run(send(20, "r", "777"))
    assert {r.status for r in results} == {M.SENT}

    stats = simulator.stats()
    assert stats["by_status_code"] == {"401": 3, "500": 1, "429": 1, "200": 20}
    assert stats["accepted_by_sender"] == {"777": 20}
    per_second = simulator.rate("777")
    assert sum(n for _, n in per_second) == 20 and all(sec > 1_600_000_000 for sec, _ in per_second)
    assert simulator.rate("nobody") == []
    assert simulator.external_count("r7") == 1 and simulator.external_count("k0") == 0
    assert simulator.lookup("r7")[0]["externalId"] == "r7"
    assert simulator.current_config()["api_key"] == "simulator-key"

    simulator.reset()
    assert simulator.stats()["accepted_total"] == 0 and simulator.lookup("r7") == []


def test_one_provider_across_event_loops(simulator: SimulatorProcess) -> None:
    """A worker may run each chunk in a fresh loop: the adapter must make a fresh session."""
    provider = MessangiProvider(simulator.base_url, simulator.api_key, concurrency=5)
    first = asyncio.run(provider.send_batch(messages(5, "a")))
    second = asyncio.run(provider.send_batch(messages(5, "b")))
    assert {r.status for r in first + second} == {M.SENT}
    assert simulator.stats()["accepted_total"] == 10


def _throughput(
    simulator: SimulatorProcess,
    n: int,
    concurrency: int,
    runner: Any,
    callback_url: str | None = None,
) -> float:
    async def bench() -> float:
        provider = MessangiProvider(
            simulator.base_url,
            simulator.api_key,
            timeout_s=10.0,
            concurrency=concurrency,
            callback_url=callback_url,
        )
        try:
            await provider.send_batch(messages(200, "warm-"))  # open the pool
            started = time.perf_counter()
            results = await provider.send_batch(messages(n, f"t{runner.__module__}-"))
            elapsed_s = time.perf_counter() - started
        finally:
            await provider.close()
        assert all(r.status == M.SENT for r in results)
        return n / elapsed_s

    return float(runner(bench()))


def test_throughput_without_faults(simulator: SimulatorProcess) -> None:
    """Measured, not asserted: messages/s through the adapter into the simulator."""
    uvloop = pytest.importorskip("uvloop")
    simulator.reconfigure(dlr_delay_s=60.0)  # receipts stay pending: measure sending alone
    figures = {
        "asyncio, 100 in flight": _throughput(simulator, 5000, 100, asyncio.run),
        "uvloop, 100 in flight": _throughput(simulator, 5000, 100, uvloop.run),
        "uvloop, 50 in flight": _throughput(simulator, 5000, 50, uvloop.run),
    }
    print()
    for label, rate in figures.items():
        print(f"adapter -> simulator (uvloop), {label}: {rate:,.0f} messages/s")
