"""The Vonage (KPN Nexmo) adapter against ``tests/support/fake_vonage.py`` over loopback HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from broadcaster.domain.segments import measure
from broadcaster.domain.states import MessageStatus
from broadcaster.providers.accounts import (
    AccountConfigError,
    account_mps,
    build_account_provider,
    load_accounts,
)
from broadcaster.providers.base import OutboundMessage
from broadcaster.providers.kannel import KannelProvider
from broadcaster.providers.opentext import OpenTextProvider
from broadcaster.providers.vonage import (
    KPN_BASE_URL,
    KPN_TOKEN_URL,
    NEXMO_STATUS,
    VonageProvider,
    parse_inbound,
)
from tests.support.fake_vonage import CLIENT_ID, CLIENT_SECRET, SMS_PATH, TOKEN_PATH, FakeVonage

M = MessageStatus
CALLBACK = "http://127.0.0.1:8080/v1/dlr/vonage?secret=S"

Make = Callable[..., Awaitable[tuple[FakeVonage, VonageProvider]]]


@pytest.fixture
async def vonage(aiohttp_server: Any) -> AsyncIterator[Make]:
    made: list[VonageProvider] = []

    async def make(fake: FakeVonage | None = None, **kw: Any) -> tuple[FakeVonage, VonageProvider]:
        fake = fake or FakeVonage()
        server: TestServer = await aiohttp_server(fake.app())
        kw.setdefault("backoff_base_s", 0.01)
        kw.setdefault("backoff_cap_s", 0.02)
        kw.setdefault("callback_url", CALLBACK)
        secret = kw.pop("client_secret", CLIENT_SECRET)
        provider = VonageProvider(
            str(server.make_url(SMS_PATH)),
            CLIENT_ID,
            secret,
            token_url=str(server.make_url(TOKEN_PATH)),
            **kw,
        )
        made.append(provider)
        return fake, provider

    yield make
    for p in made:
        await p.close()


def msg(i: int, text: str = "Hello from broadcaster") -> OutboundMessage:
    info = measure(text)
    return OutboundMessage(
        str(i), "BROADCAST", f"+3161234{i:04d}", text, info.encoding, info.segments
    )


async def test_batch_sends_with_one_token_and_our_reference(vonage: Make) -> None:
    fake, provider = await vonage()
    results = await provider.send_batch([msg(i) for i in range(30)] + [msg(99, "Привет ☃")])
    assert [r.status for r in results] == [M.SENT] * 31
    assert all(r.gateway_id and r.attempts == 1 for r in results)
    assert fake.token_requests == 1  # 31 concurrent sends, one token request
    by_ref = {b["client-ref"]: b for b in fake.sends}
    assert by_ref["3"]["to"] == "31612340003" and by_ref["3"]["from"] == "BROADCAST"
    assert by_ref["3"]["type"] == "text" and by_ref["99"]["type"] == "unicode"
    assert by_ref["3"]["callback"] == CALLBACK and by_ref["3"]["status-report-req"] == 1


async def test_long_text_is_sent_once_with_the_first_part_id(vonage: Make) -> None:
    fake, provider = await vonage()
    [result] = await provider.send_batch([msg(1, "word " * 100)])
    assert result.status == M.SENT and result.gateway_id == "130000000001"
    assert len(fake.sends) == 1


async def test_expired_token_is_renewed_before_use(vonage: Make) -> None:
    # Given tokens that live one second
    fake, provider = await vonage(FakeVonage(expires_in_s=1.0))
    assert (await provider.send_batch([msg(1)]))[0].status == M.SENT
    # When the next send comes after the token's life
    await asyncio.sleep(1.0)
    [result] = await provider.send_batch([msg(2)])
    # Then a second token was asked for up front, and no send met a 401
    assert result.status == M.SENT and result.attempts == 1
    assert fake.token_requests == 2 and fake.requests == 2


async def test_revoked_token_is_refreshed_once_then_success(vonage: Make) -> None:
    fake, provider = await vonage()
    await provider.send_batch([msg(1)])
    fake.script = ["revoke"]
    [result] = await provider.send_batch([msg(2)])
    assert result.status == M.SENT and result.attempts == 1
    assert fake.token_requests == 2 and fake.requests == 3
    assert [b["client-ref"] for b in fake.sends] == ["1", "2"]


async def test_401_after_refresh_is_permanent(vonage: Make) -> None:
    fake, provider = await vonage(max_attempts=5)
    fake.script = ["revoke", "revoke"]
    [result] = await provider.send_batch([msg(1)])
    assert result.status == M.ERROR and "401" in (result.error or "")
    assert fake.requests == 2 and fake.token_requests == 2 and not fake.sends


async def test_bad_credentials_fail_every_message_with_one_token_request(vonage: Make) -> None:
    fake, provider = await vonage(client_secret="wrong")
    results = await provider.send_batch([msg(i) for i in range(10)])
    assert {r.status for r in results} == {M.ERROR}
    assert all(
        "token: HTTP 401" in (r.error or "") and "wrong" not in (r.error or "") for r in results
    )
    assert fake.requests == 0 and fake.token_requests == 0
    assert "wrong" not in repr(provider) and "wrong" not in repr(provider.tokens)


@pytest.mark.parametrize(
    "faults", [["429"], ["throttled"], ["500"], ["status:5"], ["429", "throttled", "500"]]
)
async def test_transient_refusals_are_retried(vonage: Make, faults: list[str]) -> None:
    fake, provider = await vonage()
    fake.script = list(faults)
    [result] = await provider.send_batch([msg(1)])
    assert result.status == M.SENT and result.attempts == len(faults) + 1
    assert len(fake.sends) == 1


async def test_throttling_that_never_ends_runs_out_of_attempts(vonage: Make) -> None:
    fake, provider = await vonage(max_attempts=3)
    fake.script = ["throttled"] * 10
    [result] = await provider.send_batch([msg(1)])
    assert result.status == M.ERROR and result.attempts == 3 and not result.unknown
    assert "gave up after 3 attempts" in (result.error or "") and "throttled" in (
        result.error or ""
    )


async def test_a_barred_number_is_blacklisted_not_retried(vonage: Make) -> None:
    fake, provider = await vonage()
    fake.script = ["status:7"]
    [result] = await provider.send_batch([msg(1)])
    assert result.status == M.BLACKLISTED and result.attempts == 1 and not result.unknown
    assert "Vonage status 7" in (result.error or "") and fake.requests == 1


@pytest.mark.parametrize("code", ["2", "3", "4", "6", "8", "9", "15", "29", "99"])
async def test_permanent_status_codes_are_not_retried(vonage: Make, code: str) -> None:
    fake, provider = await vonage()
    fake.script = [f"status:{code}"]
    [result] = await provider.send_batch([msg(1)])
    assert result.status == M.ERROR and result.attempts == 1
    assert f"Vonage status {code}" in (result.error or "")
    assert fake.requests == 1


def test_status_table_retries_only_transient_codes() -> None:
    assert {c for c, (_, retry) in NEXMO_STATUS.items() if retry} == {"1", "5", "10"}


async def test_lost_answer_is_unknown_and_never_resent(vonage: Make) -> None:
    fake, provider = await vonage(FakeVonage(hang_s=1.0), timeout_s=0.2)
    fake.script = ["hang"]
    [result] = await provider.send_batch([msg(1)])
    assert result.unknown and result.status == M.DEQUEUED and result.attempts == 1
    assert fake.requests == 1 and len(fake.sends) == 1


async def test_unreadable_success_is_unknown(vonage: Make) -> None:
    fake, provider = await vonage()
    fake.script = ["garbage"]
    [result] = await provider.send_batch([msg(1)])
    assert result.unknown and fake.requests == 1


async def test_partly_accepted_long_text_is_sent_not_resent(vonage: Make) -> None:
    fake, provider = await vonage()
    fake.script = ["partial"]
    [result] = await provider.send_batch([msg(1, "word " * 80)])  # 400 characters: 3 parts
    assert result.status == M.SENT and "2 of 3 parts refused" in (result.error or "")
    assert fake.requests == 1


async def test_lookup_never_invites_a_resend(vonage: Make) -> None:
    _, provider = await vonage()
    found = await provider.lookup("1")
    assert found.found and found.status is None


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("delivered", M.DELIVRD),
        ("expired", M.EXPIRED),
        ("failed", M.UNDELIV),
        ("rejected", M.REJECTD),
        ("accepted", M.ACCEPTD),
        ("buffered", M.ENROUTE),
        ("unknown", M.UNKNOWN),
        ("DELIVERED", M.DELIVRD),
    ],
)
def test_receipt_table(word: str, expected: MessageStatus) -> None:
    provider = VonageProvider("http://v", "id", "secret")
    payload = FakeVonage.receipt(
        {"to": "31612345678", "from": "BROADCAST", "client-ref": "42"}, "130000000007", status=word
    )
    receipt = provider.parse_receipt(payload)
    assert (receipt.reference, receipt.gateway_id, receipt.status) == (
        "42",
        "130000000007",
        expected,
    )
    assert receipt.at == "2020-01-01 14:00:00" and receipt.raw["err-code"] == "0"


@pytest.mark.parametrize("payload", [{"messageId": "1"}, {"messageId": "1", "status": "lost"}])
def test_unreadable_receipts_are_refused(payload: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        VonageProvider("http://v", "id", "secret").parse_receipt(payload)


def test_receipt_without_client_ref_matches_by_message_id() -> None:
    receipt = VonageProvider("http://v", "id", "s").parse_receipt(
        {"messageId": "13", "status": "failed"}
    )
    assert receipt.reference is None and receipt.gateway_id == "13" and receipt.status == M.UNDELIV


def test_inbound_message() -> None:
    got = parse_inbound(
        {
            "msisdn": "31612345678",
            "to": "3197010000000",
            "messageId": "0A00000012345678",
            "text": "STOP",
            "type": "text",
            "keyword": "STOP",
            "message-timestamp": "2020-01-01 12:00:00",
        }
    )
    assert got == {
        "from": "+31612345678",
        "to": "3197010000000",
        "text": "STOP",
        "gateway_id": "0A00000012345678",
        "at": "2020-01-01 12:00:00",
        "type": "text",
        "keyword": "STOP",
        "concat": None,
    }


def test_inbound_concatenated_part() -> None:
    got = parse_inbound(
        {
            "msisdn": "31612345678",
            "to": "3197010000000",
            "messageId": "0A1",
            "text": "part two",
            "concat": "true",
            "concat-ref": "108",
            "concat-total": "2",
            "concat-part": "2",
        }
    )
    assert got["concat"] == {"ref": "108", "total": 2, "part": 2}


def test_inbound_without_sender_is_refused() -> None:
    with pytest.raises(ValueError):
        parse_inbound({"text": "hi"})


# -- accounts (no test file of their own in this change: tests/unit/providers/test_accounts.py would be home) --

ACCOUNTS_JSON = """{
  "kannel-main": {"provider": "kannel", "base_url": "http://127.0.0.1:13013", "username": "bc",
                  "password": "kannel-secret-1", "mps": 100, "extra": {"smsc": "op-a", "concurrency": 5}},
  "kpn": {"provider": "vonage", "client_id": "APP_KEY", "client_secret": "kpn-secret-2"},
  "ot": {"provider": "opentext", "base_url": "https://api.eu.cloudmessaging.opentext.com",
         "username": "xsi", "password": "ot-secret-3", "extra": {"billing_code": "PROMO"}},
  "sim": {"provider": "simulator"}
}"""


def test_accounts_load_and_build_their_adapters() -> None:
    accounts = load_accounts(ACCOUNTS_JSON)
    assert set(accounts) == {"kannel-main", "kpn", "ot", "sim"}
    assert account_mps(accounts) == {"kannel-main": 100.0}
    knobs: dict[str, Any] = {
        "timeout_s": 5.0,
        "max_attempts": 3,
        "concurrency": 50,
        "deadline_s": 30.0,
        "callback_url": CALLBACK,
    }
    kannel = build_account_provider(accounts["kannel-main"], **knobs)
    assert isinstance(kannel, KannelProvider) and kannel.name == "kannel"
    assert kannel.smsc == "op-a" and kannel.concurrency == 5 and kannel.callback_url == CALLBACK
    assert kannel.query(msg(1))["password"] == "kannel-secret-1"
    vonage = build_account_provider(accounts["kpn"], **knobs, name="kpn")
    assert isinstance(vonage, VonageProvider) and vonage.name == "kpn"
    assert vonage.base_url == KPN_BASE_URL and vonage.tokens.token_url == KPN_TOKEN_URL
    opentext = build_account_provider(accounts["ot"], **knobs)
    assert isinstance(opentext, OpenTextProvider) and opentext.billing_code == "PROMO"
    assert opentext.concurrency == 50
    assert build_account_provider(accounts["sim"], **knobs) is None


def test_account_secrets_never_show() -> None:
    accounts = load_accounts(ACCOUNTS_JSON)
    shown = " ".join(repr(a) + str(a) + a.model_dump_json() for a in accounts.values())
    for secret in ("kannel-secret-1", "kpn-secret-2", "ot-secret-3"):
        assert secret not in shown
    assert accounts["kpn"].secret("client_secret") == "kpn-secret-2"


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (
            '{"k": {"provider": "kannel", "base_url": "http://k", "username": "u"}}',
            "needs password",
        ),
        ('{"k": {"provider": "vonage", "client_id": "id"}}', "needs client_secret"),
        (
            '{"k": {"provider": "kannel", "base_url": "http://k", "username": "u", "password": "hunter2",'
            ' "extra": {"smsc_id": "x"}}}',
            "unknown extra for kannel: smsc_id",
        ),
        ('{"k": {"provider": "smpp"}}', "provider"),
        (
            '{"k": {"provider": "opentext", "base_url": "http://o", "username": "u", "password": "hunter2",'
            ' "pasword": "hunter2"}}',
            "pasword",
        ),
        (
            '{"k": {"provider": "kannel", "base_url": "http://k", "username": "u", "password": "hunter2",'
            ' "mps": -1}}',
            "mps",
        ),
        ('{"k": {"name": "other", "provider": "simulator"}}', "name field"),
        ('{"k": ["provider"]}', "expected an object"),
        ("[1]", "JSON object"),
        ('{"k": ', "not JSON"),
    ],
)
def test_bad_accounts_are_refused_without_echoing_secrets(raw: str, says: str) -> None:
    with pytest.raises(AccountConfigError) as caught:
        load_accounts(raw)
    assert says in str(caught.value) and "hunter2" not in str(caught.value)


def test_no_accounts() -> None:
    assert load_accounts(None) == {} and load_accounts("  ") == {}
