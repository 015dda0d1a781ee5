"""Hostile tenants on the routes added after issue 11 (codes removal, seed 004, inbound, keys).

Each test attacks as a tenant with a valid key (or a gateway with its own secret) would, and
asserts the refusal, that nothing of another workspace changed, and that the API still serves.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import datetime, timedelta
from urllib.parse import quote

import pytest
import sqlalchemy as sa

from broadcaster.services.apikeys import SEED_SECRET_LABEL, create_key
from broadcaster.services.queries import TIMELINE_MAX_BUCKETS
from broadcaster.store.models import messages
from broadcaster.store.queries_repo import BREAKDOWN_MAX_REASONS, OTHER_REASONS
from tests.support.api import PHONES, TEST_LIMITS
from tests.support.api_client import Api, MakeApi


def seed_path(stem: str, params: list[str], secret: str, digests: tuple[str, ...] = ()) -> str:
    """A signed seed-004 URL (docs/seed-api.md)."""
    text = "".join(params) + "".join(digests) + secret
    sig = hashlib.sha256(text.encode()).hexdigest()
    return f"/rest/api/{stem}/" + "".join(quote(p, safe="") + "/" for p in params) + sig


def add_messages(api: Api, bid: int, rows: list[dict[str, object]]) -> None:
    """Messages of broadcast ``bid`` written straight to the table, one per ``rows`` item."""
    base = {"text": "x", "encoding": "GSM-7", "segments": 1, "attempts": 1}
    created = datetime(2026, 3, 1, 12, 0, 0)
    with api.engine.begin() as conn:
        conn.execute(
            sa.insert(messages),
            [
                {
                    **base,
                    "broadcast_id": bid,
                    "line": i + 10,
                    "recipient": f"+1415{i:07d}",
                    "created_at": created,
                    **row,
                }
                for i, row in enumerate(rows)
            ],
        )


@pytest.fixture
async def both(make_api, database_url) -> Api:
    return await make_api(database_url)


@pytest.mark.postgres
async def test_nul_in_a_path_or_query_is_400_before_any_route(both: Api) -> None:
    api = both
    for method, path in [
        ("DELETE", "/v1/codes/%00"),
        ("DELETE", "/v1/codes/555%0001"),
        ("GET", "/v1/broadcasts?status=SCHEDULED&x=%00"),
    ]:
        resp = await api.call(method, path)
        body = await resp.json()
        assert resp.status == 400 and body["field"] in ("url", "x"), (path, body)
    made = create_key(api.engine, "acme")
    to = json.dumps({"text": "Hi", "to": [PHONES[0]]})
    digest = hashlib.sha256(to.encode()).hexdigest()
    for campaign, code in [("a\x00b", "55501"), ("ok", "555\x0001")]:
        params = [str(made.instance_id), "-1", code, "ana", "true", campaign, "null"]
        path = seed_path(
            "createBroadcastFromJson", [*params, made.public_key], made.seed_secret, [digest]
        )
        resp = await api.client.post(path, data={"to": to})
        assert resp.status == 400, await resp.text()
    # nothing was stored, and the API still serves
    assert (await api.json("GET", "/v1/broadcasts", 200))["items"] == []
    assert [c["code"] for c in (await api.json("GET", "/v1/codes", 200))["items"]] == ["55501"]


async def test_a_signing_key_cannot_act_unsigned_through_seed_004(api: Api) -> None:
    # Given a key whose /v1 requests must be signed, and an attacker who holds only the bearer
    # key (the seed secret derives from it: docs/seed-api.md)...
    made = create_key(api.engine, "acme", signing=True)
    unsigned = await api.client.get(
        "/v1/broadcasts", headers={"Authorization": f"Bearer {made.key}"}
    )
    assert unsigned.status == 401
    seed_secret = hmac.new(made.key.encode(), SEED_SECRET_LABEL, hashlib.sha256).hexdigest()
    inst = str(made.instance_id)
    # ...seed 004 refuses the key for reads and writes alike, and nothing is stored
    listing = seed_path("getShortcodes", [inst, "ana", made.public_key], seed_secret)
    assert (await api.client.get(listing)).status == 401
    to = json.dumps({"text": "Hi", "to": [PHONES[0]]})
    digest = hashlib.sha256(to.encode()).hexdigest()
    params = [inst, "-1", "55501", "ana", "true", "x", "null", made.public_key]
    resp = await api.client.post(
        seed_path("createBroadcastFromJson", params, seed_secret, (digest,)), data={"to": to}
    )
    assert resp.status == 401 and "signing" in await resp.text()
    assert (await api.json("GET", "/v1/broadcasts", 200))["items"] == []
    # a key without --signing still works there
    plain = create_key(api.engine, "acme")
    ok = seed_path("getShortcodes", [inst, "ana", plain.public_key], plain.seed_secret)
    assert (await api.client.get(ok)).status == 200


async def test_more_keys_do_not_buy_a_workspace_more_requests(make_api: MakeApi) -> None:
    # Given a rate of 3 requests per key (hardly refilling) and 2x that for a workspace...
    limits = replace(TEST_LIMITS, rate_per_s=0.001, rate_burst=3, workspace_rate_factor=2)
    api = await make_api(limits=limits)
    keys = [api.keys["acme"]] + [create_key(api.engine, "acme").key for _ in range(3)]
    # ...when acme spreads requests over four keys, its keys together get the workspace's 6
    statuses, details = [], []
    for _ in range(4):
        for key in keys:
            resp = await api.client.get("/v1/codes", headers={"Authorization": f"Bearer {key}"})
            statuses.append(resp.status)
            details.append((await resp.json()).get("detail", "") if resp.status == 429 else "")
    assert statuses.count(200) == 6 and set(statuses) == {200, 429}
    assert "this workspace's keys together" in details[6]  # key 3's own bucket had tokens left
    # ...and another workspace still has all of its own
    assert [(await api.call("GET", "/v1/codes", "globex")).status for _ in range(3)] == [200] * 3


async def test_a_key_cannot_mint_keys_without_end(make_api: MakeApi) -> None:
    api = await make_api(limits=replace(TEST_LIMITS, keys_per_workspace=5))
    made = [await api.json("POST", "/v1/apikeys", 201) for _ in range(4)]  # the fixture's + 4
    full = await api.json("POST", "/v1/apikeys", 409)
    assert "keys_per_workspace" in full["detail"]
    live = [k for k in (await api.json("GET", "/v1/apikeys", 200))["items"] if not k["revokedAt"]]
    assert len(live) == 5
    # another workspace is not counted; a revoked key frees its place
    await api.json("POST", "/v1/apikeys", 201, workspace="globex")
    await api.json("DELETE", f"/v1/apikeys/{made[0]['prefix']}", 200)
    await api.json("POST", "/v1/apikeys", 201)


@pytest.mark.postgres
async def test_a_timeline_by_the_second_is_paged_not_built_whole(both: Api) -> None:
    # Given a broadcast whose 4,000 messages went out one a second (delivered a second later)...
    api = both
    b = await api.broadcast()
    t0 = datetime(2026, 3, 1, 12, 0, 0)
    add_messages(
        api,
        b["id"],
        [
            {
                "status": "DELIVRD",
                "sent_at": t0 + timedelta(seconds=i),
                "updated_at": t0 + timedelta(seconds=i + 1),
            }
            for i in range(4_000)
        ],
    )
    # ...the timeline answers at most TIMELINE_MAX_BUCKETS buckets, the newest, and a cursor...
    url = f"/v1/broadcasts/{b['id']}/timeline?step=second"
    first = await api.json("GET", url, 200)
    assert len(first["buckets"]) == TIMELINE_MAX_BUCKETS and first["nextCursor"]
    assert first["buckets"][-1]["at"] == "2026-03-01T13:06:40Z"  # the last delivery
    rest = await api.json("GET", url + f"&cursor={first['nextCursor']}", 200)
    assert rest["nextCursor"] is None
    # ...and the pages together are the whole timeline, each bucket once, oldest first
    buckets = rest["buckets"] + first["buckets"]
    ats = [k["at"] for k in buckets]
    assert ats == sorted(set(ats)) and len(ats) == 4_001
    assert sum(k["sent"] for k in buckets) == sum(k["delivered"] for k in buckets) == 4_000
    # a forged cursor is refused, and another workspace sees nothing
    await api.json("GET", url + "&cursor=%2F%2F", 400)
    await api.json("GET", url, 404, workspace="globex")


async def test_seed_004_answers_stay_xml_whatever_the_text_holds(api: Api) -> None:
    # Given a broadcast whose text holds control characters XML 1.0 cannot carry...
    made = create_key(api.engine, "acme")
    inst = str(made.instance_id)
    to = json.dumps({"text": "Hi\x01\x1b[31m\ufffe", "to": [PHONES[0]]})
    digest = hashlib.sha256(to.encode()).hexdigest()
    params = [inst, "-1", "55501", "ana", "true", "x", "null", made.public_key]
    resp = await api.client.post(
        seed_path("createBroadcastFromJson", params, made.seed_secret, (digest,)), data={"to": to}
    )
    # ...every seed-004 answer about it still parses, the characters written as \\uXXXX
    created = ET.fromstring(await resp.read())
    bid = created.findtext("result/broadcast/id")
    assert resp.status == 200 and bid
    read = seed_path("getBroadcast", [inst, bid, made.public_key], made.seed_secret)
    got = ET.fromstring(await (await api.client.get(read)).read())
    assert got.findtext("result/broadcast/text") == "Hi\\u0001\\u001b[31m\\ufffe"
    # an error echoing such input parses too
    bad = seed_path("getBroadcast", [inst, "1\x07", made.public_key], made.seed_secret)
    assert ET.fromstring(await (await api.client.get(bad)).read()).findtext("status") == "ERROR"


async def test_a_breakdown_lists_a_bounded_number_of_reasons(api: Api) -> None:
    # Given a broadcast whose gateway refused 3,000 messages, each with its own error text...
    b = await api.broadcast()
    add_messages(
        api,
        b["id"],
        [{"status": "UNDELIV", "error": f"refused, reference {i}"} for i in range(3_000)]
        + [{"status": "DELIVRD", "error": None}] * 50,
    )
    out = await api.json("GET", f"/v1/broadcasts/{b['id']}/breakdown", 200)
    # ...the counts by status are exact, and the reasons are the most frequent ones and the rest
    assert out["byStatus"] == {"QUEUE": 3, "UNDELIV": 3_000, "DELIVRD": 50}
    assert len(out["byReason"]) <= BREAKDOWN_MAX_REASONS + 1
    assert sum(r["count"] for r in out["byReason"]) == 3_000
    assert out["byReason"][-1]["reason"] == OTHER_REASONS
