"""Pure parts of client callbacks: payload, signature, verdicts, backoff, stored URL lists."""

from __future__ import annotations

import hashlib
import hmac
import json
import random
from datetime import UTC, datetime

import pytest

from broadcaster.services.client_callbacks import (
    BACKOFF_BASE_S,
    BACKOFF_CAP_S,
    RETRY_AFTER_CAP_S,
    backoff_s,
    build_payload,
    classify,
    encode_body,
    parse_callbacks,
    sign,
    verify,
)
from broadcaster.store.callbacks_repo import Outcome


def test_payload_shape() -> None:
    payload = build_payload(
        message_id=42,
        broadcast_id=7,
        status="DELIVRD",
        at=datetime(2026, 1, 2, 3, 4, 5, 678_900),
        sender="55501",
        recipient="+525500000000",
    )
    assert payload == {
        "id": "42",
        "status": "DELIVRD",
        "date": "2026-01-02T03:04:05.678Z",
        "from": "55501",
        "to": "+525500000000",
        "broadcastId": 7,
    }
    assert (
        build_payload(
            message_id=1,
            broadcast_id=1,
            status="SENT",
            at=datetime(2026, 1, 1),
            sender="a",
            recipient="b",
            external_id="camp-9",
        )["externalId"]
        == "camp-9"
    )


def test_payload_date_converts_aware_times_to_utc() -> None:
    aware = datetime(2026, 1, 1, 12, 0, tzinfo=UTC).astimezone()
    payload = build_payload(
        message_id=1, broadcast_id=1, status="SENT", at=aware, sender="a", recipient="b"
    )
    assert payload["date"] == "2026-01-01T12:00:00.000Z"


def test_body_is_compact_sorted_json() -> None:
    body = encode_body({"to": "+1", "id": "1", "from": "Ñandú"})
    assert body == '{"from":"Ñandú","id":"1","to":"+1"}'.encode()
    assert json.loads(body) == {"to": "+1", "id": "1", "from": "Ñandú"}


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    body = b'{"id":"1"}'
    expected = hmac.new(b"s3cret", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert sign("s3cret", "1700000000", body) == f"sha256={expected}"


@pytest.mark.parametrize(
    ("secret", "timestamp", "body", "now_s", "ok"),
    [
        ("k", "1700000000", b"{}", 1_700_000_000, True),
        ("k", "1700000000", b"{}", 1_700_000_299, True),
        ("k", "1700000000", b"{}", 1_700_000_301, False),  # stale: a replay
        ("k", "1700000000", b"{}", 1_699_999_600, False),  # from the future
        ("other", "1700000000", b"{}", 1_700_000_000, False),  # wrong key
        ("k", "1700000001", b"{}", 1_700_000_000, False),  # timestamp changed
        ("k", "nope", b"{}", 1_700_000_000, False),
    ],
)
def test_verify(secret: str, timestamp: str, body: bytes, now_s: float, ok: bool) -> None:
    signature = sign("k", "1700000000", b"{}")
    assert verify(secret, timestamp, body, signature, now_s=now_s) is ok
    assert verify("k", "1700000000", b'{"x":1}', signature, now_s=1_700_000_000) is False


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (200, Outcome.DELIVERED),
        (201, Outcome.DELIVERED),
        (204, Outcome.DELIVERED),
        (299, Outcome.DELIVERED),
        (301, Outcome.FAILED),
        (302, Outcome.FAILED),
        (307, Outcome.FAILED),
        (400, Outcome.FAILED),
        (401, Outcome.FAILED),
        (403, Outcome.FAILED),
        (404, Outcome.FAILED),
        (410, Outcome.FAILED),
        (422, Outcome.FAILED),
        (408, None),
        (429, None),
        (500, None),
        (502, None),
        (503, None),
        (504, None),
        (599, None),
    ],
)
def test_classify(status: int, verdict: Outcome | None) -> None:
    assert classify(status) is verdict


@pytest.mark.parametrize(
    ("attempt", "ceiling_s"),
    [
        (0, BACKOFF_BASE_S),
        (1, BACKOFF_BASE_S),
        (2, 2 * BACKOFF_BASE_S),
        (3, 4 * BACKOFF_BASE_S),
        (6, 32 * BACKOFF_BASE_S),
        (30, BACKOFF_CAP_S),
        (500, BACKOFF_CAP_S),
    ],
)
def test_backoff_grows_then_caps_with_jitter(attempt: int, ceiling_s: float) -> None:
    rng = random.Random(1)
    delays = [backoff_s(attempt, rng=rng) for _ in range(200)]
    assert all(ceiling_s / 2 <= d <= ceiling_s for d in delays)
    assert len({round(d, 6) for d in delays}) > 100  # jittered, not one value


@pytest.mark.parametrize(
    ("retry_after_s", "floor_s"), [(120.0, 120.0), (0.0, 1.0), (10**9, RETRY_AFTER_CAP_S)]
)
def test_retry_after_is_a_floor(retry_after_s: float, floor_s: float) -> None:
    assert backoff_s(1, rng=random.Random(2), retry_after_s=retry_after_s) >= floor_s


@pytest.mark.parametrize(
    ("stored", "urls"),
    [
        (None, []),
        ([], []),
        (["https://a.example/x"], ["https://a.example/x"]),
        (
            ["https://a.example/x", " https://a.example/x ", "https://b.example/y", ""],
            ["https://a.example/x", "https://b.example/y"],
        ),
        (
            "https://a.example/x, https://b.example/y",
            ["https://a.example/x", "https://b.example/y"],
        ),
    ],
)
def test_parse_callbacks(stored: object, urls: list[str]) -> None:
    assert parse_callbacks(stored) == urls
