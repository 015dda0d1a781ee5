"""Redis killed and restarted twice, PostgreSQL restarted once, mid-broadcast: the processes of
the Procfile (API, send and control workers, beat, drop-folder watcher) ride it all out on their
own. Nothing here restarts a process: every one is still alive and serving afterwards, the
broadcast completes, nobody gets a message twice and nobody is lost.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest

from broadcaster.domain.states import FINAL_STATES, SENT_STATES
from broadcaster.services.apikeys import create_key
from broadcaster.services.broadcasts import NewBroadcast, create_from_file, get_broadcast
from broadcaster.services.codes import add_code
from tests.support.recipients import write_recipients
from tests.support.stack import Stack

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

N = 20_000
#: Throttled so that the outages fall mid-broadcast (~40 s of sending at full speed).
MPS = 500
#: How long each dependency stays down: long enough for every process to notice.
DOWN_S = 3.0
ENV = {
    "BROADCASTER_LEASE_S": "12",
    "BROADCASTER_REDISPATCH_AFTER_S": "5",
    "BROADCASTER_GATEWAY_TIMEOUT_S": "2",
}


def _api(stack: Stack, path: str, key: str) -> tuple[int, dict]:
    req = urllib.request.Request(
        f"http://127.0.0.1:{stack.dev.api_port}{path}", headers={"Authorization": f"Bearer {key}"}
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def test_every_process_rides_out_redis_and_postgres_restarts(
    make_stack, redis_server, private_pg, tmp_path
):
    stack = make_stack(database_url=private_pg.url, env=ENV)
    drop = tmp_path / "dropbox"
    (drop / "inbox").mkdir(parents=True)
    (drop / "defaults.json").write_text(json.dumps({"from": "55504", "text": "Hola {name}"}))
    stack.dev.start_watch(drop)
    write_recipients(tmp_path / "list.csv", N, seed=5)
    add_code(stack.engine, stack.settings, "55504", "short", mps=MPS)
    key = create_key(stack.engine, "default").key
    bid = create_from_file(
        stack.engine,
        stack.settings,
        tmp_path / "list.csv",
        NewBroadcast(sender="55504", text="Aviso {name}: saldo <1>"),
    ).id

    def accepted() -> int:
        return stack.sim("/_sim/stats")["accepted_total"]

    t0 = time.monotonic()
    outages: list[str] = []
    # Given a broadcast under way, when Redis is SIGKILLed (its queues and buckets lost) and
    # started again, then PostgreSQL is restarted, then Redis once more...
    for threshold, what in ((2_000, "redis"), (7_000, "postgres"), (12_000, "redis")):
        stack.wait(lambda t=threshold: accepted() >= t, 180, f"{threshold} accepted")
        print(f"{time.monotonic() - t0:6.1f}s {accepted()} accepted, {what} goes down")
        if what == "redis":
            redis_server.stop()  # SIGKILL
            time.sleep(DOWN_S)
            redis_server.start()
        else:
            private_pg.stop()
            status, problem = _api(stack, f"/v1/broadcasts/{bid}", key)
            # ...the API answers a clean 503 while the database is down, not a 500 or a hang
            assert status == 503, (status, problem)
            assert "database" in problem["detail"], problem
            time.sleep(DOWN_S)
            private_pg.start()
        outages.append(f"{what} at {threshold}")
        stack.assert_alive()

    # ...then, without any process restarted by the test, the broadcast completes.
    def done() -> bool:
        view = get_broadcast(stack.engine, bid)
        return view.status == "COMPLETED" and set(view.counts) <= {s.value for s in FINAL_STATES}

    stack.wait(done, 300, "every message in a final state")
    print(
        f"{time.monotonic() - t0:6.1f}s all final after {outages}; Celery restarts by the "
        f"supervisors: {stack.celery_restarts()}"
    )
    view = get_broadcast(stack.engine, bid)
    counts, stats = view.counts, stack.sim("/_sim/stats")
    sent = sum(n for s, n in counts.items() if s in {x.value for x in SENT_STATES})
    assert stats["duplicates"] == []  # nobody twice
    assert stats["accepted_total"] == sent
    assert sum(counts.values()) == view.expected_messages == N  # nobody lost
    assert counts.get("ERROR", 0) == 0, counts

    # Every process is alive and serving: the API reads the database again...
    stack.assert_alive()
    status, body = _api(stack, f"/v1/broadcasts/{bid}", key)
    assert status == 200 and body["status"] == "COMPLETED", (status, body)
    # ...the watcher imports a file dropped now, and the workers send it.
    small = tmp_path / "after.csv"
    write_recipients(small, 5, seed=6)
    small.rename(drop / "inbox" / "after.csv")
    done_dir = drop / "done"
    stack.wait(lambda: (done_dir / "after.csv.result.json").exists(), 60, "the watcher's import")
    after = json.loads((done_dir / "after.csv.result.json").read_text())["broadcastId"]
    stack.wait(
        lambda: get_broadcast(stack.engine, after).status == "COMPLETED",
        60,
        "the file dropped after the outages to be sent",
    )
    assert stack.sim("/_sim/stats")["accepted_total"] == N + 5
    stack.assert_alive()
