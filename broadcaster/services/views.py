"""What the read use cases answer: frozen views with snake_case fields, no wire format.

The HTTP API and the command line turn them into JSON at their edge, through one serializer
each over :func:`broadcaster.domain.wire.to_wire` (camelCase names, times in ISO 8601), so both
show the same names. Times are datetimes: naive ones are the store's UTC, a broadcast's own are
aware in its zone (shown with its offset).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, Generic, TypeVar

from broadcaster.domain.schedule import in_zone
from broadcaster.domain.states import allowed_actions
from broadcaster.domain.wire import WIRE_MILLIS, WIRE_NAME, utc_naive

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """Items of one page and the keyset position the next starts after (None: the last page).

    The position is the tuple the API's opaque ``nextCursor`` encodes: ``(id,)`` for pages by
    id, ``(line, id)`` for row errors.
    """

    items: list[T]
    next_after: tuple[int, ...] | None


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
    return base_fields_of(view, BroadcastView)


def base_fields_of(view: Any, base: type) -> dict[str, Any]:
    """The fields of ``view`` that view class ``base`` has (to build a richer view from it)."""
    return {f.name: getattr(view, f.name) for f in fields(base)}


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


@dataclass(frozen=True, slots=True)
class RowErrorView:
    """An input row that was not stored: its line, the value it held, why (a page of them;
    the import's own is ``services.recipients.RowError``)."""

    line: int
    value: str | None
    reason: str

    @classmethod
    def of(cls, row: dict[str, Any]) -> RowErrorView:
        return cls(line=row["line"], value=row["value"], reason=row["reason"])


@dataclass(frozen=True, slots=True)
class Identifier:
    """One identifier of a contact (``MOBILE``, ``EMAIL``, ``APP_ALIAS``, ``EXTERNAL``)."""

    type: str
    value: str


@dataclass(frozen=True, slots=True)
class ContactView:
    """A contact as seed 003 shows it: ``contactID``, identifiers, attributes, its lists."""

    contact_id: int = field(metadata={WIRE_NAME: "contactID"})
    identifiers: list[Identifier]
    attributes: dict[str, Any]
    lists: list[str]
    created_at: datetime | None
    updated_at: datetime | None


@dataclass(frozen=True, slots=True)
class ContactErased:
    """What erasing a contact did: its past messages whose number was masked."""

    contact_id: int = field(metadata={WIRE_NAME: "contactID"})
    erased: bool
    messages_masked: int


@dataclass(frozen=True, slots=True)
class ListView:
    """A static list of contacts and how many members it has."""

    id: int
    name: str
    members: int
    created_at: datetime | None


@dataclass(frozen=True, slots=True)
class MembersAdded(ListView):
    """The list after contacts were added: ``added`` of them were not members before."""

    added: int


@dataclass(frozen=True, slots=True)
class MembersRemoved(ListView):
    """The list after contacts were removed: ``removed`` of them were members."""

    removed: int


@dataclass(frozen=True, slots=True)
class TemplateView:
    """A prepared message (seed 003's message): name, text, sender code, list."""

    id: int
    name: str
    text: str
    sender: str = field(metadata={WIRE_NAME: "from"})
    list: str | None
    created_at: datetime | None
    updated_at: datetime | None


@dataclass(frozen=True, slots=True)
class SentSingle:
    """The one-recipient broadcast ``sendSingle`` stored, and its message."""

    broadcast_id: int
    message_id: int


@dataclass(frozen=True, slots=True)
class InboundView:
    """An inbound message (MO) as the API and the command line show it."""

    id: int
    sender: str = field(metadata={WIRE_NAME: "from"})
    to: str
    text: str
    keyword: str | None
    route: str
    gateway_id: str | None
    #: When it arrived (UTC), shown to the millisecond.
    date: datetime = field(metadata={WIRE_MILLIS: True})
    #: The gateway's own timestamp text, as it sent it.
    gateway_date: str | None

    @classmethod
    def of(cls, row: dict[str, Any]) -> InboundView:
        return cls(
            id=row["id"],
            sender=row["sender"],
            to=row["recipient"],
            text=row["text"],
            keyword=row["keyword"],
            route=row["route"],
            gateway_id=row["gateway_id"],
            date=utc_naive(row["received_at"]),
            gateway_date=row["reported_at"],
        )


@dataclass(frozen=True, slots=True)
class OptoutView:
    """A suppressed number of a workspace: where the opt-out came from, when."""

    number: str
    source: str
    detail: str | None
    created_at: datetime = field(metadata={WIRE_MILLIS: True})

    @classmethod
    def of(cls, row: dict[str, Any]) -> OptoutView:
        return cls(
            number=row["number"],
            source=row["source"],
            detail=row["detail"],
            created_at=utc_naive(row["created_at"]),
        )
