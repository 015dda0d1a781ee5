"""Seed 003's ``/api/rest/contact/get`` and ``/api/rest/message/sendSingle`` with /v1's keys,
and erasure of a contact's number from past messages (issue 15). Both backends."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from broadcaster.store.models import messages, metadata

MOBILE = "+48505606707"


@pytest.fixture
async def api2(make_api, database_url):
    return await make_api(database_url)


async def _setup(api, workspace="acme", code="55501"):
    body = {
        "identifiers": [{"type": "MOBILE", "value": MOBILE}, {"type": "EMAIL", "value": "a@b.co"}],
        "attributes": {"first_name": "Ana"},
    }
    cid = (await api.json("POST", "/v1/contacts", 201, workspace, json=body))["contactID"]
    t = await api.json(
        "POST",
        "/v1/templates",
        201,
        workspace,
        json={"name": "w", "text": "Hi {first_name}, code {0}", "from": code, "list": "welcomed"},
    )
    return cid, t["id"]


async def test_contact_get_answers_the_contact_or_400(api2):
    cid, _ = await _setup(api2)
    got = await api2.json(
        "POST", "/api/rest/contact/get", 200, json={"type": "MOBILE", "value": "48505606707"}
    )
    assert got["contactID"] == cid and {"type": "MOBILE", "value": MOBILE} in got["identifiers"]
    by_email = {"type": "EMAIL", "value": "A@B.CO"}
    assert (await api2.json("POST", "/api/rest/contact/get", 200, json=by_email))[
        "contactID"
    ] == cid
    by_id = {"type": "ID", "value": str(cid)}
    assert (await api2.json("POST", "/api/rest/contact/get", 200, json=by_id))["contactID"] == cid
    for body in (
        {"type": "MOBILE", "value": "48505606708"},
        {"type": "PHONE", "value": "48505606707"},
        {"type": "MOBILE"},
        {"type": "ID", "value": str(cid + 1)},
    ):
        refused = await api2.json("POST", "/api/rest/contact/get", 400, json=body)
        assert refused["status"] == 400 and refused["detail"]
    # Another workspace's key: the same 400 as for nobody.
    await api2.json(
        "POST", "/api/rest/contact/get", 400, "globex", json={"type": "MOBILE", "value": MOBILE}
    )
    assert (await api2.client.post("/api/rest/contact/get", json={})).status == 401


async def test_send_single_stores_one_rendered_message_and_joins_the_list(api2):
    cid, tid = await _setup(api2)
    url = f"/api/rest/message/sendSingle?messageId={tid}&recipientId={cid}"
    resp = await api2.call("POST", url, json={"parameters": ["1234"]})
    assert resp.status == 204, await resp.text()
    page = (await api2.json("GET", "/v1/broadcasts", 200))["items"]
    assert len(page) == 1 and page[0]["expectedMessages"] == 1
    msgs = (await api2.json("GET", f"/v1/broadcasts/{page[0]['id']}/messages", 200))["items"]
    assert [(m["to"], m["status"]) for m in msgs] == [(MOBILE, "QUEUE")]
    got = await api2.json("GET", f"/v1/messages/{msgs[0]['id']}", 200)
    assert got["text"] == "Hi Ana, code 1234" and got["clientId"] == str(cid)
    assert (await api2.json("GET", f"/v1/contacts/{cid}", 200))["lists"] == ["welcomed"]
    # A named parameter wins over the attribute.
    named = {"parameters": ["9", {"name": "first_name", "value": "Anita"}]}
    assert (await api2.call("POST", url, json=named)).status == 204
    texts = {
        (await api2.json("GET", f"/v1/messages/{m['id']}", 200))["text"]
        for b in (await api2.json("GET", "/v1/broadcasts", 200))["items"]
        for m in (await api2.json("GET", f"/v1/broadcasts/{b['id']}/messages", 200))["items"]
    }
    assert texts == {"Hi Ana, code 1234", "Hi Anita, code 9"}


async def test_send_single_refusals_are_400_and_store_nothing(api2):
    cid, tid = await _setup(api2)
    email_only = (
        await api2.json(
            "POST",
            "/v1/contacts",
            201,
            json={"identifiers": [{"type": "EMAIL", "value": "e@x.org"}]},
        )
    )["contactID"]
    cases = [
        (f"messageId={tid + 9}&recipientId={cid}", {"parameters": ["1"]}, "messageId"),
        (f"messageId={tid}&recipientId={cid + 9}", {"parameters": ["1"]}, "recipientId"),
        (f"messageId={tid}&recipientId={email_only}", {"parameters": ["1"]}, "MOBILE"),
        (f"messageId={tid}&recipientId={cid}", {"parameters": []}, "{0}"),
        (f"messageId=x&recipientId={cid}", {}, "messageId"),
        (f"recipientId={cid}", {}, "messageId"),
    ]
    for query, body, word in cases:
        got = await api2.json("POST", f"/api/rest/message/sendSingle?{query}", 400, json=body)
        assert word in got["detail"], (query, got)
    await api2.json("POST", "/v1/optouts", 201, json={"number": MOBILE})
    url = f"/api/rest/message/sendSingle?messageId={tid}&recipientId={cid}"
    got = await api2.json("POST", url, 400, json={"parameters": ["1"]})
    assert "suppression" in got["detail"]
    assert (await api2.json("GET", "/v1/broadcasts", 200))["items"] == []


async def test_another_workspace_cannot_send_the_template_or_to_the_contact(api):
    cid, tid = await _setup(api)
    theirs_cid, theirs_tid = await _setup(api, "globex", "55502")
    for m, r in ((tid, theirs_cid), (theirs_tid, cid), (tid, cid)):
        url = f"/api/rest/message/sendSingle?messageId={m}&recipientId={r}"
        await api.json("POST", url, 400, "globex", json={"parameters": ["1"]})
    assert (await api.json("GET", "/v1/broadcasts", 200))["items"] == []
    assert (await api.json("GET", f"/v1/contacts/{cid}", 200))["lists"] == []


async def test_erasure_masks_the_number_and_the_optout_still_holds(api2):
    cid, tid = await _setup(api2)
    url = f"/api/rest/message/sendSingle?messageId={tid}&recipientId={cid}"
    assert (await api2.call("POST", url, json={"parameters": ["1"]})).status == 204
    b = await api2.broadcast(
        [{"to": MOBILE, "params": ["x"]}, {"to": "+48505606708", "params": ["y"]}]
    )
    await api2.json("POST", "/v1/optouts", 201, json={"number": MOBILE})
    # When the contact is erased
    got = await api2.json("DELETE", f"/v1/contacts/{cid}", 200)
    assert got == {"contactID": cid, "erased": True, "messagesMasked": 2}
    # Then its number is in no table but the suppression list...
    digits = MOBILE[1:]
    with api2.engine.connect() as conn:
        for table in metadata.sorted_tables:
            rows = [str(tuple(r)) for r in conn.execute(sa.select(table))]
            found = [r for r in rows if digits in r]
            assert found == [] or table.name == "optouts", (table.name, found)
        unsent = conn.execute(
            sa.select(messages.c.recipient, messages.c.status).where(
                messages.c.recipient.like("~%")
            )
        ).all()
    assert sorted(s for _, s in unsent) == ["CANCELLED", "CANCELLED"]
    # ...nor in a report or message page, while the other recipient is untouched...
    report = await (await api2.call("GET", f"/v1/broadcasts/{b['id']}/report")).text()
    assert digits not in report and "+48505606708" in report
    assert "Hi Ana" not in report and "[erased]" in report
    assert (await api2.json("GET", "/v1/contacts?mobile=%2B48505606707", 200))["items"] == []
    # ...and the opt-out still blocks the number.
    again = await api2.broadcast([{"to": MOBILE, "params": ["z"]}])
    msgs = await api2.json("GET", f"/v1/broadcasts/{again['id']}/messages", 200)
    assert [m["status"] for m in msgs["items"]] == ["BLACKLISTED"]
    assert [o["number"] for o in (await api2.json("GET", "/v1/optouts", 200))["items"]] == [MOBILE]
