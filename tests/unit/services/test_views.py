"""The contacts, lists, prepared-message, opt-out and inbound use cases answer frozen views and
one ``Page`` type (issue 16); the wire names (``contactID``, ``from``, millisecond times) come
from ``to_wire`` at the edge, as the HTTP bodies always had them."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from pathlib import Path

import pytest

from broadcaster.config import Settings
from broadcaster.domain.wire import to_wire
from broadcaster.providers.inbound import Inbound
from broadcaster.services import contact_lists, contacts, inbound, optouts, prepared, queries
from broadcaster.services.codes import add_code
from broadcaster.services.views import (
    ContactView,
    InboundView,
    ListView,
    MembersAdded,
    OptoutView,
    Page,
    TemplateView,
)
from broadcaster.store.db import engine_for, upgrade


@pytest.fixture
def engine(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'views.db'}"
    upgrade(url)
    return engine_for(url)


def _frozen(view: object) -> None:
    assert dataclasses.is_dataclass(view)
    field = dataclasses.fields(view)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(view, field, None)


def test_one_page_type_for_broadcasts_and_contacts():
    assert queries.Page is Page and contacts.Page is Page


def test_contact_list_template_views_are_frozen_and_keep_their_wire_names(engine):
    ana = contacts.create_contact(
        engine, "acme", identifiers=[("MOBILE", "+525500000001")], attributes={"n": "Ana"}
    )
    contacts.create_contact(engine, "acme", identifiers=[("EMAIL", "b@x.org")])
    assert isinstance(ana, ContactView)
    _frozen(ana)
    wire = to_wire(ana)
    assert wire["contactID"] == ana.contact_id and "contactId" not in wire
    assert wire["identifiers"] == [{"type": "MOBILE", "value": "+525500000001"}]
    assert wire["createdAt"].endswith("Z")

    page = contacts.list_contacts(engine, "acme", limit=1)
    assert isinstance(page, Page) and page.next_after == (ana.contact_id,)
    assert contacts.list_contacts(engine, "acme", after=ana.contact_id, limit=1).next_after is None

    vip = contact_lists.create_list(engine, "acme", "vip")
    assert isinstance(vip, ListView)
    _frozen(vip)
    added = contact_lists.change_members(engine, "acme", vip.id, [ana.contact_id], add=True)
    assert isinstance(added, MembersAdded)
    assert to_wire(added) == {**to_wire(vip), "members": 1, "added": 1}
    assert contact_lists.list_lists(engine, "acme").items == [dataclasses.replace(vip, members=1)]

    settings = Settings(database_url=str(engine.url), redis_url=None)
    add_code(engine, settings, "5555", "short", workspace="acme")
    tpl = prepared.create_template(engine, "acme", name="hi", text="Hi {n}", sender="5555")
    assert isinstance(tpl, TemplateView)
    _frozen(tpl)
    assert to_wire(tpl)["from"] == "5555" and "sender" not in to_wire(tpl)
    assert prepared.list_templates(engine, "acme").items == [tpl]

    erased = contacts.erase_contact(engine, "acme", ana.contact_id)
    assert to_wire(erased) == {"contactID": ana.contact_id, "erased": True, "messagesMasked": 0}


def test_optout_and_inbound_views_show_times_to_the_millisecond(engine):
    entry = optouts.add_optout(engine, "acme", "+525500000009", region=None, detail="asked")
    assert isinstance(entry, OptoutView)
    _frozen(entry)
    created = to_wire(entry)["createdAt"]
    assert created.endswith("Z") and len(created) == len("2026-12-01T10:00:00.000Z")
    assert datetime.fromisoformat(created[:-1]) == entry.created_at.replace(
        microsecond=entry.created_at.microsecond // 1000 * 1000
    )
    assert optouts.list_optouts(engine, "acme") == [entry]

    settings = Settings(database_url=str(engine.url), redis_url=None)
    inbound.receive(engine, settings, "simulator", Inbound("g1", "+525500000001", "77", "hi"))
    assert inbound.list_inbound(engine, "acme") == []  # an MO to no workspace's code
    view = InboundView.of(
        {
            "id": 1,
            "sender": "+525500000001",
            "recipient": "77",
            "text": "hi",
            "keyword": None,
            "route": "simulator",
            "gateway_id": "g1",
            "received_at": datetime(2026, 12, 1, 10, 0, 0, 123456),
            "reported_at": None,
        }
    )
    assert to_wire(view) == {
        "id": 1,
        "from": "+525500000001",
        "to": "77",
        "text": "hi",
        "keyword": None,
        "route": "simulator",
        "gatewayId": "g1",
        "date": "2026-12-01T10:00:00.123Z",
        "gatewayDate": None,
    }
