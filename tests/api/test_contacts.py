"""``/v1/contacts``: seed 003's identifiers and attributes per workspace, search, paging, PATCH,
erasure, and walls between workspaces (issue 15). Both backends."""

from __future__ import annotations

import pytest

MOBILE = "+48505606707"


@pytest.fixture
async def api2(make_api, database_url):
    return await make_api(database_url)


async def _contact(api, mobile=MOBILE, workspace="acme", **extra):
    body = {
        "identifiers": [{"type": "MOBILE", "value": mobile}],
        "attributes": {"first_name": "Ana", "points": 10},
        **extra,
    }
    return await api.json("POST", "/v1/contacts", 201, workspace, json=body)


async def test_create_read_and_search_by_each_identifier(api2):
    c = await _contact(
        api2,
        "48505606707",
        lists=["vip"],
        identifiers=[
            {"type": "mobile", "value": "48505606707"},
            {"type": "EMAIL", "value": "Ana@Example.org"},
            {"type": "EXTERNAL", "value": "crm-1"},
            {"type": "APP_ALIAS", "value": "ana-app"},
        ],
    )
    assert c["identifiers"] == [
        {"type": "APP_ALIAS", "value": "ana-app"},
        {"type": "EMAIL", "value": "ana@example.org"},
        {"type": "EXTERNAL", "value": "crm-1"},
        {"type": "MOBILE", "value": MOBILE},
    ]
    assert c["attributes"] == {"first_name": "Ana", "points": "10"} and c["lists"] == ["vip"]
    cid = c["contactID"]
    assert (await api2.json("GET", f"/v1/contacts/{cid}", 200)) == c
    for query in (
        "mobile=%2B48505606707",
        "mobile=48505606707",
        "email=ANA@example.org",
        "external=crm-1",
        "app_alias=ana-app",
        f"id={cid}",
        "list=vip",
    ):
        page = await api2.json("GET", f"/v1/contacts?{query}", 200)
        assert [x["contactID"] for x in page["items"]] == [cid], query
    none = await api2.json("GET", "/v1/contacts?mobile=%2B48505606708", 200)
    assert none == {"items": [], "nextCursor": None}


async def test_an_identifier_names_one_contact(api2):
    await _contact(api2)
    body = {"identifiers": [{"type": "MOBILE", "value": "0048 505 606 707"}]}
    taken = await api2.json("POST", "/v1/contacts", 409, json=body)
    assert "belongs to contact" in taken["detail"]
    # ...but another workspace may hold the same number as its own contact.
    await _contact(api2, workspace="globex")


@pytest.mark.parametrize(
    "body,field",
    [
        ({"identifiers": []}, None),
        ({"identifiers": [{"type": "PHONE", "value": "1"}]}, None),
        ({"identifiers": [{"type": "MOBILE", "value": "12"}]}, None),
        ({"identifiers": [{"type": "EMAIL", "value": "not-an-address"}]}, None),
        ({"identifiers": [{"type": "ID", "value": "5"}]}, None),
        ({"identifiers": [{"type": "MOBILE", "value": MOBILE}], "attributes": {"a b": 1}}, None),
        ({"identifiers": [{"type": "MOBILE", "value": MOBILE}], "attributes": {"a": [1]}}, None),
        ({"identifiers": [{"type": "MOBILE"}]}, "identifiers[0].value"),
        ({"identifiers": "x"}, "identifiers"),
    ],
)
async def test_bad_contacts_are_refused_naming_why(api, body, field):
    got = await api.json("POST", "/v1/contacts", 422, json=body)
    assert got["detail"]
    if field:
        assert got["field"] == field
    assert (await api.json("GET", "/v1/contacts", 200))["items"] == []


async def test_pages_follow_the_cursor(api):
    made = [(await _contact(api, f"+4850560{n:04d}"))["contactID"] for n in range(1000, 1005)]
    seen, cursor = [], ""
    while True:
        page = await api.json("GET", f"/v1/contacts?limit=2&cursor={cursor}", 200)
        seen += [c["contactID"] for c in page["items"]]
        if page["nextCursor"] is None:
            break
        cursor = page["nextCursor"]
    assert seen == made
    assert (await api.json("GET", "/v1/contacts?cursor=zz", 400))["field"] == "cursor"


async def test_patch_changes_identifiers_attributes_and_lists(api2):
    cid = (await _contact(api2))["contactID"]
    body = {
        "identifiers": [
            {"type": "EMAIL", "value": "a@b.co"},
            {"type": "MOBILE", "value": None},
        ],
        "attributes": {"points": None, "city": "Kraków"},
        "lists": ["north"],
    }
    got = await api2.json("PATCH", f"/v1/contacts/{cid}", 200, json=body)
    assert got["identifiers"] == [{"type": "EMAIL", "value": "a@b.co"}]
    assert got["attributes"] == {"first_name": "Ana", "city": "Kraków"}
    assert got["lists"] == ["north"]
    # The number is free again for another contact.
    await _contact(api2)
    last = {"identifiers": [{"type": "EMAIL", "value": None}]}
    assert (
        "at least one"
        in (await api2.json("PATCH", f"/v1/contacts/{cid}", 422, json=last))["detail"]
    )


async def test_delete_erases_the_contact(api2):
    cid = (await _contact(api2))["contactID"]
    got = await api2.json("DELETE", f"/v1/contacts/{cid}", 200)
    assert got == {"contactID": cid, "erased": True, "messagesMasked": 0}
    await api2.json("GET", f"/v1/contacts/{cid}", 404)
    await api2.json("DELETE", f"/v1/contacts/{cid}", 404)
    # The number can be a new contact (with a new contactID: ids are never reused).
    assert (await _contact(api2))["contactID"] > cid


@pytest.mark.parametrize(
    "method,body",
    [("GET", None), ("PATCH", {"attributes": {"first_name": "Eve"}}), ("DELETE", None)],
)
async def test_another_workspace_gets_404(api, method, body):
    cid = (await _contact(api))["contactID"]
    kw = {"json": body} if body is not None else {}
    theirs = await api.json(method, f"/v1/contacts/{cid}", 404, "globex", **kw)
    missing = await api.json(method, f"/v1/contacts/{cid + 1000}", 404, "globex", **kw)
    assert theirs["title"] == missing["title"]
    assert (await api.json("GET", "/v1/contacts", 200, "globex"))["items"] == []
    assert (await api.json("GET", "/v1/contacts?mobile=%2B48505606707", 200, "globex"))[
        "items"
    ] == []
    mine = await api.json("GET", f"/v1/contacts/{cid}", 200)
    assert mine["attributes"]["first_name"] == "Ana"
