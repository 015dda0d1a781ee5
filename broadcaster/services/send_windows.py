"""Quiet hours and validity on the send path: which of a broadcast's messages may go now.

A broadcast with a send window stores, at import, each message's recipient zone (``tz``) and the
distinct zones of the broadcast (``zones``). At dispatch and at each claim, the window is checked
for those few zones at the clock's ``now`` (a handful of zoneinfo conversions, no row read) and
the statements leave out messages to the closed ones: they stay QUEUE, untouched, and go out at
the first dispatch after their window opens. Nothing is written per waiting message, so a
million messages waiting for the morning cost nothing until then, and the decision is exact at
the claim (the same instant the message would be sent), not one tick late.

Why not ``retry_at`` (the retry queue's not-before time): it is the message's own retry
schedule, shown as ``retrying``; a window wait is a property of the zone and the hour, and would
need every waiting row rewritten each time a window closes. The two combine: a message waits
for whichever is later.

Waiting messages are QUEUE: stop cancels them, suspend holds them, delete removes them, and the
broadcast is not COMPLETED while they wait (the completion check counts QUEUE).

Validity: a broadcast with ``validity_s`` set gives its messages that long from its start; the
beat tick's expiry step turns every message still QUEUE after it into EXPIRED (never sent), the
send path claims nothing past it, and retries are never scheduled past it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from broadcaster.domain.counts import derive_counters
from broadcaster.domain.quiet_hours import (
    closed_zones,
    next_open,
    parse_window,
    validity_deadline,
)
from broadcaster.domain.states import MessageStatus
from broadcaster.store import broadcasts_repo, messages_repo
from broadcaster.store.db import Connection

#: Why a message ended EXPIRED without being sent.
NOT_SENT_IN_VALIDITY = "not sent within the broadcast's validity of {validity_s:,.0f} s"


@dataclass(frozen=True, slots=True)
class Gate:
    """What may be sent now: every message but those to ``closed_zones``, or nothing (shut)."""

    closed_zones: list[str] = field(default_factory=list)
    #: Nothing may go now: every zone's window is closed, or the validity has passed.
    shut: bool = False


def gate(rules: dict[str, Any] | None, now: datetime) -> Gate:
    """The gate of a broadcast (its row, or :func:`broadcasts_repo.send_rules`) at ``now``."""
    if not rules:
        return Gate()
    deadline = validity_deadline(rules.get("started_at"), rules.get("validity_s"))
    if deadline is not None and now >= deadline:
        return Gate(shut=True)
    if not rules.get("send_window"):
        return Gate()
    zones = list(rules.get("zones") or [])
    closed = closed_zones(parse_window(rules["send_window"]), zones, now)
    return Gate(closed, shut=bool(zones) and len(closed) == len(zones))


def gate_for(conn: Connection, broadcast_id: int, now: datetime) -> Gate:
    return gate(broadcasts_repo.send_rules(conn, broadcast_id), now)


def retry_deadline(row: dict[str, Any]) -> datetime | None:
    """The end of a broadcast's validity (None: none set): no retry is scheduled after it."""
    return validity_deadline(row.get("started_at"), row.get("validity_s"))


@dataclass(frozen=True, slots=True)
class WindowState:
    """A broadcast's send window and validity as ``get`` shows them (naive UTC times)."""

    #: The end of the validity (None: none set).
    expires_at: datetime | None
    #: QUEUE messages whose window is closed now, and when the first of those opens.
    waiting: int
    opens_at: datetime | None


def window_state(conn: Connection, row: dict[str, Any], now: datetime) -> WindowState:
    """Who waits for the window at ``now``, when the first of them may go, when validity ends."""
    waiting: dict[str, int] = {}
    opens: datetime | None = None
    if row.get("send_window"):
        window = parse_window(row["send_window"])
        closed = closed_zones(window, list(row.get("zones") or []), now)
        waiting = messages_repo.waiting_by_zone(conn, row["id"], closed)
        if waiting:
            opens = min(next_open(window, zone, now) for zone in waiting)
    return WindowState(retry_deadline(row), sum(waiting.values()), opens)


def expire_past_validity(conn: Connection, now: datetime) -> list[tuple[int, int]]:
    """Every QUEUE message of a broadcast whose validity ended: EXPIRED, unsent. Returns
    (message id, broadcast id) of each, for the client callbacks."""
    expired: list[tuple[int, int]] = []
    for broadcast_id in broadcasts_repo.past_validity(conn, now):
        rules = broadcasts_repo.send_rules(conn, broadcast_id) or {}
        reason = NOT_SENT_IN_VALIDITY.format(validity_s=rules.get("validity_s") or 0)
        expired += messages_repo.expire_unsent(conn, broadcast_id, now, reason)
    return expired


def live_counters(conn: Connection, broadcast_id: int, counts: dict[str, int]) -> dict[str, int]:
    """The counters of ``counts`` (messages per status), unsent EXPIRED ones not counted sent."""
    unsent = 0
    if counts.get(MessageStatus.EXPIRED.value):
        unsent = broadcasts_repo.expired_unsent_count(conn, broadcast_id)
    return derive_counters(counts, unsent)
