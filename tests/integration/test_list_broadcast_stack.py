"""A broadcast to a contact list through the real stack (Celery workers, Redis, the simulator):
every member with a mobile gets its own rendered text exactly once, the opted-out one none
and seed 003's contact/get and sendSingle over HTTP, then erasure (issue 15)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
import sqlalchemy as sa

from broadcaster.services.apikeys import create_key
from broadcaster.services.broadcasts import NewBroadcast, get_broadcast
from broadcaster.services.codes import add_code
from broadcaster.services.contact_import import import_file
from broadcaster.services.contact_lists import create_list_broadcast
from broadcaster.services.optouts import add_optout
from broadcaster.services.reports import report_chunks
from broadcaster.store.models import messages, metadata

pytestmark = pytest.mark.slow

MEMBERS = 2_000


def test_a_list_broadcast_reaches_each_member_exactly_once(make_stack, tmp_path):
    # Given a stack, a list of 2,000 imported contacts and one of them opted out
    stack = make_stack(send_workers=2)
    path = tmp_path / "people.csv"
    with path.open("w") as f:
        f.write("phone,first_name\n")
        for n in range(MEMBERS):
            f.write(f"+5255{n:08d},Name{n}\n")
    assert import_file(stack.engine, stack.settings, path, "default", "all")["members"] == MEMBERS
    add_optout(stack.engine, "default", "+525500000007", region=None)
    add_code(stack.engine, stack.settings, "55501", "short", mps=2000)
    # When a broadcast goes to the list
    req = NewBroadcast(sender="55501", text="Hola {first_name}", name="to the list")
    view = create_list_broadcast(stack.engine, stack.settings, "all", req)
    assert view.expected_messages == MEMBERS
    stack.wait(lambda: get_broadcast(stack.engine, view.id).status == "COMPLETED", 240, "COMPLETED")
    # Then the gateway took each member's message once, rendered from that member...
    stats = stack.sim("/_sim/stats")
    assert stats["accepted_total"] == MEMBERS - 1 and stats["duplicates"] == []
    with stack.engine.connect() as conn:
        rows = conn.execute(
            sa.select(messages.c.recipient, messages.c.text, messages.c.status)
        ).all()
    assert len(rows) == MEMBERS
    for recipient, text, status in rows:
        if recipient == "+525500000007":
            assert status == "BLACKLISTED"
        else:
            assert text == f"Hola Name{int(recipient[5:])}" and status != "QUEUE"
    # ...and the counts add up.
    final = get_broadcast(stack.engine, view.id)
    assert sum(final.counts.values()) == MEMBERS and final.counts["BLACKLISTED"] == 1


def _http(stack, method: str, path: str, key: str, body: object = None) -> tuple[int, object]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        f"http://127.0.0.1:{stack.dev.api_port}{path}",
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def _delivered(stack, number: str) -> bool:
    with stack.engine.connect() as conn:
        got = conn.execute(sa.select(messages.c.status).where(messages.c.recipient == number)).all()
    return len(got) == 1 and got[0][0] in ("DELIVRD", "UNDELIV")


def test_send_single_end_to_end_then_erasure(make_stack):
    # Given a stack, a key, a contact and a prepared message with a list
    stack = make_stack(send_workers=1)
    key = create_key(stack.engine, "default").key
    add_code(stack.engine, stack.settings, "55501", "short", mps=100)
    number = "+48505606707"
    status, contact = _http(
        stack,
        "POST",
        "/v1/contacts",
        key,
        {"identifiers": [{"type": "MOBILE", "value": number}], "attributes": {"name": "Ana"}},
    )
    assert status == 201
    status, template = _http(
        stack,
        "POST",
        "/v1/templates",
        key,
        {"name": "otp", "text": "Hi {name}, your code is {0}", "from": "55501", "list": "otp"},
    )
    assert status == 201
    # When seed 003's calls find the contact and send it the prepared message
    status, found = _http(
        stack, "POST", "/api/rest/contact/get", key, {"type": "MOBILE", "value": "48505606707"}
    )
    assert status == 200 and found["contactID"] == contact["contactID"]
    url = (
        f"/api/rest/message/sendSingle?messageId={template['id']}&recipientId={found['contactID']}"
    )
    assert _http(stack, "POST", url, key, {"parameters": ["4321"]})[0] == 204
    # Then the gateway gets it once, with the text rendered for the contact, and a receipt
    stack.wait(lambda: _delivered(stack, number), 60, "the message delivered")
    stats = stack.sim("/_sim/stats")
    assert stats["accepted_total"] == 1 and stats["duplicates"] == []
    with stack.engine.connect() as conn:
        text = conn.execute(sa.select(messages.c.text)).scalar_one()
    assert text == "Hi Ana, your code is 4321"
    assert _http(stack, "GET", f"/v1/contacts/{found['contactID']}", key)[1]["lists"] == ["otp"]
    # When the number opts out and the contact is erased
    assert _http(stack, "POST", "/v1/optouts", key, {"number": number})[0] == 201
    status, erased = _http(stack, "DELETE", f"/v1/contacts/{found['contactID']}", key)
    assert status == 200 and erased["messagesMasked"] == 1
    # Then the number is in no table but the suppression list (receipts' payloads included)...
    digits = number[1:]
    with stack.engine.connect() as conn:
        for table in metadata.sorted_tables:
            rows = [str(tuple(r)) for r in conn.execute(sa.select(table))]
            assert [r for r in rows if digits in r] == [] or table.name == "optouts", table.name
    # ...nor in the broadcast's report...
    bid = _http(stack, "GET", "/v1/broadcasts", key)[1]["items"][0]["id"]
    report = "".join(
        piece.decode() if isinstance(piece, bytes) else piece
        for piece in report_chunks(stack.engine, bid, "csv")
    )
    assert digits not in report and "Ana" not in report
    # ...and sending to it again is refused: the opt-out holds.
    _http(
        stack, "POST", "/v1/contacts", key, {"identifiers": [{"type": "MOBILE", "value": number}]}
    )
    status, again = _http(
        stack, "POST", "/api/rest/contact/get", key, {"type": "MOBILE", "value": number}
    )
    url = (
        f"/api/rest/message/sendSingle?messageId={template['id']}&recipientId={again['contactID']}"
    )
    status, refused = _http(stack, "POST", url, key, {"parameters": ["1"]})
    assert status == 400 and "suppression" in refused["detail"]
