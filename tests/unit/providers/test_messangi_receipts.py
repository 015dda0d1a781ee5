"""Receipt parsing and the provider registry."""

from __future__ import annotations

from typing import Literal

import pytest

from broadcaster.config import Settings
from broadcaster.domain.states import MessageStatus
from broadcaster.providers.messangi import MessangiProvider, gateway_status
from broadcaster.providers.registry import build_provider, receipt_callback_url, send_deadline_s

M = MessageStatus


@pytest.mark.parametrize(
    ("word", "status"),
    [
        ("DELIVRD", M.DELIVRD),
        ("UNDELIV", M.UNDELIV),
        ("EXPIRED", M.EXPIRED),
        ("REJECTD", M.REJECTD),
        ("ACCEPTD", M.ACCEPTD),
        ("DELETED", M.DELETED),
        ("UNKNOWN", M.UNKNOWN),
        ("ENROUTE", M.ENROUTE),
        ("delivrd", M.DELIVRD),
        (" DELIVRD ", M.DELIVRD),
        ("DELIVERED", M.DELIVRD),
        ("QUEUE", M.SENT),
        ("DEQUEUED", M.SENT),
        ("SENT", M.SENT),
        ("ERROR", M.REJECTD),
        ("BLACKLISTED", M.BLACKLISTED),
        ("INVALID_ROUTING", M.INVALID_ROUTING),
        ("CODE_NOT_ALLOWED", M.CODE_NOT_ALLOWED),
        ("SEGMENTS_EXCEEDED", M.SEGMENTS_EXCEEDED),
        ("SOMETHING_NEW", M.UNKNOWN),
        ("", M.UNKNOWN),
        (None, M.UNKNOWN),
        (3, M.UNKNOWN),
    ],
)
def test_gateway_status_table(word: object, status: MessageStatus) -> None:
    assert gateway_status(word) is status


def test_parse_receipt_reads_the_simulator_callback() -> None:
    payload = {
        "id": "g-1",
        "externalId": "42",
        "status": "DELIVRD",
        "date": "2021-08-17T04:25:38.117Z",
        "from": "12345",
        "to": "+580000000005",
    }
    receipt = MessangiProvider("http://x", "k").parse_receipt(payload)
    assert (receipt.reference, receipt.gateway_id, receipt.status, receipt.at) == (
        "42",
        "g-1",
        M.DELIVRD,
        "2021-08-17T04:25:38.117Z",
    )
    assert receipt.raw == payload


def test_parse_receipt_tolerates_missing_fields() -> None:
    receipt = MessangiProvider("http://x", "k").parse_receipt({"clientId": "7", "status": "??"})
    assert (receipt.reference, receipt.gateway_id, receipt.status, receipt.at) == (
        "7",
        None,
        M.UNKNOWN,
        None,
    )


@pytest.mark.parametrize("name", ["simulator", "messangi"])
def test_registry_builds_the_messangi_adapter(name: Literal["simulator", "messangi"]) -> None:
    settings = Settings(
        provider=name,
        messangi_base_url="http://gw/v1/",
        messangi_api_key="K",
        public_url="http://us:8080/",
        dlr_secret="s&t",
        gateway_timeout_s=3,
        gateway_max_attempts=4,
        send_concurrency=20,
        chunk_size=200,
        lease_s=100,
    )
    provider = build_provider(settings)
    assert isinstance(provider, MessangiProvider) and provider.name == name
    assert provider.base_url == "http://gw/v1" and provider.concurrency == 20
    assert (provider.timeout_s, provider.max_attempts) == (3, 4)
    assert provider.callback_url == f"http://us:8080/v1/dlr/{name}?secret=s%26t"
    # per message from its own claim (services/inflight.py): a share of the lease
    assert provider.deadline_s == send_deadline_s(settings) == pytest.approx(100 * 0.8)
    assert receipt_callback_url(settings, "x").startswith("http://us:8080/v1/dlr/x?")


def test_registry_refuses_unknown_providers() -> None:
    settings = Settings().model_copy(update={"provider": "carrier-pigeon"})
    with pytest.raises(ValueError):
        build_provider(settings)
