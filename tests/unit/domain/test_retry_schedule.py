"""The retry schedule of messages a passing fault refused: backoff, jitter, window (time passed in)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from broadcaster.domain.retry import (
    RETRY_BASE_S,
    RETRY_CAP_S,
    RETRY_WINDOW_S,
    next_retry_at,
    retry_delay_s,
)

T0 = datetime(2026, 12, 1, 9, 0, 0)


@pytest.mark.parametrize(
    ("retries", "jitter", "expected_s"),
    [
        (0, 0.0, 15.0),  # half of the 30 s ceiling at the lowest draw
        (0, 0.999999, 30.0),  # nearly the whole ceiling at the highest
        (1, 0.0, 30.0),  # doubling: ceiling 60 s
        (2, 0.5, 90.0),  # ceiling 120 s, draw in the middle
        (4, 1.0, 480.0),  # ceiling 480 s
        (5, 0.0, 300.0),  # 960 s capped at 600 s
        (5, 1.0, 600.0),
        (50, 1.0, 600.0),  # never past the cap, however many retries
        (-1, 0.0, 15.0),  # a nonsense count is read as the first retry
    ],
)
def test_delay_doubles_from_the_base_with_jitter_up_to_the_cap(retries, jitter, expected_s):
    got = retry_delay_s(retries, jitter=jitter, base_s=RETRY_BASE_S, cap_s=RETRY_CAP_S)
    assert got == pytest.approx(expected_s, rel=1e-5)


@pytest.mark.parametrize("retries", range(8))
def test_jitter_spreads_within_half_to_whole_ceiling(retries):
    ceiling = min(RETRY_CAP_S, RETRY_BASE_S * 2**retries)
    draws = [i / 20 for i in range(20)]
    delays = [
        retry_delay_s(retries, jitter=j, base_s=RETRY_BASE_S, cap_s=RETRY_CAP_S) for j in draws
    ]
    assert all(ceiling / 2 <= d < ceiling for d in delays)
    assert len(set(delays)) == len(draws)  # every draw gives its own time: a crowd spreads


@pytest.mark.parametrize(
    ("elapsed_s", "retries", "expected"),
    [
        (0.0, 0, timedelta(seconds=15)),  # first failure: base / 2 at the lowest draw
        (3600.0, 6, timedelta(seconds=300)),  # an hour in: capped waits
        (RETRY_WINDOW_S - 60, 6, timedelta(seconds=60)),  # the last try moves to the window's end
        (RETRY_WINDOW_S, 6, None),  # a failure at the window's end is final
        (RETRY_WINDOW_S + 1, 0, None),
    ],
)
def test_next_retry_stays_inside_the_window(elapsed_s, retries, expected):
    now = T0 + timedelta(seconds=elapsed_s)
    at = next_retry_at(now=now, first_failed_at=T0, retries=retries, jitter=0.0)
    assert (at - now if at is not None else None) == expected


def test_a_shortened_schedule_for_tests_and_small_windows():
    at = next_retry_at(
        now=T0, first_failed_at=T0, retries=3, jitter=1.0, base_s=0.1, cap_s=0.5, window_s=10
    )
    assert at == T0 + timedelta(seconds=0.5)
