from __future__ import annotations

from datetime import datetime

import pytest

from broadcaster.domain.schedule import in_zone, start_time_utc
from broadcaster.domain.wire import iso8601
from broadcaster.errors import InputError

NOW = datetime(2026, 11, 23, 18, 0, 0)


@pytest.mark.parametrize(
    "at, tz, expected",
    [
        (None, "UTC", NOW),
        ("now", "America/Mexico_City", NOW),
        ("2026-12-01T09:30", "America/Mexico_City", datetime(2026, 12, 1, 15, 30)),  # UTC-6
        ("2026-07-01T09:30", "Europe/Madrid", datetime(2026, 7, 1, 7, 30)),  # summer time, UTC+2
        (
            "2026-12-01T09:30+01:00",
            "America/Mexico_City",
            datetime(2026, 12, 1, 8, 30),
        ),  # offset wins
        ("2026-12-01 09:30:00", "UTC", datetime(2026, 12, 1, 9, 30)),
    ],
)
def test_start_time_utc(at, tz, expected):
    assert start_time_utc(at, tz, NOW) == expected


@pytest.mark.parametrize(
    "at, tz", [("tomorrow", "UTC"), ("2026-13-01T00:00", "UTC"), (None, "Mars/Olympus")]
)
def test_bad_schedules_are_refused(at, tz):
    with pytest.raises(InputError):
        start_time_utc(at, tz, NOW)


def test_iso8601_shows_a_zone_offset_or_z_for_stored_utc():
    stored = datetime(2026, 12, 1, 15, 30, 0, 678_900)
    assert iso8601(in_zone(stored, "America/Mexico_City")) == "2026-12-01T09:30:00-06:00"
    assert iso8601(in_zone(stored, "UTC")) == "2026-12-01T15:30:00+00:00"
    assert iso8601(stored) == "2026-12-01T15:30:00Z"
    assert iso8601(stored, millis=True) == "2026-12-01T15:30:00.678Z"
    assert iso8601(None) is None and in_zone(None, "UTC") is None
