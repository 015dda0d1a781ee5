"""Quiet hours and validity through the services on SQLite and PostgreSQL: the simulator app on
loopback, a list as task queue, the beat tick run by hand with its time given, and a send context
whose clock the test sets (windows are judged by it at dispatch and at each claim).

Recipients: New York (+1 212) and San Francisco (+1 415) land lines. At 21:30 in New York it is
18:30 in California: a window of 08:00-21:00 is closed for the first, open for the second.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from broadcaster.config import Settings
from broadcaster.domain.wire import iso8601
from broadcaster.services import control, poller, sending
from broadcaster.services.broadcasts import (
    NewBroadcast,
    check_recipients,
    create_from_file,
    get_broadcast,
)
from broadcaster.services.codes import add_code
from broadcaster.simulator.app import build_app
from broadcaster.simulator.config import SimulatorConfig
from broadcaster.store.db import engine_for, upgrade, utcnow
from broadcaster.throttle import MemoryTokenBucket
from broadcaster.wiring import ProviderCache
from tests.support.inprocess import ListQueue

NEW_YORK = [f"+1212555{i:04d}" for i in range(100, 103)]
SAN_FRANCISCO = [f"+1415555{i:04d}" for i in range(100, 102)]
NY = ZoneInfo("America/New_York")


def _ny(day_offset: int, hour: int, minute: int) -> datetime:
    """Naive UTC of a New York wall time ``day_offset`` days after today's (in the future)."""
    today = datetime.now(NY).date()
    local = datetime(today.year, today.month, today.day, hour, minute, tzinfo=NY)
    local = local.replace(tzinfo=None) + timedelta(days=day_offset)
    return local.replace(tzinfo=NY).astimezone(UTC).replace(tzinfo=None)


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
async def world(database_url, aiohttp_server, tmp_path):
    server = await aiohttp_server(build_app(SimulatorConfig(dlr_delay_s=3600)))
    upgrade(database_url)
    settings = Settings(
        database_url=database_url,
        messangi_base_url=str(server.make_url("/v1")),
        send_concurrency=10,
        # the test's clock runs up to two days ahead: no silent-receipt expiry meanwhile
        validity_s=7 * 86_400.0,
    )
    engine = engine_for(database_url)
    add_code(engine, settings, "55501", "short", mps=1000)
    provider_for = ProviderCache(settings)

    queue = ListQueue()
    # 21:30 in New York tomorrow (always after the broadcast's real start time)
    clock = Clock(_ny(1, 21, 30))
    ctx = sending.SendContext(
        settings, engine, MemoryTokenBucket(), queue, provider_for, clock=clock
    )

    async def beat() -> poller.TickReport:
        """One tick at the clock's time, then every chunk it enqueued."""
        report = await poller.tick(engine, settings, queue, provider_for, now=clock())
        while queue.chunks:
            b, ids, _ = queue.chunks.pop(0)
            await sending.send_chunk(ctx, b, ids)
        return report

    def create(numbers: list[str], **fields) -> int:
        f = tmp_path / f"list{len(list(tmp_path.iterdir()))}.txt"
        f.write_text("".join(f"{n}\n" for n in numbers))
        req = NewBroadcast(sender="55501", text="Hi", tz="America/New_York", **fields)
        return create_from_file(engine, settings, f, req).id

    async def gateway_stats() -> dict:
        async with aiohttp.ClientSession() as s, s.get(server.make_url("/_sim/stats")) as r:
            return await r.json()

    yield engine, clock, beat, create, gateway_stats, tmp_path
    await provider_for.close()


async def test_closed_zone_waits_in_queue_and_is_sent_when_its_window_opens(world):
    engine, clock, beat, create, gateway_stats, _ = world
    bid = create(NEW_YORK + SAN_FRANCISCO, window="08:00-21:00")
    # Given 21:30 in New York (closed) and 18:30 in San Francisco (open)
    await beat()
    await beat()
    view = get_broadcast(engine, bid, now=clock())
    # Then only San Francisco was sent; New York waits, unclaimed, and the broadcast runs on
    assert view.status == "RUNNING", view
    assert view.counts == {"SENT": 2, "QUEUE": 3}, view
    assert view.waiting_for_window == 3 and view.retrying == 0
    opens = _ny(2, 8, 0)
    assert iso8601(view.next_window_at) == opens.replace(tzinfo=UTC).astimezone(NY).isoformat()
    assert view.window == "08:00-21:00" and view.expected_messages == 5
    # When the clock reaches a minute before 08:00 in New York, still nothing goes
    clock.at = opens - timedelta(minutes=1)
    await beat()
    assert get_broadcast(engine, bid, now=clock()).counts == {"SENT": 2, "QUEUE": 3}
    # When the window opens, the next tick sends them, and the one after completes
    clock.at = opens
    await beat()
    await beat()
    final = get_broadcast(engine, bid, now=clock())
    assert final.counts == {"SENT": 5} and final.status == "COMPLETED", final
    assert final.waiting_for_window == 0 and final.next_window_at is None
    stats = await gateway_stats()
    assert stats["accepted_total"] == 5 and stats["duplicates"] == []


async def test_stop_cancels_the_messages_waiting_for_their_window(world):
    engine, clock, beat, create, _, _ = world
    bid = create(NEW_YORK + SAN_FRANCISCO, window="08:00-21:00")
    await beat()
    assert get_broadcast(engine, bid, now=clock()).waiting_for_window == 3
    control.stop(engine, bid)
    await beat()
    view = get_broadcast(engine, bid, now=clock())
    assert view.status == "STOPPED"
    assert view.counts == {"SENT": 2, "CANCELLED": 3}, view
    assert view.expected_messages == 5 and view.waiting_for_window == 0


async def test_suspend_holds_waiting_messages_past_the_opening_and_resume_sends_them(world):
    engine, clock, beat, create, _, _ = world
    bid = create(NEW_YORK, window="08:00-21:00")
    await beat()
    control.suspend(engine, bid)
    clock.at = _ny(2, 9, 0)  # the window is open, but the broadcast is suspended
    await beat()
    view = get_broadcast(engine, bid, now=clock())
    assert view.status == "SUSPENDED" and view.counts == {"QUEUE": 3}, view
    # an open window: nothing waits for it now, the suspension holds them
    assert view.waiting_for_window == 0


async def test_a_window_across_midnight_sends_at_night(world):
    engine, clock, beat, create, _, _ = world
    bid = create(NEW_YORK + SAN_FRANCISCO, window="21:00-08:00")
    await beat()  # 21:30 New York (open), 18:30 San Francisco (closed until 21:00 there)
    assert get_broadcast(engine, bid, now=clock()).counts == {"SENT": 3, "QUEUE": 2}
    clock.at += timedelta(hours=3)  # 21:30 in San Francisco
    await beat()
    await beat()
    assert get_broadcast(engine, bid, now=clock()).counts == {"SENT": 5}


async def test_validity_expires_unsent_messages_and_counts_them(world):
    engine, clock, beat, create, _, _ = world
    # Given a broadcast whose New York messages wait and whose validity is 2 s from its start
    bid = create(NEW_YORK + SAN_FRANCISCO, window="08:00-21:00", validity="2s")
    clock.at = utcnow()
    # the window relative to the real clock: closed in New York, open in San Francisco, any date
    ny_now = datetime.now(NY)
    with engine.begin() as conn:
        from broadcaster.store.models import broadcasts

        la_now = ny_now.astimezone(ZoneInfo("America/Los_Angeles"))
        start = la_now - timedelta(minutes=1)
        end = la_now + timedelta(minutes=30)
        window = f"{start:%H:%M}-{end:%H:%M}"
        conn.execute(broadcasts.update().where(broadcasts.c.id == bid).values(send_window=window))
    await beat()
    await beat()
    view = get_broadcast(engine, bid, now=clock())
    assert view.counts == {"SENT": 2, "QUEUE": 3}, view
    assert view.validity == 2.0 and view.expires_at is not None
    # When the validity has passed (the validity itself, not a race)
    time.sleep(2.1)
    clock.at = utcnow()
    await beat()
    await beat()
    final = get_broadcast(engine, bid, now=clock())
    # Then the waiting ones ended EXPIRED unsent, counted as failed; every state counted once
    assert final.counts == {"SENT": 2, "EXPIRED": 3}, final
    assert final.status == "COMPLETED" and final.failed_messages == 3
    assert final.expected_messages == 5 and final.sent_messages == 2


def test_the_dry_run_says_how_many_would_wait_now(world, tmp_path):
    engine, clock, *_ = world
    f = tmp_path / "wide.txt"
    numbers = NEW_YORK + SAN_FRANCISCO + ["+61292345678", "+61851087000", "+61412345678"]
    f.write_text("".join(f"{n}\n" for n in numbers))
    settings = Settings(database_url="sqlite://")
    # 21:30 New York (closed), 18:30 San Francisco (open); Sydney 13:30 next day and Perth 10:30
    # (open); the Australian mobile spans zones and takes --tz (New York here: closed).
    at = _ny(1, 21, 30)
    report = check_recipients(
        f, settings, window="08:00-21:00", tz="America/New_York", now=at
    ).as_dict()
    assert report["valid"] == 8 and report["waiting_for_window"] == 4, report
    assert report["zones"]["America/New_York"] == 4
    assert report["next_window_at"] == _ny(2, 8, 0).replace(tzinfo=UTC).astimezone(NY).isoformat()
