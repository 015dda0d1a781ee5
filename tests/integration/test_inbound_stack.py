"""The two-way loop through the real stack (API, workers, beat, simulator): replies in three
languages suppress their numbers in the next broadcast, a STOP mid-broadcast on a 1 msg/s long
code stops that number's message, each keyword is confirmed exactly once, START undoes it, and
every message is counted once (issue 13, "Done means")."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from broadcaster.domain.states import FAILED_STATES, FINAL_STATES, SENT_STATES
from broadcaster.services.broadcasts import NewBroadcast, create_from_file, get_broadcast
from broadcaster.services.codes import add_code
from broadcaster.services.views import BroadcastDetail
from broadcaster.store.models import broadcasts, messages, optouts

CODE = "15550100"  # a long code
PHONES = [f"+52553000{n:04d}" for n in range(1, 12)]
SETTLED = FINAL_STATES | SENT_STATES


def _mo(stack: Any, sender: str, text: str, gid: str | None = None) -> dict[str, Any]:
    body = {"from": sender, "to": CODE, "text": text, **({"id": gid} if gid else {})}
    got = stack.sim("/_sim/mo", body)
    assert got["status"] == 200, got
    return got["answer"]


def _settled(stack: Any, bid: int) -> bool:
    view = get_broadcast(stack.engine, bid)
    return view.status == "COMPLETED" and set(view.counts) <= {s.value for s in SETTLED}


def _broadcast(stack: Any, tmp_path: Any, numbers: list[str], name: str) -> int:
    f = tmp_path / f"{name}.txt"
    f.write_text("".join(f"{n}\n" for n in numbers))
    req = NewBroadcast(sender=CODE, text="Sale today. Reply STOP to opt out", start_now=True)
    return int(create_from_file(stack.engine, stack.settings, f, req).id)


def _confirmations(stack: Any) -> list[tuple[str, int, str]]:
    """(recipient, message id, status) of every confirmation message."""
    with stack.engine.connect() as conn:
        rows = conn.execute(
            sa.select(messages.c.recipient, messages.c.id, messages.c.status)
            .join(broadcasts, broadcasts.c.id == messages.c.broadcast_id)
            .where(broadcasts.c.reply_to_inbound.is_not(None))
            .order_by(messages.c.id)
        )
        return [(r, int(i), s) for r, i, s in rows]


def _counts_add_up(stack: Any, bid: int) -> BroadcastDetail:
    view = get_broadcast(stack.engine, bid)
    assert sum(view.counts.values()) == view.expected_messages, view
    sent = sum(n for s, n in view.counts.items() if s in {x.value for x in SENT_STATES})
    assert view.sent_messages == sent, view
    return view


def test_stop_arret_baja_and_a_stop_mid_broadcast_through_the_stack(make_stack, tmp_path) -> None:
    stack = make_stack()
    add_code(stack.engine, stack.settings, CODE, "long", mps=1)
    api = f"http://127.0.0.1:{stack.dev.api_port}"
    inbound_url = f"{api}/v1/inbound/simulator?secret={stack.settings.dlr_secret}"
    stack.sim("/_sim/mo/config", {"inbound_url": inbound_url})
    a, b, c = PHONES[:3]

    # When three subscribers answer STOP, ARRÊT and BAJA (a gateway retry of the first)
    first = _mo(stack, a, "STOP", "mo-a")
    retried = _mo(stack, a, "STOP", "mo-a")
    assert retried["id"] == first["id"] and not retried["new"]
    for sender, word in ((b, "ARRÊT"), (c, "baja")):
        assert _mo(stack, sender, word)["keyword"] == "OPT_OUT"
    assert first["keyword"] == "OPT_OUT" and first["known"]

    # Then each gets one confirmation, sent through the gateway
    def confirmed() -> bool:
        got = _confirmations(stack)
        return len(got) == 3 and all(s in {x.value for x in SENT_STATES} for _, _, s in got)

    stack.wait(confirmed, 60, "three confirmations sent")
    assert sorted(r for r, _, _ in _confirmations(stack)) == sorted([a, b, c])
    for _, mid, _ in _confirmations(stack):  # the gateway got each exactly once
        assert stack.sim(f"/_sim/stats/external/{mid}")["count"] == 1

    # When the next broadcast goes to them and two others
    bid = _broadcast(stack, tmp_path, [a, b, c, PHONES[3], PHONES[4]], "next")
    stack.wait(lambda: _settled(stack, bid), 60, "the next broadcast settled")
    # Then the three are BLACKLISTED, never sent; the others went; counts add up
    st = stack.statuses(bid)
    assert [st[n] for n in (a, b, c)] == ["BLACKLISTED"] * 3
    assert {st[PHONES[3]], st[PHONES[4]]} <= {x.value for x in SENT_STATES}
    view = _counts_add_up(stack, bid)
    # (the simulator answers 5 % of deliveries UNDELIV: a failure too, beside the three refused)
    undelivered = sum(st[n] in {x.value for x in FAILED_STATES} for n in PHONES[3:5])
    assert view.failed_messages == 3 + undelivered and view.sent_messages == 2

    # When a recipient answers STOP while a 1 msg/s broadcast is still sending
    late = PHONES[10]
    mid_b = _broadcast(stack, tmp_path, PHONES[5:11], "mid")
    stack.wait(
        lambda: sum(s != "QUEUE" for s in stack.statuses(mid_b).values()) >= 1,
        30,
        "the first message of the slow broadcast sent",
    )
    assert stack.statuses(mid_b)[late] == "QUEUE"
    _mo(stack, late, "Stop")
    stack.wait(lambda: _settled(stack, mid_b), 90, "the slow broadcast settled")
    # Then that number's message ended BLACKLISTED, the others were sent, counts add up
    st = stack.statuses(mid_b)
    assert st[late] == "BLACKLISTED", st
    assert {st[n] for n in PHONES[5:10]} <= {x.value for x in SENT_STATES}, st
    _counts_add_up(stack, mid_b)

    # When A answers START: one more confirmation, A's entry gone, the next broadcast reaches A
    assert _mo(stack, a, "START")["keyword"] == "OPT_IN"
    with stack.engine.connect() as conn:
        listed = {n for (n,) in conn.execute(sa.select(optouts.c.number))}
    assert listed == {b, c, late}
    again = _broadcast(stack, tmp_path, [a, b], "again")
    stack.wait(lambda: _settled(stack, again), 60, "the broadcast after START settled")
    st = stack.statuses(again)
    assert st[a] in {x.value for x in SENT_STATES} and st[b] == "BLACKLISTED"
    stack.wait(lambda: len(_confirmations(stack)) == 5, 30, "STOP (late) and START confirmed")
    got = _confirmations(stack)
    assert sorted(r for r, _, _ in got) == sorted([a, b, c, late, a])
    stack.assert_alive()
