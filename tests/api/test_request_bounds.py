"""What one request can make (issue 11 item 2), against a real ``broadcaster api`` process.

A 114 KB batch of ``{0}`` x 3,333 with 1,000-character parameters used to render and store every
message in full (RSS 181 -> 786 MB, never given back), and a 60,000-character CSV cell under such
a template made one message of 199,980,000 characters.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests
import sqlalchemy as sa

from broadcaster.config import Settings
from broadcaster.constants import MAX_SENDABLE_CHARS, MAX_TEMPLATE_PLACEHOLDERS
from broadcaster.services.apikeys import create_key
from broadcaster.services.codes import add_code
from broadcaster.store.db import engine_for, upgrade
from broadcaster.store.models import broadcasts, messages
from tests.support.api import PHONES, TEST_LIMITS
from tests.support.services import RedisServer, free_port, wait_port

#: RSS the API process may gain over a refused or bounded attack (the old code gained ~600 MB).
RSS_GROWTH_LIMIT_BYTES = 60 * 1024 * 1024
#: Peak RSS a refused 16 MiB JSON body may add: the body, its text, the parse budget (96 MiB)
#: and the parse's transient lists (the old parse added 415-560 MB).
PEAK_GROWTH_LIMIT_BYTES = 200 * 1024 * 1024


@dataclass
class ApiProcess:
    proc: subprocess.Popen[bytes]
    base: str
    key: str
    url: str

    def post(self, path: str, body: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"}
        return requests.post(self.base + path, data=json.dumps(body), headers=headers, timeout=120)

    def rss(self) -> int:
        return int(psutil.Process(self.proc.pid).memory_info().rss)

    def serves(self) -> bool:
        return requests.get(self.base + "/v1/codes", headers=self._auth(), timeout=10).ok

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


@pytest.fixture
def api_process(tmp_path: Path, redis_server: RedisServer) -> Iterator[ApiProcess]:
    url = f"sqlite:///{tmp_path / 'bounds.db'}"
    upgrade(url)
    engine = engine_for(url)
    key = create_key(engine, "acme").key
    add_code(engine, Settings(database_url=url), "55501", "short", workspace="acme")
    port = free_port()
    env = {
        **os.environ,
        "BROADCASTER_DATABASE_URL": url,
        "BROADCASTER_REDIS_URL": redis_server.url,
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
        yield ApiProcess(proc, f"http://127.0.0.1:{port}", key, url)
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def _stored(url: str) -> tuple[int, int, int]:
    """(broadcasts, messages, longest message text) in the database."""
    with engine_for(url).connect() as conn:
        n_b = conn.execute(sa.select(sa.func.count()).select_from(broadcasts)).scalar_one()
        n_m = conn.execute(sa.select(sa.func.count()).select_from(messages)).scalar_one()
        longest = conn.execute(sa.select(sa.func.max(sa.func.length(messages.c.text)))).scalar()
    return int(n_b), int(n_m), int(longest or 0)


def _settle_rss(api: ApiProcess) -> int:
    """The process's RSS after a short quiet moment (allocator returns settle)."""
    time.sleep(0.5)
    return api.rss()


def test_the_114_kb_batch_is_refused_and_memory_stays_flat(api_process: ApiProcess) -> None:
    # Given the request: {0} x 3,333, 100 recipients with a 1,000-character parameter
    body = {
        "from": "55501",
        "text": "{0}" * 3_333,
        "to": [{"to": p, "params": ["x" * 1_000]} for p in (PHONES * 3)[:100]],
    }
    assert 100_000 < len(json.dumps(body)) < 130_000
    before = _settle_rss(api_process)
    # When it is posted (three times, as an attacker would)
    for _ in range(3):
        resp = api_process.post("/v1/messages/batch", body)
        # Then it is refused, naming the limit
        assert resp.status_code == 422, resp.text
        assert resp.json()["detail"] == (
            f"text: template has 3,333 placeholders; the limit is {MAX_TEMPLATE_PLACEHOLDERS}"
        )
    growth = _settle_rss(api_process) - before
    print(f"RSS {before / 1e6:.0f} MB, growth {growth / 1e6:.1f} MB over 3 refused requests")
    assert growth < RSS_GROWTH_LIMIT_BYTES, f"RSS grew {growth / 1e6:.1f} MB"
    # and nothing was stored, and the server still serves
    assert _stored(api_process.url) == (0, 0, 0)
    assert api_process.serves()


def test_a_batch_at_the_placeholder_limit_stores_bounded_texts(api_process: ApiProcess) -> None:
    # Given the most a template may hold, 100 placeholders, and the largest batch parameter
    recipients = [{"to": p, "params": ["y" * 1_000]} for p in PHONES[:40]]
    body = {"from": "55501", "text": "{0}" * MAX_TEMPLATE_PLACEHOLDERS, "to": recipients}
    before = _settle_rss(api_process)
    # When it is sent: each message would be 100,000 characters
    resp = api_process.post("/v1/messages/batch", body)
    # Then each is SEGMENTS_EXCEEDED and stored no longer than the 10-segment maximum
    assert resp.status_code == 202, resp.text
    assert {i["status"] for i in resp.json()["ids"]} == {"SEGMENTS_EXCEEDED"}
    assert _stored(api_process.url) == (1, 40, MAX_SENDABLE_CHARS)
    growth = _settle_rss(api_process) - before
    print(f"RSS {before / 1e6:.0f} MB, growth {growth / 1e6:.1f} MB for 40 bounded messages")
    assert growth < RSS_GROWTH_LIMIT_BYTES, f"RSS grew {growth / 1e6:.1f} MB"
    assert api_process.serves()


def test_a_60000_character_cell_stores_no_long_message(api_process: ApiProcess) -> None:
    # Given a CSV whose second row has a 60,000-character cell, and one that is just too long
    csv_text = (
        f"phone,name\n{PHONES[0]},Ana\n{PHONES[1]},{'w' * 60_000}\n{PHONES[2]},{'v' * 1_520}\n"
    )
    headers = {"Authorization": f"Bearer {api_process.key}"}
    files = {"file": ("r.csv", csv_text.encode(), "text/csv")}
    data = {"from": "55501", "text": "Hi {name} " + "{name}" * 99}
    # When it is uploaded as a broadcast
    resp = requests.post(
        api_process.base + "/v1/broadcasts", files=files, data=data, headers=headers, timeout=120
    )
    assert resp.status_code == 201, resp.text
    # Then the long cell is a row error naming the limit, and no text is over the bound
    bid = resp.json()["id"]
    errors = requests.get(
        f"{api_process.base}/v1/broadcasts/{bid}/errors", headers=headers, timeout=10
    ).json()
    reasons = [e["reason"] for e in errors["items"]]
    assert reasons == ["value of {name} has 60,000 characters; the limit is 1,600"]
    assert _stored(api_process.url) == (1, 2, MAX_SENDABLE_CHARS)
    assert api_process.serves()


async def test_a_batch_stores_at_most_its_text_bytes(make_api: Any) -> None:
    # Given a batch limit of 10,000 bytes of text and 20 messages of ~1,000 characters each
    api = await make_api(limits=replace(TEST_LIMITS, batch_max_text_bytes=10_000))
    recipients = [{"to": p, "params": ["z" * 1_000]} for p in PHONES[:20]]
    body = {"from": "55501", "text": "Hi {0}", "to": recipients}
    # When it is sent, it is refused naming the limit
    problem = await api.json("POST", "/v1/messages/batch", 422, json=body)
    assert problem["detail"].startswith(
        "the messages of this request hold over 10,000 bytes of text; the limit is 10,000"
    )
    # and nothing of it is stored; a batch within the limit still goes through
    with api.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(broadcasts)).scalar() == 0
    body["to"] = recipients[:9]
    sent = await api.json("POST", "/v1/messages/batch", 202, json=body)
    assert len(sent["ids"]) == 9


def test_a_big_json_body_does_not_stall_other_requests(api_process: ApiProcess) -> None:
    # Given a 15 MB JSON body of 5 million tiny items (json's C parser held the event loop, and
    # the GIL, for its whole parse: 2-8 s in which no other tenant was answered)...
    body = b'{"from":"55501","text":"x","recipients":[' + b",".join([b"[]"] * 5_000_000) + b"]}"
    latencies: list[float] = []
    done = threading.Event()

    def ping() -> None:
        while not done.is_set():
            started = time.monotonic()
            requests.get(api_process.base + "/healthz", timeout=60)
            latencies.append(time.monotonic() - started)
            time.sleep(0.02)

    pinger = threading.Thread(target=ping)
    pinger.start()
    time.sleep(0.5)
    started = time.monotonic()
    headers = {"Authorization": f"Bearer {api_process.key}", "Content-Type": "application/json"}
    resp = requests.post(
        api_process.base + "/v1/broadcasts", data=body, headers=headers, timeout=300
    )
    took = time.monotonic() - started
    done.set()
    pinger.join()
    # ...it is refused (its parsed values would take ~400 MB), nothing is stored...
    assert resp.status_code == 413 and "json_max_memory_bytes" in resp.json()["detail"]
    assert _stored(api_process.url)[:2] == (0, 0)
    # ...and /healthz kept answering while it was parsed: its slowest answer is a small part of
    # the parse (before: the whole of it)
    assert max(latencies) < max(1.0, took / 4), (max(latencies), took)
    assert api_process.serves()


def _peak_rss(api: ApiProcess) -> int:
    """The process's peak RSS so far (VmHWM), bytes."""
    for line in Path(f"/proc/{api.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc")


def test_a_16_mb_body_of_tiny_items_is_refused_within_bounded_memory(
    api_process: ApiProcess,
) -> None:
    # Given a body just under the 16 MiB cap made of tiny items (5.6 million empty lists made
    # the API's peak RSS grow by ~415 MB, 4 million Decimals by ~510 MB)...
    head, tail, item = b'{"from":"55501","text":"x","recipients":[', b"]}", b"1.5"
    n = (16 * 1024 * 1024 - len(head) - len(tail) - 16) // (len(item) + 1)
    body = head + b",".join([item] * n) + tail
    before = _peak_rss(api_process)
    headers = {"Authorization": f"Bearer {api_process.key}", "Content-Type": "application/json"}
    resp = requests.post(
        api_process.base + "/v1/broadcasts", data=body, headers=headers, timeout=300
    )
    # ...it is refused naming the limit...
    assert resp.status_code == 413, resp.text[:300]
    assert "json_max_memory_bytes" in resp.json()["detail"]
    # ...the peak grew by the body, its text and the budget (96 MiB) at most, not by ~400 MB...
    assert _peak_rss(api_process) - before < PEAK_GROWTH_LIMIT_BYTES, (
        before,
        _peak_rss(api_process),
    )
    # ...nothing is stored, and the server still serves
    assert _stored(api_process.url)[:2] == (0, 0)
    assert api_process.serves()
