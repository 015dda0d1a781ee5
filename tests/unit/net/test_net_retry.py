"""The one HTTP retry policy (broadcaster/net/retry.py) that gateways and webhooks share."""

from __future__ import annotations

import random

import pytest

from broadcaster.net.retry import backoff_s, is_retryable, parse_retry_after
from broadcaster.providers.http import RetryableGatewayError, classify_status
from broadcaster.services.client_callbacks import classify
from broadcaster.store.callbacks_repo import Outcome

NOW = 1_700_000_000.0  # 2023-11-14T22:13:20Z
CAP = 300.0

STATUSES = [
    (200, False),
    (301, False),
    (400, False),
    (401, False),
    (404, False),
    (408, True),
    (409, False),
    (413, False),
    (422, False),
    (425, True),
    (429, True),
    (500, True),
    (501, False),
    (502, True),
    (503, True),
    (504, True),
    (505, False),
    (507, True),
    (511, False),
    (599, True),
]


@pytest.mark.parametrize(("status", "retry"), STATUSES)
def test_which_statuses_retry(status: int, retry: bool) -> None:
    assert is_retryable(status) is retry


@pytest.mark.parametrize(("status", "retry"), [s for s in STATUSES if s[0] >= 400])
def test_gateways_and_webhooks_agree(status: int, retry: bool) -> None:
    """The disagreement this policy ended: a 425 retried for gateways, failed for webhooks."""
    assert isinstance(classify_status(status), RetryableGatewayError) is retry
    assert (classify(status) is None) is retry
    assert classify(status) in (None, Outcome.FAILED)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        (None, None),
        ("", None),
        ("  ", None),
        ("3", 3.0),
        (" 2.5 ", 2.5),
        ("0", 0.0),
        ("-4", 0.0),
        ("99999", CAP),
        ("nan", None),
        ("soon", None),
        ("Tue, 14 Nov 2023 22:13:50 GMT", 30.0),  # an HTTP date 30 s ahead
        ("Tue, 14 Nov 2023 22:13:00 GMT", 0.0),  # in the past
        ("Wed, 15 Nov 2023 22:13:20 GMT", CAP),  # a day ahead: capped
        ("Tue, 14 Nov 2023 22:13:50", None),  # no zone: unreadable
    ],
)
def test_retry_after_seconds_and_http_dates(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, cap_s=CAP, now_epoch_s=NOW) == seconds


def test_webhooks_read_http_date_retry_after() -> None:
    """Webhooks ignored an HTTP-date Retry-After; the shared parser reads it for both."""
    from broadcaster.services.client_callbacks import _retry_after_s

    assert _retry_after_s("Tue, 14 Nov 2023 22:13:50 GMT") is not None
    assert _retry_after_s("120") == 120.0


@pytest.mark.parametrize(
    ("attempt", "base_s", "cap_s", "ceiling_s"),
    [
        (0, 1.0, 60.0, 1.0),
        (1, 1.0, 60.0, 1.0),
        (2, 1.0, 60.0, 2.0),
        (4, 0.5, 60.0, 4.0),
        (10, 1.0, 60.0, 60.0),
        (400, 2.0, 3600.0, 3600.0),
    ],
)
def test_backoff_is_jittered_within_half_and_whole_ceiling(
    attempt: int, base_s: float, cap_s: float, ceiling_s: float
) -> None:
    rng = random.Random(7)
    delays = [backoff_s(attempt, base_s=base_s, cap_s=cap_s, rng=rng) for _ in range(300)]
    assert all(ceiling_s / 2 <= d <= ceiling_s for d in delays)
    assert len({round(d, 9) for d in delays}) > 250  # jittered, not one value


@pytest.mark.parametrize(("retry_after_s", "attempt"), [(4.0, 1), (0.0, 1), (30.0, 3), (1.0, 9)])
def test_retry_after_is_a_floor_with_at_most_ten_percent_more(
    retry_after_s: float, attempt: int
) -> None:
    rng = random.Random(3)
    for _ in range(100):
        plain = min(60.0, 2 ** (attempt - 1))
        d = backoff_s(attempt, base_s=1.0, cap_s=60.0, rng=rng, retry_after_s=retry_after_s)
        assert retry_after_s <= d <= max(plain, retry_after_s * 1.1)
