"""A receipt applies only to messages sent through its route, with that route's secret, and
says nothing of other routes' messages; what it carries is logged escaped (issue 11 item 4)."""

from __future__ import annotations

import json
import logging

import pytest
import sqlalchemy as sa

from broadcaster.api.app import create_app
from broadcaster.api.context import CTX
from broadcaster.config import Settings
from broadcaster.providers.base import Receipt
from broadcaster.providers.registry import receipt_callback_url
from broadcaster.services.broadcasts import NewBroadcast, create_from_file
from broadcaster.services.codes import add_code
from broadcaster.services.receipts import apply_receipt
from broadcaster.store import messages_repo
from broadcaster.store.db import engine_for, upgrade, utcnow
from broadcaster.store.models import broadcasts, messages, receipts

SHARED_SECRET = "s3cret"
MG_SECRET = "mg-own-secret"
ACCOUNTS = json.dumps(
    {
        "mg": {
            "provider": "messangi",
            "base_url": "http://messangi.invalid/v1",
            "api_key": "k",
            "dlr_secret": MG_SECRET,
        }
    }
)


def _sent_message(engine, settings, tmp_path, code: str, route: str, gateway_id: str) -> int:
    """One message of a RUNNING broadcast from ``code``, claimed through ``route`` and SENT."""
    f = tmp_path / f"{code}.txt"
    f.write_text("+525530000001\n")
    bid = create_from_file(engine, settings, f, NewBroadcast(sender=code, text="x")).id
    with engine.begin() as conn:
        conn.execute(sa.update(broadcasts).where(broadcasts.c.id == bid).values(status="RUNNING"))
        ids = [
            r[0]
            for r in conn.execute(sa.select(messages.c.id).where(messages.c.broadcast_id == bid))
        ]
        claimed = messages_repo.claim(conn, bid, ids, now=utcnow(), lease_s=60, route=route)
        messages_repo.record_sent(conn, [(c.id, gateway_id) for c in claimed], utcnow())
    return ids[0]


def _status(engine, mid: int) -> str:
    with engine.connect() as conn:
        return conn.execute(sa.select(messages.c.status).where(messages.c.id == mid)).scalar_one()


@pytest.fixture
async def world(aiohttp_client, database_url, tmp_path):
    upgrade(database_url)
    settings = Settings(database_url=database_url, dlr_secret=SHARED_SECRET, accounts=ACCOUNTS)
    engine = engine_for(database_url)
    add_code(engine, settings, "55501", "short")  # the default provider: the simulator
    add_code(engine, settings, "55601", "short", account="mg")
    # Both gateways happen to use the same id for their message: ids are theirs, not ours
    sim_mid = _sent_message(engine, settings, tmp_path, "55501", "simulator", "g-1")
    mg_mid = _sent_message(engine, settings, tmp_path, "55601", "mg", "g-1")
    client = await aiohttp_client(create_app(settings))
    return engine, client, sim_mid, mg_mid


def _body(mid: int | None, status: str = "DELIVRD", gid: str = "g-1") -> dict:
    body = {"id": gid, "status": status, "date": "2026-12-01T10:00:00Z"}
    if mid is not None:
        body["externalId"] = str(mid)
    return body


async def test_a_receipt_on_another_route_is_not_applied_and_looks_unknown(world):
    engine, client, sim_mid, mg_mid = world
    # When the messangi route reports on a message the simulator sent
    foreign = await client.post(f"/v1/dlr/messangi?secret={SHARED_SECRET}", json=_body(sim_mid))
    # and on an id that exists nowhere
    unknown = await client.post(
        f"/v1/dlr/messangi?secret={SHARED_SECRET}", json=_body(987654, gid="nobody")
    )
    # Then both answers are the same, and the simulator's message did not move
    assert foreign.status == unknown.status == 200
    assert (
        await foreign.json()
        == await unknown.json()
        == {
            "applied": False,
            "status": None,
            "known": False,
        }
    )
    assert _status(engine, sim_mid) == "SENT"
    # nor is the foreign receipt linked to that message in its history
    with engine.connect() as conn:
        linked = conn.execute(
            sa.select(sa.func.count()).where(receipts.c.message_id == sim_mid)
        ).scalar_one()
    assert linked == 0
    # The simulator's own receipt still applies
    own = await client.post(f"/v1/dlr/simulator?secret={SHARED_SECRET}", json=_body(sim_mid))
    assert (await own.json()) == {"applied": True, "status": "DELIVRD", "known": True}
    assert _status(engine, mg_mid) == "SENT"  # and the other gateway's "g-1" was not touched


async def test_a_receipt_by_gateway_id_finds_only_its_routes_message(world):
    engine, client, sim_mid, mg_mid = world
    got = await client.post(f"/v1/dlr/mg?secret={MG_SECRET}", json=_body(None, status="UNDELIV"))
    assert (await got.json()) == {"applied": True, "status": "UNDELIV", "known": True}
    assert (_status(engine, mg_mid), _status(engine, sim_mid)) == ("UNDELIV", "SENT")


async def test_an_account_with_its_own_receipt_secret(world):
    engine, client, sim_mid, mg_mid = world
    # The shared secret does not open the account's route, nor its secret the others'
    assert (
        await client.post(f"/v1/dlr/mg?secret={SHARED_SECRET}", json=_body(mg_mid))
    ).status == 401
    assert (
        await client.post(f"/v1/dlr/simulator?secret={MG_SECRET}", json=_body(sim_mid))
    ).status == 401
    assert _status(engine, mg_mid) == "SENT"
    ok = await client.post(f"/v1/dlr/mg?secret={MG_SECRET}", json=_body(mg_mid))
    assert (await ok.json()) == {"applied": True, "status": "DELIVRD", "known": True}
    # and the callback URL put on the account's messages carries the account's secret
    settings = client.app[CTX].settings
    assert receipt_callback_url(settings, "mg").endswith(f"/v1/dlr/mg?secret={MG_SECRET}")
    assert receipt_callback_url(settings, "simulator").endswith(f"?secret={SHARED_SECRET}")


async def test_a_newline_in_a_receipt_cannot_forge_a_log_line(world, caplog):
    engine, client, sim_mid, mg_mid = world
    forged = "1\n2026-12-01 10:00:00 CRITICAL admin logged in\r\x1b[2K"
    with caplog.at_level(logging.WARNING, logger="broadcaster.services.receipts"):
        apply_receipt(
            engine, "simulator", Receipt(reference=forged, gateway_id="x\ny", status=_delivered())
        )
        resp = await client.post(
            f"/v1/dlr/simulator?secret={SHARED_SECRET}",
            json={**_body(None), "externalId": forged, "id": "z\nz"},
        )
        assert resp.status == 200
    lines = [r.getMessage() for r in caplog.records if "unknown message" in r.getMessage()]
    assert len(lines) == 2
    for line in lines:
        assert "\n" not in line and "\r" not in line and "\x1b" not in line
        assert "ref=1\\x0a2026-12-01 10:00:00 CRITICAL" in line and "\\x1b[2K" in line


def _delivered():
    from broadcaster.domain.states import MessageStatus

    return MessageStatus.DELIVRD
