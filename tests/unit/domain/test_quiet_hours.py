"""Quiet hours and validity: pure rules, time passed in (naive UTC), several zones and DST."""

from __future__ import annotations

from datetime import datetime

import phonenumbers
import pytest
from phonenumbers import timezone as phone_timezone

from broadcaster.domain.quiet_hours import (
    closed_zones,
    is_open,
    next_open,
    parse_validity_s,
    parse_window,
    recipient_zone,
    validity_deadline,
)
from broadcaster.errors import InputError

DAY = parse_window("08:00-21:00")
NIGHT = parse_window("21:00-08:00")


@pytest.mark.parametrize(
    ("window", "zone", "now", "open_", "opens_at"),
    [
        # New York in winter is UTC-5: 12:59 UTC is 07:59 local, closed; opens 13:00 UTC.
        (DAY, "America/New_York", datetime(2026, 1, 15, 12, 59), False, datetime(2026, 1, 15, 13)),
        (DAY, "America/New_York", datetime(2026, 1, 15, 13, 0), True, datetime(2026, 1, 15, 13)),
        # ...and UTC-4 in summer: the same local 08:00 is 12:00 UTC.
        (DAY, "America/New_York", datetime(2026, 7, 15, 11, 59), False, datetime(2026, 7, 15, 12)),
        # 21:00 local closes (end excluded): 02:00 UTC next day in winter; opens 08:00 local.
        (DAY, "America/New_York", datetime(2026, 1, 16, 2, 0), False, datetime(2026, 1, 16, 13)),
        (DAY, "America/New_York", datetime(2026, 1, 16, 1, 59), True, datetime(2026, 1, 16, 1, 59)),
        # Same instant, Pacific: 17:00 local, open; Eastern 20:00 local, open; at 02:00 UTC only LA.
        (DAY, "America/Los_Angeles", datetime(2026, 1, 16, 2, 0), True, datetime(2026, 1, 16, 2)),
        (
            DAY,
            "America/Los_Angeles",
            datetime(2026, 1, 15, 15, 59),
            False,
            datetime(2026, 1, 15, 16),
        ),
        # Mexico City has had no DST since 2022: UTC-6 all year.
        (DAY, "America/Mexico_City", datetime(2026, 7, 1, 13, 30), False, datetime(2026, 7, 1, 14)),
        (DAY, "America/Mexico_City", datetime(2026, 7, 1, 14, 0), True, datetime(2026, 7, 1, 14)),
        # Brazil: Sao Paulo UTC-3, Manaus UTC-4 (no DST).
        (DAY, "America/Sao_Paulo", datetime(2026, 3, 2, 11, 0), True, datetime(2026, 3, 2, 11)),
        (DAY, "America/Manaus", datetime(2026, 3, 2, 11, 0), False, datetime(2026, 3, 2, 12)),
        # Australia: Perth UTC+8 (no DST); Sydney UTC+11 in January (DST), UTC+10 in July.
        (DAY, "Australia/Perth", datetime(2026, 1, 15, 23, 0), False, datetime(2026, 1, 16, 0)),
        (DAY, "Australia/Sydney", datetime(2026, 1, 15, 23, 0), True, datetime(2026, 1, 15, 23)),
        (DAY, "Australia/Sydney", datetime(2026, 7, 15, 21, 30), False, datetime(2026, 7, 15, 22)),
        # A window across midnight: 21:00-08:00 is open at night, closed by day.
        (NIGHT, "UTC", datetime(2026, 1, 15, 23, 0), True, datetime(2026, 1, 15, 23)),
        (NIGHT, "UTC", datetime(2026, 1, 15, 7, 59), True, datetime(2026, 1, 15, 7, 59)),
        (NIGHT, "UTC", datetime(2026, 1, 15, 8, 0), False, datetime(2026, 1, 15, 21)),
        (NIGHT, "Australia/Perth", datetime(2026, 1, 15, 0, 0), False, datetime(2026, 1, 15, 13)),
    ],
)
def test_open_and_next_opening(window, zone, now, open_, opens_at) -> None:
    assert is_open(window, zone, now) is open_
    assert next_open(window, zone, now) == opens_at
    assert is_open(window, zone, next_open(window, zone, now))


@pytest.mark.parametrize(
    ("text", "zone", "now", "opens_at"),
    [
        # US spring forward, 2026-03-08: 02:00 EST jumps to 03:00 EDT (07:00 UTC). A window
        # opening at 02:30 (inside the gap) opens at the jump.
        ("02:30-05:00", "America/New_York", datetime(2026, 3, 8, 6, 0), datetime(2026, 3, 8, 7)),
        # The day before, 02:30 exists: 07:30 UTC (EST).
        (
            "02:30-05:00",
            "America/New_York",
            datetime(2026, 3, 7, 6, 0),
            datetime(2026, 3, 7, 7, 30),
        ),
        # The day after: 02:30 EDT is 06:30 UTC.
        (
            "02:30-05:00",
            "America/New_York",
            datetime(2026, 3, 9, 6, 0),
            datetime(2026, 3, 9, 6, 30),
        ),
        # A window wholly inside the gap never opens that day: the next day's 02:15 EDT.
        (
            "02:15-02:45",
            "America/New_York",
            datetime(2026, 3, 8, 5, 0),
            datetime(2026, 3, 9, 6, 15),
        ),
        # US fall back, 2026-11-01: 01:30 happens twice (05:30 and 06:30 UTC); the first counts.
        (
            "01:30-05:00",
            "America/New_York",
            datetime(2026, 11, 1, 4, 0),
            datetime(2026, 11, 1, 5, 30),
        ),
        # Sydney's spring forward, 2026-10-04: 02:00 AEST → 03:00 AEDT (16:00 UTC on the 3rd).
        (
            "02:30-06:00",
            "Australia/Sydney",
            datetime(2026, 10, 3, 15, 0),
            datetime(2026, 10, 3, 16),
        ),
        # 08:00 local across a DST change stays 08:00 local: Sydney leaves DST at 16:00 UTC on
        # 2026-04-04, so April 4's 08:00 is 21:00 UTC (AEDT) and April 5's is 22:00 UTC (AEST).
        ("08:00-21:00", "Australia/Sydney", datetime(2026, 4, 3, 20, 0), datetime(2026, 4, 3, 21)),
        ("08:00-21:00", "Australia/Sydney", datetime(2026, 4, 4, 20, 0), datetime(2026, 4, 4, 22)),
    ],
)
def test_dst_transitions(text, zone, now, opens_at) -> None:
    window = parse_window(text)
    assert not is_open(window, zone, now)
    assert next_open(window, zone, now) == opens_at
    assert is_open(window, zone, opens_at)


def test_the_fall_back_hour_is_open_twice_for_a_window_that_holds_it() -> None:
    window = parse_window("01:00-02:00")
    assert is_open(window, "America/New_York", datetime(2026, 11, 1, 5, 30))  # 01:30 EDT
    assert is_open(window, "America/New_York", datetime(2026, 11, 1, 6, 30))  # 01:30 EST


def test_closed_zones_names_the_ones_to_hold() -> None:
    zones = ["America/New_York", "America/Los_Angeles", "Australia/Perth"]
    # 02:30 UTC, January: New York 21:30 (closed), Los Angeles 18:30 (open), Perth 10:30 (open).
    assert closed_zones(DAY, zones, datetime(2026, 1, 16, 2, 30)) == ["America/New_York"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("8-21", "is not HH:MM-HH:MM"),
        ("", "is not HH:MM-HH:MM"),
        ("08:00-24:00", "24:00 is not a time of day"),
        ("08:60-21:00", "08:60 is not a time of day"),
        ("08:00-08:00", "opens and closes at the same time"),
    ],
)
def test_bad_windows_are_refused_saying_why(text, message) -> None:
    with pytest.raises(InputError, match=message):
        parse_window(text)


def test_a_window_reads_back_as_written() -> None:
    assert str(parse_window(" 8:05 - 21:00 ")) == "08:05-21:00"
    assert parse_window("21:00-08:00").crosses_midnight


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("2h", 7200.0), ("30m", 1800.0), ("90s", 90.0), ("90", 90.0), (7200, 7200.0), ("1d", 86400.0)],
)
def test_validity_durations(value, seconds) -> None:
    assert parse_validity_s(value) == seconds


@pytest.mark.parametrize("value", ["0", "-5", "2 hours", "31d", True, 0])
def test_bad_validity_is_refused(value) -> None:
    with pytest.raises(InputError, match="validity"):
        parse_validity_s(value)


def test_validity_deadline_counts_from_the_start() -> None:
    assert validity_deadline(datetime(2026, 1, 1, 10), 7200.0) == datetime(2026, 1, 1, 12)
    assert validity_deadline(None, 7200.0) is None
    assert validity_deadline(datetime(2026, 1, 1), None) is None


#: Wide countries: fixed lines and mobiles whose zone phonenumbers knows, and ones it does not.
NUMBERS = [
    ("+12125550100", "America/New_York"),  # Manhattan
    ("+14155550100", "America/Los_Angeles"),  # San Francisco
    ("+525512345678", "America/Mexico_City"),
    ("+526641234567", "America/Tijuana"),
    ("+551123456789", "America/Sao_Paulo"),
    ("+559232345678", "America/Manaus"),
    ("+61292345678", "Australia/Sydney"),
    ("+61851087000", "Australia/Perth"),
    ("+61412345678", "FALLBACK"),  # an Australian mobile: any of the country's zones
    ("+18005550100", "FALLBACK"),  # toll-free: anywhere in NANPA
    ("+442079460000", "Europe/London"),
    ("+34612345678", "FALLBACK"),  # a Spanish mobile: Madrid or the Canaries
]


@pytest.mark.parametrize(("number", "zone"), NUMBERS)
def test_recipient_zone_is_the_numbers_own_or_the_broadcasts(number, zone) -> None:
    assert recipient_zone(number, "FALLBACK") == zone


@pytest.mark.parametrize(("number", "_zone"), NUMBERS)
def test_recipient_zone_agrees_with_phonenumbers(number, _zone) -> None:
    zones = phone_timezone.time_zones_for_number(phonenumbers.parse(number))
    expected = zones[0] if len(zones) == 1 else "FALLBACK"
    assert recipient_zone(number, "FALLBACK") == expected
