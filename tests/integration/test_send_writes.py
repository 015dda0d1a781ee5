"""The send workers' claim and result writes keep their rules on both backends (on PostgreSQL
they are array statements: one Bind/Execute for a whole batch)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from broadcaster.config import Settings
from broadcaster.services.broadcasts import NewBroadcast, create_from_file
from broadcaster.services.codes import add_code
from broadcaster.store import messages_repo
from broadcaster.store.db import engine_for, upgrade, utcnow
from broadcaster.store.models import broadcasts, messages


@pytest.fixture
def running(database_url: str, tmp_path) -> tuple[sa.Engine, int, list[int]]:
    """6 QUEUE messages of a RUNNING broadcast."""
    upgrade(database_url)
    settings = Settings(database_url=database_url)
    engine = engine_for(database_url)
    add_code(engine, settings, "55501", "short", mps=100)
    f = tmp_path / "list.txt"
    f.write_text("".join(f"+5255300{i:05d}\n" for i in range(6)))
    bid = create_from_file(engine, settings, f, NewBroadcast(sender="55501", text="Hola")).id
    with engine.begin() as conn:
        conn.execute(sa.update(broadcasts).where(broadcasts.c.id == bid).values(status="RUNNING"))
        ids = [
            i
            for (i,) in conn.execute(
                sa.select(messages.c.id)
                .where(messages.c.broadcast_id == bid)
                .order_by(messages.c.id)
            )
        ]
    return engine, bid, ids


def _states(engine: sa.Engine, ids: list[int]) -> list[tuple[str, str | None]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(messages.c.status, messages.c.gateway_id)
            .where(messages.c.id.in_(ids))
            .order_by(messages.c.id)
        ).all()
    return [(s, g) for s, g in rows]


def test_record_sent_keeps_a_receipt_that_came_first_and_touches_no_unclaimed_row(running):
    engine, bid, ids = running
    with engine.begin() as conn:
        claimed = messages_repo.claim(conn, bid, ids[:5], now=utcnow(), lease_s=60, route="sim")
        assert [c.id for c in claimed] == ids[:5]
        # a receipt before the send's answer (ENROUTE, its gateway id given), a cancelled one
        conn.execute(
            sa.update(messages)
            .where(messages.c.id == ids[1])
            .values(status="ENROUTE", gateway_id="early")
        )
        conn.execute(sa.update(messages).where(messages.c.id == ids[2]).values(status="CANCELLED"))
    with engine.begin() as conn:
        messages_repo.record_sent(
            conn,
            [
                (ids[0], "g0"),
                (ids[1], "g1"),  # the gateway's answer: its id wins over the receipt's
                (ids[2], "g2"),  # cancelled meanwhile: untouched
                (ids[3], None),  # no id in the answer
                (ids[4], "g4"),
                (ids[4], None),  # the same message twice: its id stays
                (ids[5], "g5"),  # never claimed (QUEUE): untouched
            ],
            utcnow(),
        )
    assert _states(engine, ids) == [
        ("SENT", "g0"),
        ("ENROUTE", "g1"),
        ("CANCELLED", None),
        ("SENT", None),
        ("SENT", "g4"),
        ("QUEUE", None),
    ]
    with engine.connect() as conn:
        sent = conn.execute(
            sa.select(messages.c.lease_until, messages.c.sent_at).where(messages.c.id == ids[0])
        ).one()
    assert sent.lease_until is None and sent.sent_at is not None


def test_a_claim_takes_only_queued_rows_of_a_running_broadcast(running):
    engine, bid, ids = running
    with engine.begin() as conn:
        first = messages_repo.claim(conn, bid, ids[:2], now=utcnow(), lease_s=60, route="sim")
        again = messages_repo.claim(conn, bid, ids[:3], now=utcnow(), lease_s=60, route="sim")
        none = messages_repo.claim(conn, bid, [], now=utcnow(), lease_s=60, route="sim")
    assert [c.id for c in first] == ids[:2]
    assert [c.id for c in again] == [ids[2]]  # the two already claimed are not claimed twice
    assert none == []
    with engine.begin() as conn:
        conn.execute(sa.update(broadcasts).where(broadcasts.c.id == bid).values(status="SUSPENDED"))
        assert messages_repo.claim(conn, bid, ids[3:], now=utcnow(), lease_s=60) == []
