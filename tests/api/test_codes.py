"""``/v1/codes``: list (seed 004 getShortcodes) and register."""

from __future__ import annotations

import pytest

from broadcaster.services.codes import add_code


async def test_list_codes(api):
    body = await api.json("GET", "/v1/codes", 200)
    assert body == {
        "items": [
            {
                "code": "55501",
                "kind": "short",
                "mps": api.settings.short_code_mps,
                "mps_configured": None,
                "provider": "simulator",
                "account": None,
            }
        ]
    }


async def test_register_a_code_then_send_from_it(api):
    created = await api.json(
        "POST", "/v1/codes", 201, json={"code": "ACME", "kind": "alphanumeric", "mps": 5}
    )
    assert created["code"] == "ACME" and created["mps"] == 5
    assert {c["code"] for c in (await api.json("GET", "/v1/codes", 200))["items"]} == {
        "55501",
        "ACME",
    }
    await api.json(
        "POST", "/v1/messages", 202, json={"from": "ACME", "to": "+525500000001", "text": "x"}
    )
    # The other workspace still cannot use it.
    await api.json(
        "POST",
        "/v1/messages",
        422,
        workspace="globex",
        json={"from": "ACME", "to": "+525500000001", "text": "x"},
    )


async def test_existing_code_is_409_and_unchanged(api):
    accounts = '{"big": {"provider": "messangi", "base_url": "http://gw.invalid", "api_key": "k"}}'
    add_code(
        api.engine,
        api.settings.model_copy(update={"accounts": accounts}),
        "55509",
        "short",
        mps=7,
        provider="messangi",
        account="big",
        workspace="acme",
    )
    body = await api.json("POST", "/v1/codes", 409, json={"code": "55509", "kind": "long"})
    assert body["field"] == "code"
    code = next(
        c for c in (await api.json("GET", "/v1/codes", 200))["items"] if c["code"] == "55509"
    )
    assert (code["kind"], code["mps"], code["provider"], code["account"]) == (
        "short",
        7,
        "messangi",
        "big",
    )


async def test_a_code_belongs_to_the_first_workspace_that_registers_it(api):
    await api.json("POST", "/v1/codes", 201, json={"code": "777777", "kind": "short"})
    # The same code, or the same code written another way, is refused to everyone else …
    for code in ("777777", "+777777"):
        body = await api.json(
            "POST", "/v1/codes", 409, workspace="globex", json={"code": code, "kind": "short"}
        )
        assert body["field"] == "code" and "operator" in body["detail"]
        assert "acme" not in body["detail"]  # … without naming the owner to a stranger
    items = (await api.json("GET", "/v1/codes", 200, workspace="globex"))["items"]
    assert [c["code"] for c in items] == ["55502"]


@pytest.mark.parametrize(
    "payload,field",
    [
        ({"kind": "short"}, "code"),
        ({"code": "12345"}, "kind"),
        ({"code": "12345", "kind": "huge"}, "kind"),
        ({"code": "12", "kind": "short"}, "code"),
        ({"code": "TOO LONG NAME", "kind": "alphanumeric"}, "code"),
        ({"code": "12345", "kind": "short", "mps": 0}, "mps"),
        ({"code": "12345", "kind": "short", "mps": 1e9}, "mps"),
        ({"code": "12345", "kind": "short", "mps": "fast"}, "mps"),
        ({"code": "12345", "kind": "short", "mps": True}, "mps"),
        ({"code": "12345", "kind": "short", "mps": 10**400}, "mps"),
    ],
)
async def test_bad_codes_are_422(api, payload, field):
    body = await api.json("POST", "/v1/codes", 422, json=payload)
    assert body["field"] == field, body
