"""The send path in-process (memory token bucket, a list as task queue) against the strict
Messangi gateway of seed 001: a gateway refusal keeps its seed name on the message and in the
counts and report, and a broadcast sent with requestDR false asks the gateway for no receipt."""

from __future__ import annotations

import csv
import io
import json

import sqlalchemy as sa

from broadcaster.config import Settings
from broadcaster.services import poller, sending
from broadcaster.services.broadcasts import NewBroadcast, create_from_file, get_broadcast
from broadcaster.services.codes import add_code
from broadcaster.services.messages import get_message, send_one
from broadcaster.services.reports import write_report
from broadcaster.store.db import engine_for, upgrade
from broadcaster.store.models import messages
from broadcaster.throttle import MemoryTokenBucket
from broadcaster.wiring import ProviderCache
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
