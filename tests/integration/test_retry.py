"""Messages a passing fault refused wait in the queue and are sent again, through the services on
SQLite and PostgreSQL (the simulator app on loopback, a list as task queue, the beat tick run by
hand). Waits here are the retry times themselves, set to fractions of a second.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import aiohttp
import pytest
import sqlalchemy as sa

from broadcaster.config import Settings
from broadcaster.services import control, poller, sending
from broadcaster.services.broadcasts import NewBroadcast, create_from_file, get_broadcast
from broadcaster.services.codes import add_code
from broadcaster.services.queries import list_messages
from broadcaster.simulator.app import build_app
from broadcaster.simulator.config import SimulatorConfig
from broadcaster.store import messages_repo
from broadcaster.store.db import engine_for, upgrade
from broadcaster.store.models import messages
from broadcaster.throttle import MemoryTokenBucket
from broadcaster.wiring import ProviderCache
from tests.support.inprocess import ListQueue


@pytest.fixture
async def gateway_world(database_url, aiohttp_server, tmp_path):
    """Like test_lifecycle's world, with a gateway that answers 500 to every send until told."""
    server = await aiohttp_server(build_app(SimulatorConfig(dlr_delay_s=3600, share_500=1.0)))
    upgrade(database_url)

    def world(**overrides):
        knobs = {"send_concurrency": 10, "gateway_max_attempts": 2, "retry_base_s": 0.4}
        settings = Settings(
            database_url=database_url,
            messangi_base_url=str(server.make_url("/v1")),
            **{**knobs, "retry_cap_s": 0.8, **overrides},
        )
        engine = engine_for(database_url)
        add_code(engine, settings, "55501", "short", mps=1000)
        provider_for = ProviderCache(settings)

        queue = ListQueue()
        ctx = sending.SendContext(settings, engine, MemoryTokenBucket(), queue, provider_for)
        return settings, engine, queue, provider_for, ctx, provider_for

    made: list = []

    def make(**overrides):
        made.append(world(**overrides))
        return made[-1]

    async def gateway(path: str, body: dict | None = None) -> dict:
        """The simulator's control routes: POST ``body`` to change it, GET to read."""
        async with aiohttp.ClientSession() as s:
            method = "POST" if body is not None else "GET"
            async with s.request(method, server.make_url(path), json=body) as r:
                return await r.json()

    yield make, gateway, tmp_path
    for *_, providers in made:
        await providers.close()


def _create(engine, settings, tmp_path, n: int) -> int:
    f = tmp_path / f"list{n}.txt"
    f.write_text("".join(f"+5255300{i:05d}\n" for i in range(n)))
    return create_from_file(engine, settings, f, NewBroadcast(sender="55501", text="Hola")).id


async def _beat(settings, engine, queue, provider_for, ctx) -> None:
    """One beat tick, then every chunk it enqueued."""
    await poller.tick(engine, settings, queue, provider_for)
    while queue.chunks:
        b, ids, _ = queue.chunks.pop(0)
        await sending.send_chunk(ctx, b, ids)


async def test_refused_messages_wait_then_are_sent_and_the_broadcast_completes_after(
    gateway_world,
):
    make, gateway, tmp_path = gateway_world
    settings, engine, queue, provider_for, ctx, _ = make()
    bid = _create(engine, settings, tmp_path, 5)
    # Given every send refused with 500: after their in-request attempts the messages wait
    for round_ in range(3):
        await _beat(settings, engine, queue, provider_for, ctx)
        view = get_broadcast(engine, bid)
        assert view.status == "RUNNING", view  # never COMPLETED while retries wait
        assert view.counts == {"QUEUE": 5} and view.retrying == 5, view
        assert view.next_retry_at is not None
        if round_ == 0:  # `broadcast get` says how many wait and when the next is due
            shown = _cli_get(settings, bid)
            assert shown["retrying"] == 5 and shown["status"] == "RUNNING", shown
            due = datetime.fromisoformat(shown["nextRetryAt"].replace("Z", "+00:00"))
            assert due == view.next_retry_at.replace(microsecond=0), shown
        # a tick before the retries are due dispatches nothing (its time given: load-proof)
        with engine.connect() as conn:
            _, first_due = messages_repo.retry_summary(conn, bid)
        before = first_due - timedelta(milliseconds=1)
        await poller.tick(engine, settings, queue, provider_for, now=before)
        assert queue.chunks == []
        items = list_messages(engine, _workspace(engine, bid), bid).items
        # (at least: on a loaded machine a retry may fall due before its chunk task ends)
        assert all(m.attempts >= round_ + 1 and "HTTP 500" in m.error for m in items)
        time.sleep(settings.retry_cap_s)  # the retry time itself, not a race
    # When the gateway recovers, the next ticks send each waiting message once
    await gateway("/_sim/config", {"share_500": 0.0})
    deadline = time.monotonic() + 20
    while get_broadcast(engine, bid).status != "COMPLETED":
        assert time.monotonic() < deadline, get_broadcast(engine, bid)
        await _beat(settings, engine, queue, provider_for, ctx)
        time.sleep(0.1)
    final = get_broadcast(engine, bid)
    assert final.counts == {"SENT": 5} and final.retrying == 0
    assert final.next_retry_at is None and final.failed_messages == 0
    stats = await gateway("/_sim/stats")
    assert stats["accepted_total"] == 5 and stats["duplicates"] == []
    assert stats["by_status_code"]["500"] >= 5 * 3 * 2  # each refused 6 times or more first


def _cli_get(settings, bid: int) -> dict:
    """``broadcaster broadcast get ID --json`` on the test's database, as a user runs it."""
    import json
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("BROADCASTER_")}
    out = subprocess.run(
        [sys.executable, "-m", "broadcaster", "broadcast", "get", str(bid), "--json"],
        env={**env, "BROADCASTER_DATABASE_URL": settings.database_url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def _workspace(engine, bid: int) -> int:
    from broadcaster.store import broadcasts_repo

    with engine.connect() as conn:
        return int(broadcasts_repo.get_broadcast(conn, bid)["workspace_id"])


async def test_a_message_whose_window_is_spent_ends_error_with_its_attempts(gateway_world):
    make, gateway, tmp_path = gateway_world
    settings, engine, queue, provider_for, ctx, _ = make(retry_window_s=1.5)
    bid = _create(engine, settings, tmp_path, 3)
    deadline = time.monotonic() + 30
    while get_broadcast(engine, bid).status != "COMPLETED":
        assert time.monotonic() < deadline, get_broadcast(engine, bid)
        await _beat(settings, engine, queue, provider_for, ctx)
        time.sleep(0.1)
    final = get_broadcast(engine, bid)
    assert final.counts == {"ERROR": 3} and final.failed_messages == 3
    for m in list_messages(engine, _workspace(engine, bid), bid).items:
        assert m.attempts >= 2, m  # sent again at least once inside the window
        assert m.error.startswith(f"retry window exhausted after {m.attempts} sends"), m
        assert "HTTP 500" in m.error


async def test_a_retry_is_never_due_past_the_broadcasts_validity(gateway_world):
    make, gateway, tmp_path = gateway_world
    # Given a 4 h retry window and waits of 30-60 s, but a broadcast valid for 2 s only
    settings, engine, queue, provider_for, ctx, _ = make(retry_base_s=30.0, retry_cap_s=60.0)
    assert settings.retry_window_s == 4 * 3600.0
    f = tmp_path / "short.txt"
    f.write_text("".join(f"+5255301{i:05d}\n" for i in range(3)))
    bid = create_from_file(
        engine, settings, f, NewBroadcast(sender="55501", text="Hola", validity="2s")
    ).id
    # When every send is refused with 500
    await _beat(settings, engine, queue, provider_for, ctx)
    view = get_broadcast(engine, bid)
    # Then the messages wait, each due at the latest when the validity ends, not 30 s on
    assert view.retrying == 3 and view.expires_at is not None, view
    assert view.next_retry_at is not None and view.next_retry_at <= view.expires_at, view
    with engine.connect() as conn:
        waiting = conn.execute(
            sa.select(messages.c.retry_at).where(messages.c.broadcast_id == bid)
        ).scalars()
        ends = view.expires_at.replace(tzinfo=None)  # the store's naive UTC
        assert all(at is not None and at <= ends for at in waiting)
    # and once it has passed (the validity itself, not a race), a recovered gateway gets none
    await gateway("/_sim/config", {"share_500": 0.0})
    time.sleep(2.1)
    deadline = time.monotonic() + 20
    while get_broadcast(engine, bid).status != "COMPLETED":
        assert time.monotonic() < deadline, get_broadcast(engine, bid)
        await _beat(settings, engine, queue, provider_for, ctx)
        time.sleep(0.1)
    final = get_broadcast(engine, bid)
    assert sum(final.counts.values()) == 3 and not {"SENT", "QUEUE"} & set(final.counts), final
    assert final.retrying == 0 and final.failed_messages == 3
    assert (await gateway("/_sim/stats"))["accepted_total"] == 0


async def test_stop_cancels_waiting_messages_and_suspend_holds_them(gateway_world):
    make, gateway, tmp_path = gateway_world
    settings, engine, queue, provider_for, ctx, _ = make(retry_base_s=30.0, retry_cap_s=60.0)
    bid = _create(engine, settings, tmp_path, 4)
    await _beat(settings, engine, queue, provider_for, ctx)
    assert get_broadcast(engine, bid).retrying == 4
    await gateway("/_sim/config", {"share_500": 0.0})
    # suspended, the waiting messages stay waiting; resumed, they still wait for their time
    control.suspend(engine, bid)
    assert get_broadcast(engine, bid).counts == {"QUEUE": 4}
    control.resume(engine, settings, queue, bid)
    assert queue.chunks == []  # not due: resume sends none of them early
    await _beat(settings, engine, queue, provider_for, ctx)
    assert get_broadcast(engine, bid).retrying == 4
    # stopped, they end CANCELLED and the broadcast STOPPED with every state counted once
    assert control.stop(engine, bid).cancelled == 4
    await poller.tick(engine, settings, queue, provider_for)
    final = get_broadcast(engine, bid)
    assert final.status == "STOPPED" and final.counts == {"CANCELLED": 4}
    assert final.retrying == 0 and final.expected_messages == 4
    assert (await gateway("/_sim/stats"))["accepted_total"] == 0


async def test_a_dead_gateway_still_suspends_the_broadcast(gateway_world):
    make, gateway, tmp_path = gateway_world
    settings, engine, queue, provider_for, ctx, _ = make(auto_suspend_failures=15)
    bid = _create(engine, settings, tmp_path, 60)
    await _beat(settings, engine, queue, provider_for, ctx)
    view = get_broadcast(engine, bid)
    assert view.status == "SUSPENDED"
    assert "consecutive gateway failures" in view.status_reason
    # nothing was finalized by the faults: every message is still to be sent
    assert view.counts == {"QUEUE": 60} and view.failed_messages == 0


async def test_delete_removes_waiting_messages_of_a_suspended_broadcast(gateway_world):
    make, gateway, tmp_path = gateway_world
    settings, engine, queue, provider_for, ctx, _ = make(retry_base_s=30.0, retry_cap_s=60.0)
    bid = _create(engine, settings, tmp_path, 3)
    await _beat(settings, engine, queue, provider_for, ctx)
    assert get_broadcast(engine, bid).retrying == 3
    control.suspend(engine, bid)
    assert control.delete(engine, bid).messages_removed == 3
    await _beat(settings, engine, queue, provider_for, ctx)
    assert (await gateway("/_sim/stats"))["accepted_total"] == 0


async def test_a_refusal_never_requeues_a_message_another_worker_claimed_since(gateway_world):
    """The lease of a slow send ran out, the poller found the message absent and released it,
    and a second worker claimed it: the first send's late refusal must leave it to the second,
    whose answer (SENT) would otherwise find it QUEUE, be dropped, and the retry resend it."""
    from broadcaster.services.retries import schedule_retries
    from broadcaster.store.db import utcnow

    make, gateway, tmp_path = gateway_world
    settings, engine, queue, provider_for, ctx, _ = make()
    bid = _create(engine, settings, tmp_path, 1)
    control.start(engine, settings, queue, bid)
    (mid,) = queue.chunks.pop(0)[1]
    with engine.begin() as conn:
        (first,) = messages_repo.claim(conn, bid, [mid], now=utcnow(), lease_s=60)
        messages_repo.release(conn, [mid], utcnow())  # the poller: lease out, gateway has none
        (second,) = messages_repo.claim(conn, bid, [mid], now=utcnow(), lease_s=60)
    assert second.attempts == first.attempts + 1
    with engine.begin() as conn:  # the first worker's late refusal
        assert schedule_retries(conn, settings, [(mid, "HTTP 500", first.attempts)], utcnow()) == []
    assert get_broadcast(engine, bid).counts == {"DEQUEUED": 1}  # still the second's claim
    with engine.begin() as conn:  # the second worker's own refusal does requeue it
        schedule_retries(conn, settings, [(mid, "HTTP 500", second.attempts)], utcnow())
    view = get_broadcast(engine, bid)
    assert view.counts == {"QUEUE": 1} and view.retrying == 1
