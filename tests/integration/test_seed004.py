"""Seed 004's API through the real stack (API process, workers, simulator), by a client written
from the seed's text (tests/support/seed004_client.py), checked against /v1 for the same
broadcast; and its refusals, each in the envelope with its HTTP status and nothing half-stored."""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

import openpyxl
import pytest
import sqlalchemy as sa

from broadcaster.services.apikeys import create_key
from broadcaster.services.codes import add_code
from broadcaster.store.models import broadcasts, messages
from tests.support.hostile_files import single_quoted_bomb
from tests.support.seed004_client import Answer, Seed004Client

pytestmark = pytest.mark.slow

PHONES = [f"+5255{n:08d}" for n in range(1, 41)]
CODE = "55501"
SLOW_CODE = "55509"
#: getBroadcast's documented status numbers (docs/seed-api.md).
STATUS_NUMBER = {
    "SCHEDULED": "0",
    "RUNNING": "1",
    "COMPLETED": "2",
    "SUSPENDED": "3",
    "STOPPED": "4",
}


class Env:
    def __init__(self, stack: Any) -> None:
        self.stack = stack
        created = create_key(stack.engine, "acme")
        self.key = created.key
        self.base = f"http://127.0.0.1:{stack.dev.api_port}"
        self.client = Seed004Client(
            self.base, created.instance_id, created.public_key, created.seed_secret
        )
        add_code(stack.engine, stack.settings, CODE, "short", mps=50, workspace="acme")
        add_code(stack.engine, stack.settings, SLOW_CODE, "short", mps=2, workspace="acme")

    def v1(self, bid: int | str) -> dict[str, Any]:
        req = urllib.request.Request(
            f"{self.base}/v1/broadcasts/{bid}", headers={"Authorization": f"Bearer {self.key}"}
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())  # type: ignore[no-any-return]

    def v1_status(self, bid: int | str) -> int:
        try:
            self.v1(bid)
        except urllib.error.HTTPError as err:
            return err.code
        return 200

    def rows(self) -> tuple[int, int]:
        with self.stack.engine.connect() as conn:
            b = conn.execute(sa.select(sa.func.count()).select_from(broadcasts)).scalar_one()
            m = conn.execute(sa.select(sa.func.count()).select_from(messages)).scalar_one()
        return int(b), int(m)

    def wait_status(self, bid: str, status: str, timeout_s: float = 60) -> None:
        self.stack.wait(lambda: self.v1(bid)["status"] == status, timeout_s, f"{bid} {status}")


@pytest.fixture
def env(make_stack: Any, database_url: str) -> Env:
    return Env(make_stack(database_url=database_url))


def ok(answer: Answer, method: str) -> Answer:
    assert (answer.http_status, answer.input, answer.status, answer.description) == (
        200,
        method,
        "OK",
        "Completed",
    ), answer
    assert answer.content_type.startswith("application/xml")
    return answer


def refused(answer: Answer, method: str, http_status: int, words: str) -> None:
    assert (answer.http_status, answer.input, answer.status) == (http_status, method, "ERROR"), (
        answer
    )
    assert words in answer.description, answer.description
    assert answer.result is None


def same_as_v1(seed: dict[str, str], view: dict[str, Any]) -> None:
    """A getBroadcast result says what /v1 says of the same broadcast."""
    assert seed["id"] == str(view["id"])
    assert seed["text"] == view["text"]
    assert seed["shortcode"] == view["shortcode"]
    assert seed["expectedMessages"] == str(view["expectedMessages"])
    assert seed["sentMessages"] == str(view["sentMessages"])
    assert seed["status"] == STATUS_NUMBER[view["status"]]
    assert datetime.fromisoformat(seed["startDate"]) == datetime.fromisoformat(view["startDate"])
    if view["endDate"]:
        assert datetime.fromisoformat(seed["endDate"]) == datetime.fromisoformat(view["endDate"])


def xlsx(phones: list[str]) -> bytes:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["phone", "name"])
    for i, p in enumerate(phones):
        ws.append([p, f"n{i}"])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def test_send_by_file_txt_and_xlsx_and_short_codes(env: Env) -> None:
    c = env.client
    # The workspace's codes, as getShortcodes lists them
    codes = ok(c.get_shortcodes("ana"), "getShortcodes")
    assert codes.payload.tag == "shortcodes"
    assert sorted(sc.findtext("sc") for sc in codes.result.iter("shortcode")) == [CODE, SLOW_CODE]
    # A TXT file, one number a line, with the text and sender beside it
    txt = "\n".join(PHONES[:5]).encode()
    sent = ok(c.send_sms_by_file(txt, "list.txt", text="OGANGI TEST", sender=CODE), "sendSMS")
    assert sent.payload.tag == "messages"
    got = [{el.tag: el.text or "" for el in m} for m in sent.result.iter("message")]
    assert [m["to"] for m in got] == [p.lstrip("+") for p in PHONES[:5]]
    assert {(m["from"], m["text"], m["encoding"], m["timezone"]) for m in got} == {
        (CODE, "OGANGI TEST", "UTF-8", "UTC")
    }
    assert {m["status"] for m in got} <= {"QUEUED", "SENT_TO_CARRIER"}
    assert all(m["carrier"] and m["id"] and datetime.fromisoformat(m["date"]) for m in got)
    assert all("." in m["date"] for m in got)  # yyyy-MM-dd'T'HH:mm:ss.SSSZZ
    # An Excel file with a header row and a personalised text
    book = xlsx(PHONES[5:8])
    sent2 = ok(c.send_sms_by_file(book, "list.xlsx", text="Hi {name}", sender=CODE), "sendSMS")
    assert sent2.result is not None
    texts = [m.findtext("text") for m in sent2.result.iter("message")]
    assert texts == ["Hi n0", "Hi n1", "Hi n2"]
    # Both are sent: getBroadcast agrees with /v1 and the gateway got every message
    for answer, n in ((sent, 5), (sent2, 3)):
        assert answer.result is not None
        first = answer.payload.find("message")
        assert first is not None
        with env.stack.engine.connect() as conn:
            bid = conn.execute(
                sa.select(messages.c.broadcast_id).where(
                    messages.c.id == int(first.findtext("id") or 0)
                )
            ).scalar_one()
        env.wait_status(str(bid), "COMPLETED")
        listed = env.v1(f"{bid}/messages")["items"]
        assert [(str(m["id"]), m["to"].lstrip("+")) for m in listed] == [
            (m.findtext("id"), m.findtext("to")) for m in answer.payload.iter("message")
        ]
        seed = ok(c.get_broadcast(bid), "getBroadcast").fields("broadcast")
        same_as_v1(seed, env.v1(bid))
        assert (seed["expectedMessages"], seed["sentMessages"], seed["status"]) == (
            str(n),
            str(n),
            "2",
        )


def test_json_broadcast_scheduled_edited_and_controlled(env: Env) -> None:
    c = env.client
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).strftime("%d-%m-%Y %H:%M")
    # Created for tomorrow: SCHEDULED, owned by the user named
    made = ok(
        c.create_broadcast_from_json(
            {"text": "First text", "to": PHONES[:3]},
            shortcode=CODE,
            user_name="ana",
            campaign_name="Spring sale",
            date=tomorrow,
        ),
        "createBroadcastFromJson",
    )
    b = made.fields("broadcast")
    bid = b["id"]
    assert (b["statusDescription"], b["expectedMessages"], b["shortcode"]) == (
        "SCHEDULED",
        "3",
        CODE,
    )
    view = env.v1(bid)
    assert view["name"] == "Spring sale" and view["status"] == "SCHEDULED"
    assert view["owner"] == "ana"  # userName: the user recorded as owner, as /v1 shows it
    assert datetime.fromisoformat(b["startDate"]) == datetime.fromisoformat(view["startDate"])
    assert datetime.fromisoformat(b["startDate"]).strftime("%d-%m-%Y %H:%M") == tomorrow
    # Edited before it starts: new recipients, text, sender (from the JSON) and date
    later = (datetime.now(UTC) + timedelta(days=2)).strftime("%d-%m-%Y %H:%M")
    edited = ok(
        c.create_broadcast_from_json(
            {"text": "Second text", "from": SLOW_CODE, "to": PHONES[10:30]},
            broadcast_id=int(bid),
            shortcode="ignored",
            user_name="bea",
            shortcode_ignore=False,
            date=later,
        ),
        "createBroadcastFromJson",
    ).fields("broadcast")
    assert (edited["id"], edited["text"], edited["expectedMessages"], edited["shortcode"]) == (
        bid,
        "Second text",
        "20",
        SLOW_CODE,
    )
    seed = ok(c.get_broadcast(bid), "getBroadcast").fields("broadcast")
    same_as_v1(seed, env.v1(bid))
    assert seed["status"] == "0"
    assert env.v1(bid)["owner"] == "bea"  # the edit's userName owns it now
    with env.stack.engine.connect() as conn:
        recipients = {
            r[0]
            for r in conn.execute(
                sa.select(messages.c.recipient).where(messages.c.broadcast_id == int(bid))
            )
        }
    assert recipients == set(PHONES[10:30])
    # Edited once more to start now (date null); the 2/s code keeps it running a while
    ok(
        c.create_broadcast_from_json(
            {"text": "Second text", "to": PHONES[10:30]},
            broadcast_id=int(bid),
            shortcode=SLOW_CODE,
            user_name="ana",
        ),
        "createBroadcastFromJson",
    )
    env.wait_status(bid, "RUNNING", 120)
    # Once started it is not editable: 409, and nothing of it changed
    refused(
        c.create_broadcast_from_json(
            {"text": "Too late", "to": PHONES[:1]},
            broadcast_id=int(bid),
            shortcode=SLOW_CODE,
            user_name="ana",
        ),
        "createBroadcastFromJson",
        409,
        "cannot edit broadcast",
    )
    assert env.v1(bid)["text"] == "Second text" and env.v1(bid)["expectedMessages"] == 20
    # Suspend, resume, stop, each seen by getBroadcast and by /v1
    ok(c.suspend_broadcast(int(bid)), "suspendBroadcast")
    seed = ok(c.get_broadcast(bid), "getBroadcast").fields("broadcast")
    assert seed["status"] == "3"
    same_as_v1(seed, env.v1(bid))
    ok(c.resume_broadcast(int(bid)), "resumeBroadcast")
    assert ok(c.get_broadcast(bid), "getBroadcast").fields("broadcast")["status"] == "1"
    ok(c.stop_broadcast(int(bid)), "stopBroadcast")
    seed = ok(c.get_broadcast(bid), "getBroadcast").fields("broadcast")
    view = env.v1(bid)
    same_as_v1(seed, view)
    assert seed["status"] == "4" and seed["endDate"]
    # A transition the state does not allow: 409 in the envelope
    refused(c.resume_broadcast(int(bid)), "resumeBroadcast", 409, "cannot resume")
    # Deleted: gone for both APIs
    ok(c.delete_broadcast(int(bid)), "deleteBroadcast")
    refused(c.get_broadcast(bid), "getBroadcast", 404, "does not exist")
    assert env.v1_status(bid) == 404


def test_refusals_are_enveloped_and_store_nothing(env: Env) -> None:
    c = env.client
    before = env.rows()
    # A bad signature, a wrong instance, an unknown public key: 401
    refused(
        c.send_sms_by_file(b"+525500000001\n", "a.txt", text="x", sender=CODE, signature="0" * 64),
        "sendSMS",
        401,
        "signature",
    )
    tampered = c.call(
        "GET", "getShortcodes", [c.instance_id, "ana", c.public_key], signature="f" * 64
    )
    refused(tampered, "getShortcodes", 401, "signature")
    other = create_key(env.stack.engine, "globex")
    wrong = Seed004Client(c.base_url, other.instance_id, c.public_key, c.secret)
    refused(wrong.get_shortcodes("ana"), "getShortcodes", 401, "instanceId")
    stranger = Seed004Client(c.base_url, c.instance_id, "pk_" + "0" * 32, c.secret)
    refused(stranger.get_broadcast(1), "getBroadcast", 401, "publicKey")
    # The right key of another workspace cannot see this one's broadcasts: 404
    made = ok(
        c.create_broadcast_from_json(
            {"text": "Hi", "to": PHONES[:2]},
            shortcode=CODE,
            user_name="ana",
            date=(datetime.now(UTC) + timedelta(days=1)).strftime("%d-%m-%Y %H:%M"),
        ),
        "createBroadcastFromJson",
    ).fields("broadcast")
    globex = Seed004Client(c.base_url, other.instance_id, other.public_key, other.seed_secret)
    refused(globex.get_broadcast(made["id"]), "getBroadcast", 404, "does not exist")
    refused(globex.stop_broadcast(int(made["id"])), "stopBroadcast", 404, "does not exist")
    # Unknown broadcast: 404; not a number: 400
    refused(c.get_broadcast(999_999), "getBroadcast", 404, "does not exist")
    refused(c.get_broadcast("abc"), "getBroadcast", 400, "broadcastId")
    # A transition not allowed: resume a SCHEDULED broadcast
    refused(c.resume_broadcast(int(made["id"])), "resumeBroadcast", 409, "cannot resume")
    after_made = env.rows()
    assert after_made == (before[0] + 1, before[1] + 2)
    # Files that cannot be read: 422, nothing stored
    refused(
        c.send_sms_by_file(b"\x00\x01\x02binary\xff" * 50, "a.txt", text="x", sender=CODE),
        "sendSMS",
        422,
        "a.txt",
    )
    refused(
        c.send_sms_by_file(single_quoted_bomb(), "bomb.xlsx", text="x", sender=CODE),
        "sendSMS",
        422,
        "bomb.xlsx",
    )
    refused(c.send_sms_by_file(b"+525500000001\n", "a.txt", sender=CODE), "sendSMS", 422, "text")
    refused(
        c.send_sms_by_file(b"+525500000001\n", "a.txt", text="x", sender="99999"),
        "sendSMS",
        422,
        "CODE_NOT_ALLOWED",
    )
    # A recipient list that is not JSON, or has no text, or a bad date: refused, nothing stored
    bad_json = c.create_broadcast_from_json("[not json", shortcode=CODE, user_name="ana")
    refused(bad_json, "createBroadcastFromJson", 422, "JSON")
    no_text = c.create_broadcast_from_json(PHONES[:2], shortcode=CODE, user_name="ana")
    refused(no_text, "createBroadcastFromJson", 422, "text")
    bad_date = c.create_broadcast_from_json(
        {"text": "x", "to": PHONES[:1]}, shortcode=CODE, user_name="ana", date="2026-12-01"
    )
    refused(bad_date, "createBroadcastFromJson", 400, "dd-MM-yyyy HH:mm")
    # A failed edit leaves the broadcast as it was
    bad_edit = c.create_broadcast_from_json(
        {"text": "x", "to": PHONES[:1]},
        broadcast_id=int(made["id"]),
        shortcode="99999",
        user_name="ana",
    )
    refused(bad_edit, "createBroadcastFromJson", 422, "CODE_NOT_ALLOWED")
    assert env.rows() == after_made
    view = env.v1(made["id"])
    assert (view["text"], view["expectedMessages"], view["shortcode"]) == ("Hi", 2, CODE)
    env.stack.assert_alive()
