"""Field rules shared by the message and broadcast routes: text, region, time zone, start date."""

from __future__ import annotations

import re
from datetime import datetime

from phonenumbers.phonenumberutil import SUPPORTED_REGIONS

from broadcaster.api.bodies import Fields
from broadcaster.api.problems import invalid
from broadcaster.domain.quiet_hours import MAX_VALIDITY_S, parse_validity_s, parse_window
from broadcaster.domain.schedule import refuse_past_start, start_time_utc, zone
from broadcaster.domain.templates import Template, parse_template
from broadcaster.errors import InputError, TemplateError

#: Longest template accepted; a rendered text over 10 segments is stored as SEGMENTS_EXCEEDED.
MAX_TEXT_CHARS = 10_000
#: Sender codes: 3-15 digits or an 11-character alphanumeric name (the column holds 20).
SENDER_CHARS = 20
NAME_CHARS = 200
#: Start dates outside these years are refused (beyond them local-time display overflows).
YEARS = (2000, 9000)
# Seed 004 writes dates as dd-MM-yyyy HH:mm.
_SEED_DATE = re.compile(r"^([0-9]{2})-([0-9]{2})-([0-9]{4}) ([0-9]{2}):([0-9]{2})$")
_NOW_WORDS = frozenset({"", "null", "now", "immediately"})


def parse_text(text: str) -> Template:
    try:
        return parse_template(text)
    except TemplateError as exc:
        raise invalid(f"text: {exc}", "text") from None


def positional_template(text: str) -> Template:
    """A template for recipients without a header row: only {0}, {1}… (or <0>, <1>…)."""
    template = parse_text(text)
    if template.names:
        raise invalid(
            "text: recipients given as JSON have no columns; use positional placeholders "
            "{0}, {1}… filled from each recipient's params",
            "text",
        )
    return template


def region_field(f: Fields) -> str | None:
    region = f.text("region", max_chars=3)
    if region is not None and region.upper() not in SUPPORTED_REGIONS:
        raise invalid(f"region: {region!r} is not an ISO 3166 region code (e.g. MX, GB)", "region")
    return region.upper() if region else None


def timezone_field(f: Fields) -> str:
    tz = f.text("timezone", max_chars=64) or "UTC"
    try:
        zone(tz)
    except InputError as exc:
        raise invalid(f"timezone: {exc}", "timezone") from None
    return tz


def start_date_field(
    f: Fields,
    tz: str,
    now: datetime,
    name: str = "startDate",
    aliases: tuple[str, ...] = ("date",),
    required: bool = False,
) -> str | None:
    """``startDate`` (or field ``name``) as ISO 8601 (seed 004's ``dd-MM-yyyy HH:mm`` too);
    None: start now."""
    raw = f.text(name, max_chars=40, min_chars=0, aliases=aliases, required=required)
    if raw is None or raw.strip().lower() in _NOW_WORDS:
        return None
    raw = raw.strip()
    seed = _SEED_DATE.match(raw)
    if seed:
        day, month, year, hour, minute = seed.groups()
        raw = f"{year}-{month}-{day}T{hour}:{minute}"
    try:
        at = start_time_utc(raw, tz, now)
    except (InputError, ValueError, OverflowError) as exc:
        raise invalid(f"{name}: {exc}", name) from None
    if not YEARS[0] <= at.year <= YEARS[1]:
        raise invalid(f"{name}: must be between the years {YEARS[0]} and {YEARS[1]}", name)
    try:  # as the command line does: a typo in the year must not start a campaign at once
        refuse_past_start(at, now, f'leave {name} out (or send "now")')
    except InputError as exc:
        raise invalid(f"{name}: {exc}", name) from None
    return raw


def window_field(f: Fields) -> str | None:
    """``window``: quiet hours as ``HH:MM-HH:MM`` in each recipient's local time; None: any hour."""
    raw = f.text("window", max_chars=20)
    if raw is None:
        return None
    try:
        return str(parse_window(raw))
    except InputError as exc:
        raise invalid(f"window: {exc}", "window") from None


def validity_field(f: Fields) -> float | None:
    """``validity``: seconds (a number) or a duration string (``2h``, ``30m``); None: unlimited."""
    value = f.data.get("validity")
    if value is None:
        return None
    if not isinstance(value, str):
        return f.number("validity", minimum=0, maximum=MAX_VALIDITY_S)
    f.text("validity", max_chars=20)  # the shared checks: control characters, length
    try:
        return parse_validity_s(value)
    except InputError as exc:
        raise invalid(f"validity: {exc}", "validity") from None
