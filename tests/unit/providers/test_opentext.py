"""The OpenText Notifications adapter against ``tests/support/fake_opentext.py`` over loopback HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from broadcaster.domain.states import MessageStatus
from broadcaster.errors import PermanentGatewayError, RetryableGatewayError
from broadcaster.providers.base import OutboundMessage
from broadcaster.providers.opentext import OpenTextProvider, delivery_status
from tests.support.fake_opentext import PASSWORD, USERNAME, FakeOpenText

M = MessageStatus
Make = Callable[..., Awaitable[tuple[FakeOpenText, OpenTextProvider]]]


@pytest.fixture
async def opentext(aiohttp_server: Any) -> AsyncIterator[Make]:
    made: list[OpenTextProvider] = []

    async def make(
        fake: FakeOpenText | None = None, **kw: Any
    ) -> tuple[FakeOpenText, OpenTextProvider]:
        fake = fake or FakeOpenText()
        server = await aiohttp_server(fake.app())
        kw.setdefault("backoff_base_s", 0.01)
        kw.setdefault("backoff_cap_s", 0.02)
        password = kw.pop("password", PASSWORD)
        provider = OpenTextProvider(str(server.make_url("")), USERNAME, password, **kw)
        made.append(provider)
        return fake, provider

    yield make
    for p in made:
        await p.close()


def msg(
    i: int, text: str = "Summer promo: 20% off today", to: str | None = None
) -> OutboundMessage:
    return OutboundMessage(str(i), "OPENTEXT", to or f"+3466699{i:04d}", text)


async def test_identical_texts_go_as_one_job_with_our_references(opentext: Make) -> None:
    fake, provider = await opentext(billing_code="SUMMER-PROMO", customer_reference="broadcast-7")
    results = await provider.send_batch([msg(i) for i in range(5)])
    assert [r.status for r in results] == [M.SENT] * 5
    assert len(fake.jobs) == 1 and fake.submits == 1
    [job] = fake.jobs.values()
    assert {r.gateway_id for r in results} == {job.job_id}
    assert job.destinations[0] == {"sms": "0034666990000", "ref": "0"}
    assert [d["ref"] for d in job.destinations] == ["0", "1", "2", "3", "4"]
    assert job.options == {"billing_code": "SUMMER-PROMO", "customer_reference": "broadcast-7"}
    assert job.submit_id == "broadcaster-0-5"


async def test_distinct_texts_and_the_job_cap_make_more_jobs(opentext: Make) -> None:
    fake, provider = await opentext(max_destinations_per_job=3)
    batch = [msg(i) for i in range(7)] + [msg(10, "Hola 1"), msg(11, "Hola 2")]
    results = await provider.send_batch(batch)
    assert [r.reference for r in results] == [m.reference for m in batch]
    assert {r.status for r in results} == {M.SENT}
    assert sorted(len(j.destinations) for j in fake.jobs.values()) == [1, 1, 1, 3, 3]
    texts = {j.job_id: j.sms_text for j in fake.jobs.values()}
    assert all(texts[r.gateway_id or ""] == m.text for r, m in zip(results, batch, strict=True))


async def test_status_pages_settle_each_destination(opentext: Make) -> None:
    # Given one job of four, one of whose numbers will fail
    fake, provider = await opentext()
    batch = [msg(1), msg(2), msg(3, to="+34666990013"), msg(4)]
    results = await provider.send_batch(batch)
    job_id = results[0].gateway_id
    assert job_id is not None
    # When the poller asks three times
    page0 = await provider.poll_status(job_id)
    page1 = await provider.poll_status(job_id)
    page2 = await provider.poll_status(job_id)
    # Then nothing is known at first, then all are on their way, then each is final
    assert page0 == []
    assert {(r.reference, r.status) for r in page1} == {(str(i), M.ENROUTE) for i in (1, 2, 3, 4)}
    assert {r.reference: r.status for r in page2} == {
        "1": M.DELIVRD,
        "2": M.DELIVRD,
        "3": M.UNDELIV,
        "4": M.DELIVRD,
    }
    assert all(r.gateway_id == job_id and r.at == "2023-08-21T10:26:00.000Z" for r in page2)


async def test_bad_credentials_are_permanent(opentext: Make) -> None:
    fake, provider = await opentext(password="wrong")
    results = await provider.send_batch([msg(1), msg(2), msg(3, "other")])
    assert {r.status for r in results} == {M.ERROR}
    assert all("401" in (r.error or "") and r.attempts == 1 for r in results)
    assert fake.submits == 2 and not fake.jobs
    assert "wrong" not in repr(provider)
    with pytest.raises(PermanentGatewayError):
        await provider.poll_status("xsi-1")


@pytest.mark.parametrize("faults", [["429"], ["500"], ["503", "429"]])
async def test_transient_refusals_retry_the_job(opentext: Make, faults: list[str]) -> None:
    fake, provider = await opentext()
    fake.script = list(faults)
    results = await provider.send_batch([msg(1), msg(2)])
    assert {r.status for r in results} == {M.SENT}
    assert all(r.attempts == len(faults) + 1 for r in results)
    assert len(fake.jobs) == 1


async def test_retries_run_out(opentext: Make) -> None:
    fake, provider = await opentext(max_attempts=2)
    fake.script = ["500"] * 5
    results = await provider.send_batch([msg(1), msg(2)])
    assert {r.status for r in results} == {M.ERROR}
    assert all("gave up after 2 attempts" in (r.error or "") and not r.unknown for r in results)


async def test_one_bad_number_does_not_sink_its_job(opentext: Make) -> None:
    fake, provider = await opentext()
    results = await provider.send_batch([msg(1), msg(2, to="+34abc"), msg(3)])
    assert [r.status for r in results] == [M.SENT, M.ERROR, M.SENT]
    assert "400" in (results[1].error or "")
    assert sorted(len(j.destinations) for j in fake.jobs.values()) == [1, 1]


@pytest.mark.parametrize("fault", ["hang", "garbage"])
async def test_lost_answer_is_unknown_and_never_resubmitted(opentext: Make, fault: str) -> None:
    fake, provider = await opentext(FakeOpenText(hang_s=1.0), timeout_s=0.2)
    fake.script = [fault]
    results = await provider.send_batch([msg(1), msg(2)])
    assert all(r.unknown and r.status == M.DEQUEUED and r.attempts == 1 for r in results)
    assert fake.submits == 1 and len(fake.jobs) == 1


async def test_status_of_an_unknown_job_is_permanent(opentext: Make) -> None:
    _, provider = await opentext()
    with pytest.raises(PermanentGatewayError):
        await provider.poll_status("xsi-999")


async def test_status_polls_are_retried(opentext: Make) -> None:
    fake, provider = await opentext()
    [result] = await provider.send_batch([msg(1)])
    fake.status_script = ["429", "500"]
    assert await provider.poll_status(result.gateway_id or "") == []
    assert fake.status_requests == 3


async def test_status_gives_up_with_a_retryable_error(opentext: Make) -> None:
    fake, provider = await opentext(max_attempts=2)
    fake.status_script = ["500"] * 3
    with pytest.raises(RetryableGatewayError):
        await provider.poll_status("xsi-1000001")


async def test_no_push_receipts_and_no_resend_invitation(opentext: Make) -> None:
    _, provider = await opentext()
    with pytest.raises(ValueError, match="push receipts not supported"):
        provider.parse_receipt({"job_id": "xsi-1"})
    found = await provider.lookup("1")
    assert found.found and found.status is None


@pytest.mark.parametrize(
    ("delivery", "complete", "expected"),
    [
        ({}, False, None),
        ({"delivery_attempts": [{"state": "Submitted"}]}, False, M.ENROUTE),
        ({"delivery_attempts": [{"state": "Sent"}]}, True, M.ACCEPTD),
        ({"delivery_attempts": [{"state": "Error"}]}, False, M.ENROUTE),
        ({"delivery_attempts": [{"state": "Error"}]}, True, M.UNDELIV),
        ({"delivery_attempts": [{"state": "Error"}, {"state": "Cancelled"}]}, True, M.DELETED),
        (
            {
                "delivery_attempts": [{"state": "Sent"}],
                "events": {"sms_delivery_events": [{"status": "Confirmed"}]},
            },
            True,
            M.DELIVRD,
        ),
        (
            {
                "delivery_attempts": [{"state": "Sent"}],
                "events": {"sms_delivery_events": [{"status": "Buffered"}, {"status": "Expired"}]},
            },
            True,
            M.EXPIRED,
        ),
        (
            {
                "delivery_attempts": [{"state": "Sent"}],
                "events": {"sms_delivery_events": [{"status": "Rejected"}]},
            },
            True,
            M.REJECTD,
        ),
        ({"delivery_attempts": [{"state": "Mystery"}]}, True, None),
    ],
)
def test_delivery_status_table(
    delivery: dict[str, Any], complete: bool, expected: MessageStatus | None
) -> None:
    assert delivery_status(delivery, complete) == expected


def test_seed_status_document() -> None:
    # The answer printed in seed 000, verbatim.
    body = {
        "job_id": "xsi2-44417320",
        "billing_code_base64": "U1VNTUVSLVBST01P",
        "customer_reference_base64": "Sm9hcXVpbk9uU29mdA==",
        "entry_time": "2023-08-21T09:25:26.000Z",
        "job_state": ["Complete", "Posted"],
        "deliveries": [
            {
                "ref_base64": "Sm9hcXVpbi1SRUY=",
                "sms": "0034626790770",
                "delivery_attempts": [
                    {"state": "Sent", "first_attempt": "2023-08-21T10:25:26.000Z"}
                ],
                "events": {
                    "sms_delivery_events": [
                        {"event_time": "2023-08-21T10:26:00.000Z", "status": "Confirmed"}
                    ]
                },
            }
        ],
    }
    [receipt] = OpenTextProvider("http://o", "u", "p").receipts_from_status("xsi2-44417320", body)
    assert (receipt.reference, receipt.gateway_id, receipt.status) == (
        "Joaquin-REF",
        "xsi2-44417320",
        M.DELIVRD,
    )


def test_delivery_without_ref_is_attributed_only_in_a_single_destination_job() -> None:
    provider = OpenTextProvider("http://o", "u", "p")
    done = {"delivery_attempts": [{"state": "Sent"}]}
    single = provider.receipts_from_status(
        "xsi-1", {"job_state": ["Complete"], "deliveries": [done]}
    )
    assert [(r.reference, r.gateway_id) for r in single] == [(None, "xsi-1")]
    several = provider.receipts_from_status("xsi-2", {"deliveries": [done, dict(done, ref="7")]})
    assert [r.reference for r in several] == ["7"]
