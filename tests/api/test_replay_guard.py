"""The signed-request replay guard holds through a Redis flush, restart and outage (issue 11.5).

Real things only: the API app on a real socket, a private redis-server that the tests flush,
kill and restart, and the database on both backends.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestClient

from broadcaster.api.app import create_app
from broadcaster.api.context import CTX
from broadcaster.api.signatures import DatabaseNonces, RedisNonces
from broadcaster.config import Settings
from broadcaster.services.apikeys import create_key
from broadcaster.services.codes import add_code
from broadcaster.services.nonces import NonceLedger
from broadcaster.store.db import engine_for, upgrade, utcnow
from broadcaster.store.models import broadcasts, signed_nonces
from tests.support.api import PHONES, TEST_LIMITS, problem, signed_headers
from tests.support.inprocess import ListQueue


async def _app(aiohttp_client: Any, database_url: str, redis_url: str | None, **kw: Any) -> Any:
    settings = Settings(database_url=database_url, default_region=None, redis_url=redis_url)
    app = create_app(settings, queue=ListQueue(), limits=TEST_LIMITS, **kw)
    client: TestClient = await aiohttp_client(app)
    engine = app[CTX].engine
    add_code(engine, settings, "55501", "short", workspace="acme")
    return client, engine, create_key(engine, "acme", signing=True)


def _signed_create(created: Any, nonce: str) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(
        {"from": "55501", "text": "Hi {0}", "recipients": [{"to": PHONES[0], "params": ["Ana"]}]}
    ).encode()
    headers = {
        **signed_headers(created, "POST", "/v1/broadcasts", body, nonce=nonce),
        "Content-Type": "application/json",
    }
    return body, headers


def _broadcast_count(engine: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(broadcasts)).scalar_one())


async def test_replay_after_redis_flush_restart_or_outage_is_refused(
    aiohttp_client, database_url, redis_server, redis_url
):
    import redis

    # Given an API configured with Redis, and one signed create accepted...
    client, engine, created = await _app(aiohttp_client, database_url, redis_url)
    body, headers = _signed_create(created, "create-once-0001")
    resp = await client.post("/v1/broadcasts", data=body, headers=headers)
    assert resp.status == 201, await resp.text()
    # ...when Redis forgets everything (FLUSHALL, then a kill -9 and restart)...
    r = redis.Redis.from_url(redis_url)
    r.flushall()
    r.close()
    # ...then the exact replay is refused, every time, and nothing is stored twice.
    b = await problem(await client.post("/v1/broadcasts", data=body, headers=headers), 401)
    assert b["field"] == "X-Nonce" and "already used" in b["detail"]
    redis_server.restart()
    await problem(await client.post("/v1/broadcasts", data=body, headers=headers), 401)
    assert _broadcast_count(engine) == 1
    # While Redis is down, signed requests are still judged (never a 500) and a replay still fails.
    redis_server.stop()
    try:
        await problem(await client.post("/v1/broadcasts", data=body, headers=headers), 401)
        body2, headers2 = _signed_create(created, "create-while-redis-down")
        resp = await client.post("/v1/broadcasts", data=body2, headers=headers2)
        assert resp.status == 201, await resp.text()
    finally:
        redis_server.start()
    # And after Redis is back, signed requests work as before.
    headers3 = signed_headers(created, "GET", "/v1/codes", nonce="after-redis-back")
    assert (await client.get("/v1/codes", headers=headers3)).status == 200
    await problem(await client.post("/v1/broadcasts", data=body2, headers=headers2), 401)
    assert _broadcast_count(engine) == 2


async def test_redis_nonce_store_fails_closed_while_redis_is_down(
    aiohttp_client, sqlite_url, redis_server, redis_url
):
    # A deployment that injects the Redis store: Redis unreachable is a 503, never a 500.
    client, engine, created = await _app(
        aiohttp_client, sqlite_url, redis_url, nonces=RedisNonces(redis_url)
    )
    redis_server.stop()
    try:
        body, headers = _signed_create(created, "redis-down-0001")
        resp = await client.post("/v1/broadcasts", data=body, headers=headers)
        b = await problem(resp, 503)
        assert resp.headers["Retry-After"].isdigit()
        assert b["type"].endswith("replay-guard-unavailable") and "replay guard" in b["detail"]
        assert _broadcast_count(engine) == 0
    finally:
        redis_server.start()
    # Redis back (empty): the same request is now served.
    _, headers = _signed_create(created, "redis-down-0001")
    resp = await client.post("/v1/broadcasts", data=body, headers=headers)
    assert resp.status == 201, await resp.text()


class _HeldLock:
    """Another connection holds the lock a nonce insert needs (SQLite: the write lock)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def __enter__(self) -> _HeldLock:
        if self.url.startswith("sqlite"):
            self.conn: Any = sqlite3.connect(self.url.removeprefix("sqlite:///"), timeout=0)
            self.conn.isolation_level = None
            self.conn.execute("BEGIN IMMEDIATE")
        else:
            self.conn = engine_for(self.url).connect()
            self.conn.execute(sa.text("LOCK TABLE signed_nonces IN ACCESS EXCLUSIVE MODE"))
        return self

    def __exit__(self, *exc: object) -> None:
        if self.url.startswith("sqlite"):
            self.conn.execute("ROLLBACK")
        else:
            self.conn.rollback()
        self.conn.close()


async def test_nonce_store_that_cannot_answer_refuses_with_503(aiohttp_client, database_url):
    # Given an API whose nonce insert waits at most 300 ms for the database...
    upgrade(database_url)
    ledger = NonceLedger(engine_for(database_url), wait_ms=300)
    client, engine, created = await _app(
        aiohttp_client, database_url, None, nonces=DatabaseNonces(ledger)
    )
    body, headers = _signed_create(created, "db-locked-0001")
    # ...when another connection holds the lock it needs, a signed create is refused, not stored.
    with _HeldLock(database_url):
        resp = await client.post("/v1/broadcasts", data=body, headers=headers)
        b = await problem(resp, 503)
        assert resp.headers["Retry-After"].isdigit() and b["field"] == "X-Nonce"
    assert _broadcast_count(engine) == 0
    # Then, the lock released, the same request is served once and its replay refused.
    resp = await client.post("/v1/broadcasts", data=body, headers=headers)
    assert resp.status == 201, await resp.text()
    await problem(await client.post("/v1/broadcasts", data=body, headers=headers), 401)
    assert _broadcast_count(engine) == 1


def test_ledger_expires_and_sweeps_nonces(database_url):
    upgrade(database_url)
    now = [utcnow()]
    ledger = NonceLedger(engine_for(database_url), clock=lambda: now[0])
    assert ledger.remember("k1", "nonce-a", 600)
    assert not ledger.remember("k1", "nonce-a", 600)
    assert ledger.remember("k2", "nonce-a", 600)  # nonces are per key
    assert ledger.remember("k1", "nonce-b", 60)
    now[0] += timedelta(seconds=61)
    assert ledger.remember("k1", "nonce-b", 60)  # expired, not yet swept: usable again
    assert not ledger.remember("k1", "nonce-a", 600)
    now[0] += timedelta(seconds=600)
    assert ledger.sweep() == 3
    with engine_for(database_url).connect() as conn:
        left = conn.execute(sa.select(sa.func.count()).select_from(signed_nonces)).scalar_one()
    assert left == 0


def test_racing_processes_cannot_both_take_one_nonce(database_url):
    # Eight threads (each its own connection, as API processes would be) race on each nonce.
    upgrade(database_url)
    ledger = NonceLedger(engine_for(database_url))
    wins: list[str] = []
    lock = threading.Lock()

    def race(nonce: str) -> None:
        if ledger.remember("racer", nonce, 600):
            with lock:
                wins.append(nonce)

    for i in range(5):
        threads = [threading.Thread(target=race, args=(f"raced-{i:04d}",)) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert sorted(wins) == [f"raced-{i:04d}" for i in range(5)]


@pytest.mark.parametrize("store", ["database", "redis"])
async def test_nonce_stores_refuse_a_second_use(store, database_url, redis_url):
    upgrade(database_url)
    nonces: Any = (
        DatabaseNonces(NonceLedger(engine_for(database_url)))
        if store == "database"
        else RedisNonces(redis_url)
    )
    try:
        assert await nonces.remember("key1:nonce-0001", 600)
        assert not await nonces.remember("key1:nonce-0001", 600)
        assert await nonces.remember("key2:nonce-0001", 600)
    finally:
        await nonces.close()


def test_sweep_takes_every_expired_nonce_in_short_batches(sqlite_url, monkeypatch):
    from broadcaster.services import nonces

    monkeypatch.setattr(nonces, "SWEEP_BATCH_ROWS", 5)
    upgrade(sqlite_url)
    now = [utcnow()]
    ledger = NonceLedger(engine_for(sqlite_url), clock=lambda: now[0])
    for i in range(12):
        assert ledger.remember("k", f"old-{i:04d}", 60)
    assert ledger.remember("k", "live-0001", 6_000)
    now[0] += timedelta(seconds=61)
    assert ledger.sweep() == 12  # three transactions: 5 + 5 + 2
    assert not ledger.remember("k", "live-0001", 6_000)
