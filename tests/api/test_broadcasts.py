"""``/v1/broadcasts``: create from JSON, read, list, control, messages and errors pages."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from broadcaster.services.broadcasts import get_broadcast
from broadcaster.store.models import broadcasts, messages
from tests.support.api import PHONES


async def test_create_from_json_like_seed_004(api):
    body = await api.json(
        "POST",
        "/v1/broadcasts",
        201,
        json={
            "shortcode": "55501",
            "name": "spring sale",
            "text": "Hi {0}",
            "date": "16-08-2030 17:49",
            "timezone": "America/Caracas",
            "recipients": [
                {"to": PHONES[0], "params": ["Ana"]},
                {"to": PHONES[1], "params": ["Bob"]},
                "123",
            ],
        },
    )
    assert (
        body["status"] == "SCHEDULED"
        and body["shortcode"] == "55501"
        and body["name"] == "spring sale"
    )
    assert body["startDate"] == "2030-08-16T17:49:00-04:00"
    assert body["expectedMessages"] == 2 and body["invalidRows"] == 1
    assert body["links"]["errors"] == f"/v1/broadcasts/{body['id']}/errors"
    got = await api.json("GET", f"/v1/broadcasts/{body['id']}", 200)
    for field in (
        "id",
        "text",
        "startDate",
        "endDate",
        "expectedMessages",
        "sentMessages",
        "status",
        "shortcode",
        "deliveredMessages",
        "failedMessages",
    ):
        assert field in got
    assert got["counts"] == {"QUEUE": 2}


async def test_create_starts_now_without_a_date(api):
    body = await api.broadcast(startDate=None)
    assert body["status"] == "SCHEDULED" and body["startDate"] is not None


@pytest.mark.parametrize(
    "payload,field",
    [
        ({"text": "x", "recipients": [PHONES[0]]}, "from"),
        ({"from": "55501", "recipients": [PHONES[0]]}, "text"),
        ({"from": "55501", "text": "x"}, "recipients"),
        ({"from": "55501", "text": "x", "recipients": []}, "recipients"),
        (
            {"from": "55501", "text": "x", "recipients": [PHONES[0]], "timezone": "Mars/Olympus"},
            "timezone",
        ),
        (
            {"from": "55501", "text": "x", "recipients": [PHONES[0]], "startDate": "tomorrow"},
            "startDate",
        ),
        (
            {
                "from": "55501",
                "text": "x",
                "recipients": [PHONES[0]],
                "startDate": "0001-01-01T00:00+01:00",
            },
            "startDate",
        ),
        (
            {
                "from": "55501",
                "text": "x",
                "recipients": [PHONES[0]],
                "startDate": "9999-12-31T23:59",
            },
            "startDate",
        ),
        ({"from": "55501", "text": "{first}", "recipients": [PHONES[0]]}, "text"),
        ({"from": "55501", "text": "x", "recipients": [PHONES[0]], "name": "n" * 201}, "name"),
        (
            {"from": "55501", "text": "x", "recipients": [PHONES[0]], "requestDR": "yes"},
            "requestDR",
        ),
        ({"from": "99999", "text": "x", "recipients": [PHONES[0]]}, "from"),
    ],
)
async def test_bad_create_is_422_naming_the_field(api, payload, field):
    body = await api.json("POST", "/v1/broadcasts", 422, json=payload)
    assert body["field"] == field, body


async def test_create_with_other_content_type_is_415(api):
    resp = await api.call(
        "POST",
        "/v1/broadcasts",
        data=b"phone\n+525500000001\n",
        headers={"Content-Type": "text/csv"},
    )
    assert resp.status == 415
    resp = await api.call("POST", "/v1/broadcasts")
    assert resp.status == 415


async def test_list_pages_with_cursor_and_status_filter(api):
    ids = [(await api.broadcast())["id"] for _ in range(5)]
    await api.json("POST", f"/v1/broadcasts/{ids[0]}/suspend", 200)
    first = await api.json("GET", "/v1/broadcasts?limit=2", 200)
    assert [b["id"] for b in first["items"]] == ids[::-1][:2] and first["nextCursor"]
    second = await api.json("GET", f"/v1/broadcasts?limit=2&cursor={first['nextCursor']}", 200)
    assert [b["id"] for b in second["items"]] == ids[::-1][2:4]
    third = await api.json("GET", f"/v1/broadcasts?limit=2&cursor={second['nextCursor']}", 200)
    assert [b["id"] for b in third["items"]] == [ids[0]] and third["nextCursor"] is None
    suspended = await api.json("GET", "/v1/broadcasts?status=SUSPENDED", 200)
    assert [b["id"] for b in suspended["items"]] == [ids[0]]


@pytest.mark.parametrize(
    "query,field",
    [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=x", "limit"),
        ("limit=-1", "limit"),
        ("status=DELETED", "status"),
        ("status=nope", "status"),
        ("cursor=!!!", "cursor"),
        ("cursor=YWJj", "cursor"),
        ("cursor=MS4y", "cursor"),
    ],
)
async def test_bad_list_parameters_are_400(api, query, field):
    body = await api.json("GET", f"/v1/broadcasts?{query}", 400)
    assert body["field"] == field


async def test_control_flow_and_invalid_transitions(api):
    bid = (await api.broadcast())["id"]
    # SCHEDULED: resume is not allowed now.
    body = await api.json("POST", f"/v1/broadcasts/{bid}/resume", 409)
    assert body["current"] == "SCHEDULED" and body["action"] == "resume"
    suspended = await api.json(
        "POST", f"/v1/broadcasts/{bid}/suspend", 200, json={"reason": "checking the list"}
    )
    assert suspended["status"] == "SUSPENDED" and suspended["statusReason"] == "checking the list"
    resumed = await api.json("POST", f"/v1/broadcasts/{bid}/resume", 200)
    assert resumed["status"] == "RUNNING"
    # Resume fans the QUEUE messages out again through the queue, each once.
    carried = [mid for b, ids, _ in api.queue.chunks if b == bid for mid in ids]
    assert len(carried) == 3 and len(set(carried)) == 3
    # RUNNING cannot be deleted; stop first.
    await api.json("DELETE", f"/v1/broadcasts/{bid}", 409)
    stopped = await api.json("POST", f"/v1/broadcasts/{bid}/stop", 200)
    assert stopped["status"] == "STOPPED" and stopped["cancelled"] == 3
    await api.json("POST", f"/v1/broadcasts/{bid}/stop", 409)
    await api.json("POST", f"/v1/broadcasts/{bid}/suspend", 409)
    deleted = await api.json("DELETE", f"/v1/broadcasts/{bid}", 200)
    assert deleted == {"id": bid, "status": "DELETED", "messagesRemoved": 3}
    await api.json("GET", f"/v1/broadcasts/{bid}", 404)
    await api.json("DELETE", f"/v1/broadcasts/{bid}", 404)


async def test_control_body_must_be_json_when_present(api):
    bid = (await api.broadcast())["id"]
    resp = await api.call(
        "POST",
        f"/v1/broadcasts/{bid}/suspend",
        data=b"reason",
        headers={"Content-Type": "text/plain"},
    )
    assert resp.status == 415
    body = await api.json("POST", f"/v1/broadcasts/{bid}/suspend", 422, json={"reason": 5})
    assert body["field"] == "reason"


async def test_messages_page_and_status_filter(api):
    bid = (await api.broadcast([{"to": p, "params": ["x"]} for p in PHONES[:7]]))["id"]
    with api.engine.begin() as conn:
        first_id = conn.execute(
            sa.select(sa.func.min(messages.c.id)).where(messages.c.broadcast_id == bid)
        ).scalar()
        conn.execute(sa.update(messages).where(messages.c.id == first_id).values(status="DELIVRD"))
    seen, cursor = [], ""
    while True:
        page = await api.json("GET", f"/v1/broadcasts/{bid}/messages?limit=3&cursor={cursor}", 200)
        seen += page["items"]
        if not page["nextCursor"]:
            break
        cursor = page["nextCursor"]
    assert [m["to"] for m in seen] == PHONES[:7]
    assert [m["line"] for m in seen] == list(range(1, 8))
    delivered = await api.json("GET", f"/v1/broadcasts/{bid}/messages?status=DELIVRD", 200)
    assert [m["id"] for m in delivered["items"]] == [first_id]
    await api.json("GET", f"/v1/broadcasts/{bid}/messages?status=BOGUS", 400)


async def test_errors_page_in_file_order(api):
    recipients = [PHONES[0], "1", "2", PHONES[1], PHONES[0], "3", {"to": PHONES[2], "params": []}]
    bid = (await api.broadcast(recipients, text="x {0}"))["id"]
    seen, cursor = [], ""
    while True:
        page = await api.json("GET", f"/v1/broadcasts/{bid}/errors?limit=2&cursor={cursor}", 200)
        seen += page["items"]
        if not page["nextCursor"]:
            break
        cursor = page["nextCursor"]
    assert [e["line"] for e in seen] == [
        1,
        2,
        3,
        4,
        5,
        6,
        7,
    ]  # no params for {0} anywhere, plus bad numbers
    assert {e["reason"] for e in seen} >= {"too_short", "missing value for {0}"}


async def test_unknown_broadcast_is_404_everywhere(api):
    for method, path in [
        ("GET", "/v1/broadcasts/424242"),
        ("DELETE", "/v1/broadcasts/424242"),
        ("POST", "/v1/broadcasts/424242/suspend"),
        ("POST", "/v1/broadcasts/424242/resume"),
        ("POST", "/v1/broadcasts/424242/stop"),
        ("GET", "/v1/broadcasts/424242/messages"),
        ("GET", "/v1/broadcasts/424242/errors"),
        ("GET", "/v1/broadcasts/424242/report"),
    ]:
        await api.json(method, path, 404)


async def test_created_broadcast_is_in_the_keys_workspace(api):
    bid = (await api.broadcast())["id"]
    with api.engine.connect() as conn:
        ws = conn.execute(
            sa.select(broadcasts.c.workspace_id).where(broadcasts.c.id == bid)
        ).scalar()
    assert get_broadcast(api.engine, bid, workspace="acme").id == bid and ws is not None
