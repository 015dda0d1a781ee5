"""When a broadcast starts: local wall time in a named zone, stored as naive UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from broadcaster.errors import InputError


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError(
            f"unknown time zone {name!r} (use an IANA name such as America/Mexico_City)"
        ) from None


def start_time_utc(at: str | None, tz: str, now: datetime) -> datetime:
    """The naive-UTC start of a broadcast.

    ``at`` is ISO 8601; without an offset it is wall time in ``tz``. None means ``now`` (naive UTC).
    """
    tzinfo = zone(tz)
    if at is None or at.strip().lower() in ("", "now", "immediately"):
        return now
    try:
        parsed = datetime.fromisoformat(at.strip())
    except ValueError:
        raise InputError(f"start time {at!r} is not ISO 8601 (e.g. 2026-12-01T09:30)") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tzinfo)
    return parsed.astimezone(UTC).replace(tzinfo=None)


#: A start time further in the past than this is refused as a likely typo (a wrong year must not
#: start a campaign at once); less than this is a slow typist or clock skew: it starts now.
PAST_START_TOLERANCE_S = 60.0
SECONDS_PER_MINUTE = 60
SECONDS_PER_DAY = 86_400


def refuse_past_start(start_at_utc: datetime, now_utc: datetime, how_to_start_now: str) -> None:
    """InputError when ``start_at_utc`` is over :data:`PAST_START_TOLERANCE_S` before ``now_utc``.

    ``how_to_start_now`` tells the caller's user how to start at once on purpose (``--now``).
    """
    late_s = (now_utc - start_at_utc).total_seconds()
    if late_s <= PAST_START_TOLERANCE_S:
        return
    ago = (
        f"{late_s / SECONDS_PER_DAY:,.0f} days"
        if late_s >= SECONDS_PER_DAY
        else f"{late_s / SECONDS_PER_MINUTE:,.0f} minutes"
    )
    raise InputError(
        f"start time {start_at_utc:%Y-%m-%d %H:%M} UTC is {ago} in the past (a typo?); "
        f"{how_to_start_now} to start at once"
    )


def is_due(start_at_utc: datetime, now_utc: datetime) -> bool:
    return start_at_utc <= now_utc


def in_zone(utc_naive: datetime | None, tz: str) -> datetime | None:
    """A stored (naive UTC) time as the aware wall time in zone ``tz`` (None stays None)."""
    if utc_naive is None:
        return None
    return utc_naive.replace(tzinfo=UTC).astimezone(zone(tz))
