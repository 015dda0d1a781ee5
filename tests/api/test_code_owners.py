"""A sender code belongs to one workspace: no other can register it or send from it, unless an
operator shares it (``broadcaster codes share``); a code names only a provider and an account
that exist (issue 11 item 3, issue 12 bulkheads)."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from broadcaster.api.context import CTX
from broadcaster.config import Settings
from broadcaster.errors import Conflict, InputError, NotFound
from broadcaster.services.codes import add_code, list_codes, share_code
from broadcaster.store.models import sender_codes

ACCOUNTS = json.dumps(
    {
        "kannel-main": {
            "provider": "kannel",
            "base_url": "http://kannel.invalid:13013",
            "username": "u",
            "password": "p",
        },
        "kpn": {"provider": "vonage", "client_id": "c", "client_secret": "s"},
    }
)


async def test_another_workspace_cannot_register_or_send_from_an_owned_code(api):
    # Given acme's code 55501 (the fixture registered it)
    # When globex asks for it over the API, it is a 409 problem document
    resp = await api.call(
        "POST", "/v1/codes", workspace="globex", json={"code": "55501", "kind": "short"}
    )
    assert resp.status == 409
    assert resp.content_type == "application/problem+json"
    body = await resp.json(content_type=None)
    assert body["status"] == 409 and body["field"] == "code"
    # Then nothing was stored for globex, and a message "from 55501" is refused to it
    assert [c.code for c in list_codes(api.engine, api.settings, "globex")] == ["55502"]
    refused = await api.json(
        "POST",
        "/v1/messages",
        422,
        workspace="globex",
        json={"from": "55501", "to": "+525500000001", "text": "x"},
    )
    assert refused["messageStatus"] == "CODE_NOT_ALLOWED"
    # and the owner still sends from it
    await api.json(
        "POST", "/v1/messages", 202, json={"from": "55501", "to": "+525500000001", "text": "x"}
    )


async def test_the_service_refuses_a_code_another_workspace_owns(api):
    with pytest.raises(
        Conflict, match=r"belongs to workspace 'acme'.*codes share 55501 --workspace globex"
    ):
        add_code(api.engine, api.settings, "55501", "short", workspace="globex")
    # the owner may update its own code as before (idempotent for scripts)
    assert add_code(api.engine, api.settings, "55501", "short", mps=9, workspace="acme").mps == 9


async def test_an_operator_shares_a_code_and_the_owner_keeps_its_route_and_rate(api):
    settings = api.settings.model_copy(update={"accounts": ACCOUNTS})
    add_code(api.engine, settings, "55501", "short", mps=12, workspace="acme")
    shared, owner = share_code(api.engine, settings, "55501", "globex")
    assert owner == "acme" and shared.mps == 12
    # The shared workspace sees and sends from it …
    codes = {
        c["code"]: c for c in (await api.json("GET", "/v1/codes", 200, workspace="globex"))["items"]
    }
    assert codes["55501"]["mps"] == 12
    await api.json(
        "POST",
        "/v1/messages",
        202,
        workspace="globex",
        json={"from": "55501", "to": "+525500000001", "text": "x"},
    )
    # … but cannot change it: kind, rate and route are the owner's, and the owner's changes
    # reach every workspace it is shared with (one code at the gateway, one rate)
    with pytest.raises(Conflict, match="shared with 'globex'"):
        add_code(api.engine, settings, "55501", "long", workspace="globex")
    add_code(api.engine, settings, "55501", "short", mps=3, account="kannel-main", workspace="acme")
    with api.engine.connect() as conn:
        rows = conn.execute(
            sa.select(sender_codes.c.mps, sender_codes.c.account).where(
                sender_codes.c.code == "55501"
            )
        ).all()
    assert sorted(rows) == [(3.0, "kannel-main"), (3.0, "kannel-main")]
    # A code nobody owns cannot be shared; an owner needs no share
    with pytest.raises(NotFound):
        share_code(api.engine, settings, "99990", "globex")
    with pytest.raises(InputError, match="owns"):
        share_code(api.engine, settings, "55501", "acme")


@pytest.mark.parametrize(
    "provider,account,says",
    [
        ("kanel", None, "unknown provider 'kanel'"),
        (None, "kannel-backup", "unknown account 'kannel-backup'"),
        ("kannel", None, "add --account kannel-main"),
        ("vonage", "kannel-main", "is a kannel account"),
    ],
)
def test_a_code_names_only_a_provider_and_account_that_exist(sqlite_url, provider, account, says):
    from broadcaster.store.db import engine_for, upgrade

    upgrade(sqlite_url)
    engine = engine_for(sqlite_url)
    settings = Settings(database_url=sqlite_url, accounts=ACCOUNTS)
    with pytest.raises(InputError) as refused:
        add_code(engine, settings, "12346", "short", provider=provider, account=account)
    text = str(refused.value)
    assert says in text
    # the error says what is configured
    assert "configured providers: messangi, simulator" in text
    assert "kannel-main (kannel), kpn (vonage)" in text
    assert list_codes(engine, settings) == []  # nothing stored
    # and the routes that exist are accepted
    assert (
        add_code(engine, settings, "12347", "short", account="kannel-main").route_key
        == "kannel-main"
    )
    assert add_code(engine, settings, "12348", "short", provider="messangi").route_key == "messangi"


async def test_the_api_refuses_a_code_when_the_default_provider_cannot_send(make_api):
    api = await make_api()
    broken = api.settings.model_copy(update={"provider": "kannel"})
    api.client.app[CTX].settings = broken
    body = await api.json("POST", "/v1/codes", 422, json={"code": "12346", "kind": "short"})
    assert "provider 'kannel'" in body["detail"] and "configured providers" in body["detail"]
    assert "12346" not in {c.code for c in list_codes(api.engine, broken, "acme")}
