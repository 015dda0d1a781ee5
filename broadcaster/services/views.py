"""What the read use cases answer: frozen views with snake_case fields, no wire format.

The HTTP API and the command line turn them into JSON at their edge, through one serializer
each over :func:`broadcaster.domain.wire.to_wire` (camelCase names, times in ISO 8601), so both
show the same names. Times are datetimes: naive ones are the store's UTC, a broadcast's own are
aware in its zone (shown with its offset).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from broadcaster.domain.schedule import in_zone
from broadcaster.domain.states import allowed_actions


@dataclass(frozen=True, slots=True)
class BroadcastView:
    """A broadcast in the seeds' vocabulary (getBroadcast: startDate, expectedMessages, …)."""

    id: int
    name: str
    shortcode: str
    text: str
    status: str
    status_reason: str | None
    start_date: datetime | None
    end_date: datetime | None
    timezone: str
    expected_messages: int
    sent_messages: int
    delivered_messages: int
    failed_messages: int
    invalid_rows: int
    duplicates: int
    source: str | None
    created_at: datetime | None
    started_at: datetime | None
    window: str | None
    validity: float | None
    allowed_actions: list[str]
    #: The broadcast whose failed messages this one re-sends (retry-failed), or None.
    retry_of: int | None
    #: The user recorded as its owner (seed 004's ``userName``), or None.
    owner: str | None

    @classmethod
    def of(cls, row: dict[str, Any]) -> BroadcastView:
        """The view of a broadcast row (the poller's last counters)."""
        return cls(**_view_fields(row))


def _view_fields(row: dict[str, Any]) -> dict[str, Any]:
    tz = row["timezone"]
    return {
        "id": row["id"],
        "name": row["name"],
        "shortcode": row["sender_code"],
        "text": row["template"],
        "status": row["status"],
        "status_reason": row["status_reason"],
        "start_date": in_zone(row["start_at"], tz),
        "end_date": in_zone(row["ended_at"], tz),
        "timezone": tz,
        "expected_messages": row["expected"],
        "sent_messages": row["sent"],
        "delivered_messages": row["delivered"],
        "failed_messages": row["failed"],
        "invalid_rows": row["invalid"],
        "duplicates": row["duplicates"],
        "source": row["source"],
        "created_at": in_zone(row["created_at"], tz),
        "started_at": in_zone(row["started_at"], tz),
        "window": row.get("send_window"),
        "validity": row.get("validity_s"),
        "allowed_actions": allowed_actions(row["status"]),
        "retry_of": row.get("retry_of"),
        "owner": row.get("owner"),
    }


def base_fields(view: BroadcastView) -> dict[str, Any]:
    """The fields of ``view`` as a BroadcastView has them (to build a richer view from it)."""
    return {f.name: getattr(view, f.name) for f in fields(BroadcastView)}


@dataclass(frozen=True, slots=True)
class BroadcastDetail(BroadcastView):
    """One broadcast read now (``get``): live counters, retries, send window, messages by status."""

    #: Messages waiting for a retry, and the earliest of their retry times.
    retrying: int
    next_retry_at: datetime | None
    #: The end of the validity (None: none set).
    expires_at: datetime | None
    #: QUEUE messages whose send window is closed now, and when the first of those opens.
    waiting_for_window: int
    next_window_at: datetime | None
    counts: dict[str, int]


@dataclass(frozen=True, slots=True)
class BroadcastProgress(BroadcastView):
    """A broadcast of a list with what is left to send and when it should be done."""

    remaining_messages: int
    remaining_segments: int
    progress: float
    #: None for a broadcast that is not sending or whose code has no known rate.
    eta_seconds: int | None


@dataclass(frozen=True, slots=True)
class MessageItem:
    """A message in a page of a broadcast's messages."""

    id: int
    line: int | None
    to: str
    status: str
    segments: int
    encoding: str
    attempts: int
    gateway_id: str | None
    error: str | None
    created_at: datetime | None
    sent_at: datetime | None
    updated_at: datetime | None

    @classmethod
    def of(cls, row: dict[str, Any]) -> MessageItem:
        return cls(**_item_fields(row))


def _item_fields(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "line": row["line"],
        "to": row["recipient"],
        "status": row["status"],
        "segments": row["segments"],
        "encoding": row["encoding"],
        "attempts": row["attempts"],
        "gateway_id": row["gateway_id"],
        "error": row["error"],
        "created_at": row["created_at"],
        "sent_at": row["sent_at"],
        "updated_at": row["updated_at"],
    }


@dataclass(frozen=True, slots=True)
class RecipientMessage(MessageItem):
    """A message of one number, in any broadcast of the workspace."""

    broadcast_id: int
    broadcast_name: str

    @classmethod
    def of(cls, row: dict[str, Any]) -> RecipientMessage:
        return cls(
            **_item_fields(row), broadcast_id=row["broadcast_id"], broadcast_name=row["name"]
        )


@dataclass(frozen=True, slots=True)
class ReceiptView:
    """A delivery receipt as it arrived, and whether it changed the message's status."""

    status: str
    applied: bool
    provider: str
    #: The gateway's own timestamp text, as it sent it.
    reported_at: str | None
    received_at: datetime


@dataclass(frozen=True, slots=True)
class MessageView:
    """One message with its text, ids and receipt history (``GET /v1/messages/{id}``)."""

    id: int
    broadcast_id: int
    to: str
    text: str
    encoding: str
    segments: int
    status: str
    attempts: int
    gateway_id: str | None
    error: str | None
    external_id: str | None
    client_id: str | None
    created_at: datetime | None
    sent_at: datetime | None
    updated_at: datetime | None
    receipts: list[ReceiptView]


@dataclass(frozen=True, slots=True)
class Bucket:
    """One minute (or second) of a broadcast's timeline: messages sent, delivered, failed."""

    at: datetime
    sent: int = 0
    delivered: int = 0
    failed: int = 0


@dataclass(frozen=True, slots=True)
class Timeline:
    step: str
    buckets: list[Bucket]
    #: Where the older buckets end (aware UTC; the API's ``nextCursor``), None: no older ones.
    next_before: datetime | None = None


@dataclass(frozen=True, slots=True)
class ReasonCount:
    """How many messages failed with ``status`` for ``reason``."""

    status: str
    reason: str | None
    count: int


@dataclass(frozen=True, slots=True)
class Breakdown:
    """Messages by status, and the failed ones by status and reason."""

    by_status: dict[str, int]
    by_reason: list[ReasonCount]
