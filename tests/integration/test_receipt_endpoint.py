"""``/v1/dlr/{provider}``: only the shared secret gets in; JSON and query-string receipts apply."""

from __future__ import annotations

import sqlalchemy as sa

from broadcaster.api.app import create_app
from broadcaster.config import Settings
from broadcaster.services.broadcasts import NewBroadcast, create_from_file
from broadcaster.services.codes import add_code
from broadcaster.store.db import engine_for, upgrade
from broadcaster.store.models import messages


async def test_receipt_endpoint(aiohttp_client, sqlite_url, tmp_path):
    upgrade(sqlite_url)
    settings = Settings(database_url=sqlite_url, dlr_secret="s3cret")
    engine = engine_for(sqlite_url)
    add_code(engine, settings, "55501", "short")
    (tmp_path / "l.txt").write_text("+525530000001\n")
    create_from_file(engine, settings, tmp_path / "l.txt", NewBroadcast(sender="55501", text="x"))
    with engine.begin() as conn:
        mid = conn.execute(sa.select(messages.c.id)).scalar_one()
        conn.execute(sa.update(messages).values(status="SENT", gateway_id="g-1"))
    client = await aiohttp_client(create_app(settings))
    body = {
        "id": "g-1",
        "externalId": str(mid),
        "status": "DELIVRD",
        "date": "2026-11-23T10:00:00Z",
        "from": "55501",
        "to": "+525530000001",
    }

    assert (await client.post("/v1/dlr/simulator", json=body)).status == 401
    assert (await client.post("/v1/dlr/simulator?secret=wrong", json=body)).status == 401
    assert (await client.post("/v1/dlr/nope?secret=s3cret", json=body)).status == 404
    assert (await client.post("/v1/dlr/simulator?secret=s3cret", json=[1])).status == 400
    junk = await client.post(
        "/v1/dlr/simulator?secret=s3cret",
        data=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert junk.status == 400

    ok = await client.post("/v1/dlr/simulator?secret=s3cret", json={**body, "status": "ENROUTE"})
    assert ok.status == 200 and (await ok.json()) == {
        "applied": True,
        "status": "ENROUTE",
        "known": True,
    }
    # a gateway that calls back with a query string (GET) is read the same way
    got = await client.get(
        f"/v1/dlr/simulator?secret=s3cret&id=g-1&externalId={mid}&status=DELIVRD"
    )
    assert (await got.json())["status"] == "DELIVRD"
    again = await client.post("/v1/dlr/simulator?secret=s3cret", json=body)
    assert (await again.json())["applied"] is False  # idempotent
    stranger = await client.post(
        "/v1/dlr/simulator?secret=s3cret", json={**body, "externalId": "77", "id": "x"}
    )
    assert stranger.status == 200 and (await stranger.json())["known"] is False
