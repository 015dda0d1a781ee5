"""Suspend, resume, stop and delete against real workers: nobody twice, nobody skipped."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa
from celery import Celery

from broadcaster.errors import InvalidTransition
from broadcaster.services import control
from broadcaster.services.broadcasts import NewBroadcast, create_from_file, get_broadcast
from broadcaster.services.codes import add_code
from broadcaster.store.models import messages
from tests.support.recipients import write_recipients

pytestmark = pytest.mark.slow

N = 3000


#: Messages a suspend may still let through: claimed before it, bounded by the workers'
#: concurrency (send workers x concurrent requests per chunk).
def in_flight_bound(stack) -> int:
    return stack.dev.send_workers * stack.settings.send_concurrency


def start_broadcast(stack, tmp_path, mps: float = 400):
    write_recipients(tmp_path / "list.csv", N)
    add_code(stack.engine, stack.settings, "55502", "short", mps=mps)
    view = create_from_file(
        stack.engine,
        stack.settings,
        tmp_path / "list.csv",
        NewBroadcast(sender="55502", text="Hola {name}"),
    )
    return view.id


def accepted(stack) -> int:
    return stack.sim("/_sim/stats")["accepted_total"]


def settle(stack, timeout_s: float = 5.0) -> int:
    """The simulator's accepted count once it stopped moving for a second."""
    last, since = accepted(stack), time.monotonic()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = accepted(stack)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= 1.0:
            break
    return last


def test_suspend_mid_run_then_resume_sends_each_recipient_once(make_stack, tmp_path):
    stack = make_stack()
    bid = start_broadcast(stack, tmp_path)
    stack.wait(lambda: accepted(stack) >= 500, 60, "500 sent")
    # When an operator suspends mid-run
    assert control.suspend(stack.engine, bid) == control.ControlResult(bid, "SUSPENDED")
    at_ack = accepted(stack)
    after = settle(stack)
    # Then at most the in-flight messages went out after the acknowledgement …
    assert after - at_ack <= in_flight_bound(stack)
    view = get_broadcast(stack.engine, bid)
    assert view.status == "SUSPENDED"
    assert view.counts.get("QUEUE", 0) == N - after  # … and the rest waits, unsent
    assert view.counts.get("DEQUEUED", 0) == 0
    # When it is resumed it finishes, and every recipient got exactly one message
    assert control.resume(stack.engine, stack.settings, None, bid).status == "RUNNING"
    stack.wait(lambda: get_broadcast(stack.engine, bid).status == "COMPLETED", 120, "COMPLETED")
    stats = stack.sim("/_sim/stats")
    assert stats["accepted_total"] == N
    assert stats["duplicates"] == []


def test_stop_mid_run_cancels_the_rest_and_counts_add_up(make_stack, tmp_path):
    stack = make_stack()
    bid = start_broadcast(stack, tmp_path)
    stack.wait(lambda: accepted(stack) >= 300, 60, "300 sent")
    result = control.stop(stack.engine, bid)
    assert result.status == "STOPPED" and result.cancelled > 0
    sent = settle(stack)

    def settled() -> bool:
        counts = get_broadcast(stack.engine, bid).counts
        return counts.get("DEQUEUED", 0) == 0 and counts.get("QUEUE", 0) == 0

    stack.wait(settled, 60, "no message left QUEUE or DEQUEUED")
    view = get_broadcast(stack.engine, bid)
    counts = view.counts
    assert sum(counts.values()) == view.expected_messages == N
    assert counts["CANCELLED"] == N - sent
    assert view.sent_messages == sent
    assert stack.sim("/_sim/stats")["duplicates"] == []
    with pytest.raises(InvalidTransition):
        control.resume(stack.engine, stack.settings, None, bid)  # stop is final


def test_delete_rules_and_tasks_by_name(make_stack, tmp_path):
    stack = make_stack()
    bid = start_broadcast(stack, tmp_path, mps=50)
    stack.wait(lambda: get_broadcast(stack.engine, bid).status == "RUNNING", 30, "RUNNING")
    # Delete refuses a RUNNING broadcast
    with pytest.raises(InvalidTransition, match="RUNNING"):
        control.delete(stack.engine, bid)
    # Admin scripts call the control tasks by their stable names
    app = Celery(broker=stack.dev.redis_url)
    app.send_task("workers.tasks.stop_broadcast", args=[bid], queue="control")
    stack.wait(lambda: get_broadcast(stack.engine, bid).status == "STOPPED", 30, "STOPPED via task")
    app.send_task("workers.tasks.delete_broadcast", args=[bid], queue="control")

    def gone() -> bool:
        with stack.engine.connect() as conn:
            left = conn.execute(
                sa.select(sa.func.count()).where(messages.c.broadcast_id == bid)
            ).scalar_one()
        return left == 0

    stack.wait(gone, 30, "messages removed")
    with pytest.raises(Exception, match="does not exist"):
        get_broadcast(stack.engine, bid)
