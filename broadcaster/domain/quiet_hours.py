"""Quiet hours: a send window in the recipient's local time, and a broadcast's validity.

A window ``HH:MM-HH:MM`` is the part of each local day in which a message may be sent:
``08:00-21:00`` opens at 08:00 and closes at 21:00 (the end is excluded). A window whose start is
after its end crosses midnight: ``21:00-08:00`` is open from 21:00 to 08:00 the next morning (a
night shift, or a campaign for a country where the evening is the good time); it is allowed, and
means exactly that. ``08:00-08:00`` (start equal to end) is refused: it could mean "always" or
"never", and either is better said otherwise (no window, or no broadcast).

The window is read on the local wall clock, so it follows daylight saving time: a window that
opens at 08:00 opens at 08:00 local in January and in July. A window edge that falls in a
spring-forward gap (02:30 on the night clocks go from 02:00 to 03:00) is taken as the first
instant after the gap (03:00); an edge in a fall-back hour (01:30 happens twice) is its first
occurrence. Pure: time is passed in (naive UTC, the store's convention) and zones by IANA name.

The recipient's zone is the number's own when phonenumbers knows exactly one (a New York land
line, +1 212); a number that spans several (an Australian mobile, +61 4…) or none takes the
broadcast's zone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as phone_timezone
from phonenumbers.phonenumberutil import COUNTRY_CODE_TO_REGION_CODE
from phonenumbers.tzdata import TIMEZONE_DATA, TIMEZONE_LONGEST_PREFIX

from broadcaster.errors import InputError

_WINDOW = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$", re.IGNORECASE)
_UNIT_S = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86_400.0}
#: phonenumbers' answer for a number whose zone it does not know.
UNKNOWN_ZONE = "Etc/Unknown"
#: Days ahead searched for the next opening: a window opens every local day, so two always do.
_SEARCH_DAYS = 3
#: A spring-forward gap is bisected to this precision (real transitions fall on whole minutes).
_GAP_PRECISION = timedelta(seconds=1)
#: The longest validity accepted (a typo of a year must not keep messages queued for one).
MAX_VALIDITY_S = 30 * 86_400.0
HOURS_PER_DAY = 24
MINUTES_PER_HOUR = 60


@dataclass(frozen=True, slots=True)
class Window:
    """A daily send window on the local wall clock; ``start`` included, ``end`` excluded."""

    start: time
    end: time

    @property
    def crosses_midnight(self) -> bool:
        return self.start > self.end

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"

    def contains(self, wall: time) -> bool:
        """Whether a local wall-clock time is inside the window."""
        if self.crosses_midnight:
            return wall >= self.start or wall < self.end
        return self.start <= wall < self.end


def parse_window(text: str) -> Window:
    """``HH:MM-HH:MM`` (24-hour clock) as a Window; InputError naming what is wrong."""
    m = _WINDOW.match(text or "")
    if not m:
        raise InputError(f"send window {text!r} is not HH:MM-HH:MM (e.g. 08:00-21:00)")
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    for h, mi in ((h1, m1), (h2, m2)):
        if h >= HOURS_PER_DAY or mi >= MINUTES_PER_HOUR:
            raise InputError(f"send window {text!r}: {h:02d}:{mi:02d} is not a time of day")
    window = Window(time(h1, m1), time(h2, m2))
    if window.start == window.end:
        raise InputError(
            f"send window {text!r} opens and closes at the same time; give no window to send "
            "at any hour"
        )
    return window


def parse_validity_s(value: str | float | int) -> float:
    """Seconds from a number of seconds or a duration (``90``, ``90s``, ``30m``, ``2h``, ``1d``)."""
    if isinstance(value, bool):
        raise InputError(f"validity {value!r} is not a duration (e.g. 2h, 30m, 7200)")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        m = _DURATION.match(value)
        if not m:
            raise InputError(f"validity {value!r} is not a duration (e.g. 2h, 30m, 7200)")
        seconds = float(m.group(1)) * _UNIT_S[m.group(2).lower()]
    if not 0 < seconds <= MAX_VALIDITY_S:
        raise InputError(
            f"validity {value!r} must be more than 0 s and at most {MAX_VALIDITY_S:,.0f} s (30 days)"
        )
    return seconds


@cache
def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError(
            f"unknown time zone {name!r} (use an IANA name such as America/Mexico_City)"
        ) from None


def _wall(now_utc: datetime, zone: str) -> datetime:
    return now_utc.replace(tzinfo=UTC).astimezone(_zone(zone))


def is_open(window: Window, zone: str, now_utc: datetime) -> bool:
    """Whether a message to a recipient in ``zone`` may be sent at ``now_utc`` (naive UTC)."""
    return window.contains(_wall(now_utc, zone).time().replace(tzinfo=None))


def _utc(local: datetime) -> datetime:
    return local.astimezone(UTC).replace(tzinfo=None)


def _first_instant_at(day: date, wall: time, zone: str) -> datetime:
    """The first instant (naive UTC) at which the wall clock of ``zone`` on ``day`` reads ``wall``
    or later: the wall time itself, its first occurrence in a repeated hour, or the end of the gap
    it falls in."""
    tz = _zone(zone)
    early = _utc(datetime.combine(day, wall, tzinfo=tz).replace(fold=1))
    late = _utc(datetime.combine(day, wall, tzinfo=tz).replace(fold=0))
    lo, hi = min(early, late), max(early, late)
    if _wall(lo, zone).replace(tzinfo=None) == datetime.combine(day, wall):
        return lo  # exists (the first of two when repeated)
    # In a gap: local time jumps past ``wall`` somewhere in (lo, hi]; find the jump.
    while hi - lo > _GAP_PRECISION:
        mid = lo + (hi - lo) / 2
        if _wall(mid, zone).replace(tzinfo=None) >= datetime.combine(day, wall):
            hi = mid
        else:
            lo = mid
    return hi.replace(microsecond=0)


def next_open(window: Window, zone: str, now_utc: datetime) -> datetime:
    """When a message to ``zone`` may be sent: ``now_utc`` if the window is open, else the next
    opening (naive UTC)."""
    if is_open(window, zone, now_utc):
        return now_utc
    today = _wall(now_utc, zone).date()
    for days in range(-1, _SEARCH_DAYS):
        at = _first_instant_at(today + timedelta(days=days), window.start, zone)
        if at > now_utc and is_open(window, zone, at):
            return at
    raise AssertionError(f"window {window} never opens in {zone}")  # pragma: no cover


def closed_zones(window: Window, zones: list[str], now_utc: datetime) -> list[str]:
    """The zones among ``zones`` in which the window is closed at ``now_utc``."""
    return [z for z in zones if not is_open(window, z, now_utc)]


#: Calling codes whose every fixed-line and mobile number is placed by its prefix alone (NANPA,
#: where mobiles share the fixed-line plan, and the countries phonenumbers says have geographic
#: mobiles, e.g. Mexico and Brazil): their numbers take the fast path of :func:`recipient_zone`.
_PREFIX_PLACED = frozenset({1, 52, 54, 55, 62, 86})
_MAX_CC_DIGITS = 3


def recipient_zone(e164: str, fallback: str) -> str:
    """The IANA zone of a valid number (``+`` and digits): its own when phonenumbers names exactly
    one (``timezone.time_zones_for_number``), else ``fallback`` (the broadcast's zone).

    ``time_zones_for_number`` costs ~250 µs a number (it parses and types it), too slow for a
    million-row import. A country with one zone, or one whose numbers its prefix places
    (:data:`_PREFIX_PLACED`), is answered from phonenumbers' own prefix table at once (what
    ``time_zones_for_geographical_number`` does); only the others (Australia, Spain, Russia…,
    where a mobile belongs to no area) pay for the full answer.
    """
    digits = e164.lstrip("+")
    cc = _calling_code(digits)
    if cc is not None and (cc in _PREFIX_PLACED or _single_zone_country(cc)):
        return _zone_of_prefix(digits[:TIMEZONE_LONGEST_PREFIX]) or fallback
    try:
        zones = phone_timezone.time_zones_for_number(phonenumbers.parse(e164, None))
    except phonenumbers.NumberParseException:
        return fallback
    return str(zones[0]) if len(zones) == 1 and zones[0] != UNKNOWN_ZONE else fallback


def _calling_code(digits: str) -> int | None:
    for n in range(1, _MAX_CC_DIGITS + 1):
        if digits[:n].isdigit() and int(digits[:n]) in COUNTRY_CODE_TO_REGION_CODE:
            return int(digits[:n])
    return None


@cache
def _single_zone_country(cc: int) -> bool:
    zones = TIMEZONE_DATA.get(str(cc))
    return zones is not None and len(zones) == 1


@cache
def _zone_of_prefix(digits: str) -> str | None:
    """Longest-prefix match in phonenumbers' time-zone table; None unless exactly one zone."""
    for length in range(len(digits), 0, -1):
        zones = TIMEZONE_DATA.get(digits[:length])
        if zones is not None:
            return str(zones[0]) if len(zones) == 1 and zones[0] != UNKNOWN_ZONE else None
    return None


def validity_deadline(started_at: datetime | None, validity_s: float | None) -> datetime | None:
    """The instant (naive UTC) after which an unsent message of the broadcast ends EXPIRED; None:
    no validity set, or the broadcast has not started."""
    if started_at is None or validity_s is None:
        return None
    return started_at + timedelta(seconds=validity_s)
