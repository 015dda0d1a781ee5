"""The opt-out CSV export is streamed page by page, never built in memory (issue 11).

``GET /v1/optouts.csv`` and ``broadcaster optouts export`` used to build the whole file as one
string (a workspace with millions of suppressed numbers: one answer of ~100 MB held at once, and
the API's database thread for its whole build). Now each page of entries is read in its own
short transaction and written before the next is read; the download shares the report pool and
counts against the workspace's ``report_per_workspace`` downloads at once.
"""

from __future__ import annotations

import asyncio
import csv
import io
import socket

import pytest

from broadcaster.api.broadcasts import REPORT_SLOTS
from broadcaster.api.context import CTX
from broadcaster.api.limits import ApiLimits
from broadcaster.services.optouts import CSV_HEADER, MAX_PAGE, export_pieces
from broadcaster.store import codes_repo, optouts_repo
from broadcaster.store.db import utcnow
from tests.support.api import PHONES
from tests.support.api_client import Api, MakeApi

#: Entries of the big list: a few pages.
ENTRIES = 2 * MAX_PAGE + 345
#: Entries of the export a client never reads: ~9 MB, far more than loopback buffers hold.
IDLE_ENTRIES = 150_000


def _fill(api: Api, workspace: str, n: int, start: int = 0) -> list[str]:
    numbers = [f"+1415{i:07d}" for i in range(start, start + n)]
    engine = api.client.app[CTX].engine
    with engine.begin() as conn:
        ws = codes_repo.ensure_workspace(conn, workspace)
        optouts_repo.add(conn, ws, [(n, "import", f"row {n}") for n in numbers], utcnow())
    return numbers


async def test_export_pieces_are_one_page_each(api: Api) -> None:
    numbers = _fill(api, "acme", 250)
    pieces = list(export_pieces(api.client.app[CTX].engine, "acme", page_rows=100))
    # the header, then one piece per page of at most 100 entries
    assert [p.count(b"\n") for p in pieces] == [1, 100, 100, 50]
    rows = list(csv.reader(io.StringIO(b"".join(pieces).decode())))
    assert tuple(rows[0]) == CSV_HEADER
    assert [r[0] for r in rows[1:]] == numbers
    assert {r[2] for r in rows[1:]} == {f"row {n}" for n in numbers}


async def test_the_export_streams_every_page_of_its_own_workspace_only(api: Api) -> None:
    mine = _fill(api, "acme", ENTRIES)
    _fill(api, "globex", 10, start=9_000_000)
    resp = await api.call("GET", "/v1/optouts.csv")
    assert resp.status == 200
    # streamed: no length known up front, sent in chunks
    assert "Content-Length" not in resp.headers
    assert resp.headers["Transfer-Encoding"] == "chunked"
    assert resp.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(await resp.text())))
    assert tuple(rows[0]) == CSV_HEADER
    assert [r[0] for r in rows[1:]] == mine  # every page, in order, none of globex's


async def test_idle_exports_count_against_the_workspaces_downloads(make_api: MakeApi) -> None:
    limits = ApiLimits(rate_per_s=1e6, rate_burst=1_000_000, report_per_workspace=1)
    api = await make_api(limits=limits)
    _fill(api, "acme", IDLE_ENTRIES)
    slots = api.client.app[REPORT_SLOTS]
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await loop.sock_connect(sock, ("127.0.0.1", api.client.server.port))
    head = f"GET /v1/optouts.csv HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {api.keys['acme']}"
    await loop.sock_sendall(sock, (head + "\r\n\r\n").encode())
    try:
        for _ in range(200):  # until the server streams it (polling, not a race fix)
            if slots._running:
                break
            await asyncio.sleep(0.05)
        assert sum(slots._running.values()) == 1
        # a second export of the same workspace is refused while the first one is held...
        got = await api.json("GET", "/v1/optouts.csv", 429)
        assert "reports at once" in got["detail"]
        # ...another workspace's export is not
        resp = await api.call("GET", "/v1/optouts.csv", workspace="globex")
        assert resp.status == 200 and (await resp.text()).count("\n") == 1
    finally:
        sock.close()
    for _ in range(200):  # the slot comes back once the client is gone
        if not slots._running:
            break
        await asyncio.sleep(0.05)
    assert not slots._running
    resp = await api.call("GET", "/v1/optouts.csv")
    assert resp.status == 200 and (await resp.text()).count("\n") == IDLE_ENTRIES + 1


@pytest.mark.postgres
async def test_a_hostile_csv_import_is_a_422_naming_the_line(
    make_api: MakeApi, database_url
) -> None:
    # csv's 128 KiB field limit raised csv.Error (a 500), and a detail over the column's 200
    # characters or with a NUL failed on PostgreSQL (a 500) or was stored whole on SQLite.
    api = await make_api(database_url)
    good = f"{PHONES[0]},ok\n"
    for body, words in [
        # csv's field limit is process-wide and the recipient reader raises it (16 MiB), so
        # this cell is refused either as unreadable CSV or as a detail over 200 characters
        (good + f"{PHONES[1]}," + "x" * 200_000 + "\n", "line 2: "),
        (good + f"{PHONES[1]}," + "y" * 201 + "\n", "line 2: the detail must be at most 200"),
        (good + f"{PHONES[1]},a\x00b\n", "line 2: the detail must be at most 200"),
    ]:
        got = await api.json("POST", "/v1/optouts.csv", 422, data=body.encode())
        assert words in got["detail"], (body[:40], got)
    # nothing was half-stored, and the API still takes a good file
    assert (await api.json("GET", "/v1/optouts", 200))["items"] == []
    assert await api.json("POST", "/v1/optouts.csv", 200, data=good) == {"read": 1, "added": 1}
