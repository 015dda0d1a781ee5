"""retry-failed through the real stack (API, Celery workers, beat, Redis, the simulator process):
a broadcast whose gateway refused some sends for good (ERROR: a 500 with no retry window left),
could not deliver others (UNDELIV) and refused texts too long (SEGMENTS_EXCEEDED, not retried)
finishes; retry-failed, twice (once in-process, once over HTTP), makes one new broadcast, and
each failed recipient gets exactly one new message, sent, and nobody else gets any."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
import sqlalchemy as sa

from broadcaster.domain.states import FINAL_STATES
from broadcaster.services import resend
from broadcaster.services.apikeys import create_key
from broadcaster.services.broadcasts import NewBroadcast, create_from_file, get_broadcast
from broadcaster.services.codes import add_code
from broadcaster.store.models import messages

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

FINAL = {s.value for s in FINAL_STATES}
N = 60
#: Every fifth recipient's name makes the text longer than the simulator's limit:
#: SEGMENTS_EXCEEDED, which a retry does not send again.
LONG_NAME = "X" * 60
MAX_TEXT_CHARS = 40


def _done(stack, bid: int) -> bool:
    view = get_broadcast(stack.engine, bid)
    return view.status == "COMPLETED" and set(view.counts) <= FINAL


def _by_recipient(stack, bid: int) -> dict[str, tuple[int, str]]:
    """recipient -> (message id, status) of broadcast ``bid``."""
    with stack.engine.connect() as conn:
        rows = conn.execute(
            sa.select(messages.c.recipient, messages.c.id, messages.c.status).where(
                messages.c.broadcast_id == bid
            )
        )
        return {r: (int(i), s) for r, i, s in rows}


def _post(url: str, key: str) -> tuple[int, dict]:
    req = urllib.request.Request(url, method="POST", headers={"Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_retry_failed_sends_each_failed_recipient_exactly_once(make_stack, database_url, tmp_path):
    sim = ("--dlr-delay-s", "0.2", "--dlr-mix", "DELIVRD=0.7,UNDELIV=0.3", "--seed", "18")
    stack = make_stack(
        database_url=database_url,
        simulator_args=(*sim, "--share-500", "0.2", "--max-text-chars", str(MAX_TEXT_CHARS)),
        # one attempt and no retry window: a 500 ends the message ERROR; no auto-suspend
        env={
            "BROADCASTER_GATEWAY_MAX_ATTEMPTS": "1",
            "BROADCASTER_RETRY_WINDOW_S": "0",
            "BROADCASTER_AUTO_SUSPEND_FAILURES": "1000000",
        },
    )
    path = tmp_path / "list.csv"
    path.write_text(
        "phone,name\n"
        + "".join(f"+5255{n:08d},{LONG_NAME if n % 5 == 0 else f'N{n}'}\n" for n in range(1, N + 1))
    )
    add_code(stack.engine, stack.settings, "55518", "short", mps=500)
    src = create_from_file(
        stack.engine, stack.settings, path, NewBroadcast(sender="55518", text="Hi {name}")
    ).id
    # Given a finished broadcast with ERROR and UNDELIV messages
    stack.wait(lambda: _done(stack, src), 180, "the first broadcast finished")
    first = _by_recipient(stack, src)
    failed = {r for r, (_, s) in first.items() if s in ("ERROR", "UNDELIV")}
    statuses = {s for _, s in first.values()}
    assert {"ERROR", "UNDELIV", "DELIVRD"} <= statuses, statuses
    too_long = {r for r, (_, s) in first.items() if s == "SEGMENTS_EXCEEDED"}
    assert too_long and too_long <= {f"+5255{n:08d}" for n in range(5, N + 1, 5)}
    # and a gateway that now takes every send and delivers it
    stack.sim(
        "/_sim/config", {"max_text_chars": 1600, "share_500": 0.0, "dlr_mix": {"DELIVRD": 1.0}}
    )
    accepted_before = stack.sim("/_sim/stats")["accepted_total"]
    # When retry-failed is asked twice: in-process, then over HTTP with the workspace's key
    made = resend.retry_failed(stack.engine, src)
    key = create_key(stack.engine, "default").key
    status, body = _post(
        f"http://127.0.0.1:{stack.dev.api_port}/v1/broadcasts/{src}/retry-failed", key
    )
    assert made.created and (status, body["id"], body["retryOf"]) == (200, made.view.id, src)
    retry = made.view.id
    stack.wait(lambda: _done(stack, retry), 180, "the retry broadcast finished")
    # Then each failed recipient got exactly one new message, sent and delivered; nobody else
    second = _by_recipient(stack, retry)
    assert set(second) == failed and not too_long & set(second)
    assert {s for _, s in second.values()} == {"DELIVRD"}
    stats = stack.sim("/_sim/stats")
    assert stats["accepted_total"] - accepted_before == len(failed)
    assert stats["duplicates"] == []
    for message_id, _ in second.values():
        seen = stack.sim(f"/_sim/stats/external/{message_id}")
        assert seen["count"] == 1, seen
    # and a third call, after it finished, still answers the same broadcast
    assert resend.retry_failed(stack.engine, src).view.id == retry
    errors = sum(1 for _, s in first.values() if s == "ERROR")
    print(f"{N} recipients: {errors} ERROR, {len(failed) - errors} UNDELIV, each re-sent once")
