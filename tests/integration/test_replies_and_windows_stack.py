"""Two parts of issue 13 through the real stack (API, workers, beat, simulator as processes), with
no hand-run tick and no test clock: the simulator's own subscribers answering STOP (its
``share_stop``, what the README's replies session uses), and a send window closed in one zone
and open in another at the real time of the run."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from broadcaster.domain.states import SENT_STATES
from broadcaster.services import control
from broadcaster.services.broadcasts import NewBroadcast, create_from_file, get_broadcast
from broadcaster.services.codes import add_code
from broadcaster.store.models import broadcasts, messages, optouts

pytestmark = pytest.mark.slow

CODE = "55560"
SENT = {s.value for s in SENT_STATES}
SETTLE_S = 90
#: Land lines: New York (+1 212) is always three hours ahead of San Francisco (+1 415).
NEW_YORK = [f"+1212555{i:04d}" for i in range(200, 203)]
SAN_FRANCISCO = [f"+1415555{i:04d}" for i in range(200, 202)]


def _create(stack: Any, tmp_path: Any, numbers: list[str], name: str, **fields: Any) -> int:
    f = tmp_path / f"{name}.txt"
    f.write_text("".join(f"{n}\n" for n in numbers))
    req = NewBroadcast(sender=CODE, text="Sale today. Reply STOP to opt out", **fields)
    return int(create_from_file(stack.engine, stack.settings, f, req).id)


def _confirmed(stack: Any) -> list[str]:
    """Recipients of every sent keyword confirmation."""
    with stack.engine.connect() as conn:
        rows = conn.execute(
            sa.select(messages.c.recipient, messages.c.status)
            .join(broadcasts, broadcasts.c.id == messages.c.broadcast_id)
            .where(broadcasts.c.reply_to_inbound.is_not(None))
        )
        return sorted(r for r, s in rows if s in SENT)


def _completed(stack: Any, bid: int) -> bool:
    return get_broadcast(stack.engine, bid).status == "COMPLETED"


def test_the_simulators_subscribers_answer_stop_and_the_loop_closes(make_stack, tmp_path):
    stack = make_stack()
    add_code(stack.engine, stack.settings, CODE, "short", mps=50)
    inbound_url = (
        f"http://127.0.0.1:{stack.dev.api_port}/v1/inbound/simulator"
        f"?secret={stack.settings.dlr_secret}"
    )
    # Given a simulator whose every subscriber answers STOP a moment after a message
    config = {"inbound_url": inbound_url, "share_stop": 1.0, "stop_delay_s": 0.2}
    assert stack.sim("/_sim/mo/config", config)["share_stop"] == 1.0
    first = [f"+52553100{n:04d}" for n in range(1, 5)]
    # When a broadcast reaches four of them
    bid = _create(stack, tmp_path, first, "first", start_now=True)
    stack.wait(lambda: _completed(stack, bid), SETTLE_S, "the first broadcast completed")
    # Then each answered STOP once, is on the suppression list and got one confirmation
    # (the simulator does not answer the confirmation: a number answers at most once)
    stack.wait(lambda: _confirmed(stack) == sorted(first), SETTLE_S, "four confirmations sent")
    with stack.engine.connect() as conn:
        listed = sorted(n for (n,) in conn.execute(sa.select(optouts.c.number)))
    assert listed == sorted(first)
    # When the next broadcast goes to them and one more
    newcomer = "+525531009999"
    again = _create(stack, tmp_path, [*first, newcomer], "again", start_now=True)
    stack.wait(lambda: _completed(stack, again), SETTLE_S, "the second broadcast completed")
    st = stack.statuses(again)
    assert [st[n] for n in first] == ["BLACKLISTED"] * 4 and st[newcomer] in SENT, st
    # and only the newcomer adds a STOP and a confirmation
    stack.wait(lambda: len(_confirmed(stack)) == 5, SETTLE_S, "the newcomer's STOP confirmed")
    assert _confirmed(stack) == sorted([*first, newcomer])
    stack.assert_alive()


def _window_open_in_san_francisco_only(now: datetime) -> str:
    """Three hours around San Francisco's hour: New York's hour (three later) is outside it."""
    hour = now.astimezone(ZoneInfo("America/Los_Angeles")).hour
    return f"{(hour - 1) % 24:02d}:00-{(hour + 2) % 24:02d}:00"


def test_a_send_window_holds_the_closed_zone_until_stopped(make_stack, tmp_path):
    stack = make_stack()
    add_code(stack.engine, stack.settings, CODE, "short", mps=50)
    window = _window_open_in_san_francisco_only(datetime.now(UTC))
    # When a broadcast with that window starts now for both coasts
    bid = _create(
        stack, tmp_path, NEW_YORK + SAN_FRANCISCO, "coasts", start_now=True, window=window
    )

    def west_sent() -> bool:
        st = stack.statuses(bid)
        return all(st[n] in SENT for n in SAN_FRANCISCO)

    stack.wait(west_sent, SETTLE_S, "San Francisco sent")
    # Then New York waits in the queue, counted as waiting, and the broadcast runs on
    view = get_broadcast(stack.engine, bid)
    st = stack.statuses(bid)
    assert [st[n] for n in NEW_YORK] == ["QUEUE"] * 3, st
    assert view.status == "RUNNING" and view.waiting_for_window == 3, view
    assert view.window == window and view.next_window_at is not None
    # (the sim got the two only)
    assert stack.sim("/_sim/stats")["accepted_total"] == 2
    # When the operator stops it, the waiting messages are cancelled and counts add up
    control.stop(stack.engine, bid)
    stack.wait(lambda: get_broadcast(stack.engine, bid).status == "STOPPED", SETTLE_S, "stopped")

    def cancelled() -> bool:
        return [stack.statuses(bid)[n] for n in NEW_YORK] == ["CANCELLED"] * 3

    stack.wait(cancelled, SETTLE_S, "New York cancelled")
    view = get_broadcast(stack.engine, bid)
    assert sum(view.counts.values()) == view.expected_messages == 5, view
    assert view.waiting_for_window == 0
    stack.assert_alive()
