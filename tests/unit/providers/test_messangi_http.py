"""The shared HTTP helpers: failure classification, Retry-After, the retry policy."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import aiohttp
import pytest

from broadcaster.errors import OutcomeUnknown, PermanentGatewayError, RetryableGatewayError
from broadcaster.providers.http import (
    MAX_RETRY_AFTER_S,
    Deadline,
    HttpReply,
    check_status,
    classify_exception,
    classify_status,
    parse_retry_after,
    retried,
    retrying,
    snippet,
)

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        (None, None),
        ("", None),
        ("7", 7.0),
        (" 2 ", 2.0),
        ("0.5", 0.5),
        ("-3", 0.0),
        ("nonsense", None),
        ("99999", MAX_RETRY_AFTER_S),
        (format_datetime(datetime(2024, 5, 1, 12, 0, 30, tzinfo=UTC), usegmt=True), 30.0),
        (format_datetime(datetime(2024, 5, 1, 11, 0, 0, tzinfo=UTC), usegmt=True), 0.0),
        ("nan", None),
    ],
)
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, now_epoch_s=NOW) == seconds


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (200, None),
        (202, None),
        (400, PermanentGatewayError),
        (401, PermanentGatewayError),
        (403, PermanentGatewayError),
        (404, PermanentGatewayError),
        (422, PermanentGatewayError),
        (408, RetryableGatewayError),
        (425, RetryableGatewayError),
        (429, RetryableGatewayError),
        (500, RetryableGatewayError),
        (502, RetryableGatewayError),
        (503, RetryableGatewayError),
        (599, RetryableGatewayError),
    ],
)
def test_classify_status(status: int, error: type[Exception] | None) -> None:
    got = classify_status(status, "body", {"Retry-After": "3"})
    if error is None:
        assert got is None
    else:
        assert type(got) is error
        assert str(got).startswith(f"HTTP {status}: body")


def test_429_carries_retry_after_and_400_carries_status() -> None:
    throttled = classify_status(429, "", {"Retry-After": "3"})
    refused = classify_status(400, "x" * 1000)
    assert isinstance(throttled, RetryableGatewayError) and throttled.retry_after_s == 3.0
    assert isinstance(refused, PermanentGatewayError) and refused.status == 400
    assert len(refused.reason) < 250


class _Key:
    """Enough of a ConnectionKey for aiohttp's connector errors."""

    host, port, ssl = "127.0.0.1", 1, None


@pytest.mark.parametrize(
    ("exc", "error"),
    [
        (aiohttp.ClientConnectorError(_Key(), OSError(111, "refused")), RetryableGatewayError),  # type: ignore[arg-type]
        (aiohttp.ConnectionTimeoutError("connect"), RetryableGatewayError),
        (TimeoutError(), OutcomeUnknown),
        (aiohttp.SocketTimeoutError("read"), OutcomeUnknown),
        (aiohttp.ServerDisconnectedError(), OutcomeUnknown),
        (aiohttp.ClientPayloadError("cut"), OutcomeUnknown),
        (aiohttp.ClientOSError(104, "reset by peer"), OutcomeUnknown),
        (ConnectionResetError(), OutcomeUnknown),
        (aiohttp.InvalidURL("nope"), PermanentGatewayError),
        (RuntimeError("surprise"), OutcomeUnknown),
    ],
)
def test_classify_exception(exc: BaseException, error: type[Exception]) -> None:
    assert type(classify_exception(exc)) is error


def test_check_status_and_unreadable_success() -> None:
    assert check_status(HttpReply(200, {}, "{}")).ok
    with pytest.raises(PermanentGatewayError):
        check_status(HttpReply(302, {}, ""))
    with pytest.raises(OutcomeUnknown):  # the gateway said yes, we could not read what
        HttpReply(200, {}, "<html>").json()


def test_snippet_flattens_and_cuts() -> None:
    assert snippet("a\n  b\tc") == "a b c"
    assert len(snippet("x" * 500, 50)) == 50


def test_deadline_with_a_fake_clock() -> None:
    now = [100.0]
    deadline = Deadline(5.0, clock=lambda: now[0])
    assert deadline.remaining_s() == 5.0 and deadline.cap(10.0) == 5.0 and deadline.cap(1.0) == 1.0
    now[0] = 106.0
    assert deadline.expired and deadline.remaining_s() == 0.0


@pytest.fixture(params=["loop", "retried"])
def via(request: pytest.FixtureRequest) -> str:
    """Every policy test runs twice: tenacity's loop as adapters write it, and ``retried``,
    which calls once outside tenacity and replays a first failure into it: same outcomes."""
    return str(request.param)


async def _run_policy(
    via: str, errors: list[Exception], **kw: Any
) -> tuple[list[float], int, Exception | None]:
    slept: list[float] = []

    async def fake_sleep(s: float) -> None:
        slept.append(s)

    calls = 0

    async def call() -> None:
        nonlocal calls
        calls += 1
        if errors:
            raise errors.pop(0)

    try:
        if via == "retried":
            await retried(call, lambda: retrying(sleep=fake_sleep, **kw))
        else:
            async for attempt in retrying(sleep=fake_sleep, **kw):
                with attempt:
                    await call()
        return slept, calls, None
    except Exception as exc:
        return slept, calls, exc


async def test_retried_builds_no_policy_when_the_first_call_succeeds() -> None:
    async def ok() -> str:
        return "sent"

    def policy() -> Any:
        raise AssertionError("the policy was built for a call that succeeded")

    assert await retried(ok, policy) == "sent"


async def test_policy_backs_off_with_jitter_within_the_cap(via: str) -> None:
    slept, calls, exc = await _run_policy(
        via,
        [RetryableGatewayError("500")] * 4,
        max_attempts=5,
        deadline=Deadline(60),
        base_s=1.0,
        cap_s=3.0,
    )
    assert exc is None and calls == 5
    for n, s in enumerate(slept, start=1):
        assert 0.0 <= s <= min(3.0, 2 ** (n - 1))


async def test_policy_honours_retry_after(via: str) -> None:
    slept, _, exc = await _run_policy(
        via,
        [RetryableGatewayError("429", retry_after_s=4.0)],
        max_attempts=3,
        deadline=Deadline(60),
    )
    assert exc is None and 4.0 <= slept[0] <= 4.4


async def test_policy_stops_at_max_attempts_and_reraises(via: str) -> None:
    _, calls, exc = await _run_policy(
        via,
        [RetryableGatewayError(str(i)) for i in range(9)],
        max_attempts=3,
        deadline=Deadline(60),
    )
    assert calls == 3 and isinstance(exc, RetryableGatewayError) and str(exc) == "2"


async def test_policy_never_sleeps_past_the_deadline(via: str) -> None:
    slept, calls, exc = await _run_policy(
        via,
        [RetryableGatewayError("429", retry_after_s=30.0)],
        max_attempts=5,
        deadline=Deadline(10),
    )
    assert slept == [] and calls == 1 and isinstance(exc, RetryableGatewayError)


async def test_policy_does_not_retry_permanent_errors(via: str) -> None:
    _, calls, exc = await _run_policy(
        via, [PermanentGatewayError("401", status=401)], max_attempts=5, deadline=Deadline(60)
    )
    assert calls == 1 and isinstance(exc, PermanentGatewayError)


async def test_policy_settles_before_retrying_an_unknown_outcome(via: str) -> None:
    slept, _, exc = await _run_policy(
        via,
        [OutcomeUnknown("timeout"), RetryableGatewayError("500")],
        max_attempts=3,
        deadline=Deadline(60),
        base_s=0.01,
        settle_s=2.0,
    )
    assert exc is None and slept[0] == 2.0 and slept[1] <= 0.02
