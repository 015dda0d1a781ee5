"""Keys, rate limits and request signatures."""

from __future__ import annotations

import json
import time

import aiohttp
import pytest

from broadcaster.api.limits import ApiLimits
from broadcaster.api.signatures import MemoryNonces, RedisNonces
from broadcaster.services.apikeys import authenticate, create_key, parse_prefix, revoke_key
from tests.support.api import PHONES, TEST_LIMITS, problem, signed_headers


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer nonsense"},
        {"Authorization": "Bearer bk_000000000000_" + "x" * 43},
        {"Authorization": "Bearer bk_zzzzzzzzzzzz_" + "x" * 43},
    ],
)
async def test_missing_or_bad_key_is_401(api, headers):
    for path in ("/v1/broadcasts", "/v1/codes", "/openapi.json", "/metrics", "/v1/nowhere"):
        body = await problem(await api.client.get(path, headers=headers), 401)
        assert body["field"] == "Authorization"


async def test_401_carries_a_bearer_challenge(api):
    resp = await api.client.get("/v1/codes")
    assert resp.headers["WWW-Authenticate"].startswith('Bearer realm="broadcaster"')


async def test_right_prefix_wrong_secret_is_401(api):
    prefix = parse_prefix(api.keys["acme"])
    forged = f"bk_{prefix}_{'A' * 43}"
    await problem(
        await api.client.get("/v1/codes", headers={"Authorization": f"Bearer {forged}"}), 401
    )


async def test_revoked_key_stops_at_once(api):
    assert (await api.call("GET", "/v1/codes")).status == 200
    revoke_key(api.engine, parse_prefix(api.keys["acme"]))
    await problem(await api.call("GET", "/v1/codes"), 401)


async def test_public_routes_need_no_key(api):
    resp = await api.client.get("/healthz")
    assert resp.status == 200 and await resp.json() == {"status": "ok"}
    # Receipts check their own shared secret instead of a key.
    resp = await api.client.post("/v1/dlr/simulator?secret=wrong", json={})
    assert resp.status == 401
    resp = await api.client.post(
        f"/v1/dlr/simulator?secret={api.settings.dlr_secret}", json={"id": "x"}
    )
    assert resp.status in (200, 400)


async def test_unknown_route_with_a_key_is_404_problem(api):
    await problem(await api.call("GET", "/v1/nowhere"), 404)
    body = await problem(await api.call("PUT", "/v1/codes"), 405)
    assert body["title"] == "Method not allowed"


def test_keys_are_stored_hashed(api):
    created = create_key(api.engine, "acme")
    from sqlalchemy import select

    from broadcaster.store.models import api_keys

    with api.engine.connect() as conn:
        row = (
            conn.execute(select(api_keys).where(api_keys.c.prefix == created.prefix))
            .mappings()
            .one()
        )
    assert created.key not in row.values() and row["key_hash"] != created.key
    assert authenticate(api.engine, created.key).workspace == "acme"
    assert authenticate(api.engine, created.key + "x") is None


# ------------------------------------------------------------------------------------ rate limit


async def test_rate_limit_answers_429_with_retry_after(make_api):
    api = await make_api(limits=ApiLimits(rate_per_s=0.5, rate_burst=3))
    statuses = [(await api.call("GET", "/v1/codes")).status for _ in range(3)]
    assert statuses == [200, 200, 200]
    resp = await api.call("GET", "/v1/codes")
    body = await problem(resp, 429)
    assert int(resp.headers["Retry-After"]) >= 1 and "requests/s" in body["detail"]
    # Another key of the same workspace has its own bucket.
    other = create_key(api.engine, "acme").key
    assert (
        await api.client.get("/v1/codes", headers={"Authorization": f"Bearer {other}"})
    ).status == 200


def test_token_bucket_refills_at_its_rate():
    from broadcaster.api.ratelimit import KeyBuckets

    b = KeyBuckets(rate_per_s=2.0, burst=2)
    assert [b.take("k", now_s=0.0) for _ in range(2)] == [0.0, 0.0]
    assert b.take("k", now_s=0.0) == pytest.approx(0.5)
    assert b.take("k", now_s=0.5) == 0.0
    assert b.take("other", now_s=0.5) == 0.0


# ------------------------------------------------------------------------------------ signatures


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def signed(make_api):
    """An API whose clock tests move, and a signing key of workspace acme."""
    from broadcaster.api import v1

    clock = Clock()
    api = await make_api()
    api.client.app[v1.STATE_KEY].wall_clock = clock
    created = create_key(api.engine, "acme", signing=True)
    return api, created, clock


async def test_signed_request_passes(signed):
    api, created, clock = signed
    resp = await api.client.get(
        "/v1/codes", headers=signed_headers(created, "GET", "/v1/codes", ts=clock.now)
    )
    assert resp.status == 200
    path = "/v1/broadcasts?limit=5&status=SCHEDULED"
    resp = await api.client.get(path, headers=signed_headers(created, "GET", path, ts=clock.now))
    assert resp.status == 200


async def test_signed_json_body_is_covered(signed):
    api, created, clock = signed
    body = json.dumps({"from": "55501", "to": PHONES[0], "text": "hi"}).encode()
    headers = {
        **signed_headers(created, "POST", "/v1/messages", body, ts=clock.now),
        "Content-Type": "application/json",
    }
    assert (await api.client.post("/v1/messages", data=body, headers=headers)).status == 202
    # The same signature over a changed body is refused.
    headers = {
        **signed_headers(created, "POST", "/v1/messages", body, ts=clock.now),
        "Content-Type": "application/json",
    }
    tampered = body.replace(b"hi", b"yo")
    b = await problem(await api.client.post("/v1/messages", data=tampered, headers=headers), 401)
    assert b["field"] == "X-Signature"


async def test_unsigned_request_with_a_signing_key_is_401(signed):
    api, created, _ = signed
    b = await problem(
        await api.client.get("/v1/codes", headers={"Authorization": f"Bearer {created.key}"}), 401
    )
    assert "X-Timestamp" in b["detail"]


async def test_bad_signature_is_401(signed):
    api, created, clock = signed
    headers = signed_headers(created, "GET", "/v1/codes", ts=clock.now, secret="not-the-secret")
    b = await problem(await api.client.get("/v1/codes", headers=headers), 401)
    assert b["field"] == "X-Signature"
    # Signed for another path.
    headers = signed_headers(created, "GET", "/v1/broadcasts", ts=clock.now)
    await problem(await api.client.get("/v1/codes", headers=headers), 401)


@pytest.mark.parametrize("skew_s", [-301, 301, 3600])
async def test_stale_timestamp_is_401(signed, skew_s):
    api, created, clock = signed
    headers = signed_headers(created, "GET", "/v1/codes", ts=clock.now + skew_s)
    b = await problem(await api.client.get("/v1/codes", headers=headers), 401)
    assert b["field"] == "X-Timestamp"


async def test_timestamp_inside_window_passes(signed):
    api, created, clock = signed
    headers = signed_headers(created, "GET", "/v1/codes", ts=clock.now - 290)
    assert (await api.client.get("/v1/codes", headers=headers)).status == 200


@pytest.mark.parametrize("ts", ["soon", "1.5", "-10", "１２３"])
async def test_malformed_timestamp_is_401(signed, ts):
    api, created, clock = signed
    headers = {**signed_headers(created, "GET", "/v1/codes", ts=clock.now), "X-Timestamp": ts}
    b = await problem(await api.client.get("/v1/codes", headers=headers), 401)
    assert b["field"] == "X-Timestamp"


async def test_replayed_nonce_is_401(signed):
    api, created, clock = signed
    headers = signed_headers(created, "GET", "/v1/codes", ts=clock.now, nonce="once-only-123")
    assert (await api.client.get("/v1/codes", headers=headers)).status == 200
    b = await problem(await api.client.get("/v1/codes", headers=headers), 401)
    assert b["field"] == "X-Nonce" and "already used" in b["detail"]


async def test_bad_signature_does_not_burn_the_nonce(signed):
    api, created, clock = signed
    bad = signed_headers(
        created, "GET", "/v1/codes", ts=clock.now, nonce="shared-nonce", secret="wrong"
    )
    await problem(await api.client.get("/v1/codes", headers=bad), 401)
    good = signed_headers(created, "GET", "/v1/codes", ts=clock.now, nonce="shared-nonce")
    assert (await api.client.get("/v1/codes", headers=good)).status == 200


@pytest.mark.parametrize("nonce", ["short", "has space in it", "x" * 65, "ümlaut-nonce"])
async def test_malformed_nonce_is_401(signed, nonce):
    api, created, clock = signed
    headers = {**signed_headers(created, "GET", "/v1/codes", ts=clock.now), "X-Nonce": nonce}
    b = await problem(await api.client.get("/v1/codes", headers=headers), 401)
    assert b["field"] in ("X-Nonce", "X-Signature")


async def test_signature_headers_with_a_plain_key_are_refused(api):
    headers = {**api.auth(), "X-Timestamp": "1", "X-Nonce": "abcdefgh", "X-Signature": "00"}
    b = await problem(await api.client.get("/v1/codes", headers=headers), 401)
    assert "no signing secret" in b["detail"]


async def test_signed_multipart_upload(signed):
    api, created, clock = signed
    form = aiohttp.FormData()
    form.add_field("from", "55501")
    form.add_field("text", "Hi {name}")
    form.add_field(
        "file",
        f"phone,name\n{PHONES[0]},Ana\n{PHONES[1]},Bob\n".encode(),
        filename="r.csv",
        content_type="text/csv",
    )
    payload = form()
    body = b"".join([chunk async for chunk in _body_chunks(payload)])
    headers = {
        **signed_headers(created, "POST", "/v1/broadcasts", body, ts=clock.now),
        "Content-Type": payload.content_type,
    }
    resp = await api.client.post("/v1/broadcasts", data=body, headers=headers)
    out = await resp.json()
    assert resp.status == 201, out
    assert out["expectedMessages"] == 2 and out["source"] == "r.csv"
    headers = {
        **signed_headers(created, "POST", "/v1/broadcasts", body, ts=clock.now),
        "Content-Type": payload.content_type,
    }
    await problem(
        await api.client.post("/v1/broadcasts", data=body.replace(b"Ana", b"Eve"), headers=headers),
        401,
    )


async def _body_chunks(payload):
    class Sink:
        def __init__(self):
            self.parts = []

        async def write(self, data):
            self.parts.append(bytes(data))

    sink = Sink()
    await payload.write(sink)
    for part in sink.parts:
        yield part


async def test_memory_nonces_expire_and_stay_bounded():
    now = [0.0]
    store = MemoryNonces(max_entries=3, clock=lambda: now[0])
    assert await store.remember("a", 10) and not await store.remember("a", 10)
    now[0] = 11.0
    assert await store.remember("a", 10)  # expired, usable again
    for k in "bcdef":
        assert await store.remember(k, 10)
    assert len(store._expiry) <= 3


async def test_redis_nonces_are_shared_between_processes(make_api, redis_url):
    # Two API processes sharing one Redis: a nonce used on one is refused on the other.
    first = await make_api(nonces=RedisNonces(redis_url))
    from broadcaster.api import v1
    from broadcaster.api.app import create_app

    created = create_key(first.engine, "acme", signing=True)
    second_app = create_app(
        first.settings, queue=first.queue, limits=TEST_LIMITS, nonces=RedisNonces(redis_url)
    )
    from aiohttp.test_utils import TestClient, TestServer

    async with TestClient(TestServer(second_app)) as second:
        headers = signed_headers(created, "GET", "/v1/codes", nonce="cross-process-1")
        assert (await first.client.get("/v1/codes", headers=headers)).status == 200
        await problem(await second.get("/v1/codes", headers=headers), 401)
        assert second_app[v1.STATE_KEY].nonces is not first.client.app[v1.STATE_KEY].nonces
