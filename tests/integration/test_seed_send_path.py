"""The send path in-process (memory token bucket, a list as task queue) against the strict
Messangi gateway of seed 001: a gateway refusal keeps its seed name on the message and in the
counts and report, and a broadcast sent with requestDR false asks the gateway for no receipt."""

from __future__ import annotations

import csv
import io
import json

import sqlalchemy as sa

from broadcaster.config import Settings
from broadcaster.services import optouts, poller, sending
from broadcaster.services.broadcasts import NewBroadcast, create_from_file, get_broadcast
from broadcaster.services.codes import add_code
from broadcaster.services.messages import get_message, send_one
from broadcaster.services.reports import write_report
from broadcaster.store.db import engine_for, upgrade
from broadcaster.store.models import messages
from broadcaster.throttle import MemoryTokenBucket
from broadcaster.wiring import ProviderCache
from tests.support.fake_vonage import CLIENT_ID as VONAGE_CLIENT_ID
from tests.support.fake_vonage import CLIENT_SECRET as VONAGE_CLIENT_SECRET
from tests.support.fake_vonage import SMS_PATH as VONAGE_SMS_PATH
from tests.support.fake_vonage import TOKEN_PATH as VONAGE_TOKEN_PATH
from tests.support.fake_vonage import FakeVonage
from tests.support.inprocess import ListQueue
from tests.support.strict_messangi import API_KEY, BASE_PATH, StrictMessangi

#: The strict gateway's text limit in these tests, so that one recipient's text goes over it.
GATEWAY_MAX_CHARS = 40


async def _send_all(engine, settings) -> None:
    provider_for = ProviderCache(settings)

    queue = ListQueue()
    ctx = sending.SendContext(
        settings=settings,
        engine=engine,
        bucket=MemoryTokenBucket(),
        queue=queue,
        provider_for=provider_for,
    )
    try:
        await poller.tick(engine, settings, queue, provider_for)  # starts them and dispatches
        while queue.chunks:
            b, ids, _ = queue.chunks.pop(0)
            await sending.send_chunk(ctx, b, ids)
    finally:
        await provider_for.close()


async def test_seed_refusal_names_and_request_dr(aiohttp_server, sqlite_url, tmp_path):
    fake = StrictMessangi(max_text_chars=GATEWAY_MAX_CHARS, dlr_delay_s=60.0)
    server = await aiohttp_server(fake.app())
    accounts = {
        "m": {
            "provider": "messangi",
            "base_url": str(server.make_url(BASE_PATH)),
            "api_key": API_KEY,
        }
    }
    upgrade(sqlite_url)
    settings = Settings(database_url=sqlite_url, accounts=json.dumps(accounts))
    engine = engine_for(sqlite_url)
    add_code(engine, settings, "55540", "short", mps=1000, provider="messangi", account="m")
    (tmp_path / "list.csv").write_text(
        "msisdn;name\n+525510000001;Ana\n+525510000002;" + "Maximiliano" * 4 + "\n"
    )
    text = "Hola {name}, gracias"
    refused = create_from_file(
        engine, settings, tmp_path / "list.csv", NewBroadcast(sender="55540", text=text)
    ).id
    silent = create_from_file(
        engine,
        settings,
        tmp_path / "list.csv",
        NewBroadcast(sender="55540", text="Hola", request_dr=False),
    ).id
    # a single send carrying the client's own ids (seed 001's externalId and clientId)
    single = send_one(
        engine,
        settings,
        sender="55540",
        to="+525510000003",
        text="Hola cliente",
        external_id="campaign-7",
        client_id="customer-42",
    )

    await _send_all(engine, settings)

    # the gateway's "Text exceeds the limit of allowed segments" is SEGMENTS_EXCEEDED, not ERROR
    got = get_broadcast(engine, refused)
    assert got.counts == {"SENT": 1, "SEGMENTS_EXCEEDED": 1}, got.counts
    with engine.connect() as conn:
        status, error = conn.execute(
            sa.select(messages.c.status, messages.c.error).where(
                messages.c.broadcast_id == refused, messages.c.recipient == "+525510000002"
            )
        ).one()
    assert status == "SEGMENTS_EXCEEDED" and "segments" in error
    out: list[bytes] = []
    write_report(engine, refused, "csv", out.append)
    report = csv.DictReader(io.StringIO(b"".join(out).decode("utf-8-sig")))
    assert sorted(r["status"] for r in report) == ["SEGMENTS_EXCEEDED", "SENT"]
    # requestDR false: the gateway was asked for no receipt, and given no callback
    bodies = [b for b in fake.accepted if b["text"] == "Hola"]
    assert len(bodies) == 2
    assert all(b["requestDR"] is False and "callbacks" not in b for b in bodies)
    assert get_broadcast(engine, silent).counts == {"SENT": 2}
    # the gateway's externalId (the idempotency key it echoes) is our message id, never the
    # client's; the client's ids stay on the message
    [body] = [b for b in fake.accepted if b["text"] == "Hola cliente"]
    assert body["externalId"] == str(single.id) and body["clientId"] == str(single.id), body
    kept = get_message(engine, single.id)
    assert (kept.external_id, kept.client_id) == ("campaign-7", "customer-42")
    assert kept.status == "SENT"


async def test_a_gateway_refusal_of_a_barred_number_suppresses_it(
    aiohttp_server, sqlite_url, tmp_path
):
    # Given a Vonage gateway that answers the first send "status 7: Number barred"
    fake = FakeVonage(script=["status:7"])
    server = await aiohttp_server(fake.app())
    accounts = {
        "kpn": {
            "provider": "vonage",
            "base_url": str(server.make_url(VONAGE_SMS_PATH)),
            "token_url": str(server.make_url(VONAGE_TOKEN_PATH)),
            "client_id": VONAGE_CLIENT_ID,
            "client_secret": VONAGE_CLIENT_SECRET,
        }
    }
    upgrade(sqlite_url)
    settings = Settings(database_url=sqlite_url, accounts=json.dumps(accounts))
    engine = engine_for(sqlite_url)
    add_code(engine, settings, "3197010260001", "long", mps=100, provider="vonage", account="kpn")
    barred, other = "+31612340001", "+31612340002"
    (tmp_path / "one.txt").write_text(f"{barred}\n")
    (tmp_path / "two.txt").write_text(f"{barred}\n{other}\n")
    req = NewBroadcast(sender="3197010260001", text="Hallo")
    # When a broadcast sends to it
    first = create_from_file(engine, settings, tmp_path / "one.txt", req).id
    await _send_all(engine, settings)
    # Then its message ends BLACKLISTED and the number is suppressed, source gateway
    assert get_broadcast(engine, first).counts == {"BLACKLISTED": 1}
    listed = optouts.list_optouts(engine, "default")
    assert [(e.number, e.source) for e in listed] == [(barred, "gateway")], listed
    assert "refused via kpn" in (listed[0].detail or "")
    # ...and the next broadcast holds it at import, never asking the gateway again
    sends_before = len(fake.sends)
    second = create_from_file(engine, settings, tmp_path / "two.txt", req).id
    await _send_all(engine, settings)
    got = get_broadcast(engine, second)
    assert got.counts == {"BLACKLISTED": 1, "SENT": 1}, got.counts
    assert [s["to"] for s in fake.sends[sends_before:]] == [other[1:]]
