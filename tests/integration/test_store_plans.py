"""The send path's statements find their rows by primary key on SQLite, whatever the queue holds.

SQLite plans without statistics and preferred the ``status`` index for ``id IN (…) AND status =
'QUEUE'``: every claim walked every queued message of every broadcast (3 ms per claim at 20k
queued, growing with the queue). Each statement the hot path runs is captured as executed and
re-planned here with its own parameters.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from broadcaster.config import Settings
from broadcaster.domain.states import MessageStatus as M
from broadcaster.services.broadcasts import NewBroadcast, create_from_file
from broadcaster.services.codes import add_code
from broadcaster.store import callbacks_repo, messages_repo
from broadcaster.store.db import engine_for, upgrade, utcnow
from broadcaster.store.models import broadcasts, messages


@pytest.fixture
def queued(sqlite_url: str, tmp_path) -> tuple[sa.Engine, int, list[int]]:
    """2,000 QUEUE messages of a RUNNING broadcast."""
    upgrade(sqlite_url)
    settings = Settings(database_url=sqlite_url)
    engine = engine_for(sqlite_url)
    add_code(engine, settings, "55501", "short", mps=100)
    f = tmp_path / "list.txt"
    f.write_text("".join(f"+5255300{i:05d}\n" for i in range(2000)))
    bid = create_from_file(engine, settings, f, NewBroadcast(sender="55501", text="Hola")).id
    with engine.begin() as conn:
        conn.execute(sa.update(broadcasts).values(status="RUNNING"))
        ids = [i for (i,) in conn.execute(sa.select(messages.c.id).order_by(messages.c.id))]
    return engine, bid, ids


def _plans_of(engine: sa.Engine, work: Any) -> list[tuple[str, str]]:
    """(statement, its query plan) for each UPDATE/SELECT on messages that ``work`` executes."""
    seen: list[tuple[str, Any]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if "messages" in statement and not statement.startswith("EXPLAIN"):
            seen.append((statement, parameters[0] if executemany else parameters))

    sa.event.listen(engine, "before_cursor_execute", capture)
    try:
        with engine.begin() as conn:
            work(conn)
    finally:
        sa.event.remove(engine, "before_cursor_execute", capture)
    with engine.connect() as conn:
        return [
            (
                sql,
                " | ".join(
                    row[3] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params)
                ),
            )
            for sql, params in seen
        ]


def _assert_by_primary_key(plans: list[tuple[str, str]]) -> None:
    """Each statement finds its messages by id, and no status index is in its plan."""
    for sql, plan in plans:
        assert "SEARCH messages USING INTEGER PRIMARY KEY" in plan, (sql, plan)
        assert "ix_messages_status" not in plan, (sql, plan)


def _hot_path(bid: int, ids: list[int]) -> Any:
    def work(conn: sa.Connection) -> None:
        now = utcnow()
        messages_repo.queued_segments(conn, ids[:50])
        claimed = [c.id for c in messages_repo.claim(conn, bid, ids[:50], now=now, lease_s=60)]
        messages_repo.record_sent(conn, [(m, f"g{m}") for m in claimed[:10]], now)
        messages_repo.record_failed(conn, [(m, "no") for m in claimed[10:20]], now)
        messages_repo.extend_lease(conn, claimed[20:30], now + timedelta(seconds=60))
        messages_repo.release(conn, claimed[30:], now)
        messages_repo.restamp(conn, ids[100:150], now)

    return work


def test_every_hot_statement_finds_messages_by_primary_key(queued) -> None:
    engine, bid, ids = queued
    plans = _plans_of(engine, _hot_path(bid, ids))
    assert len(plans) == 7
    _assert_by_primary_key(plans)


def test_dispatch_stamps_by_primary_key(queued) -> None:
    engine, bid, _ = queued
    now = utcnow()
    plans = _plans_of(
        engine,
        lambda conn: messages_repo.mark_dispatched(
            conn, bid, limit=500, now=now, stale_before=now - timedelta(seconds=60)
        ),
    )
    update = [(sql, plan) for sql, plan in plans if sql.startswith("UPDATE")]
    assert len(update) == 1
    assert "SEARCH messages USING INTEGER PRIMARY KEY" in update[0][1], update


def test_a_claim_that_waited_for_the_write_lock_leases_from_when_it_took_effect(
    queued, sqlite_url
) -> None:
    """Another writer holds SQLite's lock for 1.5 s; the claim waits, and its leases must still
    run a full ``lease_s`` from the moment it got through, or the poller would release (and a
    second worker resend) messages that are still being sent."""
    import sqlite3
    import threading

    from broadcaster.services import sending

    engine, bid, ids = queued
    settings = Settings(database_url=sqlite_url, lease_s=10)
    ctx = sending.SendContext(
        settings=settings,
        engine=engine,
        bucket=None,
        queue=None,  # type: ignore[arg-type]
        provider_for=None,
    )  # type: ignore[arg-type]
    holder = sqlite3.connect(
        sqlite_url.removeprefix("sqlite:///"), isolation_level=None, check_same_thread=False
    )
    holder.execute("BEGIN IMMEDIATE")  # the write lock, as a busy poller or receipt would hold it
    release = threading.Timer(1.5, lambda: holder.execute("COMMIT"))
    release.start()
    try:
        claimed = sending._claim(ctx, bid, ids[:20])
        got_through = utcnow()
    finally:
        release.join()
        holder.close()
    assert len(claimed) == 20
    with engine.connect() as conn:
        leases = [
            r[0]
            for r in conn.execute(
                sa.select(messages.c.lease_until).where(messages.c.id.in_([c.id for c in claimed]))
            )
        ]
    assert min(leases) >= got_through + timedelta(seconds=10) - timedelta(
        seconds=sending.LEASE_SLACK_S
    ), leases


def test_a_receipt_finds_its_message_by_primary_key(queued) -> None:
    engine, bid, ids = queued
    now = utcnow()

    def work(conn: sa.Connection) -> None:
        msg = messages_repo.find_for_receipt(conn, str(ids[7]), None)
        assert msg is not None
        messages_repo.advance_status(
            conn, msg["id"], [M.DEQUEUED, M.SENT, M.ENROUTE], M.DELIVRD, now, gateway_id="g7"
        )
        messages_repo.get_message(conn, msg["id"])
        callbacks_repo.target_for_message(conn, msg["id"], bid)

    plans = _plans_of(engine, work)
    assert len(plans) == 4
    _assert_by_primary_key(plans)


def test_the_expiry_sweep_seeks_old_sent_messages_instead_of_reading_every_sent_one(queued) -> None:
    engine, bid, ids = queued
    now = utcnow()
    with engine.begin() as conn:  # 500 sent an hour ago, then the sweep with a 2-hour validity
        claimed = [c.id for c in messages_repo.claim(conn, bid, ids[:500], now=now, lease_s=60)]
        messages_repo.record_sent(conn, [(m, f"g{m}") for m in claimed], now - timedelta(hours=1))
    plans = _plans_of(
        engine, lambda conn: messages_repo.expire_silent(conn, now - timedelta(hours=2), now)
    )
    assert len(plans) == 1
    # 148 ms per tick with a million sent messages when it read them all (status index only).
    assert (
        "ix_messages_status_lease_sent (status=? AND lease_until=? AND sent_at<?)" in plans[0][1]
    ), plans
    with engine.begin() as conn:
        assert (
            messages_repo.expire_silent(conn, now - timedelta(minutes=30), now) != []
        )  # still expires


def test_retry_statements_find_messages_by_primary_key_and_get_reads_only_the_retried(
    queued,
) -> None:
    """A refusal requeued with its retry time touches its own rows; ``get``'s count of waiting
    messages reads the partial retry index (the few that ever waited), not every QUEUE row."""
    engine, bid, ids = queued
    now = utcnow()
    with engine.begin() as conn:
        claimed = [c.id for c in messages_repo.claim(conn, bid, ids[:20], now=now, lease_s=60)]

    def requeue(conn: sa.Connection) -> None:
        states = messages_repo.retry_states(conn, claimed)
        assert len(states) == 20
        later = now + timedelta(seconds=30)
        messages_repo.requeue_for_retry(
            conn, [(s.id, s.attempts, later, "HTTP 500") for s in states], now
        )

    plans = _plans_of(engine, requeue)
    assert len(plans) == 2
    _assert_by_primary_key(plans)
    summary = _plans_of(engine, lambda conn: messages_repo.retry_summary(conn, bid))
    assert len(summary) == 1
    assert "ix_messages_broadcast_retry" in summary[0][1], summary
    with engine.connect() as conn:
        waiting, first = messages_repo.retry_summary(conn, bid)
    assert waiting == 20 and first == now + timedelta(seconds=30)


def test_the_claims_opt_out_check_and_the_blacklisting_seek_by_key(queued) -> None:
    """With 2,000 numbers suppressed, the claim's NOT EXISTS reads the opt-outs by their
    primary key (workspace, number), and marking the refused ones BLACKLISTED finds its messages
    by id: a STOP mid-broadcast costs no scan of the list or the queue."""
    from broadcaster.store import optouts_repo

    engine, bid, ids = queued
    now = utcnow()
    with engine.begin() as conn:
        ws = conn.execute(sa.select(broadcasts.c.workspace_id)).scalar_one()
        optouts_repo.add(conn, ws, [(f"+5255400{i:05d}", "import", None) for i in range(2000)], now)
        optouts_repo.add(conn, ws, [("+525530000003", "inbound", None)], now)

    def work(conn: sa.Connection) -> None:
        got = messages_repo.claim(conn, bid, ids[:10], now=now, lease_s=60)
        assert len(got) == 9  # the fourth number is suppressed
        assert optouts_repo.blacklist_queued(conn, bid, now, ids[:10]) == 1

    plans = _plans_of(engine, work)
    _assert_by_primary_key(plans)
    for sql, plan in plans:
        assert "optouts" not in sql or "optouts_1 (workspace_id=? AND number=?)" in plan, plan
        assert "SCAN optouts" not in plan, (sql, plan)
