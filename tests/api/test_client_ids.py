"""Seed 001's client fields on our API: ``requestDR`` as documented, and the client's own
``externalId`` / ``clientId`` stored on each message, echoed in callbacks and reports (our own
message id stays what the gateway sees as the idempotency key)."""

from __future__ import annotations

import csv
import io

import sqlalchemy as sa

from broadcaster.domain.states import BroadcastAction, MessageStatus, broadcast_transition
from broadcaster.providers.base import Receipt
from broadcaster.services.receipts import apply_receipt
from broadcaster.store import broadcasts_repo, messages_repo
from broadcaster.store.db import utcnow
from broadcaster.store.models import broadcasts, callback_deliveries, messages
from tests.support.api import PHONES

HOOK = "https://client.example.com/sms-status"


def _deliver(api, message_id: int, status: MessageStatus = MessageStatus.DELIVRD) -> None:
    """``message_id`` sent as a send worker records it, then its receipt as the route applies it."""
    with api.engine.begin() as conn:
        bid = conn.execute(
            sa.select(messages.c.broadcast_id).where(messages.c.id == message_id)
        ).scalar_one()
        allowed, to = broadcast_transition(BroadcastAction.START)  # as the poller starts it
        broadcasts_repo.compare_and_set_status(conn, bid, allowed, to)
        assert messages_repo.claim(conn, bid, [message_id], now=utcnow(), lease_s=60)
        messages_repo.record_sent(conn, [(message_id, f"gw-{message_id}")], utcnow())
    apply_receipt(
        api.engine,
        "simulator",
        Receipt(str(message_id), f"gw-{message_id}", status, "2026-01-01T00:00:00Z", {}),
    )


def _callbacks(api, message_id: int) -> list[dict]:
    with api.engine.connect() as conn:
        rows = conn.execute(
            sa.select(callback_deliveries.c.payload).where(
                callback_deliveries.c.message_id == message_id
            )
        ).all()
    return [r.payload for r in rows]


async def test_single_send_with_request_dr_false_fires_no_client_callback(api):
    sent = await api.json(
        "POST",
        "/v1/messages",
        202,
        json={
            "from": "55501",
            "to": PHONES[0],
            "text": "x",
            "requestDR": False,
            "callbacks": [HOOK],
        },
    )
    assert sent["requestDR"] is False
    with api.engine.connect() as conn:
        asked = conn.execute(
            sa.select(broadcasts.c.request_dr).where(broadcasts.c.id == sent["broadcastId"])
        ).scalar_one()
    assert asked is False  # so the adapter asks the gateway for no receipt either
    _deliver(api, sent["id"])
    got = await api.json("GET", f"/v1/messages/{sent['id']}", 200)
    assert got["status"] == "DELIVRD"  # the receipt applied, and still no callback
    assert _callbacks(api, sent["id"]) == []


async def test_single_send_keeps_client_ids_and_echoes_them_in_callbacks(api):
    sent = await api.json(
        "POST",
        "/v1/messages",
        202,
        json={
            "from": "55501",
            "to": PHONES[0],
            "text": "x",
            "requestDR": True,
            "callbacks": [HOOK],
            "externalId": "campaign-7",
            "clientId": "customer-42",
        },
    )
    assert (sent["externalId"], sent["clientId"]) == ("campaign-7", "customer-42")
    got = await api.json("GET", f"/v1/messages/{sent['id']}", 200)
    assert (got["externalId"], got["clientId"]) == ("campaign-7", "customer-42")
    _deliver(api, sent["id"])
    [payload] = _callbacks(api, sent["id"])
    assert payload["id"] == str(sent["id"]) and payload["status"] == "DELIVRD"
    assert (payload["externalId"], payload["clientId"]) == ("campaign-7", "customer-42")


async def test_batch_client_ids_per_recipient_or_for_all(api):
    body = await api.json(
        "POST",
        "/v1/messages/batch",
        202,
        json={
            "from": "55501",
            "text": "Hi {0}",
            "externalId": "promo-1",
            "callbacks": [HOOK],
            "to": [
                {"to": PHONES[0], "params": ["Ana"], "clientId": "c-ana"},
                {"to": PHONES[1], "params": ["Luis"], "externalId": "own", "clientId": "c-luis"},
                {"to": PHONES[2], "params": ["Eva"]},
            ],
        },
    )
    ids = [i["id"] for i in body["ids"]]
    views = [await api.json("GET", f"/v1/messages/{mid}", 200) for mid in ids]
    assert [(v["externalId"], v["clientId"]) for v in views] == [
        ("promo-1", "c-ana"),
        ("own", "c-luis"),
        ("promo-1", None),
    ]
    _deliver(api, ids[1])
    [payload] = _callbacks(api, ids[1])
    assert (payload["externalId"], payload["clientId"]) == ("own", "c-luis")


async def test_broadcast_client_ids_in_the_report(api):
    view = await api.broadcast(
        [
            {"to": PHONES[0], "params": ["Ana"], "externalId": "x-1", "clientId": "c-1"},
            {"to": PHONES[1], "params": ["Luis"]},
        ],
        clientId="everyone",
    )
    resp = await api.call("GET", f"/v1/broadcasts/{view['id']}/report")
    rows = list(csv.DictReader(io.StringIO(await resp.text())))
    assert {(r["to"], r["externalId"], r["clientId"]) for r in rows} == {
        (PHONES[0], "x-1", "c-1"),
        (PHONES[1], "", "everyone"),
    }


async def test_client_ids_must_be_short_strings(api):
    for bad in ({"externalId": 5}, {"clientId": "c" * 101}):
        body = await api.json(
            "POST",
            "/v1/messages",
            422,
            json={"from": "55501", "to": PHONES[0], "text": "x", **bad},
        )
        assert next(iter(bad)) in str(body)
