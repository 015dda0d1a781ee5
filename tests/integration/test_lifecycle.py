"""Receipts, scheduling, expiry and auto-suspend through the services, on SQLite and PostgreSQL.

The send path runs in-process here against the simulator app on loopback (memory token bucket,
a list as task queue), so each rule is checked with time passed in, not waited for.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from broadcaster.config import Settings
from broadcaster.domain.states import MessageStatus as M
from broadcaster.providers.base import Receipt
from broadcaster.services import poller, sending
from broadcaster.services.broadcasts import NewBroadcast, create_from_file, get_broadcast
from broadcaster.services.codes import add_code
from broadcaster.services.receipts import apply_receipt
from broadcaster.simulator.app import build_app
from broadcaster.simulator.config import SimulatorConfig
from broadcaster.store import messages_repo
from broadcaster.store.db import engine_for, upgrade, utcnow
from broadcaster.store.models import messages, receipts
from broadcaster.throttle import MemoryTokenBucket
from broadcaster.wiring import ProviderCache
from tests.support.inprocess import ListQueue


@pytest.fixture
async def world(database_url, aiohttp_server, tmp_path):
    """A database with a code, the simulator on loopback, and an in-process send context."""
    server = await aiohttp_server(build_app(SimulatorConfig(dlr_delay_s=3600)))
    upgrade(database_url)
    settings = Settings(
        database_url=database_url,
        messangi_base_url=str(server.make_url("/v1")),
        auto_suspend_failures=15,
        send_concurrency=10,
    )
    engine = engine_for(database_url)
    add_code(engine, settings, "55501", "short", mps=1000)
    provider_for = ProviderCache(settings)

    queue = ListQueue()
    ctx = sending.SendContext(
        settings=settings,
        engine=engine,
        bucket=MemoryTokenBucket(),
        queue=queue,
        provider_for=provider_for,
    )

    def make(n: int, **kw) -> int:
        f = tmp_path / f"list{n}.txt"
        f.write_text("".join(f"+5255300{i:05d}\n" for i in range(n)))
        return create_from_file(
            engine, settings, f, NewBroadcast(sender="55501", text="Hola", **kw)
        ).id

    async def drain() -> None:
        while queue.chunks:
            b, ids, _ = queue.chunks.pop(0)
            await sending.send_chunk(ctx, b, ids)

    yield settings, engine, queue, provider_for, make, drain
    await provider_for.close()


async def test_scheduled_broadcast_starts_only_when_due(world):
    settings, engine, queue, provider_for, make, drain = world
    bid = make(5, at="2031-03-01T09:00", tz="Europe/Madrid")  # 08:00 UTC
    before = await poller.tick(engine, settings, queue, provider_for, now=_utc(2031, 3, 1, 7, 59))
    assert before.started == [] and get_broadcast(engine, bid).status == "SCHEDULED"
    after = await poller.tick(engine, settings, queue, provider_for, now=_utc(2031, 3, 1, 8, 0))
    assert after.started == [bid] and get_broadcast(engine, bid).status == "RUNNING"
    await drain()
    assert get_broadcast(engine, bid).counts == {"SENT": 5}


def _utc(*parts):
    from datetime import datetime

    return datetime(*parts)


async def test_receipts_are_idempotent_ordered_and_may_come_first(world):
    settings, engine, queue, provider_for, make, drain = world
    bid = make(3)
    await poller.tick(engine, settings, queue, provider_for)
    with engine.begin() as conn:  # claimed, the send answer not stored yet
        ids = [
            r[0]
            for r in conn.execute(sa.select(messages.c.id).where(messages.c.broadcast_id == bid))
        ]
        messages_repo.claim(conn, bid, ids, now=utcnow(), lease_s=60)
    first, second, third = (str(i) for i in ids)
    # a receipt before the send response is kept …
    assert apply_receipt(engine, "simulator", Receipt(first, "g1", M.DELIVRD)).applied
    with engine.begin() as conn:
        messages_repo.record_sent(conn, [(ids[0], "g1"), (ids[1], "g2")], utcnow())
    assert _status(engine, ids[0]) == ("DELIVRD", "g1")  # … and the late send answer keeps it
    # duplicates are no-ops, a late ENROUTE never overwrites a final DELIVRD
    assert not apply_receipt(engine, "simulator", Receipt(first, "g1", M.DELIVRD)).applied
    assert not apply_receipt(engine, "simulator", Receipt(first, "g1", M.ENROUTE)).applied
    assert _status(engine, ids[0])[0] == "DELIVRD"
    # receipts move forward: ENROUTE → ACCEPTD → UNDELIV; matched by gateway id without a reference
    assert apply_receipt(engine, "simulator", Receipt(None, "g2", M.ENROUTE)).applied
    assert apply_receipt(engine, "simulator", Receipt(None, "g2", M.ACCEPTD)).applied
    assert apply_receipt(engine, "simulator", Receipt(second, None, M.UNDELIV)).applied
    assert _status(engine, ids[1])[0] == "UNDELIV"
    # an unknown id is recorded, not crashed on
    unknown = apply_receipt(engine, "simulator", Receipt("999999", "nope", M.DELIVRD))
    assert unknown.message_id is None and not unknown.applied
    with engine.connect() as conn:
        history = conn.execute(
            sa.select(receipts.c.status, receipts.c.applied)
            .where(receipts.c.message_id == ids[0])
            .order_by(receipts.c.id)
        ).all()
        orphans = conn.execute(
            sa.select(sa.func.count()).where(receipts.c.message_id.is_(None))
        ).scalar_one()
    assert [tuple(r) for r in history] == [
        ("DELIVRD", True),
        ("DELIVRD", False),
        ("ENROUTE", False),
    ]
    assert orphans == 1
    assert _status(engine, int(third))[0] == "DEQUEUED"


def _status(engine, mid: int) -> tuple[str, str | None]:
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(messages.c.status, messages.c.gateway_id).where(messages.c.id == mid)
        ).one()
    return row[0], row[1]


async def test_silent_messages_expire_after_the_validity_period(world):
    settings, engine, queue, provider_for, make, drain = world
    bid = make(4)
    await poller.tick(engine, settings, queue, provider_for)
    await drain()
    later = utcnow() + timedelta(seconds=settings.validity_s + 1)
    report = await poller.tick(engine, settings, queue, provider_for, now=later)
    assert report.expired == 4
    assert get_broadcast(engine, bid).counts == {"EXPIRED": 4}


async def test_consecutive_gateway_failures_suspend_the_broadcast(world):
    settings, engine, queue, provider_for, make, drain = world
    bad = settings.model_copy(update={"messangi_api_key": "wrong"})  # every send a permanent 401
    bid = make(200)
    providers = ProviderCache(bad)
    ctx = sending.SendContext(
        settings=bad,
        engine=engine,
        bucket=MemoryTokenBucket(),
        queue=queue,
        provider_for=providers,
    )
    await poller.tick(engine, bad, queue, provider_for)
    while queue.chunks:
        b, ids, _ = queue.chunks.pop(0)
        await sending.send_chunk(ctx, b, ids)
    await providers.close()
    view = get_broadcast(engine, bid)
    assert view.status == "SUSPENDED"
    assert "consecutive gateway failures" in view.status_reason
    counts = view.counts
    # The threshold (15) plus what was in flight or buffered when it was crossed: at most the
    # chunk's concurrency (10) and one batch of unwritten results (50).
    from broadcaster.services.inflight import FLUSH_RESULTS

    assert 15 <= counts["ERROR"] <= 15 + 10 + FLUSH_RESULTS, counts
    assert counts["QUEUE"] == 200 - counts["ERROR"]  # the rest was not burnt
