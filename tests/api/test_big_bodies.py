"""Many big bodies at once (issue 11: no request can exhaust the API's memory), against a real
``broadcaster api`` process.

Each body was capped at 16 MiB and its parse charged to a budget, but nothing bounded how many
were held together: one tenant within its request rate could post a hundred at once. A body of
1 MiB or more now takes one of ``big_bodies`` slots of the process for its request, at most
``big_bodies_per_workspace`` of them per workspace.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from broadcaster.config import Settings
from broadcaster.services.apikeys import create_key
from broadcaster.services.codes import add_code
from broadcaster.store.db import engine_for, upgrade
from broadcaster.store.models import broadcasts
from tests.support.services import RedisServer, free_port, wait_port

#: A body over the 1 MiB line that is refused after its parse (no sender code "99999"), so a
#: request that gets through the gate stores nothing.
BIG = json.dumps({"from": "99999", "text": "x", "pad": "x" * 1_200_000}).encode()
#: How long a test waits for a state the server reaches on its own (not a sleep: polled).
SETTLE_S = 60.0


@dataclass
class Api:
    proc: subprocess.Popen[bytes]
    port: int
    keys: dict[str, str]
    url: str

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def post_big(self, workspace: str) -> requests.Response:
        headers = {
            "Authorization": f"Bearer {self.keys[workspace]}",
            "Content-Type": "application/json",
        }
        return requests.post(self.base + "/v1/broadcasts", data=BIG, headers=headers, timeout=60)

    def serves(self, workspace: str) -> bool:
        headers = {"Authorization": f"Bearer {self.keys[workspace]}"}
        return requests.get(self.base + "/v1/codes", headers=headers, timeout=30).ok

    def hold_big(self, workspace: str) -> socket.socket:
        """A client that announces a 4 MB body, sends a little of it and then nothing."""
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        sock.sendall(
            (
                "POST /v1/broadcasts HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: Bearer {self.keys[workspace]}\r\n"
                "Content-Type: application/json\r\nContent-Length: 4000000\r\n\r\n"
                '{"from": "55501", "pad": "'
            ).encode()
        )
        return sock


@pytest.fixture
def api(tmp_path: Path, redis_server: RedisServer) -> Iterator[Api]:
    url = f"sqlite:///{tmp_path / 'gate.db'}"
    upgrade(url)
    engine = engine_for(url)
    keys = {ws: create_key(engine, ws).key for ws in ("acme", "globex", "initech")}
    add_code(engine, Settings(database_url=url), "55501", "short", workspace="acme")
    port = free_port()
    env = {
        **os.environ,
        "BROADCASTER_DATABASE_URL": url,
        "BROADCASTER_REDIS_URL": redis_server.url,
        "BROADCASTER_API_BIG_BODIES": "2",
        "BROADCASTER_API_BIG_BODIES_PER_WORKSPACE": "1",
        "BROADCASTER_API_BIG_BODY_WAIT_S": "1",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "broadcaster", "api", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "api.log").open("wb"),
    )
    try:
        wait_port(port, timeout_s=30)
        yield Api(proc, port, keys, url)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


#: Pause between two polls: a tight loop would meet the key's own rate limit (a 429 too).
POLL_S = 0.1


def _until(status: int, call: Callable[[], requests.Response]) -> requests.Response:
    """Call until the answer has ``status`` (the server reaches it by itself); fail after a while.
    ``status`` 0: any answer that is not a wait (429 or 503)."""
    deadline = time.monotonic() + SETTLE_S
    while True:
        resp = call()
        done = resp.status_code not in (429, 503) if status == 0 else resp.status_code == status
        if done or time.monotonic() > deadline:
            return resp
        time.sleep(POLL_S)


def test_big_bodies_take_bounded_slots_per_process_and_per_workspace(api: Api) -> None:
    # Given acme holds its one slot with a body it never finishes sending...
    held_acme = api.hold_big("acme")
    # ...its next big body is a 429 naming the limit, at once...
    resp = _until(429, lambda: api.post_big("acme"))
    assert resp.status_code == 429, resp.text[:300]
    assert "big_bodies_per_workspace" in resp.json()["detail"]
    assert resp.headers["Retry-After"] == "1"
    # ...and when globex holds the process's second slot the same way...
    held_globex = api.hold_big("globex")
    assert _until(429, lambda: api.post_big("globex")).status_code == 429
    # ...a third tenant's big body waits its second and is a 503 naming the limit...
    resp = api.post_big("initech")
    assert resp.status_code == 503, resp.text[:300]
    assert "big_bodies" in resp.json()["detail"] and resp.headers["Retry-After"] == "1"
    # ...while small requests of everyone are still answered
    assert api.serves("initech") and api.serves("acme")

    # When acme's client goes away, its slot comes back: initech's body is read and answered
    # (a 422: the body names no recipients; nothing stored)
    held_acme.close()
    resp = _until(0, lambda: api.post_big("initech"))
    assert resp.status_code == 422, resp.text[:300]
    held_globex.close()
    with engine_for(api.url).connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(broadcasts)).scalar_one() == 0
    assert api.proc.poll() is None and api.serves("globex")
