"""The scheduler against an edit of the start time (seed 004's createBroadcastFromJson with a
broadcastId): the scheduler reads a broadcast as due, an edit moves its start later before the
START is written; the START must not win over the edit (issue 14). SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from broadcaster.config import Settings
from broadcaster.services import control
from broadcaster.services.broadcast_edit import edit_unstarted
from broadcaster.services.broadcasts import NewBroadcast, create_from_table, get_broadcast
from broadcaster.services.codes import add_code
from broadcaster.services.messages import one_row_table
from broadcaster.store.db import engine_for, upgrade
from broadcaster.store.models import broadcasts
from tests.support.inprocess import ListQueue

NUMBER = "+525512340001"


def _iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S")


def _start_at(engine, bid: int) -> datetime:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        got = conn.execute(sa.select(broadcasts.c.start_at).where(broadcasts.c.id == bid))
        return got.scalar_one()  # type: ignore[no-any-return]


def test_a_start_edited_to_later_holds_against_a_due_reading(database_url: str) -> None:
    upgrade(database_url)
    settings = Settings(database_url=database_url)
    engine = engine_for(database_url)
    add_code(engine, settings, "55501", "short")
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    soon, later = now + timedelta(minutes=2), now + timedelta(hours=1)
    req = NewBroadcast(sender="55501", text="Hi", at=_iso(soon))
    bid = int(create_from_table(engine, settings, one_row_table(NUMBER), req).id)
    due_reading = _start_at(engine, bid)  # what the scheduler read at `soon`
    # When an edit moves the start an hour later, after the scheduler read it as due
    edit = NewBroadcast(sender="55501", text="Hi again", at=_iso(later))
    edit_unstarted(engine, settings, bid, one_row_table(NUMBER), edit)
    queue = ListQueue()
    # Then the scheduler's START, bounded by its reading, does not start it
    assert control.start(engine, settings, queue, bid, due_by=due_reading) is False
    view = get_broadcast(engine, bid)
    assert view.status == "SCHEDULED" and queue.chunks == []
    # Once the edited start is reached, it starts, with the edited text
    assert control.start(engine, settings, queue, bid, due_by=_start_at(engine, bid)) is True
    view = get_broadcast(engine, bid)
    assert view.status == "RUNNING" and view.text == "Hi again"
    assert [b for b, _, _ in queue.chunks] == [bid]
