"""Bulkheads in the beat tick: a sender code that routes nowhere (a provider that does not exist,
an account removed from BROADCASTER_ACCOUNTS) cannot stall the broadcasts of good codes.

The broken codes are written straight into the database, as an old row or a hand edit would be
(``codes add`` refuses such codes).
"""

from __future__ import annotations

import os
import signal
import urllib.request
from pathlib import Path

from broadcaster.services.apikeys import create_key
from broadcaster.services.broadcasts import NewBroadcast, create_from_file, get_broadcast
from broadcaster.services.codes import add_code
from broadcaster.store import codes_repo
from tests.support.recipients import write_recipients


def _insert_code(engine, code: str, *, provider: str | None, account: str | None) -> None:
    with engine.begin() as conn:
        ws = codes_repo.ensure_workspace(conn, codes_repo.DEFAULT_WORKSPACE)
        codes_repo.insert_code(
            conn, ws, code=code, kind="short", mps=100, provider=provider, account=account
        )


def test_a_broken_code_beside_a_good_broadcast(make_stack, tmp_path):
    stack = make_stack()
    write_recipients(tmp_path / "list.csv", 300, seed=11)
    add_code(stack.engine, stack.settings, "55505", "short", mps=1000)
    _insert_code(stack.engine, "12346", provider="kanel", account=None)  # a typo of kannel
    _insert_code(stack.engine, "12347", provider=None, account="gone")  # account removed
    ids = {}
    for code in ("12346", "12347", "55505"):
        ids[code] = create_from_file(
            stack.engine,
            stack.settings,
            tmp_path / "list.csv",
            NewBroadcast(sender=code, text="Hola {name}", name=f"on {code}"),
        ).id

    # The good broadcast completes although every tick meets the broken codes...
    stack.wait(
        lambda: get_broadcast(stack.engine, ids["55505"]).status == "COMPLETED",
        120,
        "the broadcast on the good code to complete",
    )
    # ...and the broadcasts on the broken codes are suspended, saying why.
    for code, cause in (("12346", "kanel"), ("12347", "gone")):
        stack.wait(
            lambda c=code: get_broadcast(stack.engine, ids[c]).status == "SUSPENDED",
            60,
            f"the broadcast on {code} to be suspended",
        )
        reason = get_broadcast(stack.engine, ids[code]).status_reason
        assert code in reason and cause in reason, reason
    assert stack.sim("/_sim/stats")["accepted_by_sender"] == {"55505": 300}

    # The tick counted each one in its failure metric.
    key = create_key(stack.engine, "ops").key
    req = urllib.request.Request(
        f"http://127.0.0.1:{stack.dev.api_port}/metrics",
        headers={"Authorization": f"Bearer {key}"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        text = resp.read().decode()
    line = next(
        (ln for ln in text.splitlines() if ln.startswith("broadcaster_tick_step_failures_total")),
        "",
    )
    assert 'step="route"' in line and float(line.rsplit(" ", 1)[1]) >= 2, line
    stack.assert_alive()


def _children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def test_a_celery_worker_that_dies_is_started_again_by_its_supervisor(make_stack, tmp_path):
    """What kombu sometimes does on a Redis restart (the consumer dies), done by hand: the
    Celery process under ``broadcaster worker send`` is SIGKILLed; its supervisor logs why and
    starts it again, and a broadcast sent afterwards completes. The test restarts nothing."""
    stack = make_stack(send_workers=1)
    supervisor = stack.dev.procs["worker-send"].pid
    stack.wait(lambda: bool(_children(supervisor)), 30, "the Celery worker under its supervisor")
    (celery,) = _children(supervisor)
    os.kill(celery, signal.SIGKILL)
    stack.wait(
        lambda: _children(supervisor) not in ([], [celery]),
        30,
        "the supervisor to start Celery again",
    )
    assert "worker send killed by SIGKILL" in stack.logs("worker-send")
    assert stack.celery_restarts()["worker-send"] == 1

    write_recipients(tmp_path / "list.csv", 200, seed=12)
    add_code(stack.engine, stack.settings, "55506", "short", mps=1000)
    bid = create_from_file(
        stack.engine, stack.settings, tmp_path / "list.csv", NewBroadcast(sender="55506", text="Hi")
    ).id
    stack.wait(lambda: get_broadcast(stack.engine, bid).status == "COMPLETED", 120, "the broadcast")
    assert stack.sim("/_sim/stats")["accepted_total"] == 200
    stack.assert_alive()
