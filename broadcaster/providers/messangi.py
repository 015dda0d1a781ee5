"""Adapter for the Messangi Outbound SMS API (and the built-in carrier simulator, which speaks it).

``POST {base}/messages`` with ``Authorization: Bearer KEY`` and JSON ``{from, text, to,
requestDR, callbacks, externalId, clientId, type}``; the answer's ``data.id`` is the gateway's
id. Our message id travels as ``externalId`` (and ``clientId``), and the gateway echoes it in
receipts and answers ``GET {base}/messages?externalId=ID`` with ``{"data": [...]}``.

The gateway is not idempotent, so one message's send is::

    attempt ──► POST ──► 2xx ─────────────────────────────► SENT (gateway id)
                 │ 400/401/403 ────────────────────────────► ERROR at once
                 │ 429/5xx/refused ── backoff ──► attempt
                 └ timeout/disconnect after sending ── backoff ──► look-up ─┬─ found ──► SENT
                                                                            ├─ empty ──► POST
                                                                            └─ failed ─► look-up again
    out of attempts or past the deadline: ERROR (retries ran out) — or unknown=True when the
    last word was "maybe sent": the caller leaves the message claimed for the poller.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
from typing_extensions import Unpack
from yarl import URL

from broadcaster.domain.states import MessageStatus
from broadcaster.errors import (
    GatewayError,
    OutcomeUnknown,
    PermanentGatewayError,
    RetryableGatewayError,
)
from broadcaster.providers import inbound
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
from broadcaster.providers.inbound import Inbound

log = logging.getLogger(__name__)

M = MessageStatus

#: Least wait between an unknown outcome and the look-up that decides on a resend.
SETTLE_S = 1.0

#: Gateway status words (receipts and look-ups) in our vocabulary. The eight receipt states map
#: to themselves; refusals after acceptance are final failures (REJECTD); the gateway's own
#: queue states mean "it has it" (SENT, which no receipt rank replaces). Anything else: UNKNOWN.
GATEWAY_STATUS: dict[str, MessageStatus] = {
    "DELIVRD": M.DELIVRD,
    "UNDELIV": M.UNDELIV,
    "EXPIRED": M.EXPIRED,
    "REJECTD": M.REJECTD,
    "ACCEPTD": M.ACCEPTD,
    "DELETED": M.DELETED,
    "UNKNOWN": M.UNKNOWN,
    "ENROUTE": M.ENROUTE,
    # long spellings some carriers use
    "DELIVERED": M.DELIVRD,
    "UNDELIVERABLE": M.UNDELIV,
    "REJECTED": M.REJECTD,
    "ACCEPTED": M.ACCEPTD,
    # the gateway still holds it
    "QUEUE": M.SENT,
    "DEQUEUED": M.SENT,
    "SENT": M.SENT,
    # refused after acceptance: the seed's refusal names are kept, so reports count each reason
    "ERROR": M.REJECTD,
    "INVALID_ROUTING": M.INVALID_ROUTING,
    "CODE_NOT_ALLOWED": M.CODE_NOT_ALLOWED,
    "BLACKLISTED": M.BLACKLISTED,
    "SEGMENTS_EXCEEDED": M.SEGMENTS_EXCEEDED,
}

#: Seed 001: a send answered ``status: ERROR`` with this message went over the segment limit.
SEGMENTS_EXCEEDED_TEXT = "exceeds the limit of allowed segments"


def gateway_status(word: object) -> MessageStatus:
    """Our status for a gateway status word; unknown or missing words are UNKNOWN."""
    if not isinstance(word, str):
        return M.UNKNOWN
    return GATEWAY_STATUS.get(word.strip().upper(), M.UNKNOWN)


@dataclass(slots=True)
class _Progress:
    """One message's send so far."""

    attempts: int = 0
    #: The last attempt may have reached the gateway: look it up before any resend.
    maybe_sent: bool = False


class MessangiProvider(HttpAdapter):
    """A Messangi-compatible gateway. One per worker process; one pooled session per event loop.

    ``timeout_s`` bounds one HTTP call, ``max_attempts`` the calls per message (a look-up and
    the resend it allows count as one attempt), ``deadline_s`` one message's whole send (keep
    it well under the claim lease), ``concurrency`` the requests in flight (and the pool size).
    ``callback_url`` is where receipts go unless a message names its own. ``settle_s`` is the
    least wait between an unknown outcome and the look-up (the gateway may still be storing the
    request we gave up on). The backoff knobs exist for tests; ``name`` is what the registry
    calls it ("messangi" or "simulator").
    """

    name = "messangi"
    DEFAULT_CONCURRENCY = 50

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        options: HttpOptions | None = None,
        settle_s: float = SETTLE_S,
        **overrides: Unpack[HttpOptionsArgs],
    ) -> None:
        # name is "simulator" when it points at the built-in simulator
        self._setup(
            base_url,
            options,
            overrides,
            headers={"Authorization": f"Bearer {api_key}", "Accept": "application/json"},
        )
        self.settle_s = settle_s
        self._messages_url = URL(f"{self.base_url}/messages")  # parsed once, not per message

    # -- sending -------------------------------------------------------------------------------

    def payload(self, message: OutboundMessage) -> dict[str, Any]:
        """The JSON body for one message.

        Seed 001: ``callbacks`` is "one or more (separated by comma) webhook URLs", a string (a
        JSON list is unreadable to a gateway that follows it), and receipts come only with
        ``requestDR: true``; a message that asked for none sends neither.
        """
        callback = (message.callback_url or self.callback_url) if message.request_dr else None
        body: dict[str, Any] = {
            "from": message.sender,
            "text": message.text,
            "to": message.to,
            "requestDR": callback is not None,
            "externalId": message.reference,
            "clientId": message.reference,
            "type": "MT",
        }
        if callback is not None:
            body["callbacks"] = callback
        return body

    async def _send_one(
        self, session: aiohttp.ClientSession, message: OutboundMessage
    ) -> SendResult:
        """Never raises: every outcome is a ``SendResult``."""
        deadline = Deadline(self.deadline_s)
        progress = _Progress()
        ref = message.reference
        try:
            return await retried(
                lambda: self._attempt(session, message, deadline, progress),
                self._policy(deadline, settle_s=self.settle_s),
            )
        except GatewayError as exc:
            if progress.maybe_sent:  # even a 401 on the look-up: it may still have been sent
                return SendResult(
                    ref,
                    M.DEQUEUED,
                    error=f"outcome unknown: {exc}",
                    unknown=True,
                    attempts=progress.attempts,
                )
            if isinstance(exc, PermanentGatewayError):
                return SendResult(ref, M.ERROR, error=exc.reason, attempts=progress.attempts)
            return SendResult(
                ref,
                M.ERROR,
                error=f"gave up after {progress.attempts} attempts: {exc}",
                retryable=True,
                attempts=progress.attempts,
            )
        except Exception as exc:  # a bug, or a surprise: maybe sent, so let the poller settle it
            log.exception("%s: unexpected failure sending %s", self.name, ref)
            return SendResult(
                ref,
                M.DEQUEUED,
                error=f"unexpected {type(exc).__name__}: {exc}",
                unknown=True,
                attempts=progress.attempts,
            )

    async def _attempt(
        self,
        session: aiohttp.ClientSession,
        message: OutboundMessage,
        deadline: Deadline,
        progress: _Progress,
    ) -> SendResult:
        progress.attempts += 1
        if progress.maybe_sent:
            found = await self._lookup_once(session, message.reference, deadline)
            if found.found:
                return SendResult(
                    message.reference,
                    M.SENT,
                    gateway_id=found.gateway_id,
                    attempts=progress.attempts,
                )
            progress.maybe_sent = False  # proven absent: a resend is safe
        try:
            reply = check_status(
                await request(
                    session,
                    "POST",
                    self._messages_url,
                    json=self.payload(message),
                    timeout_s=deadline.cap(self.timeout_s),
                )
            )
        except OutcomeUnknown:
            progress.maybe_sent = True
            raise
        body = reply.json()
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict) or not data.get("id"):
            progress.maybe_sent = True
            raise OutcomeUnknown(f"HTTP {reply.status} without data.id: {snippet(reply.text)}")
        gateway_id = str(data["id"])
        if str(data.get("status", "")).upper() == "ERROR":
            meta = body.get("meta") if isinstance(body.get("meta"), dict) else {}
            why = data.get("error") or data.get("message") or meta.get("explain") or reply.text
            return SendResult(
                message.reference,
                M.SEGMENTS_EXCEEDED if SEGMENTS_EXCEEDED_TEXT in str(why).lower() else M.ERROR,
                gateway_id=gateway_id,
                error=f"gateway status ERROR: {snippet(str(why))}",
                attempts=progress.attempts,
            )
        return SendResult(
            message.reference, M.SENT, gateway_id=gateway_id, attempts=progress.attempts
        )

    # -- look-up -------------------------------------------------------------------------------

    async def _lookup_once(
        self, session: aiohttp.ClientSession, reference: str, deadline: Deadline
    ) -> LookupResult:
        """One ``GET ?externalId=``; a GET is safe, so every failure is simply retryable."""
        url = f"{self.base_url}/messages?externalId={quote(reference, safe='')}"
        try:
            reply = check_status(
                await request(session, "GET", url, timeout_s=deadline.cap(self.timeout_s))
            )
            body = reply.json()
        except OutcomeUnknown as exc:  # for a GET, "maybe" changes nothing
            raise RetryableGatewayError(f"look-up: {exc.reason}") from exc
        rows = body.get("data") if isinstance(body, dict) else None
        if not isinstance(rows, list):
            raise RetryableGatewayError(f"look-up: no data list in {snippet(reply.text)}")
        # Some gateways ignore unknown filters: match on our side too.
        mine = [r for r in rows if isinstance(r, dict) and r.get("externalId") == reference]
        if not mine:
            return LookupResult(found=False)
        row = mine[0]
        return LookupResult(
            found=True,
            gateway_id=str(row.get("id")) if row.get("id") else None,
            status=gateway_status(row.get("status")),
        )

    async def lookup(self, reference: str) -> LookupResult:
        """Whether the gateway holds ``reference``; retried like a send.

        Raises ``RetryableGatewayError`` (or ``PermanentGatewayError`` on 401/403) when the
        gateway cannot be asked: "could not ask" is never reported as "not found".
        """
        session, semaphore = self._client()
        deadline = Deadline(self.deadline_s)
        async with semaphore:
            return await retried(
                lambda: self._lookup_once(session, reference, deadline), self._policy(deadline)
            )

    # -- receipts ------------------------------------------------------------------------------

    def parse_mo(self, payload: dict[str, Any]) -> Inbound:
        """An inbound (MO) webhook: see ``providers/inbound.py``."""
        return inbound.parse_messangi(payload)

    def parse_receipt(self, payload: dict[str, Any]) -> Receipt:
        """A receipt callback body ``{id, externalId, status, date, from, to}`` as a ``Receipt``."""
        ref = payload.get("externalId") or payload.get("clientId")
        gid = payload.get("id")
        return Receipt(
            reference=str(ref) if ref else None,
            gateway_id=str(gid) if gid else None,
            status=gateway_status(payload.get("status")),
            at=str(payload["date"]) if payload.get("date") else None,
            raw=dict(payload),
        )
