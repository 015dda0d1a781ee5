"""The Messangi adapter against a gateway written from seed 001 alone (``tests/support/
strict_messangi.py``): the body it sends is one such a gateway reads, receipts come back to the
adapter in a form it parses, and the seed's refusal names survive."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from broadcaster.domain.states import MessageStatus
from broadcaster.providers.base import OutboundMessage
from broadcaster.providers.messangi import MessangiProvider
from tests.support.strict_messangi import API_KEY, BASE_PATH, StrictMessangi

M = MessageStatus
#: Seconds a posted receipt may take to arrive on loopback.
RECEIPT_WAIT_S = 5.0


class Receiver:
    """Our receipt endpoint: it keeps every JSON body posted to it."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.arrived = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        self.bodies.append(await request.json())
        self.arrived.set()
        return web.json_response({"ok": True})


@pytest.fixture
async def setup(aiohttp_server: Any) -> AsyncIterator[tuple[StrictMessangi, MessangiProvider, Any]]:
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/v1/dlr/messangi", receiver.handle)
    ours = await aiohttp_server(app)
    fake = StrictMessangi(codes={"12345"}, blacklist={"+15551230009"}, dlr_delay_s=0.0)
    gateway = await aiohttp_server(fake.app())
    provider = MessangiProvider(
        str(gateway.make_url(BASE_PATH)),
        API_KEY,
        callback_url=str(ours.make_url("/v1/dlr/messangi?secret=a%2Cb")),
        timeout_s=2.0,
        max_attempts=2,
        backoff_base_s=0.01,
        backoff_cap_s=0.02,
    )
    yield fake, provider, receiver
    await provider.close()


def msg(ref: str, to: str = "+15551230001", **kw: Any) -> OutboundMessage:
    return OutboundMessage(reference=ref, sender="12345", to=to, text="hello", **kw)


async def test_a_seed_gateway_accepts_the_send_and_its_receipt_parses(setup) -> None:
    fake, provider, receiver = setup
    [result] = await provider.send_batch([msg("41")])
    assert result.status == M.SENT and result.gateway_id, fake.refused
    [body] = fake.accepted
    assert isinstance(body["callbacks"], str) and body["requestDR"] is True
    await asyncio.wait_for(receiver.arrived.wait(), RECEIPT_WAIT_S)
    receipt = provider.parse_receipt(receiver.bodies[0])
    assert (receipt.reference, receipt.gateway_id, receipt.status) == (
        "41",
        result.gateway_id,
        M.DELIVRD,
    )


async def test_request_dr_false_gets_no_receipt(setup) -> None:
    fake, provider, receiver = setup
    [result] = await provider.send_batch([msg("42", request_dr=False)])
    assert result.status == M.SENT
    [body] = fake.accepted
    assert body["requestDR"] is False and "callbacks" not in body
    assert fake.posted == [] and not fake._tasks  # no receipt scheduled at all


async def test_refusals_keep_their_seed_names(setup) -> None:
    fake, provider, receiver = setup
    [result] = await provider.send_batch([msg("43", to="+15551230009")])
    assert result.status == M.SENT
    await asyncio.wait_for(receiver.arrived.wait(), RECEIPT_WAIT_S)
    assert provider.parse_receipt(receiver.bodies[0]).status == M.BLACKLISTED
    long_text = OutboundMessage(reference="44", sender="12345", to="+15551230001", text="x" * 1601)
    [too_long] = await provider.send_batch([long_text])
    assert too_long.status == M.SEGMENTS_EXCEEDED


async def test_the_strict_gateway_refuses_a_list_of_callbacks(aiohttp_client: Any) -> None:
    fake = StrictMessangi()
    client = await aiohttp_client(fake.app())
    body = {"from": "12345", "to": "+15551230001", "text": "hi", "callbacks": ["http://x/"]}
    headers = {"Authorization": f"Bearer {API_KEY}"}
    assert (await client.post(BASE_PATH + "/messages", json=body, headers=headers)).status == 400
    assert (await client.post(BASE_PATH + "/messages", json=body)).status == 401
    body["callbacks"] = "http://x/a,http://x/b"
    assert (await client.post(BASE_PATH + "/messages", json=body, headers=headers)).status == 200
