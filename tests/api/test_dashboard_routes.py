"""The read-only routes the dashboard draws from: timeline, breakdown, recipient search, and the
list's progress, ETA and allowed actions; each scoped to the key's workspace."""

from __future__ import annotations

import json
from datetime import datetime

import sqlalchemy as sa

from broadcaster.store.models import messages
from tests.support.api import PHONES, form, problem

T0 = datetime(2031, 3, 1, 9, 30, 5)


def _set(api, bid: int, recipient: str, **values) -> None:
    """One message's status and times, written straight to the table (the sender's job)."""
    with api.engine.begin() as conn:
        conn.execute(
            sa.update(messages)
            .where(messages.c.broadcast_id == bid, messages.c.recipient == recipient)
            .values(**values)
        )


def _play(api, bid: int) -> None:
    """PHONES[0] delivered, [1] undelivered, [2] refused by the gateway; all sent at 09:30."""
    sent = T0
    _set(api, bid, PHONES[0], status="DELIVRD", sent_at=sent, updated_at=T0.replace(minute=31))
    _set(
        api,
        bid,
        PHONES[1],
        status="UNDELIV",
        error="absent subscriber",
        attempts=1,
        sent_at=sent,
        updated_at=T0.replace(minute=32),
    )
    _set(
        api,
        bid,
        PHONES[2],
        status="ERROR",
        error="throttled",
        attempts=3,
        updated_at=T0,
        sent_at=None,
    )


async def test_timeline_counts_per_minute_and_second(make_api, database_url):
    api = await make_api(database_url)
    b = await api.broadcast()
    _play(api, b["id"])
    minutes = await api.json("GET", f"/v1/broadcasts/{b['id']}/timeline", 200)
    assert minutes == {
        "step": "minute",
        "buckets": [
            {"at": "2031-03-01T09:30:00Z", "sent": 2, "delivered": 0, "failed": 1},
            {"at": "2031-03-01T09:31:00Z", "sent": 0, "delivered": 1, "failed": 0},
            {"at": "2031-03-01T09:32:00Z", "sent": 0, "delivered": 0, "failed": 1},
        ],
        "nextCursor": None,
    }
    seconds = await api.json("GET", f"/v1/broadcasts/{b['id']}/timeline?step=second", 200)
    assert seconds["step"] == "second"
    assert seconds["buckets"][0] == {
        "at": "2031-03-01T09:30:05Z",
        "sent": 2,
        "delivered": 0,
        "failed": 1,
    }
    body = await problem(await api.call("GET", f"/v1/broadcasts/{b['id']}/timeline?step=hour"), 400)
    assert body["field"] == "step"


async def test_a_new_broadcast_has_an_empty_timeline(api):
    b = await api.broadcast()
    out = await api.json("GET", f"/v1/broadcasts/{b['id']}/timeline", 200)
    assert out == {"step": "minute", "buckets": [], "nextCursor": None}


async def test_breakdown_by_status_and_reason(make_api, database_url):
    api = await make_api(database_url)
    b = await api.broadcast()
    _play(api, b["id"])
    out = await api.json("GET", f"/v1/broadcasts/{b['id']}/breakdown", 200)
    assert out["byStatus"] == {"DELIVRD": 1, "UNDELIV": 1, "ERROR": 1}
    assert sorted(out["byReason"], key=lambda r: r["status"]) == [
        {"status": "ERROR", "reason": "throttled", "count": 1},
        {"status": "UNDELIV", "reason": "absent subscriber", "count": 1},
    ]
    failed = await api.json("GET", f"/v1/broadcasts/{b['id']}/messages?status=ERROR", 200)
    assert [(m["to"], m["error"], m["attempts"]) for m in failed["items"]] == [
        (PHONES[2], "throttled", 3)
    ]


async def test_recipient_search_spans_broadcasts_of_this_workspace_only(api):
    first = await api.broadcast(name="first")
    second = await api.broadcast(name="second")
    await api.broadcast(workspace="globex")  # the same numbers in another workspace
    typed = PHONES[0].replace("+52", "+52 ").replace("5500", "55-00")
    out = await api.json("GET", "/v1/messages?" + _q(recipient=typed), 200)
    assert out["recipient"] == PHONES[0]
    assert [(m["broadcastId"], m["broadcastName"]) for m in out["items"]] == [
        (second["id"], "second"),
        (first["id"], "first"),
    ]
    assert {m["to"] for m in out["items"]} == {PHONES[0]}
    paged = await api.json("GET", "/v1/messages?" + _q(recipient=PHONES[0], limit=1), 200)
    assert len(paged["items"]) == 1 and paged["nextCursor"]
    rest = await api.json(
        "GET", "/v1/messages?" + _q(recipient=PHONES[0], cursor=paged["nextCursor"]), 200
    )
    assert [m["broadcastId"] for m in rest["items"]] == [first["id"]]
    assert rest["nextCursor"] is None
    other = await api.json("GET", "/v1/messages?" + _q(recipient=PHONES[0]), 200, "ops")
    assert other["items"] == []
    for bad in ("", "12", "x" * 65):
        body = await problem(await api.call("GET", "/v1/messages?" + _q(recipient=bad)), 422)
        assert body["field"] == "recipient"


def _q(**params) -> str:
    from urllib.parse import urlencode

    return urlencode(params)


async def test_the_list_shows_progress_eta_and_allowed_actions(api):
    b = await api.broadcast()
    _set(api, b["id"], PHONES[0], status="DELIVRD", sent_at=T0, updated_at=T0)
    page = await api.json("GET", "/v1/broadcasts", 200)
    item = page["items"][0]
    assert item["status"] == "SCHEDULED"
    assert item["remainingMessages"] == 2 and item["remainingSegments"] == 2
    assert item["progress"] == round(1 / 3, 4)
    assert item["etaSeconds"] == 1  # 2 segments at the short code's 30 per second
    assert item["allowedActions"] == ["suspend", "stop", "delete", "reschedule"]
    await api.json("POST", f"/v1/broadcasts/{b['id']}/suspend", 200)
    item = (await api.json("GET", "/v1/broadcasts", 200))["items"][0]
    assert item["etaSeconds"] is None and item["allowedActions"] == ["resume", "stop", "delete"]
    one = await api.json("GET", f"/v1/broadcasts/{b['id']}", 200)
    assert one["allowedActions"] == ["resume", "stop", "delete"]
    stopped = await api.json("POST", f"/v1/broadcasts/{b['id']}/stop", 200)
    assert stopped["allowedActions"] == ["delete", "retry-failed"]


async def test_the_dry_run_of_an_upload_stores_nothing(api):
    await api.json("POST", "/v1/optouts", 201, json={"number": PHONES[2]})
    rows = "".join(f"{p},N{i}\n" for i, p in enumerate(PHONES[:3]))
    data = f"phone,name\n{rows}12345,Bob\n{PHONES[0]},Again\n".encode()
    out = await api.json(
        "POST",
        "/v1/broadcasts/dry-run",
        200,
        data=form(data, "people.csv", **{"from": "55501", "text": "Hi {name} ñ"}),
    )
    assert out["source"] == "people.csv"
    assert (out["valid"], out["invalid"], out["duplicates"], out["blacklisted"]) == (3, 1, 1, 1)
    assert out["totalSegments"] == 3 and out["mps"] == 30.0 and out["etaSeconds"] == 1
    assert out["preview"][0] == {
        "line": 2,
        "to": PHONES[0],
        "text": "Hi N0 ñ",
        "encoding": out["preview"][0]["encoding"],
        "segments": 1,
        "status": "QUEUE",
    }
    assert out["preview"][0]["encoding"] in ("GSM-7", "UCS-2")
    assert [e["reason"] for e in out["errors"]] == ["too_short", "duplicate"]
    assert (await api.json("GET", "/v1/broadcasts", 200))["items"] == []
    # Another workspace's code is not this one's; a template's unknown column names the text.
    body = await problem(
        await api.call(
            "POST", "/v1/broadcasts/dry-run", data=form(data, "p.csv", **{"from": "55502"})
        ),
        422,
    )
    assert body["field"] == "from" and "55502" in body["detail"]
    body = await problem(
        await api.call(
            "POST", "/v1/broadcasts/dry-run", data=form(data, "p.csv", text="Hi {nope}")
        ),
        422,
    )
    assert body["field"] == "text"
    await problem(await api.call("POST", "/v1/broadcasts/dry-run", json={}), 415)


async def test_a_workspace_lists_creates_and_revokes_its_own_keys(api):
    made = await api.json("POST", "/v1/apikeys", 201)
    assert made["workspace"] == "acme" and made["key"].startswith(f"bk_{made['prefix']}_")
    assert made["signingSecret"] is None
    listed = await api.json("GET", "/v1/apikeys", 200)
    assert made["key"] not in json.dumps(listed)  # the secret is shown once, at creation
    mine = {k["prefix"]: k for k in listed["items"]}
    assert made["prefix"] in mine and mine[made["prefix"]]["revokedAt"] is None
    assert [k["current"] for k in listed["items"]].count(True) == 1
    # The new key works until it is revoked.
    new = {"Authorization": f"Bearer {made['key']}"}
    assert (await api.client.get("/v1/broadcasts", headers=new)).status == 200
    # Another workspace neither sees nor revokes it.
    other = await api.json("GET", "/v1/apikeys", 200, "globex")
    assert made["prefix"] not in {k["prefix"] for k in other["items"]}
    await problem(await api.call("DELETE", f"/v1/apikeys/{made['prefix']}", "globex"), 404)
    assert (await api.client.get("/v1/broadcasts", headers=new)).status == 200
    out = await api.json("DELETE", f"/v1/apikeys/{made['prefix']}", 200)
    assert out["prefix"] == made["prefix"] and out["revokedAt"]
    assert (await api.client.get("/v1/broadcasts", headers=new)).status == 401
    again = await api.json("DELETE", f"/v1/apikeys/{made['prefix']}", 200)
    assert again["revokedAt"] == out["revokedAt"]
    signing = await api.json("POST", "/v1/apikeys", 201, json={"signing": True})
    assert signing["signingSecret"]
