"""Crashes: Celery workers killed with SIGKILL (their supervisors, not the test, start them again),
Redis restarted empty, a gateway failing 20 % of the time.

At the end every recipient's externalId was accepted by the gateway exactly once, no message is
left QUEUE or DEQUEUED, and expected equals the sum of final states. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest

from broadcaster.domain.states import FINAL_STATES, SENT_STATES
from broadcaster.services.broadcasts import NewBroadcast, create_from_file, get_broadcast
from broadcaster.services.codes import add_code
from tests.support.recipients import write_recipients

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

N = 20_000
#: The longest the gateway may see no new message before the test gives up (a crash and a
#: supervisor's restart take seconds; a loaded machine is slow, which is no failure).
STALL_S = 120.0
FAULTS = (
    "--share-429",
    "0.05",
    "--retry-after-s",
    "0.2",
    "--share-500",
    "0.05",
    "--share-slow",
    "0.04",
    "--slow-s",
    "2",
    "--share-drop-before",
    "0.03",
    "--share-drop-after",
    "0.03",
    "--dlr-delay-s",
    "0.2",
)
# Short lease and re-dispatch windows so recovery happens within the test's minutes.
ENV = {
    "BROADCASTER_GATEWAY_TIMEOUT_S": "1",
    "BROADCASTER_LEASE_S": "12",
    "BROADCASTER_REDISPATCH_AFTER_S": "5",
    "BROADCASTER_GATEWAY_MAX_ATTEMPTS": "8",
}


def test_kill_workers_and_restart_redis_mid_broadcast(
    make_stack, redis_server, database_url, tmp_path
):
    stack = make_stack(database_url=database_url, simulator_args=FAULTS, env=ENV)
    write_recipients(tmp_path / "list.csv", N, seed=3)
    add_code(stack.engine, stack.settings, "55503", "short", mps=2000)
    bid = create_from_file(
        stack.engine,
        stack.settings,
        tmp_path / "list.csv",
        NewBroadcast(sender="55503", text="Aviso {name}: saldo <1>"),
    ).id

    def accepted() -> int:
        return stack.sim("/_sim/stats")["accepted_total"]

    # Three SIGKILLs of a Celery worker and its pool mid-send, and one Redis restart (queue
    # lost). Nothing here starts a process again: the supervisor each Procfile process runs
    # under (broadcaster worker / beat) does, as it would in a deployment.
    t0 = time.monotonic()
    kills: Counter[str] = Counter()
    for threshold, victim in (
        (2_000, "worker-send"),
        (6_000, "worker-control"),
        (10_000, "worker-send"),
    ):
        stack.wait_progress(accepted, threshold, STALL_S, f"{threshold} accepted")
        print(f"{time.monotonic() - t0:6.1f}s {threshold} accepted, killing {victim}'s Celery")
        before = stack.celery_restarts()[victim]
        stack.crash_celery(victim)
        kills[victim] += 1
        stack.wait(
            lambda v=victim, b=before: stack.celery_restarts()[v] > b,
            60,
            f"{victim}'s supervisor to start Celery again",
        )
    stack.wait_progress(accepted, 14_000, STALL_S, "14000 accepted")
    print(f"{time.monotonic() - t0:6.1f}s 14000 accepted, restarting Redis")
    redis_server.restart()

    def done() -> bool:
        """Every message sent or ended (a receipt the loaded simulator fails to post may leave
        one SENT: sending, not receipts, is what the crashes test)."""
        view = get_broadcast(stack.engine, bid)
        ended = {s.value for s in FINAL_STATES | SENT_STATES}
        return view.status == "COMPLETED" and set(view.counts) <= ended

    # A Celery process that kombu lets die on the broker restart is started again by its own
    # supervisor too.
    stack.wait_progress(accepted, N - 50, 2 * STALL_S, "nearly all accepted")
    print(
        f"{time.monotonic() - t0:6.1f}s {accepted()} accepted; Celery restarts by the "
        f"supervisors: {stack.celery_restarts()}"
    )
    stack.wait(done, 300, "every message in a final state")
    print(f"{time.monotonic() - t0:6.1f}s all final")
    view = get_broadcast(stack.engine, bid)
    counts = view.counts
    stats = stack.sim("/_sim/stats")
    sent = sum(n for s, n in counts.items() if s in {x.value for x in SENT_STATES})
    assert stats["duplicates"] == []  # nobody twice
    assert (
        stats["accepted_total"] == sent
    )  # every accepted message is known as sent, and only those
    assert sum(counts.values()) == view.expected_messages == N  # nobody lost
    assert counts.get("ERROR", 0) <= N * 0.001, counts  # retries ride out 20 % faults
    assert stats["faults"], "the simulator injected faults"
    # every process the stack started is the one still running: none was started again here
    stack.assert_alive()
    restarts = stack.celery_restarts()
    assert all(restarts[v] >= n for v, n in kills.items()), (restarts, kills)
