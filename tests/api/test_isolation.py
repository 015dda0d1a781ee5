"""No workspace sees or touches another's broadcasts, messages or codes: 404, never 403."""

from __future__ import annotations

import pytest

from tests.support.api import PHONES

BROADCAST_ROUTES = [
    ("GET", "/v1/broadcasts/{b}"),
    ("DELETE", "/v1/broadcasts/{b}"),
    ("POST", "/v1/broadcasts/{b}/suspend"),
    ("POST", "/v1/broadcasts/{b}/resume"),
    ("POST", "/v1/broadcasts/{b}/stop"),
    ("POST", "/v1/broadcasts/{b}/retry-failed"),
    ("GET", "/v1/broadcasts/{b}/messages"),
    ("GET", "/v1/broadcasts/{b}/errors"),
    ("GET", "/v1/broadcasts/{b}/report"),
    ("GET", "/v1/broadcasts/{b}/report?format=xlsx"),
    ("GET", "/v1/messages/{m}"),
]


@pytest.fixture
async def owned(api):
    """A broadcast and a single message of workspace acme."""
    b = await api.broadcast()
    m = await api.json(
        "POST", "/v1/messages", 202, json={"from": "55501", "to": PHONES[5], "text": "x"}
    )
    return api, b["id"], m["id"]


@pytest.mark.parametrize("method,path", BROADCAST_ROUTES)
async def test_other_workspace_gets_404(owned, method, path):
    api, b, m = owned
    url = path.format(b=b, m=m)
    body = await api.json(method, url, 404, workspace="globex")
    assert str(b) in body["detail"] or str(m) in body["detail"]
    # ...and the answer is the same as for an id that does not exist.
    missing = await api.json(method, path.format(b=b + 1000, m=m + 1000), 404, workspace="globex")
    assert missing["title"] == body["title"] and missing["status"] == body["status"]


async def test_other_workspace_changed_nothing(owned):
    api, b, m = owned
    for method, path in BROADCAST_ROUTES:
        await api.call(method, path.format(b=b, m=m), workspace="globex")
    mine = await api.json("GET", f"/v1/broadcasts/{b}", 200)
    assert mine["status"] == "SCHEDULED" and mine["counts"] == {"QUEUE": 3}
    assert (await api.json("GET", f"/v1/messages/{m}", 200))["status"] == "QUEUE"


async def test_lists_show_only_own_items(owned):
    api, b, _ = owned
    theirs = await api.json("GET", "/v1/broadcasts", 200, workspace="globex")
    assert theirs["items"] == []
    assert b in [x["id"] for x in (await api.json("GET", "/v1/broadcasts", 200))["items"]]
    assert [c["code"] for c in (await api.json("GET", "/v1/codes", 200))["items"]] == ["55501"]
    assert [
        c["code"] for c in (await api.json("GET", "/v1/codes", 200, workspace="globex"))["items"]
    ] == ["55502"]


async def test_cannot_send_from_another_workspaces_code(owned):
    api, _, _ = owned
    for path, body in [
        ("/v1/messages", {"from": "55501", "to": PHONES[0], "text": "x"}),
        ("/v1/messages/batch", {"from": "55501", "text": "x", "to": [PHONES[0]]}),
        ("/v1/broadcasts", {"from": "55501", "text": "x", "recipients": [PHONES[0]]}),
    ]:
        problem = await api.json("POST", path, 422, workspace="globex", json=body)
        assert problem["messageStatus"] == "CODE_NOT_ALLOWED"


async def test_cursor_from_another_workspace_reveals_nothing(owned):
    api, b, _ = owned
    for _ in range(3):
        await api.broadcast()
    page = await api.json("GET", "/v1/broadcasts?limit=1", 200)
    theirs = await api.json(
        "GET", f"/v1/broadcasts?cursor={page['nextCursor']}", 200, workspace="globex"
    )
    assert theirs["items"] == []
