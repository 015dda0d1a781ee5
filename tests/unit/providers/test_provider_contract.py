"""What every gateway adapter promises its callers (broadcaster/providers/base.py)."""

from __future__ import annotations

from typing import Any

import pytest

from broadcaster.domain.states import MessageStatus
from broadcaster.providers.base import Provider, Receipt, StatusPoller
from broadcaster.providers.kannel import KannelProvider
from broadcaster.providers.messangi import MessangiProvider
from broadcaster.providers.opentext import OpenTextProvider
from broadcaster.providers.vonage import VonageProvider

UNREACHABLE = "http://127.0.0.1:9"  # nothing is sent in the parse tests

ADAPTERS = {
    "messangi": lambda url: MessangiProvider(url, "key", max_attempts=1),
    "kannel": lambda url: KannelProvider(url, "user", "pw", max_attempts=1),
    "vonage": lambda url: VonageProvider(
        url, "id", "secret", token_url=url + "/token", max_attempts=1
    ),
    "opentext": lambda url: OpenTextProvider(url, "user", "pw", max_attempts=1),
}

#: Receipt bodies no gateway sends: missing fields, wrong types, unknown statuses.
HOSTILE = [
    {},
    {"status": "BOGUS"},
    {"status": ["DELIVRD"]},
    {"status": None, "id": "1"},
    {"status": {"a": 1}, "externalId": "1"},
    {"ref": ["1"], "status": "1"},
    {"ref": "1", "status": "99"},
    {"messageId": ["a"], "status": "delivered"},
    {"messageId": "a", "status": 7, "client-ref": None},
    {"id": 1, "externalId": 2, "status": 3, "date": 4},
]


@pytest.mark.parametrize("name", sorted(ADAPTERS))
@pytest.mark.parametrize("payload", HOSTILE, ids=range(len(HOSTILE)))
def test_parse_receipt_raises_value_error_or_returns_a_receipt(
    name: str, payload: dict[str, Any]
) -> None:
    provider: Provider = ADAPTERS[name](UNREACHABLE)
    try:
        receipt = provider.parse_receipt(payload)
    except ValueError:
        return
    assert isinstance(receipt, Receipt) and isinstance(receipt.status, MessageStatus)


@pytest.mark.parametrize(
    ("name", "polls"),
    [("messangi", False), ("kannel", False), ("vonage", False), ("opentext", True)],
)
def test_status_poller_is_declared_not_guessed(name: str, polls: bool) -> None:
    assert isinstance(ADAPTERS[name](UNREACHABLE), StatusPoller) is polls
