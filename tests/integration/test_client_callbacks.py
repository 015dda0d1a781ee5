"""Client callbacks end to end on SQLite and PostgreSQL, against a real receiver on loopback.

The receiver checks every signature, and can answer 500 for the first N posts of a notification,
400, or too slowly. Status changes are made the way the send path and receipts make them: the
message row changes and ``enqueue_status_change(s)`` runs in the same transaction.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa
from aiohttp import web

from broadcaster.config import Settings
from broadcaster.errors import InputError
from broadcaster.providers.inbound import Inbound
from broadcaster.services import client_callbacks
from broadcaster.services.broadcasts import NewBroadcast, create_from_file
from broadcaster.services.client_callbacks import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    deliver_pending,
    deliveries_of,
    enqueue_status_change,
    enqueue_status_changes,
    verify,
)
from broadcaster.services.codes import add_code
from broadcaster.services.inbound import receive, update_settings
from broadcaster.store import callbacks_repo
from broadcaster.store.db import engine_for, upgrade, utcnow
from broadcaster.store.models import callback_deliveries, messages
from broadcaster.webhooks.http import HttpWebhookTransport, make_session

SAMPLE = Path(__file__).parents[2] / "broadcaster" / "samples" / "recipients.csv"
SECRET = "test-callback-secret"
SLOW_S = 1.5
#: The timeout of the test that meets the slow receiver; the others keep the default (5 s), so
#: that a post delayed by a loaded machine is not a "timeout" they never meant to test.
TIMEOUT_S = 0.3


# --- receiver ---------------------------------------------------------------------------------


@dataclass
class Receiver:
    """A client's webhook endpoint; paths choose its behaviour."""

    posts: list[dict[str, Any]] = field(default_factory=list)
    bad_signatures: int = 0
    fail_first: int = 2
    seen: Counter[str] = field(default_factory=Counter)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        ts, sig = (
            request.headers.get(TIMESTAMP_HEADER, ""),
            request.headers.get(SIGNATURE_HEADER, ""),
        )
        # The sender's clock may be frozen by the test: check the signature, not the age.
        if not verify(SECRET, ts, body, sig, now_s=float(ts or 0)):
            self.bad_signatures += 1
            return web.Response(status=401)
        delivery = request.headers[DELIVERY_HEADER]
        self.seen[delivery] += 1
        kind = request.match_info["kind"]
        if kind == "slow":
            await asyncio.sleep(SLOW_S)
        if kind == "flaky" and self.seen[delivery] <= self.fail_first:
            return web.Response(status=500, text="try later")
        if kind == "bad":
            return web.Response(status=400, text="unknown message")
        if kind == "busy":
            return web.Response(status=429, headers={"Retry-After": "30"})
        if kind == "redirect":
            raise web.HTTPFound("http://169.254.169.254/latest/meta-data/")
        self.posts.append({"kind": kind, "delivery": delivery, "json": await request.json()})
        return web.Response(status=204)


@pytest.fixture
async def receiver(aiohttp_server):  # type: ignore[no-untyped-def]
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/hook/{kind}", rec.handle)
    server = await aiohttp_server(app, host="127.0.0.1")
    rec.base = f"http://127.0.0.1:{server.port}/hook"  # type: ignore[attr-defined]
    rec.port = server.port  # type: ignore[attr-defined]
    return rec


# --- data -------------------------------------------------------------------------------------


@pytest.fixture
def env(database_url, tmp_path):  # type: ignore[no-untyped-def]
    upgrade(database_url)
    settings = Settings(
        database_url=database_url,
        callback_secret=SECRET,
        callback_allow_private=True,
        callback_max_attempts=4,
    )
    engine = engine_for(database_url)
    add_code(engine, settings, "55501", "short")
    return engine, settings, tmp_path


def new_broadcast(
    env, callbacks: tuple[str, ...], recipients: int = 5, request_dr: bool = True
) -> tuple[int, list[int]]:  # type: ignore[no-untyped-def]
    engine, settings, tmp_path = env
    lines = SAMPLE.read_text().splitlines()
    path = tmp_path / f"r{len(list(tmp_path.iterdir()))}.csv"
    path.write_text("\n".join(lines[: recipients + 1]) + "\n")
    view = create_from_file(
        engine,
        settings,
        path,
        NewBroadcast(
            sender="55501", text="Hi {first_name}", callbacks=callbacks, request_dr=request_dr
        ),
    )
    with engine.connect() as conn:
        ids = [
            r[0]
            for r in conn.execute(
                sa.select(messages.c.id)
                .where(messages.c.broadcast_id == view.id)
                .order_by(messages.c.id)
            )
        ]
    return view.id, ids


def change(
    engine,
    broadcast_id: int,
    ids: list[int],
    status: str,
    *,
    allow_private: bool = True,  # type: ignore[no-untyped-def]
    now: datetime | None = None,
) -> int:
    """A status change and its callbacks in one transaction, as the lead wires it."""
    now = now or utcnow()
    with engine.begin() as conn:
        conn.execute(
            sa.update(messages).where(messages.c.id.in_(ids)).values(status=status, updated_at=now)
        )
        if len(ids) == 1:
            return enqueue_status_change(
                conn,
                message_id=ids[0],
                broadcast_id=broadcast_id,
                status=status,
                now=now,
                allow_private=allow_private,
            )
        return enqueue_status_changes(
            conn,
            broadcast_id=broadcast_id,
            changes=[(i, status) for i in ids],
            now=now,
            allow_private=allow_private,
        )


def outbox(engine) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return [
            dict(r)
            for r in conn.execute(
                sa.select(callback_deliveries).order_by(callback_deliveries.c.id)
            ).mappings()
        ]


def via(session: aiohttp.ClientSession, settings: Settings) -> HttpWebhookTransport:
    """The transport the Celery task gives the use case, over this test's session."""
    return HttpWebhookTransport(session, settings.callback_timeout_s)


async def drain(
    engine, settings, session, *, now: datetime | None = None, **kw: Any
) -> list[client_callbacks.DeliveryReport]:  # type: ignore[no-untyped-def]
    reports = []
    while True:
        report = await deliver_pending(engine, settings, via(session, settings), now=now, **kw)
        reports.append(report)
        if report.claimed == 0:
            return reports


# --- scenarios --------------------------------------------------------------------------------


async def test_every_status_change_delivered_once_and_signed(env, receiver) -> None:  # type: ignore[no-untyped-def]
    engine, settings, _ = env
    urls = (f"{receiver.base}/a", f"{receiver.base}/b")
    broadcast_id, ids = new_broadcast(env, urls, recipients=60)
    # Given: every message SENT (batched, as the send path writes), then one receipt each
    assert change(engine, broadcast_id, ids, "SENT") == 2 * len(ids)
    for mid in ids:
        assert change(engine, broadcast_id, [mid], "DELIVRD") == 2
    # When: the outbox is drained in passes smaller than it
    async with aiohttp.ClientSession() as session:
        reports = await drain(engine, settings, session, limit=70, concurrency=8)
    # Then: each (message, status, url) reached the client exactly once, correctly signed
    assert receiver.bad_signatures == 0
    got = Counter((p["kind"], p["json"]["id"], p["json"]["status"]) for p in receiver.posts)
    want = {(k, str(m), s) for k in ("a", "b") for m in ids for s in ("SENT", "DELIVRD")}
    assert set(got) == want and set(got.values()) == {1}
    assert sum(r.delivered for r in reports) == len(want) and sum(
        r.claimed for r in reports
    ) == len(want)
    rows = outbox(engine)
    assert {r["outcome"] for r in rows} == {"delivered"} and {r["attempts"] for r in rows} == {1}
    first = next(p["json"] for p in receiver.posts if p["json"]["id"] == str(ids[0]))
    assert (
        first["from"] == "55501"
        and first["to"].startswith("+52")
        and first["broadcastId"] == broadcast_id
    )
    assert first["date"].endswith("Z") and "externalId" not in first


async def test_5xx_retried_with_backoff_then_delivered(env, receiver) -> None:  # type: ignore[no-untyped-def]
    engine, settings, _ = env
    broadcast_id, ids = new_broadcast(env, (f"{receiver.base}/flaky",), recipients=3)
    change(engine, broadcast_id, ids, "SENT")
    t0 = utcnow()
    async with aiohttp.ClientSession() as session:
        first = await deliver_pending(engine, settings, via(session, settings), now=t0)
        assert (first.claimed, first.retrying) == (3, 3)
        # Not due again until its backoff has passed
        assert (
            await deliver_pending(
                engine, settings, via(session, settings), now=t0 + timedelta(milliseconds=900)
            )
        ).claimed == 0
        rows = outbox(engine)
        assert all(
            r["outcome"] == "pending" and r["attempts"] == 1 and r["last_error"] == "HTTP 500"
            for r in rows
        )
        assert all(
            t0 + timedelta(seconds=1) <= r["next_attempt_at"] <= t0 + timedelta(seconds=2)
            for r in rows
        )
        # Second failure waits longer (2-4 s), the third attempt succeeds
        second = await deliver_pending(
            engine, settings, via(session, settings), now=t0 + timedelta(seconds=2)
        )
        assert second.retrying == 3
        assert all(r["next_attempt_at"] >= t0 + timedelta(seconds=4) for r in outbox(engine))
        third = await deliver_pending(
            engine, settings, via(session, settings), now=t0 + timedelta(seconds=7)
        )
        assert third.delivered == 3
    rows = outbox(engine)
    assert [(r["outcome"], r["attempts"]) for r in rows] == [("delivered", 3)] * 3
    assert len(receiver.posts) == 3 and receiver.bad_signatures == 0


async def test_4xx_fails_permanently_and_redirects_are_not_followed(env, receiver) -> None:  # type: ignore[no-untyped-def]
    engine, settings, _ = env
    broadcast_id, ids = new_broadcast(
        env, (f"{receiver.base}/bad", f"{receiver.base}/redirect"), recipients=2
    )
    change(engine, broadcast_id, ids, "SENT")
    async with aiohttp.ClientSession() as session:
        reports = await drain(engine, settings, session, now=utcnow() + timedelta(days=1))
    assert reports[0].failed == 4 and sum(r.claimed for r in reports) == 4
    rows = outbox(engine)
    assert {
        (r["url"].rsplit("/", 1)[1], r["outcome"], r["attempts"], r["last_error"]) for r in rows
    } == {
        ("bad", "failed", 1, "HTTP 400"),
        ("redirect", "failed", 1, "HTTP 302 redirects are not followed"),
    }


async def test_timeouts_and_429_retry_until_attempts_run_out(env, receiver) -> None:  # type: ignore[no-untyped-def]
    engine, settings, _ = env
    settings = settings.model_copy(update={"callback_timeout_s": TIMEOUT_S})
    broadcast_id, ids = new_broadcast(
        env, (f"{receiver.base}/slow", f"{receiver.base}/busy"), recipients=1
    )
    change(engine, broadcast_id, ids, "SENT")
    now = utcnow()
    async with aiohttp.ClientSession() as session:
        for attempt in range(1, settings.callback_max_attempts + 1):
            report = await deliver_pending(engine, settings, via(session, settings), now=now)
            assert report.claimed == 2, attempt
            by_url = {r["url"].rsplit("/", 1)[1]: r for r in outbox(engine)}
            assert by_url["slow"]["attempts"] == by_url["busy"]["attempts"] == attempt
            if attempt < settings.callback_max_attempts:
                assert by_url["slow"]["last_error"] == f"no answer within {TIMEOUT_S:g} s"
                # Retry-After: 30 is honoured as a floor
                assert by_url["busy"]["next_attempt_at"] >= now + timedelta(seconds=30)
            now += timedelta(hours=2)
        assert (
            await deliver_pending(engine, settings, via(session, settings), now=now)
        ).claimed == 0
    rows = outbox(engine)
    assert all(
        r["outcome"] == "failed" and r["attempts"] == settings.callback_max_attempts for r in rows
    )
    assert all(
        r["last_error"].endswith(f"gave up after {settings.callback_max_attempts} attempts")
        for r in rows
    )
    assert receiver.posts == []


async def test_private_urls_refused_and_never_contacted(env, receiver) -> None:  # type: ignore[no-untyped-def]
    engine, settings, _ = env
    strict = settings.model_copy(update={"callback_allow_private": False})
    loopback = f"{receiver.base}/ok"
    named = f"http://localhost:{receiver.port}/hook/ok"
    broadcast_id, ids = new_broadcast(env, (loopback, named), recipients=2)
    # At enqueue: the literal loopback address and "localhost" are refused without any I/O
    change(engine, broadcast_id, ids, "SENT", allow_private=False)
    rows = outbox(engine)
    assert {r["outcome"] for r in rows} == {"refused"} and len(rows) == 4
    assert all("loopback" in r["last_error"] and r["next_attempt_at"] is None for r in rows)
    # Rows that were allowed when enqueued are checked again before delivery
    change(engine, broadcast_id, ids, "DELIVRD", allow_private=True)
    async with make_session(strict) as session:
        reports = await drain(engine, strict, session)
    assert sum(r.refused for r in reports) == 4 and sum(r.delivered for r in reports) == 0
    assert receiver.seen == Counter() and receiver.posts == []
    assert {r["outcome"] for r in outbox(engine)} == {"refused"}


async def test_dns_rebinding_refused_at_connect(env, receiver, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The pre-check sees a public address; the connection's own lookup gets loopback."""
    engine, settings, _ = env
    strict = settings.model_copy(update={"callback_allow_private": False})
    real = socket.getaddrinfo
    answers = {
        "checked-first.test": ["93.184.216.34", "127.0.0.1"],
        "always-inside.test": ["127.0.0.1"],
    }
    calls: Counter[str] = Counter()
    lock = threading.Lock()

    def fake(host, port, *args, **kwargs):  # type: ignore[no-untyped-def]
        if host not in answers:
            return real(host, port, *args, **kwargs)
        with lock:
            calls[host] += 1
            seq = answers[host]
            addr = seq[min(calls[host], len(seq)) - 1]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (addr, port))]

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    urls = (
        f"http://checked-first.test:{receiver.port}/hook/ok",
        f"http://always-inside.test:{receiver.port}/hook/ok",
    )
    broadcast_id, ids = new_broadcast(env, urls, recipients=1)
    assert (
        change(engine, broadcast_id, ids, "SENT", allow_private=False) == 2
    )  # names: judged later
    async with make_session(strict) as session:
        report = await deliver_pending(engine, strict, via(session, strict))
    assert report.refused == 2
    errors = {r["url"].split("/")[2].split(":")[0]: r["last_error"] for r in outbox(engine)}
    assert "resolves to 127.0.0.1, a loopback address" in errors["checked-first.test"]
    assert "(127.0.0.1) is a loopback address" in errors["always-inside.test"]
    assert calls["checked-first.test"] == 2 and receiver.seen == Counter()


async def test_two_workers_never_deliver_one_row_twice(env, receiver, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    engine, settings, _ = env
    # This is about two workers racing, not about timeouts: on a loaded CI machine the in-process
    # receiver once answered after the 5 s default, and the sender rightly scheduled a retry.
    settings = settings.model_copy(update={"callback_timeout_s": 60.0})
    broadcast_id, ids = new_broadcast(
        env, (f"{receiver.base}/a", f"{receiver.base}/b"), recipients=100
    )
    change(engine, broadcast_id, ids, "SENT")
    # Both workers read the same due rows before either claims: the claim is the only arbiter.
    barrier = threading.Barrier(2, timeout=20)
    real_due = callbacks_repo.due_ids
    first_reads = [0]
    lock = threading.Lock()

    def due_then_wait(conn, now, limit):  # type: ignore[no-untyped-def]
        rows = real_due(conn, now, limit)
        with lock:
            first_reads[0] += 1
            mine = first_reads[0]
        if mine <= 2:
            barrier.wait()
        return rows

    monkeypatch.setattr(callbacks_repo, "due_ids", due_then_wait)

    def worker() -> list[client_callbacks.DeliveryReport]:
        async def run() -> list[client_callbacks.DeliveryReport]:
            async with aiohttp.ClientSession() as session:
                return await drain(engine, settings, session, limit=120, concurrency=10)

        return asyncio.run(run())

    a, b = await asyncio.gather(asyncio.to_thread(worker), asyncio.to_thread(worker))
    claimed_a, claimed_b = sum(r.claimed for r in a), sum(r.claimed for r in b)
    assert claimed_a + claimed_b == 2 * len(ids)
    assert a[0].claimed + b[0].claimed == min(
        120, 2 * len(ids)
    )  # the same 120 rows offered to both
    assert set(receiver.seen.values()) == {1} and len(receiver.seen) == 2 * len(ids)
    assert len(receiver.posts) == 2 * len(ids)
    assert {(r["outcome"], r["attempts"]) for r in outbox(engine)} == {("delivered", 1)}


async def test_dead_worker_lease_expires_and_stale_result_is_dropped(env, receiver) -> None:  # type: ignore[no-untyped-def]
    engine, settings, _ = env
    broadcast_id, ids = new_broadcast(env, (f"{receiver.base}/a",), recipients=1)
    change(engine, broadcast_id, ids, "SENT")
    t0 = utcnow()
    # A worker claims the row and dies before recording anything
    with engine.begin() as conn:
        dead = callbacks_repo.claim(
            conn, [r["id"] for r in outbox(engine)], now=t0, lease_until=t0 + timedelta(seconds=35)
        )
    assert len(dead) == 1
    async with aiohttp.ClientSession() as session:
        assert (
            await deliver_pending(
                engine, settings, via(session, settings), now=t0 + timedelta(seconds=30)
            )
        ).claimed == 0
        report = await deliver_pending(
            engine, settings, via(session, settings), now=t0 + timedelta(seconds=36)
        )
    assert report.delivered == 1
    [row] = outbox(engine)
    assert (row["outcome"], row["attempts"]) == ("delivered", 2)
    # The dead worker's late result must not overwrite the newer one
    with engine.begin() as conn:
        written = callbacks_repo.record(
            conn,
            [
                {
                    "rid": dead[0].id,
                    "lease": dead[0].lease_until,
                    "outcome": "failed",
                    "next_at": None,
                    "err": "late",
                }
            ],
            utcnow(),
        )
    assert written == 0 and outbox(engine)[0]["outcome"] == "delivered"


def test_enqueue_rules(env) -> None:  # type: ignore[no-untyped-def]
    engine, _, _ = env
    url = "https://hooks.example.com/sms"
    # A URL refused without a lookup is refused when the broadcast is made, not stored
    with pytest.raises(InputError, match="ftp"):
        new_broadcast(env, (url, "ftp://hooks.example.com/x"), recipients=2)
    with_cb, ids = new_broadcast(env, (url, url), recipients=2)
    no_dr, ids_no_dr = new_broadcast(env, (url,), recipients=1, request_dr=False)
    no_cb, ids_no_cb = new_broadcast(env, (), recipients=1)
    # requestDR false, or no callbacks: nothing is queued
    assert change(engine, no_dr, ids_no_dr, "SENT") == 0
    assert change(engine, no_cb, ids_no_cb, "SENT") == 0
    # Duplicate URLs collapse; a repeat of a change adds nothing
    assert change(engine, with_cb, ids, "SENT") == 2
    assert change(engine, with_cb, ids, "SENT") == 0
    assert change(engine, with_cb, ids[:1], "SENT") == 0
    # A message id that is not in the broadcast is ignored
    with engine.begin() as conn:
        assert (
            enqueue_status_change(
                conn, message_id=ids_no_cb[0], broadcast_id=with_cb, status="SENT", now=utcnow()
            )
            == 0
        )
    rows = deliveries_of(engine, ids[0])
    assert [(r["url"], r["status"], r["outcome"]) for r in rows] == [(url, "SENT", "pending")]
    assert rows[0]["payload"]["id"] == str(ids[0]) and rows[0]["payload"]["status"] == "SENT"


def test_rolled_back_status_change_leaves_no_callback(env) -> None:  # type: ignore[no-untyped-def]
    """The outbox shares the status change's fate: no change, no callback; no callback lost."""
    engine, _, _ = env
    broadcast_id, ids = new_broadcast(env, ("https://hooks.example.com/sms",), recipients=1)
    with pytest.raises(RuntimeError), engine.begin() as conn:
        enqueue_status_change(
            conn, message_id=ids[0], broadcast_id=broadcast_id, status="SENT", now=utcnow()
        )
        raise RuntimeError("worker died mid-transaction")
    assert outbox(engine) == []


def test_celery_task_runs_a_pass_on_the_process_session(sqlite_url, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """workers.tasks.deliver_callbacks: one outbox pass, the session kept across tasks."""
    from tests.support.services import free_port
    from workers import runtime, tasks
    from workers.celery_app import app

    upgrade(sqlite_url)
    engine = engine_for(sqlite_url)
    settings = Settings(
        database_url=sqlite_url,
        callback_secret=SECRET,
        callback_allow_private=True,
        callback_timeout_s=TIMEOUT_S,
    )
    add_code(engine, settings, "55501", "short")
    monkeypatch.setattr(tasks, "get_settings", lambda: settings)
    monkeypatch.setattr(runtime, "get_settings", lambda: settings)
    monkeypatch.setattr(tasks, "_engine", lambda: engine)
    monkeypatch.setattr(runtime, "_loop", None)
    monkeypatch.setattr(runtime, "_callback_session", None)
    nobody = f"http://127.0.0.1:{free_port()}/hook"  # connection refused: a retryable fault
    broadcast_id, ids = new_broadcast((engine, settings, tmp_path), (nobody,), recipients=1)
    change(engine, broadcast_id, ids, "SENT")
    try:
        assert tasks.deliver_callbacks() == {
            "claimed": 1,
            "delivered": 0,
            "retrying": 1,
            "failed": 0,
            "refused": 0,
            "stale": 0,
        }
        session = runtime.callback_session()
        assert tasks.deliver_callbacks()["claimed"] == 0  # not due yet
        assert runtime.callback_session() is session
        [row] = outbox(engine)
        assert row["outcome"] == "pending" and row["last_error"].startswith("connection failed")
    finally:
        runtime.run(runtime.callback_session().close())
        runtime.loop().close()
        asyncio.set_event_loop(None)
    assert app.conf.task_routes["workers.tasks.deliver_callbacks"] == {"queue": "poll"}
    entry = app.conf.beat_schedule["deliver-callbacks"]
    assert entry["task"] == "workers.tasks.deliver_callbacks" and entry["schedule"] <= 1.0


async def test_an_inbound_message_reaches_the_workspace_callback_once_and_signed(
    env, receiver
) -> None:  # type: ignore[no-untyped-def]
    engine, settings, _ = env
    # Given the default workspace's inbound callback URL (its code 55501 receives on the default
    # route)
    update_settings(engine, "default", {"inbound_callback_url": f"{receiver.base}/mo"})
    # When a subscriber's STOP arrives, and the gateway retries it
    mo = Inbound("mo-1", "+525512345678", "55501", "Stop!", "2026-12-01T10:00:00Z")
    first = receive(engine, settings, settings.provider, mo)
    assert not receive(engine, settings, settings.provider, mo).new
    async with aiohttp.ClientSession() as session:
        await drain(engine, settings, session, limit=10, concurrency=2)
    # Then the callback got it once, signed with the status callbacks' secret and headers
    assert receiver.bad_signatures == 0
    assert [(p["kind"], p["json"]["type"]) for p in receiver.posts] == [("mo", "inbound")]
    body = receiver.posts[0]["json"]
    assert (body["id"], body["from"], body["to"], body["text"], body["keyword"]) == (
        first.id,
        "+525512345678",
        "55501",
        "Stop!",
        "OPT_OUT",
    )
    assert body["gatewayId"] == "mo-1" and body["route"] == settings.provider
