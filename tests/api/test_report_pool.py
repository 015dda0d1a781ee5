"""One tenant's report downloads cannot block another's (issue 11.6).

Clients that request a large report and never read it (a small receive buffer, so the server's
buffers fill at once) must not hold the report pool: another workspace's small report arrives
within seconds, a workspace gets at most ``report_per_workspace`` downloads at once (429 beyond),
a client that reads nothing for the write timeout is dropped, and the server keeps serving.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from broadcaster.api.broadcasts import REPORT_SLOTS
from broadcaster.api.limits import ApiLimits
from broadcaster.config import Settings
from broadcaster.services.apikeys import create_key
from broadcaster.services.codes import add_code
from broadcaster.store.db import engine_for, upgrade
from tests.support.api import PHONES, fill_messages
from tests.support.services import free_port, wait_port

#: Rows of the big report: ~12 MB of CSV, far more than loopback socket buffers hold.
BIG_ROWS = 80_000
#: A client's receive buffer, bytes (the kernel doubles it).
SMALL_RCVBUF = 4096
#: How long another workspace's small report may take while the idle downloads hang, seconds.
SMALL_REPORT_WITHIN_S = 5.0


class _Db:
    """What the tests need of the database behind the API: an engine and the fill helper."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine


def _idle_download(host: str, port: int, key: str, path: str) -> socket.socket:
    """Request ``path`` on a socket with a tiny receive buffer, and never read it."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_RCVBUF)
    sock.connect((host, port))
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n\r\n".encode()
    )
    return sock


def _status_line(sock: socket.socket, timeout_s: float = 15.0) -> bytes:
    """The response's status line, peeked (MSG_PEEK): nothing is taken out of the buffer."""
    sock.settimeout(timeout_s)
    head = sock.recv(64, socket.MSG_PEEK)
    return head.split(b"\r\n", 1)[0]


def _get(url: str, key: str, timeout_s: float) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def _post_json(url: str, key: str, body: dict[str, Any]) -> dict[str, Any]:
    req = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.status == 201
        return json.loads(resp.read())  # type: ignore[no-any-return]


@pytest.fixture
def api_process(tmp_path: Path, redis_url: str) -> Iterator[dict[str, Any]]:
    """A real ``broadcaster api`` process on a fresh SQLite database, with two workspaces."""
    url = f"sqlite:///{tmp_path / 'api.db'}"
    upgrade(url)
    engine = engine_for(url)
    settings = Settings(database_url=url, default_region=None, redis_url=redis_url)
    keys = {ws: create_key(engine, ws).key for ws in ("acme", "globex")}
    add_code(engine, settings, "55501", "short", workspace="acme")
    add_code(engine, settings, "55502", "short", workspace="globex")
    port = free_port()
    env = {
        **os.environ,
        "BROADCASTER_DATABASE_URL": url,
        "BROADCASTER_REDIS_URL": redis_url,
    }
    log = open(tmp_path / "api.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "broadcaster", "api", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_port(port, 30)
        yield {"base": f"http://127.0.0.1:{port}", "port": port, "keys": keys, "engine": engine}
    finally:
        proc.terminate()
        proc.wait(20)
        log.close()
    assert proc.returncode is not None


def _broadcast(api: dict[str, Any], workspace: str, code: str, n: int) -> int:
    body = {
        "from": code,
        "text": "Hi {0}",
        "recipients": [{"to": p, "params": [f"n{i}"]} for i, p in enumerate(PHONES[:n])],
    }
    return int(_post_json(api["base"] + "/v1/broadcasts", api["keys"][workspace], body)["id"])


def test_idle_downloads_do_not_block_another_workspaces_report(api_process):
    api = api_process
    big = _broadcast(api, "acme", "55501", 1)
    fill_messages(_Db(api["engine"]), big, BIG_ROWS)
    small = _broadcast(api, "globex", "55502", 3)
    # Given two downloads of acme's big report that are never read (as many as the pool has
    # threads)...
    idle = [
        _idle_download(
            "127.0.0.1", api["port"], api["keys"]["acme"], f"/v1/broadcasts/{big}/report"
        )
        for _ in range(2)
    ]
    try:
        # ...(both streaming: the status line is there, peeked, not read)...
        assert [_status_line(sock) for sock in idle] == [b"HTTP/1.1 200 OK"] * 2
        # ...a third one of the same workspace is refused at once, with Retry-After...
        status, headers, body = _get(
            f"{api['base']}/v1/broadcasts/{big}/report", api["keys"]["acme"], 10
        )
        assert status == 429, (status, body[:200])
        assert int(headers["Retry-After"]) > 0 and b"reports at once" in body
        # ...and another workspace's small report still arrives complete within seconds.
        started = time.monotonic()
        status, _, body = _get(
            f"{api['base']}/v1/broadcasts/{small}/report",
            api["keys"]["globex"],
            SMALL_REPORT_WITHIN_S,
        )
        took_s = time.monotonic() - started
        assert status == 200 and body.decode("utf-8-sig").count("\r\n") == 4, body[:300]
        assert took_s < SMALL_REPORT_WITHIN_S
        # The server still serves everything else meanwhile.
        assert _get(api["base"] + "/healthz", "", 5)[0] == 200
        assert _get(f"{api['base']}/v1/broadcasts/{small}", api["keys"]["globex"], 5)[0] == 200
    finally:
        for sock in idle:
            sock.close()
    # Once the idle clients are gone, acme's slots come back and its big report downloads whole.
    deadline = time.monotonic() + 20
    while True:
        status, _, body = _get(f"{api['base']}/v1/broadcasts/{big}/report", api["keys"]["acme"], 60)
        if status == 200 or time.monotonic() > deadline:
            break
    assert status == 200
    assert body.decode("utf-8-sig").count("\r\n") == BIG_ROWS + 2  # header + its own message


async def _raw_idle(port: int, key: str, path: str) -> socket.socket:
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_RCVBUF)
    sock.setblocking(False)
    await loop.sock_connect(sock, ("127.0.0.1", port))
    request = f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n\r\n"
    await loop.sock_sendall(sock, request.encode())
    return sock


async def _drain(sock: socket.socket, timeout_s: float) -> int:
    """Read until the server closes; bytes received. Fails if it is still open after timeout_s."""
    loop = asyncio.get_running_loop()
    total = 0
    deadline = loop.time() + timeout_s
    while True:
        try:
            data = await asyncio.wait_for(loop.sock_recv(sock, 1 << 20), deadline - loop.time())
        except ConnectionResetError:
            return total
        except TimeoutError:
            pytest.fail(f"the server kept the stalled connection open ({total:,} bytes read)")
        if not data:
            return total
        total += len(data)


async def test_client_that_reads_nothing_is_dropped_and_its_slot_freed(make_api):
    # Given an API whose report write timeout is one second...
    limits = ApiLimits(rate_per_s=1e6, rate_burst=1_000_000, report_write_timeout_s=1.0)
    api = await make_api(limits=limits)
    bid = (await api.broadcast([PHONES[0]], text="x"))["id"]
    fill_messages(api, bid, BIG_ROWS)
    slots = api.client.app[REPORT_SLOTS]
    port = api.client.server.port
    # ...when a client requests the big report and reads nothing...
    sock = await _raw_idle(port, api.keys["acme"], f"/v1/broadcasts/{bid}/report")
    try:
        deadline = time.monotonic() + 10
        while not slots._running and time.monotonic() < deadline:
            await asyncio.sleep(0.05)  # polling for the server to start streaming, not a race fix
        assert sum(slots._running.values()) == 1
        # ...then, with nothing read, the server drops it once a write has waited more than the
        # timeout: the slot comes free (how soon depends on how fast the report fills the
        # socket buffers on a loaded machine, hence a generous bound)...
        deadline = time.monotonic() + 60
        while slots._running and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert not slots._running, slots._running
        # ...and what is left to read ends early.
        received = await _drain(sock, 5.0)
    finally:
        sock.close()
    assert received < BIG_ROWS * 100, received  # far from the ~12 MB report: it was cut
    # The server carries on: a reading client gets the whole report.
    resp = await api.call("GET", f"/v1/broadcasts/{bid}/report")
    assert resp.status == 200
    assert (await resp.read()).decode("utf-8-sig").count("\r\n") == BIG_ROWS + 2


async def test_a_big_xlsx_shares_the_pool_with_a_small_report(make_api, tmp_path):
    # One report thread: an XLSX being built used to hold it until the file was done.
    limits = ApiLimits(rate_per_s=1e6, rate_burst=1_000_000, report_threads=1)
    api = await make_api(limits=limits)
    big = (await api.broadcast([PHONES[0]], text="x"))["id"]
    fill_messages(api, big, 40_000)  # several seconds of openpyxl work
    small = (await api.broadcast(workspace="globex"))["id"]
    big_resp = await api.call("GET", f"/v1/broadcasts/{big}/report?format=xlsx")
    assert big_resp.status == 200
    big_body = asyncio.ensure_future(big_resp.read())
    await asyncio.sleep(0.3)  # the XLSX is being built
    started = time.perf_counter()
    r = await api.call("GET", f"/v1/broadcasts/{small}/report", workspace="globex")
    assert r.status == 200 and (await r.read()).decode("utf-8-sig").count("\r\n") == 4
    took_s = time.perf_counter() - started
    assert not big_body.done(), "the XLSX finished first: make it bigger"
    assert took_s < 2.0, took_s
    # And the XLSX, built in slices between the other work, is whole.
    from python_calamine import CalamineWorkbook

    (tmp_path / "big.xlsx").write_bytes(await big_body)
    sheet = CalamineWorkbook.from_path(str(tmp_path / "big.xlsx")).get_sheet_by_name("results")
    assert sheet.height == 40_000 + 2
