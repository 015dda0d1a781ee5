"""The Messangi adapter against the carrier simulator (and two tiny fakes), over real loopback HTTP.

Faults are scripted (``fault_script``) so every scenario meets exactly the faults it names.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from broadcaster.domain.states import MessageStatus
from broadcaster.errors import RetryableGatewayError
from broadcaster.providers.base import OutboundMessage
from broadcaster.providers.messangi import MessangiProvider
from broadcaster.simulator.app import SIM, Simulator, build_app
from broadcaster.simulator.config import SimulatorConfig
from tests.support.services import free_port

M = MessageStatus
KEY = "simulator-key"


@dataclass
class Gateway:
    server: TestServer
    sim: Simulator

    @property
    def url(self) -> str:
        return str(self.server.make_url("/v1"))

    def stats(self) -> dict[str, Any]:
        return self.sim.stats()


GatewayFactory = Callable[..., Awaitable[Gateway]]


@pytest.fixture
async def gateway(aiohttp_server: Any) -> GatewayFactory:
    async def make(**knobs: Any) -> Gateway:
        knobs.setdefault("dlr_delay_s", 0.0)
        app = build_app(SimulatorConfig(seed=7, **knobs))
        return Gateway(await aiohttp_server(app), app[SIM])

    return make


@pytest.fixture
async def providers() -> AsyncIterator[Callable[..., MessangiProvider]]:
    made: list[MessangiProvider] = []

    def make(url: str, **kw: Any) -> MessangiProvider:
        kw.setdefault("timeout_s", 0.5)
        kw.setdefault("max_attempts", 4)
        kw.setdefault("concurrency", 8)
        kw.setdefault("deadline_s", 10.0)
        kw.setdefault("backoff_base_s", 0.01)
        kw.setdefault("backoff_cap_s", 0.05)
        kw.setdefault("settle_s", 0.0)
        provider = MessangiProvider(url, kw.pop("api_key", KEY), **kw)
        made.append(provider)
        return provider

    yield make
    for p in made:
        await p.close()


def msg(
    ref: str = "m-1", to: str = "+15551230001", text: str = "hello", **kw: Any
) -> OutboundMessage:
    return OutboundMessage(reference=ref, sender="12345", to=to, text=text, **kw)


async def send_one(provider: MessangiProvider, message: OutboundMessage | None = None):  # type: ignore[no-untyped-def]
    [result] = await provider.send_batch([message or msg()])
    return result


# -- plain paths --------------------------------------------------------------------------------


async def test_success_returns_the_gateway_id(gateway: GatewayFactory, providers: Any) -> None:
    gw = await gateway()
    result = await send_one(providers(gw.url))
    assert result.status == M.SENT and not result.unknown and result.attempts == 1
    [slot] = gw.sim.store.find("m-1")
    assert result.gateway_id == gw.sim.store.gateway_id(slot)
    assert gw.stats()["posts_total"] == 1 and gw.stats()["lookups_total"] == 0


async def test_request_shape(aiohttp_server: Any, providers: Any) -> None:
    seen: list[tuple[str, dict[str, str], Any]] = []

    async def capture(request: web.Request) -> web.Response:
        seen.append((request.path, dict(request.headers), await request.json()))
        return web.json_response({"data": {"id": "g1", "status": "QUEUE"}})

    app = web.Application()
    app.router.add_post("/raven/v2/messages", capture)
    server = await aiohttp_server(app)
    provider = providers(
        str(server.make_url("/raven/v2/")), api_key="K1", callback_url="http://us/receipts"
    )
    await provider.send_batch([msg("ref-9"), msg("ref-10", callback_url="http://mine/dlr")])

    path, headers, body = seen[0]
    assert path == "/raven/v2/messages"
    assert headers["Authorization"] == "Bearer K1"
    assert body == {
        "from": "12345",
        "text": "hello",
        "to": "+15551230001",
        "requestDR": True,
        "callbacks": "http://us/receipts",  # seed 001: comma-separated URLs, a string
        "externalId": "ref-9",
        "clientId": "ref-9",
        "type": "MT",
    }
    assert seen[1][2]["callbacks"] == "http://mine/dlr"


async def test_message_without_request_dr_asks_for_no_receipt(
    gateway: GatewayFactory, providers: Any
) -> None:
    gw = await gateway()
    body = providers(gw.url, callback_url="http://us/receipts").payload(msg(request_dr=False))
    assert body["requestDR"] is False
    assert "callbacks" not in body


async def test_no_callback_means_no_receipt_requested(
    gateway: GatewayFactory, providers: Any
) -> None:
    gw = await gateway()
    assert providers(gw.url).payload(msg())["requestDR"] is False
    assert "callbacks" not in providers(gw.url).payload(msg())


async def test_gateway_segment_refusal_keeps_its_seed_name(
    gateway: GatewayFactory, providers: Any
) -> None:
    # seed 001: status ERROR with "Text exceeds the limit of allowed segments" is SEGMENTS_EXCEEDED
    gw = await gateway(max_text_chars=10)
    result = await send_one(providers(gw.url), msg(text="x" * 11))
    assert result.status == M.SEGMENTS_EXCEEDED and result.gateway_id
    assert "segments" in (result.error or "")


# -- retryable ----------------------------------------------------------------------------------


async def test_429_waits_as_long_as_retry_after_says(
    gateway: GatewayFactory, providers: Any
) -> None:
    gw = await gateway(fault_script=["429"], retry_after_s=1)
    started = time.monotonic()
    result = await send_one(providers(gw.url))
    waited_s = time.monotonic() - started
    assert result.status == M.SENT and result.attempts == 2
    assert 1.0 <= waited_s < 1.5  # Retry-After plus at most 10 % jitter, never the tiny backoff
    assert gw.stats()["accepted_total"] == 1 and gw.stats()["by_status_code"] == {
        "429": 1,
        "200": 1,
    }


async def test_500_then_success(gateway: GatewayFactory, providers: Any) -> None:
    gw = await gateway(fault_script=["500", "500"])
    result = await send_one(providers(gw.url))
    assert result.status == M.SENT and result.attempts == 3
    assert gw.stats()["posts_total"] == 3 and gw.stats()["accepted_total"] == 1
    assert gw.stats()["lookups_total"] == 0  # a 500 is a clear "no": nothing to look up


async def test_retries_run_out_into_error(gateway: GatewayFactory, providers: Any) -> None:
    gw = await gateway(share_500=1.0)
    result = await send_one(providers(gw.url, max_attempts=3))
    assert result.status == M.ERROR and not result.unknown and result.attempts == 3
    assert "HTTP 500" in (result.error or "") and gw.stats()["accepted_total"] == 0


async def test_connection_refused_is_retried_without_lookup(providers: Any) -> None:
    provider = providers(f"http://127.0.0.1:{free_port()}/v1", max_attempts=3)
    result = await send_one(provider)
    assert result.status == M.ERROR and not result.unknown and result.attempts == 3
    assert "not connected" in (result.error or "")


# -- permanent ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("api_key", "to", "status"),
    [("wrong-key", "+15551230001", 401), (KEY, "not-a-number", 400), (KEY, "", 400)],
)
async def test_permanent_errors_are_not_retried(
    gateway: GatewayFactory, providers: Any, api_key: str, to: str, status: int
) -> None:
    gw = await gateway()
    result = await send_one(providers(gw.url, api_key=api_key), msg(to=to))
    assert result.status == M.ERROR and result.attempts == 1 and not result.unknown
    assert (result.error or "").startswith(f"HTTP {status}: ")
    assert gw.stats()["posts_total"] == 1


# -- unknown outcomes: look up before any resend ------------------------------------------------


async def test_timeout_after_accept_is_looked_up_not_resent(
    gateway: GatewayFactory, providers: Any
) -> None:
    # Given a gateway that stores the message but answers after the client gave up
    gw = await gateway(fault_script=["slow"], slow_s=1.0)
    # When the adapter sends with a 0.3 s timeout
    result = await send_one(providers(gw.url, timeout_s=0.3))
    # Then the look-up finds it: SENT with the stored id, and the gateway got exactly one POST
    [slot] = gw.sim.store.find("m-1")
    assert result.status == M.SENT and result.gateway_id == gw.sim.store.gateway_id(slot)
    stats = gw.stats()
    assert (
        stats["posts_total"] == 1 and stats["accepted_total"] == 1 and stats["lookups_total"] == 1
    )


async def test_drop_after_store_is_looked_up_not_resent(
    gateway: GatewayFactory, providers: Any
) -> None:
    gw = await gateway(fault_script=["drop_after"])
    result = await send_one(providers(gw.url))
    assert result.status == M.SENT and result.attempts == 2
    stats = gw.stats()
    assert (
        stats["posts_total"] == 1 and stats["accepted_total"] == 1 and stats["lookups_total"] == 1
    )
    assert stats["by_status_code"] == {"dropped": 1}


async def test_lookup_waits_for_the_gateway_to_settle(
    gateway: GatewayFactory, providers: Any
) -> None:
    gw = await gateway(fault_script=["drop_after"])
    started = time.monotonic()
    result = await send_one(providers(gw.url, settle_s=0.4))
    assert result.status == M.SENT and time.monotonic() - started >= 0.4


async def test_drop_before_store_is_looked_up_then_resent(
    gateway: GatewayFactory, providers: Any
) -> None:
    gw = await gateway(fault_script=["drop_before"])
    result = await send_one(providers(gw.url))
    assert result.status == M.SENT
    stats = gw.stats()
    assert stats["posts_total"] == 2 and stats["lookups_total"] == 1
    assert stats["accepted_total"] == 1 and gw.sim.store.count("m-1") == 1


@pytest.mark.parametrize("lookup_faults", [["500", "500"], ["500", "drop"]])
async def test_failed_lookups_are_retried(
    gateway: GatewayFactory, providers: Any, lookup_faults: list[str]
) -> None:
    gw = await gateway(fault_script=["drop_after"], lookup_script=lookup_faults)
    result = await send_one(providers(gw.url, max_attempts=5))
    assert result.status == M.SENT and result.attempts >= 3
    stats = gw.stats()
    assert (
        stats["posts_total"] == 1 and stats["lookups_total"] == 3 and stats["accepted_total"] == 1
    )
    # (aiohttp itself retries a GET once when a kept-alive connection drops, so a "drop" may
    # cost no attempt of ours)


async def test_lookup_that_never_answers_leaves_it_unknown(
    gateway: GatewayFactory, providers: Any
) -> None:
    gw = await gateway(fault_script=["slow"], slow_s=1.0, share_lookup_500=1.0)
    result = await send_one(providers(gw.url, timeout_s=0.3, max_attempts=3))
    assert result.unknown and result.status == M.DEQUEUED and result.attempts == 3
    assert gw.stats()["posts_total"] == 1  # never resent without proof of absence


async def test_deadline_cuts_a_slow_send_into_unknown(
    gateway: GatewayFactory, providers: Any
) -> None:
    gw = await gateway(share_slow=1.0, slow_s=5.0)
    started = time.monotonic()
    result = await send_one(providers(gw.url, timeout_s=3.0, deadline_s=0.5))
    assert time.monotonic() - started < 1.0
    assert result.unknown and gw.stats()["posts_total"] == 1


async def test_deadline_stops_a_retry_after_longer_than_it(
    gateway: GatewayFactory, providers: Any
) -> None:
    gw = await gateway(share_429=1.0, retry_after_s=5)
    started = time.monotonic()
    result = await send_one(providers(gw.url, deadline_s=1.0))
    assert time.monotonic() - started < 0.5  # gives up rather than sleeping past the deadline
    assert result.status == M.ERROR and not result.unknown and "429" in (result.error or "")


# -- batches and the session --------------------------------------------------------------------


async def test_batch_keeps_order_and_isolates_failures(
    gateway: GatewayFactory, providers: Any
) -> None:
    gw = await gateway()
    batch = [msg(f"b{i}", to="bad" if i == 3 else f"+1555123{i:04d}") for i in range(10)]
    results = await providers(gw.url).send_batch(batch)
    assert [r.reference for r in results] == [m.reference for m in batch]
    assert [r.status for r in results] == [M.ERROR if i == 3 else M.SENT for i in range(10)]


async def test_concurrency_is_bounded_and_one_session_reused(
    aiohttp_server: Any, providers: Any
) -> None:
    in_flight = peak = 0

    async def slow_ok(request: web.Request) -> web.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.02)
        in_flight -= 1
        return web.json_response({"data": {"id": "x", "status": "QUEUE"}})

    app = web.Application()
    app.router.add_post("/messages", slow_ok)
    server = await aiohttp_server(app)
    provider = providers(str(server.make_url("")), concurrency=4)
    results = await provider.send_batch([msg(f"c{i}") for i in range(30)])
    session = provider._http.session
    await provider.send_batch([msg("again")])
    assert all(r.status == M.SENT for r in results)
    assert peak == 4
    assert provider._http.session is session


async def test_public_lookup(gateway: GatewayFactory, providers: Any) -> None:
    gw = await gateway(dlr_delay_s=60)  # no receipt yet: the gateway still has it queued
    provider = providers(gw.url)
    await send_one(provider)
    found = await provider.lookup("m-1")
    missing = await provider.lookup("never-sent")
    assert found.found and found.gateway_id and found.status == M.SENT  # QUEUE at the gateway
    assert not missing.found


async def test_public_lookup_raises_when_it_cannot_ask(
    gateway: GatewayFactory, providers: Any
) -> None:
    gw = await gateway(share_lookup_500=1.0)
    with pytest.raises(RetryableGatewayError):
        await providers(gw.url, max_attempts=2).lookup("m-1")
