"""``/v1/messages``: single send, batch send, read with receipts."""

from __future__ import annotations

import pytest

from broadcaster.api.limits import ApiLimits
from broadcaster.domain.states import MessageStatus
from broadcaster.providers.base import Receipt
from broadcaster.services.receipts import apply_receipt
from tests.support.api import PHONES, TEST_LIMITS


async def test_single_send_is_queued_like_seed_001(api):
    body = await api.json(
        "POST",
        "/v1/messages",
        202,
        json={
            "from": "55501",
            "to": PHONES[0],
            "text": "text demo",
            "requestDR": True,
            "type": "MT",
            "externalId": "ignored",
        },
    )
    assert body["status"] == "QUEUE" and body["from"] == "55501" and body["to"] == PHONES[0]
    assert body["text"] == "text demo" and body["segments"] == 1 and body["encoding"] == "GSM-7"
    assert isinstance(body["id"], int) and body["broadcastId"] and body["receipts"] == []


async def test_single_send_reads_national_numbers_with_a_region(api):
    body = await api.json(
        "POST",
        "/v1/messages",
        202,
        json={"from": "55501", "to": "55 0000 0007", "text": "x", "region": "mx"},
    )
    assert body["to"] == "+525500000007"


async def test_bad_number_is_invalid_routing(api):
    body = await api.json(
        "POST", "/v1/messages", 422, json={"from": "55501", "to": "12345", "text": "x"}
    )
    assert body["messageStatus"] == "INVALID_ROUTING" and body["field"] == "to"


async def test_unregistered_code_is_code_not_allowed(api):
    # 55502 belongs to the other workspace.
    body = await api.json(
        "POST", "/v1/messages", 422, json={"from": "55502", "to": PHONES[0], "text": "x"}
    )
    assert body["messageStatus"] == "CODE_NOT_ALLOWED" and body["field"] == "from"


async def test_too_long_text_is_segments_exceeded(api):
    body = await api.json(
        "POST", "/v1/messages", 422, json={"from": "55501", "to": PHONES[0], "text": "a" * 1601}
    )
    assert body["messageStatus"] == "SEGMENTS_EXCEEDED" and body["field"] == "text"


@pytest.mark.parametrize(
    "payload,field",
    [
        ({"to": PHONES[0], "text": "x"}, "from"),
        ({"from": "55501", "text": "x"}, "to"),
        ({"from": "55501", "to": PHONES[0]}, "text"),
        ({"from": "55501", "to": PHONES[0], "text": ""}, "text"),
        ({"from": 55501, "to": PHONES[0], "text": "x"}, "from"),
        ({"from": "55501", "to": PHONES[0], "text": "nul\x00byte"}, "text"),
        ({"from": "55501", "to": PHONES[0], "text": "lone \ud800 surrogate"}, "text"),
        ({"from": "55501", "to": PHONES[0], "text": "Hi {0}"}, "text"),
        ({"from": "55501", "to": PHONES[0], "text": "bad {"}, "text"),
        ({"from": "55501", "to": PHONES[0], "text": "x", "region": "XX"}, "region"),
        ({"from": "55501", "to": PHONES[0], "text": "x", "callbacks": ["ftp://a"]}, "callbacks"),
        ({"from": "55501", "to": PHONES[0], "text": "x", "callbacks": 5}, "callbacks"),
        ({"from": "x" * 21, "to": PHONES[0], "text": "x"}, "from"),
    ],
)
async def test_bad_fields_are_422_naming_the_field(api, payload, field):
    body = await api.json("POST", "/v1/messages", 422, json=payload)
    assert body["field"] == field, body


@pytest.mark.parametrize(
    "data,status",
    [
        (b"{not json", 400),
        (b"[1, 2]", 422),
        (b'{"from": NaN}', 400),
        (b"[" * 100_000, 400),
    ],
)
async def test_malformed_bodies(api, data, status):
    resp = await api.call(
        "POST", "/v1/messages", data=data, headers={"Content-Type": "application/json"}
    )
    assert resp.status == status, await resp.text()


async def test_wrong_content_type_is_415(api):
    resp = await api.call(
        "POST", "/v1/messages", data=b"from=1", headers={"Content-Type": "text/plain"}
    )
    body = await resp.json()
    assert resp.status == 415 and body["field"] == "Content-Type"


async def test_oversized_json_is_413(make_api):
    api = await make_api(
        limits=ApiLimits(json_max_bytes=1_000, rate_per_s=1e6, rate_burst=1_000_000)
    )
    resp = await api.call(
        "POST", "/v1/messages", json={"from": "55501", "to": PHONES[0], "text": "x" * 2_000}
    )
    assert resp.status == 413


async def test_read_message_with_receipt_history(api):
    sent = await api.json(
        "POST", "/v1/messages", 202, json={"from": "55501", "to": PHONES[0], "text": "x"}
    )
    # A receipt arrives (as the receipts route would store it).
    apply_receipt(
        api.engine,
        "simulator",
        Receipt(
            reference=str(sent["id"]),
            gateway_id="gw-1",
            status=MessageStatus.DELIVRD,
            at="2026-01-01T00:00:00Z",
            raw={},
        ),
    )
    got = await api.json("GET", f"/v1/messages/{sent['id']}", 200)
    assert [r["status"] for r in got["receipts"]] == ["DELIVRD"]
    assert got["receipts"][0]["receivedAt"].endswith("Z")


async def test_unknown_message_is_404(api):
    await api.json("GET", "/v1/messages/999999", 404)
    await api.json("GET", "/v1/messages/999999999999999999", 404)
    assert (await api.call("GET", "/v1/messages/abc")).status == 404
    assert (await api.call("GET", "/v1/messages/9999999999999999999")).status == 404


# ------------------------------------------------------------------------------------ batch


async def test_batch_like_seed_001(api):
    body = await api.json(
        "POST",
        "/v1/messages/batch",
        202,
        json={
            "from": "55501",
            "text": "Hi {0}, your balance is ${1}",
            "type": "MT",
            "to": [
                {"to:": PHONES[0], "params": ["Elizabeth", 10.65]},
                {"to": PHONES[1], "params": ["Joshua", 20.5]},
                {"to": "12345", "params": ["Nobody", 1]},
                PHONES[2],
            ],  # no params: a row error, not a message with a raw {0}
        },
    )
    assert [i["mobile"] for i in body["ids"]] == PHONES[:2]
    assert body["invalidNumber"] == ["12345"]
    assert {e["line"] for e in body["rowErrors"]} == {3, 4}
    assert body["status"] == "QUEUE"
    first = await api.json("GET", f"/v1/messages/{body['ids'][0]['id']}", 200)
    assert first["text"] == "Hi Elizabeth, your balance is $10.65"
    second = await api.json("GET", f"/v1/messages/{body['ids'][1]['id']}", 200)
    assert second["text"] == "Hi Joshua, your balance is $20.5"


async def test_batch_of_only_bad_numbers_completes_at_once(api):
    body = await api.json(
        "POST", "/v1/messages/batch", 202, json={"from": "55501", "text": "x", "to": ["1", "2"]}
    )
    assert (
        body["ids"] == [] and body["invalidNumber"] == ["1", "2"] and body["status"] == "COMPLETED"
    )


async def test_batch_duplicates_are_row_errors(api):
    body = await api.json(
        "POST",
        "/v1/messages/batch",
        202,
        json={"from": "55501", "text": "x", "to": [PHONES[0], PHONES[0]]},
    )
    assert len(body["ids"]) == 1 and body["rowErrors"] == [
        {"line": 2, "value": PHONES[0], "reason": "duplicate"}
    ]


@pytest.mark.parametrize(
    "payload,field",
    [
        ({"from": "55501", "text": "x", "to": []}, "to"),
        ({"from": "55501", "text": "x", "to": "+525500000001"}, "to"),
        ({"from": "55501", "text": "x", "to": [{"params": []}]}, "to[0]"),
        ({"from": "55501", "text": "x", "to": [{"to": PHONES[0], "params": "a"}]}, "to[0].params"),
        (
            {"from": "55501", "text": "x", "to": [{"to": PHONES[0], "params": [{"a": 1}]}]},
            "to[0].params[0]",
        ),
        ({"from": "55501", "text": "x", "to": [True]}, "to[0]"),
        ({"from": "55501", "text": "Hi {name}", "to": [PHONES[0]]}, "text"),
        ({"from": "55501", "text": "x", "to": [PHONES[0]] * 6}, "to"),
    ],
)
async def test_bad_batches_are_422(make_api, payload, field):
    api = await make_api(
        limits=ApiLimits(batch_max_recipients=5, rate_per_s=1e6, rate_burst=1_000_000)
    )
    body = await api.json("POST", "/v1/messages/batch", 422, json=payload)
    assert body["field"] == field, body


def test_test_limits_are_generous():
    assert TEST_LIMITS.rate_burst >= 10_000
