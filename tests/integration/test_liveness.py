"""The supervisor's liveness probe with real processes: a send worker whose Celery process stays
alive but stops answering (SIGSTOP, as a consumer that silently stopped after a broker reconnect)
is stopped and started again by ``broadcaster worker send``'s own supervisor, and the new one
sends; while Redis itself is down the silent worker is left alone to reconnect.

Small probe settings (``BROADCASTER_LIVENESS_*``) keep it quick; the waits are generous, the
machine is shared.
"""

from __future__ import annotations

import os
import signal
import socket
import time

import psutil
import pytest
from celery import Celery

from broadcaster.services.broadcasts import NewBroadcast, create_from_file, get_broadcast
from broadcaster.services.codes import add_code
from tests.support.recipients import write_recipients
from tests.support.stack import Stack

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

ENV = {
    "BROADCASTER_LIVENESS_INTERVAL_S": "1",
    "BROADCASTER_LIVENESS_TIMEOUT_S": "3",
    "BROADCASTER_LIVENESS_FAILURES": "3",
    "BROADCASTER_LIVENESS_GRACE_S": "30",
    "BROADCASTER_LIVENESS_KILL_GRACE_S": "5",
}
#: How long Redis stays down: several probe intervals (and more than three failed pings).
DOWN_S = 8.0
#: The supervisor's line when it stops a silent worker.
HUNG = "did not answer 3 pings in a row"


def _answers(broker_url: str, node: str) -> bool:
    """The Celery node answers a ping through the broker (an app of the test's own)."""
    app = Celery("liveness-test", broker=broker_url, set_as_current=False)
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1)
            replies = app.control.ping(destination=[node], timeout=2, connection=conn)
        return any(node in reply for reply in replies)
    except Exception:  # Redis still away
        return False


def _celery(stack: Stack, supervisor: psutil.Process) -> psutil.Process:
    """The supervisor's one child: the Celery worker's main process."""
    found: list[psutil.Process] = []

    def one_child() -> bool:
        found[:] = supervisor.children()
        return len(found) == 1

    stack.wait(one_child, 60, "the Celery worker under its supervisor")
    return found[0]


def test_a_silent_worker_is_restarted_but_not_while_redis_is_down(
    make_stack, redis_server, tmp_path
):
    stack = make_stack(send_workers=1, env=ENV)
    supervisor = psutil.Process(stack.dev.procs["worker-send"].pid)
    node = f"send@{socket.gethostname()}"  # devstack's -n send@%h
    celery = _celery(stack, supervisor)
    stack.wait(lambda: _answers(redis_server.url, node), 120, f"{node} to answer a ping")

    # Given Redis down for several probe intervals: the worker cannot answer, and is left alone...
    redis_server.stop()  # SIGKILL
    time.sleep(DOWN_S)
    assert supervisor.children() == [celery], stack.logs("worker-send")
    redis_server.start()
    # ...and it reconnects by itself, the same process.
    stack.wait(lambda: _answers(redis_server.url, node), 120, f"{node} to reconnect")
    log = stack.logs("worker-send")
    assert "Redis does not answer; not judging Celery node" in log, log
    assert HUNG not in log and supervisor.children() == [celery], log

    # When the Celery process hangs (alive, answering nothing)...
    pool = celery.children()
    assert pool, "a prefork worker has pool processes"
    os.kill(celery.pid, signal.SIGSTOP)
    # ...its supervisor stops it (SIGTERM cannot reach a stopped process: SIGKILL after the grace)
    # and starts a new one, with no help from the test.
    stack.wait(
        lambda: supervisor.children() not in ([], [celery]) and HUNG in stack.logs("worker-send"),
        180,
        "the supervisor to replace the silent worker",
    )
    log = stack.logs("worker-send")
    assert f"Celery node {node} {HUNG}" in log, log
    assert "worker send killed by SIGKILL" in log, log
    assert stack.celery_restarts()["worker-send"] == 1
    assert not celery.is_running() or celery.status() == psutil.STATUS_ZOMBIE
    for proc in pool:  # its pool went with it
        assert not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE, proc

    # The new worker answers and takes the send tasks (it is the only send worker).
    stack.wait(lambda: _answers(redis_server.url, node), 120, "the new worker to answer a ping")
    write_recipients(tmp_path / "list.csv", 50, seed=21)
    add_code(stack.engine, stack.settings, "55508", "short", mps=1000)
    bid = create_from_file(
        stack.engine, stack.settings, tmp_path / "list.csv", NewBroadcast(sender="55508", text="Hi")
    ).id
    stack.wait(lambda: get_broadcast(stack.engine, bid).status == "COMPLETED", 180, "the broadcast")
    assert stack.sim("/_sim/stats")["accepted_total"] == 50
    assert stack.celery_restarts()["worker-send"] == 1
    stack.assert_alive()
