"""The poller's recount (issue 17, the poller at a million): counters equal the recount after a
mixed run, a big broadcast is recounted on its schedule (not every tick), a corrupted counter is
fixed by the next scheduled recount, and a completing broadcast is recounted at once."""

from __future__ import annotations

import sqlalchemy as sa

from broadcaster.config import Settings
from broadcaster.domain.counts import derive_counters
from broadcaster.domain.states import MessageStatus
from broadcaster.providers.base import Receipt
from broadcaster.services import poller
from broadcaster.services.receipts import apply_receipts
from broadcaster.store import broadcasts_repo, codes_repo, messages_repo
from broadcaster.store.db import engine_for, upgrade, utcnow
from broadcaster.store.models import broadcasts

M = MessageStatus
ROUTE = "simulator"
COUNTERS = ("expected", "sent", "delivered", "failed")


class Chunks:
    """The task queue of a test: chunks are kept, not sent."""

    def __init__(self) -> None:
        self.sent: list[list[int]] = []

    def send_chunk(self, broadcast_id: int, ids: list[int], countdown_s: float = 0.0) -> None:
        self.sent.append(ids)


class Clock:
    """Monotonic seconds that a test moves on."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _broadcast(engine, n: int) -> tuple[int, list[int]]:
    now = utcnow()
    with engine.begin() as conn:
        ws = codes_repo.ensure_workspace(conn)
        bid = broadcasts_repo.insert_broadcast(
            conn,
            workspace_id=ws,
            name="recounts",
            sender_code="7777",
            template="x",
            status="RUNNING",
            start_at=now,
            timezone="UTC",
            started_at=now,
        )
        rows = [
            {
                "broadcast_id": bid,
                "line": i + 1,
                "recipient": f"+1555{i:07d}",
                "text": "x",
                "encoding": "GSM",
                "segments": 1,
                "status": "QUEUE",
                "created_at": now,
            }
            for i in range(n)
        ]
        broadcasts_repo.insert_messages(conn, rows)
        ids = messages_repo.mark_dispatched(conn, bid, limit=n, now=now, stale_before=now)
    return bid, ids


def _mixed_run(engine, bid: int, ids: list[int]) -> None:
    """Claims, sends, refusals, failures and receipts, as the send path and the API make them."""
    now = utcnow()
    with engine.begin() as conn:
        claimed = [
            c.id for c in messages_repo.claim(conn, bid, ids[:16], now=now, lease_s=60, route=ROUTE)
        ]
        messages_repo.record_sent(conn, [(m, f"g{m}") for m in claimed[:10]], now)
        messages_repo.record_failed(conn, [(m, "refused") for m in claimed[10:12]], now)
        messages_repo.record_refused(conn, [(claimed[12], "BLACKLISTED", "opted out")], now)
    receipts = [
        (ROUTE, Receipt(str(m), f"g{m}", s))
        for m, s in zip(claimed[:8], [M.DELIVRD, M.DELIVRD, M.UNDELIV, M.ENROUTE] * 2, strict=True)
    ]
    receipts.append((ROUTE, Receipt(str(claimed[13]), None, M.DELIVRD)))  # before the send
    apply_receipts(engine, receipts, default_provider=ROUTE)


def _stored(engine, bid: int) -> dict[str, int]:
    with engine.connect() as conn:
        row = broadcasts_repo.get_broadcast(conn, bid) or {}
    return {k: row[k] for k in COUNTERS}


def _truth(engine, bid: int) -> dict[str, int]:
    with engine.connect() as conn:
        return derive_counters(broadcasts_repo.status_counts(conn, bid))


def _tick(engine, settings: Settings) -> poller.TickReport:
    report = poller.TickReport()
    poller.reconcile(engine, settings, Chunks(), utcnow(), report)
    assert report.failed_steps == []
    return report


def test_counters_equal_the_recount_after_a_mixed_run(database_url, monkeypatch):
    upgrade(database_url)
    engine, settings = engine_for(database_url), Settings(database_url=database_url)
    monkeypatch.setattr(poller, "RECOUNTS", poller.Recounts())
    bid, ids = _broadcast(engine, 40)
    _mixed_run(engine, bid, ids)
    _tick(engine, settings)
    assert _stored(engine, bid) == _truth(engine, bid)
    assert _truth(engine, bid) == {"expected": 40, "sent": 11, "delivered": 5, "failed": 5}


def test_a_big_broadcast_is_recounted_on_its_schedule_and_a_corrupt_counter_is_fixed(
    database_url, monkeypatch
):
    upgrade(database_url)
    engine, settings = engine_for(database_url), Settings(database_url=database_url)
    clock = Clock()
    # every recount counts as costly here: the schedule a million-message broadcast gets
    recounts = poller.Recounts(duty=1e-9, max_interval_s=20.0, clock=clock, every_tick_below_s=-1.0)
    monkeypatch.setattr(poller, "RECOUNTS", recounts)
    bid, ids = _broadcast(engine, 40)
    _tick(engine, settings)
    # Given a counter gone wrong and messages that moved since the last recount
    with engine.begin() as conn:
        conn.execute(sa.update(broadcasts).where(broadcasts.c.id == bid).values(delivered=999))
    _mixed_run(engine, bid, ids)
    # When ticks come before the broadcast's recount is due, the counters are left alone
    clock.now += 10
    _tick(engine, settings)
    assert _stored(engine, bid)["delivered"] == 999
    # Then the scheduled recount, the proof, makes them true again
    clock.now += 11
    _tick(engine, settings)
    assert _stored(engine, bid) == _truth(engine, bid)


def test_a_completing_broadcast_is_recounted_at_once(database_url, monkeypatch):
    upgrade(database_url)
    engine, settings = engine_for(database_url), Settings(database_url=database_url)
    clock = Clock()
    recounts = poller.Recounts(duty=1e-9, max_interval_s=20.0, clock=clock, every_tick_below_s=-1.0)
    monkeypatch.setattr(poller, "RECOUNTS", recounts)
    bid, ids = _broadcast(engine, 4)
    _tick(engine, settings)
    now = utcnow()
    with engine.begin() as conn:
        claimed = [
            c.id for c in messages_repo.claim(conn, bid, ids, now=now, lease_s=60, route=ROUTE)
        ]
        messages_repo.record_sent(conn, [(m, f"g{m}") for m in claimed], now)
    clock.now += 1  # long before the next scheduled recount
    report = _tick(engine, settings)
    assert report.completed == [bid]
    assert (
        _stored(engine, bid)
        == _truth(engine, bid)
        == {
            "expected": 4,
            "sent": 4,
            "delivered": 0,
            "failed": 0,
        }
    )
