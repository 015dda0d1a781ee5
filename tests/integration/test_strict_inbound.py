"""Replies through the whole stack from gateways written from their seeds alone
(``tests/support/strict_*``): the gateway delivers a subscriber's STOP (twice, as a gateway
retrying it would), broadcaster stores it once, confirms it once through that same gateway, and
the next broadcast to that number is BLACKLISTED while the others are sent (issue 13: "Vonage
and Messangi MO through their strict fakes")."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa

from broadcaster.domain.states import SENT_STATES
from broadcaster.services.broadcasts import NewBroadcast, create_from_file, get_broadcast
from broadcaster.services.codes import add_code
from broadcaster.store.models import broadcasts, inbound_messages, messages, optouts
from tests.support.served import ServedApp
from tests.support.strict_messangi import API_KEY, BASE_PATH, StrictMessangi
from tests.support.strict_vonage import SMS_PATH, StrictVonage
from tests.support.strict_vonage import account as vonage_account

pytestmark = pytest.mark.slow

SUBSCRIBER, OTHER = "+525530001111", "+525530002222"
SETTLE_S = 90
SENT = {s.value for s in SENT_STATES}


def _confirmations(stack: Any) -> list[tuple[str, str]]:
    with stack.engine.connect() as conn:
        rows = conn.execute(
            sa.select(messages.c.recipient, messages.c.status)
            .join(broadcasts, broadcasts.c.id == messages.c.broadcast_id)
            .where(broadcasts.c.reply_to_inbound.is_not(None))
        )
        return [(r, s) for r, s in rows]


def _stored_inbound(stack: Any) -> int:
    with stack.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(inbound_messages)).scalar())


def _next_broadcast(stack: Any, tmp_path: Any, code: str) -> dict[str, str]:
    f = tmp_path / "next.txt"
    f.write_text(f"{SUBSCRIBER}\n{OTHER}\n")
    req = NewBroadcast(sender=code, text="Sale today. Reply STOP to opt out", start_now=True)
    bid = int(create_from_file(stack.engine, stack.settings, f, req).id)

    def settled() -> bool:
        return get_broadcast(stack.engine, bid).status == "COMPLETED"

    stack.wait(settled, SETTLE_S, "the next broadcast completed")
    with stack.engine.connect() as conn:
        rows = conn.execute(
            sa.select(messages.c.recipient, messages.c.status).where(messages.c.broadcast_id == bid)
        )
        return {r: s for r, s in rows}


def _then_suppressed_and_confirmed_once(stack: Any, tmp_path: Any, code: str) -> None:
    assert _stored_inbound(stack) == 1  # the retried MO is the same message
    with stack.engine.connect() as conn:
        listed = [tuple(r) for r in conn.execute(sa.select(optouts.c.number, optouts.c.source))]
    assert listed == [(SUBSCRIBER, "inbound")], listed

    def confirmed() -> bool:
        got = _confirmations(stack)
        return len(got) == 1 and got[0][1] in SENT

    stack.wait(confirmed, SETTLE_S, "the STOP confirmed")
    assert _confirmations(stack)[0][0] == SUBSCRIBER
    statuses = _next_broadcast(stack, tmp_path, code)
    assert statuses[SUBSCRIBER] == "BLACKLISTED" and statuses[OTHER] in SENT, statuses


def test_a_stop_from_strict_messangi_is_confirmed_through_it_and_suppresses(make_stack, tmp_path):
    code = "55540"
    fake = StrictMessangi(codes={code})
    with ServedApp(fake.app()) as gateway:
        accounts = {
            "messangi-seed": {"provider": "messangi", "base_url": gateway.url(BASE_PATH)}
            | {"api_key": API_KEY}
        }
        stack = make_stack(env={"BROADCASTER_ACCOUNTS": json.dumps(accounts)})
        add_code(
            stack.engine,
            stack.settings,
            code,
            "short",
            mps=50,
            provider="messangi",
            account="messangi-seed",
        )
        webhook = (
            f"http://127.0.0.1:{stack.dev.api_port}/v1/inbound/messangi-seed"
            f"?secret={stack.settings.dlr_secret}"
        )
        # When the subscriber answers STOP and the gateway delivers it twice
        for _ in range(2):
            status, body = gateway.run(
                lambda: fake.deliver_mo(webhook, SUBSCRIBER, code, "STOP", gid="mo-77")
            )
            assert status == 200, body
        # Then it is stored once, suppresses the number, is confirmed once through the gateway
        _then_suppressed_and_confirmed_once(stack, tmp_path, code)
        accepted = gateway.call(lambda: list(fake.accepted))
    to = Counter("+" + b["to"].lstrip("+") for b in accepted)
    assert to == Counter({SUBSCRIBER: 1, OTHER: 1}), to  # the confirmation, the next broadcast
    stack.assert_alive()


def test_a_stop_from_strict_vonage_is_confirmed_through_it_and_suppresses(make_stack, tmp_path):
    code = "3197010260001"  # a virtual (long) number: the seed registers webhooks per number
    fake = StrictVonage()
    with ServedApp(fake.app()) as gateway:
        accounts = {"kpn-seed": vonage_account(gateway.url)}
        stack = make_stack(env={"BROADCASTER_ACCOUNTS": json.dumps(accounts)})
        add_code(
            stack.engine, stack.settings, code, "long", mps=5, provider="vonage", account="kpn-seed"
        )
        webhook = (
            f"http://127.0.0.1:{stack.dev.api_port}/v1/inbound/kpn-seed"
            f"?secret={stack.settings.dlr_secret}"
        )
        # Given the webhook registered for the number, as the seed's "Register Webhook endpoint"
        registered = gateway.run(
            lambda: _register(gateway.url(SMS_PATH + "/register"), code, webhook)
        )
        assert registered == (200, {"message": "Your callback url is registered."})
        # When the subscriber answers "Stop" and the gateway calls twice (GET, then a POSTed form)
        for method in ("GET", "POST"):
            status, body = gateway.run(
                lambda m=method: fake.deliver_mo(SUBSCRIBER, code, "Stop", "0A0000001", m)  # type: ignore[misc]
            )
            assert status == 200, body
        _then_suppressed_and_confirmed_once(stack, tmp_path, code)
        accepted = gateway.call(lambda: list(fake.accepted))
        refused = gateway.call(lambda: list(fake.refused))
    assert not refused, refused
    to = Counter("+" + b["to"] for b in accepted)
    assert to == Counter({SUBSCRIBER: 1, OTHER: 1}), to
    assert {b["from"] for b in accepted} == {code}  # the confirmation from the code written to
    stack.assert_alive()


async def _register(url: str, to: str, callback_url: str) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data={"to": to, "callback_url": callback_url}) as resp,
    ):
        return resp.status, await resp.json()
