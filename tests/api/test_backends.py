"""The API on SQLite and PostgreSQL: the same answers on both."""

from __future__ import annotations

import csv
import io

import aiohttp
import pytest

from tests.support.api import PHONES

pytestmark = pytest.mark.postgres


@pytest.fixture
async def both(make_api, database_url):
    return await make_api(database_url)


async def test_life_of_a_broadcast(both):
    api = both
    # Given a broadcast from an upload and one from JSON...
    f = aiohttp.FormData()
    f.add_field("from", "55501")
    f.add_field("text", "Hi {name}")
    f.add_field(
        "file", f"phone,name\n{PHONES[0]},Ana\n{PHONES[1]},Bob\n1,x\n".encode(), filename="a.csv"
    )
    uploaded = await api.json("POST", "/v1/broadcasts", 201, data=f)
    from_json = await api.broadcast()
    assert uploaded["expectedMessages"] == 2 and uploaded["invalidRows"] == 1
    # ...when it is listed, paged, controlled and reported...
    page = await api.json("GET", "/v1/broadcasts?limit=1", 200)
    assert page["items"][0]["id"] == from_json["id"] and page["nextCursor"]
    msgs = await api.json("GET", f"/v1/broadcasts/{uploaded['id']}/messages?limit=1", 200)
    rest = await api.json(
        "GET", f"/v1/broadcasts/{uploaded['id']}/messages?cursor={msgs['nextCursor']}", 200
    )
    assert [m["to"] for m in msgs["items"] + rest["items"]] == PHONES[:2]
    errors = await api.json("GET", f"/v1/broadcasts/{uploaded['id']}/errors", 200)
    assert [e["line"] for e in errors["items"]] == [4]
    await api.json("POST", f"/v1/broadcasts/{uploaded['id']}/suspend", 200)
    await api.json("POST", f"/v1/broadcasts/{uploaded['id']}/resume", 200)
    stopped = await api.json("POST", f"/v1/broadcasts/{uploaded['id']}/stop", 200)
    report = await api.call("GET", f"/v1/broadcasts/{uploaded['id']}/report")
    rows = list(csv.reader(io.StringIO((await report.read()).decode("utf-8-sig"))))
    # ...then both databases tell the same story.
    assert stopped["cancelled"] == 2 and {r[3] for r in rows[1:]} == {"CANCELLED"}
    await api.json("DELETE", f"/v1/broadcasts/{uploaded['id']}", 200)
    await api.json("GET", f"/v1/broadcasts/{uploaded['id']}", 404, workspace="acme")
    await api.json("GET", f"/v1/broadcasts/{from_json['id']}", 404, workspace="globex")


async def test_edges_that_break_databases_are_refused_early(both):
    api = both
    await api.json("GET", "/v1/broadcasts/999999999999999999", 404)
    await api.json("GET", "/v1/messages/999999999999999999", 404)
    body = await api.json(
        "POST",
        "/v1/broadcasts",
        422,
        json={
            "from": "55501",
            "text": "x",
            "recipients": [{"to": PHONES[0], "params": ["a\x00b"]}],
        },
    )
    assert body["field"] == "recipients[0].params[0]"
    await api.json(
        "POST", "/v1/messages", 422, json={"from": "5" * 25, "to": PHONES[0], "text": "x"}
    )
    await api.json(
        "POST",
        "/v1/broadcasts",
        422,
        json={"from": "55501", "text": "x", "name": "n" * 500, "recipients": [PHONES[0]]},
    )
    sent = await api.json(
        "POST",
        "/v1/messages/batch",
        202,
        json={"from": "55501", "text": "{0}", "to": [{"to": PHONES[0], "params": ["ж" * 900]}]},
    )
    assert sent["ids"][0]["status"] == "SEGMENTS_EXCEEDED"
