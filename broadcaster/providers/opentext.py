"""Adapter for the OpenText Notifications (Cloud Messaging) REST API, SMS channel.

HTTP Basic authentication. A send is a *job*: ``POST {base}/mra/v1/outbound/sms`` with JSON
``{destinations: [{sms, ref}], sms_text, options: {billing_code, customer_reference},
reports: {delivery_report: {type: "none"}}}`` answers ``{"job_id": "xsi-1234567"}``. Each
destination carries ``ref`` = our message id, which the status API returns (base64) per delivery.

**Jobs per batch.** Messages of a batch that share text and sender go out as one job with many
destinations (at most ``max_destinations_per_job``), everything else one job per distinct text:
a broadcast without placeholders costs one call per hundred recipients instead of one each. Every
message of a job gets the job id as ``gateway_id``. The price is shared fate, handled so::

    job accepted (2xx with job_id)       every message SENT, gateway_id = job id
    400/422 on a job of several          the job is split into single-destination jobs, so one
                                         bad number does not sink its neighbours
    401/403, other 4xx                   every message ERROR (not retried)
    429 (Retry-After), 5xx, refused      the whole job retried with backoff
    timeout/reset after sending          every message unknown: never resent (see below)

The sender is not sent: the seed's API has no originator field; the account's configured one is
used. Numbers go as international digits with ``international_prefix`` (``"00"``, as the seed
writes them: ``+34…`` → ``0034…``); set it to ``"+"`` to send E.164 unchanged.

**Receipts are polled, not pushed.** ``poll_status(job_id)`` reads ``GET {base}/mra/v1/outbound/
sms/status/?job_id=`` and returns one ``Receipt`` per delivery whose state is known (see
``delivery_status``); the status poller calls it for jobs with messages not yet final.
``parse_receipt`` raises ``ValueError`` (no push receipts in this API).

**No look-up by reference.** The status API needs the job id, which a lost answer never gave us,
and a resubmitted job is a second SMS. So after an unknown outcome the adapter never resends,
and ``lookup`` answers ``found=True`` with no status — "assume OpenText has it": the message
becomes SENT and, with no job id to poll, ends EXPIRED after the validity period unless a
receipt settles it. A rare loss reported as EXPIRED is preferred to a duplicate.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from collections.abc import Sequence
from typing import Any

import aiohttp
from typing_extensions import Unpack

from broadcaster.domain.states import MessageStatus
from broadcaster.errors import (
    GatewayError,
    OutcomeUnknown,
    PermanentGatewayError,
    RetryableGatewayError,
)
from broadcaster.providers.base import LookupResult, OutboundMessage, Receipt, SendResult
from broadcaster.providers.http import (
    Deadline,
    HttpAdapter,
    HttpOptions,
    HttpOptionsArgs,
    check_status,
    request,
    retried,
    snippet,
)

log = logging.getLogger(__name__)

M = MessageStatus

SEND_PATH = "/mra/v1/outbound/sms"
STATUS_PATH = "/mra/v1/outbound/sms/status/"
#: Destinations in one job at most (one HTTP call; shared fate on failure).
MAX_DESTINATIONS_PER_JOB = 100
#: A job refused with these is split into single-destination jobs to isolate the bad one.
SPLIT_ON_STATUSES = frozenset({400, 422})

#: ``sms_delivery_events[].status`` words (lower case) in our vocabulary.
EVENT_STATUS: dict[str, MessageStatus] = {
    "confirmed": M.DELIVRD,
    "delivered": M.DELIVRD,
    "failed": M.UNDELIV,
    "undelivered": M.UNDELIV,
    "undeliverable": M.UNDELIV,
    "expired": M.EXPIRED,
    "rejected": M.REJECTD,
    "deleted": M.DELETED,
    "accepted": M.ACCEPTD,
    "buffered": M.ENROUTE,
    "enroute": M.ENROUTE,
    "pending": M.ENROUTE,
}
#: ``delivery_attempts[].state`` words (lower case) that say where the SMS is.
ATTEMPT_IN_FLIGHT = frozenset({"submitted", "queued", "pending", "processing", "retry"})
ATTEMPT_FAILED = frozenset({"error", "failed"})
ATTEMPT_CANCELLED = frozenset({"cancelled", "canceled"})


def _word(value: object) -> str:
    return value.strip().lower() if isinstance(value, str) else ""


def delivery_status(delivery: dict[str, Any], job_complete: bool) -> MessageStatus | None:
    """One delivery's state, or None while nothing is known yet.

    The latest delivery event wins (``Confirmed`` is a handset confirmation: DELIVRD). Without
    events the latest attempt says: ``Sent`` → ACCEPTD (handed to the carrier), in flight →
    ENROUTE, ``Cancelled`` → DELETED, ``Error`` → UNDELIV once the job is complete (before that
    OpenText may still try again: ENROUTE).
    """
    events = (delivery.get("events") or {}).get("sms_delivery_events") or []
    for event in reversed([e for e in events if isinstance(e, dict)]):
        status = EVENT_STATUS.get(_word(event.get("status")))
        if status is not None:
            return status
    attempts = [a for a in delivery.get("delivery_attempts") or [] if isinstance(a, dict)]
    if not attempts:
        return None
    state = _word(attempts[-1].get("state"))
    if state == "sent":
        return M.ACCEPTD
    if state in ATTEMPT_CANCELLED:
        return M.DELETED
    if state in ATTEMPT_FAILED:
        return M.UNDELIV if job_complete else M.ENROUTE
    if state in ATTEMPT_IN_FLIGHT:
        return M.ENROUTE
    return None


def delivery_reference(delivery: dict[str, Any]) -> str | None:
    """Our reference from a delivery: ``ref`` or ``ref_base64`` decoded; None when absent."""
    if delivery.get("ref"):
        return str(delivery["ref"])
    encoded = delivery.get("ref_base64")
    if not encoded:
        return None
    try:
        return base64.b64decode(str(encoded), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None


def _when(delivery: dict[str, Any]) -> str | None:
    events = (delivery.get("events") or {}).get("sms_delivery_events") or []
    if events and isinstance(events[-1], dict) and isinstance(events[-1].get("event_time"), str):
        return str(events[-1]["event_time"])
    attempts = delivery.get("delivery_attempts") or []
    if attempts and isinstance(attempts[-1], dict):
        at = attempts[-1].get("delivery_time") or attempts[-1].get("first_attempt")
        return str(at) if at else None
    return None


class OpenTextProvider(HttpAdapter):
    """OpenText Notifications SMS. One per worker process; one pooled session per event loop.

    ``base_url`` is the API host (``https://api.eu.cloudmessaging.opentext.com``). ``timeout_s``
    bounds one call, ``max_attempts`` the calls per job, ``deadline_s`` one job's whole send,
    ``concurrency`` the calls in flight. ``billing_code`` and ``customer_reference`` go into
    every job's ``options`` (they show in OpenText's portal and invoices).
    """

    name = "opentext"
    DEFAULT_CONCURRENCY = 10
    #: The API cannot be asked about a reference: ``lookup`` only says "assume it has it".

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        *,
        options: HttpOptions | None = None,
        billing_code: str | None = None,
        customer_reference: str | None = "broadcaster",
        max_destinations_per_job: int = MAX_DESTINATIONS_PER_JOB,
        international_prefix: str = "00",
        **overrides: Unpack[HttpOptionsArgs],
    ) -> None:
        if max_destinations_per_job < 1:
            raise ValueError("max_destinations_per_job must be at least 1")
        # One header, built here (aiohttp's BasicAuth helper is deprecated); never logged.
        token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
        self._setup(
            base_url,
            options,
            overrides,
            headers={"Authorization": f"Basic {token}", "Accept": "application/json"},
        )
        self.username = username
        self.billing_code, self.customer_reference = billing_code, customer_reference
        self.max_destinations_per_job = max_destinations_per_job
        self.international_prefix = international_prefix

    def __repr__(self) -> str:
        return f"OpenTextProvider({self.base_url!r}, username={self.username!r})"

    # -- sending -------------------------------------------------------------------------------

    def number(self, e164: str) -> str:
        """An E.164 number as this account sends it (``+`` replaced by ``international_prefix``)."""
        return self.international_prefix + e164[1:] if e164.startswith("+") else e164

    def jobs(self, messages: Sequence[OutboundMessage]) -> list[list[int]]:
        """Indexes of ``messages`` grouped into jobs: same text and sender, capped in size."""
        groups: dict[tuple[str, str], list[int]] = {}
        for i, m in enumerate(messages):
            groups.setdefault((m.text, m.sender), []).append(i)
        cap = self.max_destinations_per_job
        return [idx[k : k + cap] for idx in groups.values() for k in range(0, len(idx), cap)]

    def payload(self, messages: Sequence[OutboundMessage]) -> dict[str, Any]:
        """The JSON body of one job (all ``messages`` share their text)."""
        options: dict[str, str] = {}
        if self.billing_code:
            options["billing_code"] = self.billing_code
        if self.customer_reference:
            options["customer_reference"] = self.customer_reference
        return {
            "destinations": [{"sms": self.number(m.to), "ref": m.reference} for m in messages],
            "sms_text": messages[0].text,
            "options": options,
            "reports": {"delivery_report": {"type": "none"}},
        }

    async def send_batch(self, messages: list[OutboundMessage]) -> list[SendResult]:
        """Send as few jobs as the texts allow (module doc); one result per message, in order."""
        session, semaphore = self._client()
        results: list[SendResult | None] = [None] * len(messages)

        async def one_job(indexes: list[int]) -> None:
            batch = [messages[i] for i in indexes]
            for i, result in zip(
                indexes, await self._send_job(session, semaphore, batch), strict=True
            ):
                results[i] = result

        await asyncio.gather(*(one_job(idx) for idx in self.jobs(messages)))
        assert all(r is not None for r in results)
        return [r for r in results if r is not None]

    async def _send_job(
        self,
        session: aiohttp.ClientSession,
        semaphore: asyncio.Semaphore,
        batch: list[OutboundMessage],
    ) -> list[SendResult]:
        """Never raises: one ``SendResult`` per message of the job."""
        async with semaphore:
            attempts, outcome = await self._submit(session, batch)
        refs = [m.reference for m in batch]
        if isinstance(outcome, str):
            return [SendResult(r, M.SENT, gateway_id=outcome, attempts=attempts) for r in refs]
        if isinstance(outcome, OutcomeUnknown):
            return [
                SendResult(
                    r,
                    M.DEQUEUED,
                    unknown=True,
                    attempts=attempts,
                    error=f"outcome unknown: {outcome.reason}",
                )
                for r in refs
            ]
        if isinstance(outcome, PermanentGatewayError):
            if outcome.status in SPLIT_ON_STATUSES and len(batch) > 1:
                singles = await asyncio.gather(
                    *(self._send_job(session, semaphore, [m]) for m in batch)
                )
                return [s[0] for s in singles]
            return [SendResult(r, M.ERROR, error=outcome.reason, attempts=attempts) for r in refs]
        if isinstance(outcome, GatewayError):
            return [
                SendResult(
                    r,
                    M.ERROR,
                    attempts=attempts,
                    error=f"gave up after {attempts} attempts: {outcome}",
                    retryable=True,
                )
                for r in refs
            ]
        log.error(
            "%s: unexpected failure sending a job of %d", self.name, len(refs), exc_info=outcome
        )
        return [
            SendResult(
                r,
                M.DEQUEUED,
                unknown=True,
                attempts=attempts,
                error=f"unexpected {type(outcome).__name__}: {outcome}",
            )
            for r in refs
        ]

    async def _submit(
        self, session: aiohttp.ClientSession, batch: list[OutboundMessage]
    ) -> tuple[int, str | BaseException]:
        """(attempts, job id) — or the error that ended the job's retries."""
        deadline = Deadline(self.deadline_s)
        body = self.payload(batch)
        headers = {"X-MRA-SubmitId": f"broadcaster-{batch[0].reference}-{len(batch)}"}
        attempts = 0

        async def attempt() -> str | BaseException:
            nonlocal attempts
            attempts += 1
            try:
                reply = check_status(
                    await request(
                        session,
                        "POST",
                        self.base_url + SEND_PATH,
                        json=body,
                        headers=headers,
                        timeout_s=deadline.cap(self.timeout_s),
                    )
                )
                answer = reply.json()
            except OutcomeUnknown as exc:  # a job may exist: never resubmit
                return exc
            job_id = answer.get("job_id") if isinstance(answer, dict) else None
            if not job_id:
                return OutcomeUnknown(f"HTTP {reply.status} without job_id: {snippet(reply.text)}")
            return str(job_id)

        try:
            outcome = await retried(attempt, self._policy(deadline))  # before reading ``attempts``
        except Exception as exc:  # GatewayError when retries end; anything else is a surprise
            return attempts, exc
        return attempts, outcome

    # -- status --------------------------------------------------------------------------------

    async def poll_status(self, job_id: str) -> list[Receipt]:
        """Receipts for a job's deliveries whose state is known (``delivery_status``).

        Retried like a send (a GET is safe to repeat). Raises ``PermanentGatewayError`` for an
        unknown job (404) or refused credentials, ``RetryableGatewayError`` when the API cannot
        be asked now: "could not ask" is never reported as a state.
        """
        session, semaphore = self._client()
        deadline = Deadline(self.deadline_s)
        async with semaphore:
            return await retried(
                lambda: self._status_once(session, job_id, deadline), self._policy(deadline)
            )

    async def _status_once(
        self, session: aiohttp.ClientSession, job_id: str, deadline: Deadline
    ) -> list[Receipt]:
        try:
            reply = check_status(
                await request(
                    session,
                    "GET",
                    self.base_url + STATUS_PATH,
                    params={"job_id": job_id},
                    timeout_s=deadline.cap(self.timeout_s),
                )
            )
            body = reply.json()
        except OutcomeUnknown as exc:  # for a GET, "maybe" changes nothing
            raise RetryableGatewayError(f"job status: {exc.reason}") from exc
        if not isinstance(body, dict) or not isinstance(body.get("deliveries", []), list):
            raise RetryableGatewayError(f"job status: unreadable {snippet(reply.text)}")
        return self.receipts_from_status(job_id, body)

    def receipts_from_status(self, job_id: str, body: dict[str, Any]) -> list[Receipt]:
        """Receipts from one status answer; deliveries without a known state are left out.

        A delivery without a readable ``ref`` is attributed by job id only when the job has a
        single delivery (several messages share a job id).
        """
        job_state = {_word(s) for s in body.get("job_state") or [] if isinstance(s, str)}
        complete = "complete" in job_state
        deliveries = [d for d in body.get("deliveries") or [] if isinstance(d, dict)]
        receipts = []
        for delivery in deliveries:
            status = delivery_status(delivery, complete)
            ref = delivery_reference(delivery)
            if status is None or (ref is None and len(deliveries) > 1):
                continue
            receipts.append(
                Receipt(
                    reference=ref,
                    gateway_id=job_id,
                    status=status,
                    at=_when(delivery),
                    raw={"job_id": job_id, **delivery},
                )
            )
        return receipts

    # -- look-up and receipts ------------------------------------------------------------------

    async def lookup(self, reference: str) -> LookupResult:
        """No look-up by reference: "assume it has it", so the caller never resends (module doc)."""
        return LookupResult(found=True, gateway_id=None, status=None)

    def parse_receipt(self, payload: dict[str, Any]) -> Receipt:
        """Not supported: this API's receipts are polled (``poll_status``)."""
        raise ValueError("push receipts not supported by opentext: its status is polled")
