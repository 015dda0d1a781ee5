"""``/v1/lists``, ``/v1/templates`` and ``POST /v1/broadcasts`` with ``"list"``: membership and
counts, prepared messages, a list broadcast rendered from attributes with suppressed numbers
BLACKLISTED and members without a mobile or an attribute as row errors; walls between
workspaces (issue 15). Both backends."""

from __future__ import annotations

import pytest

A, B, C, D = "+48505606701", "+48505606702", "+48505606703", "+48505606704"


@pytest.fixture
async def api2(make_api, database_url):
    return await make_api(database_url)


async def _contact(api, identifiers, attributes=None, workspace="acme", lists=()):
    body = {"identifiers": identifiers, "attributes": attributes or {}, "lists": list(lists)}
    return (await api.json("POST", "/v1/contacts", 201, workspace, json=body))["contactID"]


def _mobile(n):
    return [{"type": "MOBILE", "value": n}]


async def test_list_members_and_counts(api2):
    vip = await api2.json("POST", "/v1/lists", 201, json={"name": "vip"})
    assert (vip["name"], vip["members"]) == ("vip", 0)
    await api2.json("POST", "/v1/lists", 409, json={"name": "vip"})
    a, b = await _contact(api2, _mobile(A)), await _contact(api2, _mobile(B))
    url = f"/v1/lists/{vip['id']}/members"
    got = await api2.json("POST", url, 200, json={"contactIDs": [a, b, a]})
    assert (got["added"], got["members"]) == (2, 2)
    assert (await api2.json("POST", url, 200, json={"contactIDs": [a]}))["added"] == 0
    got = await api2.json("DELETE", url, 200, json={"contactIDs": [b]})
    assert (got["removed"], got["members"]) == (1, 1)
    bad = await api2.json("POST", url, 422, json={"contactIDs": [a, 999999]})
    assert "999999" in bad["detail"]
    page = await api2.json("GET", "/v1/lists", 200)
    assert [(x["name"], x["members"]) for x in page["items"]] == [("vip", 1)]
    members = await api2.json("GET", "/v1/contacts?list=vip", 200)
    assert [c["contactID"] for c in members["items"]] == [a]
    resp = await api2.call("DELETE", f"/v1/lists/{vip['id']}")
    assert resp.status == 204
    await api2.json("GET", f"/v1/lists/{vip['id']}", 404)
    assert (await api2.json("GET", f"/v1/contacts/{a}", 200))["lists"] == []


async def test_templates_crud(api2):
    body = {"name": "welcome", "text": "Hi {first_name}", "from": "55501", "list": "new"}
    t = await api2.json("POST", "/v1/templates", 201, json=body)
    assert (t["name"], t["text"], t["from"], t["list"]) == (
        "welcome",
        "Hi {first_name}",
        "55501",
        "new",
    )
    assert (await api2.json("GET", "/v1/lists", 200))["items"][0]["name"] == "new"
    got = await api2.json(
        "PATCH", f"/v1/templates/{t['id']}", 200, json={"text": "Hey", "list": None}
    )
    assert (got["text"], got["list"], got["name"]) == ("Hey", None, "welcome")
    assert [x["id"] for x in (await api2.json("GET", "/v1/templates", 200))["items"]] == [t["id"]]
    refused = await api2.json("POST", "/v1/templates", 422, json={**body, "from": "99999"})
    assert refused["messageStatus"] == "CODE_NOT_ALLOWED"
    await api2.json("POST", "/v1/templates", 422, json={**body, "text": "Hi {"})
    resp = await api2.call("DELETE", f"/v1/templates/{t['id']}")
    assert resp.status == 204
    await api2.json("GET", f"/v1/templates/{t['id']}", 404)


async def test_list_broadcast_renders_attributes_and_refuses_what_it_cannot_send(api2):
    await _contact(api2, _mobile(A), {"first_name": "Ana"}, lists=["vip"])
    await _contact(api2, _mobile(B), {"first_name": "Bob"}, lists=["vip"])
    await _contact(api2, _mobile(C), {"first_name": "Cy"}, lists=["vip"])  # opted out
    await _contact(api2, _mobile(D), {}, lists=["vip"])  # no first_name
    nomobile = await _contact(
        api2, [{"type": "EMAIL", "value": "e@x.org"}], {"first_name": "Eve"}, lists=["vip"]
    )
    await _contact(api2, _mobile("+48505606709"), {"first_name": "Out"})  # not in the list
    await api2.json("POST", "/v1/optouts", 201, json={"number": C})
    body = {"from": "55501", "text": "Hi {First_Name}!", "list": "vip"}
    b = await api2.json("POST", "/v1/broadcasts", 201, json=body)
    assert (b["expectedMessages"], b["invalidRows"], b["source"]) == (3, 2, "list vip")
    msgs = await api2.json("GET", f"/v1/broadcasts/{b['id']}/messages", 200)
    got = {m["to"]: m["status"] for m in msgs["items"]}
    assert got == {A: "QUEUE", B: "QUEUE", C: "BLACKLISTED"}
    errors = (await api2.json("GET", f"/v1/broadcasts/{b['id']}/errors", 200))["items"]
    assert [(e["value"], e["reason"]) for e in errors] == [
        (D, "missing value for {First_Name}"),
        (f"contact {nomobile}", "no MOBILE identifier"),
    ]
    report = await (await api2.call("GET", f"/v1/broadcasts/{b['id']}/report")).text()
    assert "Hi Ana!" in report and "Hi Bob!" in report


@pytest.mark.parametrize(
    "body,field",
    [
        ({"from": "55501", "text": "Hi", "list": "nope"}, "list"),
        ({"from": "55501", "text": "Hi", "list": "vip", "recipients": ["+48505606701"]}, "list"),
        ({"from": "55501", "text": "Hi {0}", "list": "vip"}, None),
    ],
)
async def test_list_broadcast_refusals(api, body, field):
    await _contact(api, _mobile(A), {"first_name": "Ana"}, lists=["vip"])
    got = await api.json("POST", "/v1/broadcasts", 422, json=body)
    if field:
        assert got["field"] == field
    assert (await api.json("GET", "/v1/broadcasts", 200))["items"] == []


async def test_another_workspace_cannot_see_or_use_lists_and_templates(api):
    a = await _contact(api, _mobile(A), {"first_name": "Ana"}, lists=["vip"])
    vip = (await api.json("GET", "/v1/lists", 200))["items"][0]["id"]
    t = await api.json(
        "POST", "/v1/templates", 201, json={"name": "w", "text": "Hi", "from": "55501"}
    )
    for method, url, body in [
        ("GET", f"/v1/lists/{vip}", None),
        ("DELETE", f"/v1/lists/{vip}", None),
        ("POST", f"/v1/lists/{vip}/members", {"contactIDs": [a]}),
        ("DELETE", f"/v1/lists/{vip}/members", {"contactIDs": [a]}),
        ("GET", f"/v1/templates/{t['id']}", None),
        ("PATCH", f"/v1/templates/{t['id']}", {"text": "pwned"}),
        ("DELETE", f"/v1/templates/{t['id']}", None),
    ]:
        kw = {"json": body} if body is not None else {}
        await api.json(method, url, 404, "globex", **kw)
    assert (await api.json("GET", "/v1/lists", 200, "globex"))["items"] == []
    assert (await api.json("GET", "/v1/templates", 200, "globex"))["items"] == []
    # globex's own list cannot take acme's contact, nor broadcast to acme's list.
    theirs = await api.json("POST", "/v1/lists", 201, "globex", json={"name": "mine"})
    await api.json(
        "POST", f"/v1/lists/{theirs['id']}/members", 422, "globex", json={"contactIDs": [a]}
    )
    body = {"from": "55502", "text": "Hi", "list": "vip"}
    assert (await api.json("POST", "/v1/broadcasts", 422, "globex", json=body))["field"] == "list"
    mine = await api.json("GET", f"/v1/lists/{vip}", 200)
    assert mine["members"] == 1
    assert (await api.json("GET", f"/v1/templates/{t['id']}", 200))["text"] == "Hi"
