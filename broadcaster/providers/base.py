"""The one protocol every gateway adapter speaks.

A send hands the adapter a batch of ``OutboundMessage``; the adapter answers one ``SendResult``
per message, never raising for a single message's failure (that is in the result). Receipts
come back through ``parse_receipt``; lost outcomes are settled with ``lookup``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from broadcaster.domain.states import MessageStatus


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """One SMS ready for a gateway. ``reference`` is our message id, the idempotency key."""

    reference: str
    sender: str
    to: str  # E.164 with '+'
    text: str
    encoding: str = "GSM-7"  # or "UCS-2"
    segments: int = 1
    callback_url: str | None = None  # where the gateway posts receipts
    request_dr: bool = True  # ask the gateway for delivery receipts (seed 001: requestDR)


@dataclass(frozen=True, slots=True)
class SendResult:
    """What became of one send.

    ``status`` is SENT (gateway accepted; ``gateway_id`` set) or ERROR (permanent; ``error``
    says why). ``retryable`` ERRORs ran out of in-request attempts on a passing fault (429, 5xx,
    a connection never made, or a resend proven safe by a look-up): the gateway does not hold
    the message, and the caller queues it again. ``unknown`` means the adapter could not
    learn the outcome even after a look-up: the caller leaves the message claimed so the poller
    settles it later.
    """

    reference: str
    status: MessageStatus
    gateway_id: str | None = None
    error: str | None = None
    unknown: bool = False
    attempts: int = 1
    retryable: bool = False


@dataclass(frozen=True, slots=True)
class Receipt:
    """A delivery receipt in our vocabulary."""

    reference: str | None  # our message id, when the gateway echoes it
    gateway_id: str | None
    status: MessageStatus
    at: str | None = None  # the gateway's timestamp, as sent
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LookupResult:
    """What the gateway knows of a reference: ``found`` False means it never got it."""

    found: bool
    gateway_id: str | None = None
    status: MessageStatus | None = None


class Provider(Protocol):
    """A gateway adapter. One instance per worker process; it owns its HTTP session."""

    name: str

    async def send_batch(self, messages: list[OutboundMessage]) -> list[SendResult]:
        """Send each message at most once per proven absence at the gateway; one result each.

        ``HttpAdapter`` (``providers/http.py``) has the default: one request per message, all
        concurrently; a gateway that takes many per request overrides it.
        """
        ...

    async def lookup(self, reference: str) -> LookupResult:
        """Ask the gateway whether it holds a message with our reference."""
        ...

    def parse_receipt(self, payload: dict[str, Any]) -> Receipt:
        """Turn a receipt callback body (or query string as a dict) into a ``Receipt``.

        The failure contract, the same for every adapter (tests/unit/providers/test_provider_contract.py):
        a payload it cannot read raises ``ValueError`` with the reason (the receipt endpoint
        answers 400), and nothing else ever escapes, whatever the payload holds. A status
        outside the gateway's vocabulary is either that ``ValueError`` or ``UNKNOWN``, as the
        adapter's docstring says; a gateway whose receipts are polled raises ``ValueError``.
        """
        ...

    async def close(self) -> None:
        """Release the HTTP session."""
        ...


@runtime_checkable
class StatusPoller(Protocol):
    """A gateway whose outcomes are polled, not pushed (OpenText): the poller asks each tick.

    Test with ``isinstance(provider, StatusPoller)``: an adapter that has ``poll_status`` is one.
    """

    async def poll_status(self, job_id: str) -> list[Receipt]:
        """The receipts the gateway now reports for one of our jobs (``SendResult.gateway_id``)."""
        ...
