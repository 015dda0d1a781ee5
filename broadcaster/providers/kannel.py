"""Adapter for a Kannel gateway's smsbox ``sendsms`` interface (open-source SMS gateway).

One message is one ``GET {base}/cgi-bin/sendsms?username&password&from&to&text&charset=UTF-8
&coding&dlr-mask&dlr-url``: ``coding=0`` for GSM-7 and ``2`` for UCS-2; Kannel splits long texts
into concatenated parts (up to the sendsms-user's ``max-messages``) itself. Its answers::

    202 "0: Accepted for delivery"        SENT (Kannel has no id of its own: gateway_id = our reference)
    202 "3: Queued for later delivery"    SENT (the SMSC link is down; Kannel stores and retries)
    403 "Authorization failed…"           ERROR, permanent (also "Not routable. Do not try again.")
    other 4xx                             ERROR, permanent (empty receiver, black-listed number…)
    5xx, refused connection               retried with backoff ("Temporal failure, try again later.")
    timeout/reset after sending           unknown: never resent (see below)

Receipts: ``dlr-url`` is our receipt URL plus ``ref=<our id>&status=%d&at=%T&answer=%A``; Kannel
substitutes the ``%`` escapes and calls it with GET. A literal ``%`` already in our URL (a
percent-encoded secret) is written ``%%`` so that Kannel does not read ``%2F`` or ``%C3`` as an
escape (checked against Kannel 1.4.5). ``%d`` is one of::

    1 delivered → DELIVRD    2 undelivered → UNDELIV    4 buffered → ENROUTE
    8 SMSC accepted → ACCEPTD    16 SMSC rejected → REJECTD

in any order (a late 8 never overwrites a final 1: ``receipt_applies``). A long text may bring one
receipt per part; they all carry the same reference, which is harmless.

Kannel truncates silently past ``max-messages``, so a text over ``max_segments`` (10, the
``SEGMENTS_EXCEEDED`` cap) is refused here as a permanent ERROR and never handed over.

**No look-up.** Kannel keeps nothing it can be asked about by reference, and it is not idempotent.
When an answer is lost (timeout, reset) the message *may* be in Kannel's queue, so a resend could
deliver it twice; proving it absent is impossible. The adapter therefore never resends after an
unknown outcome: it returns ``unknown=True`` (the caller keeps the message claimed), and
``lookup`` answers ``found=True`` with neither id nor status — "assume Kannel has it". The poller
then records the message SENT, never resends it, and lets receipts settle it: if Kannel did have
it, the dlr-url (which carries our reference) brings ACCEPTD/DELIVRD; if it did not, no receipt
ever comes and the validity sweep ends it EXPIRED. Rare loss, reported as such, is preferred to a
duplicate to a real person.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote, quote_plus, urlencode

import aiohttp
from typing_extensions import Unpack

from broadcaster.constants import MAX_SEGMENTS
from broadcaster.domain.segments import UCS_2, measure
from broadcaster.domain.states import MessageStatus
from broadcaster.errors import GatewayError, OutcomeUnknown, PermanentGatewayError
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

#: Kannel ``dlr-mask`` bits: 1 delivered, 2 undelivered, 4 buffered, 8 SMSC accepted, 16 SMSC rejected.
DLR_MASK_ALL = 31
#: Kannel's ``%d`` delivery status in our vocabulary.
DLR_STATUS: dict[int, MessageStatus] = {
    1: M.DELIVRD,
    2: M.UNDELIV,
    4: M.ENROUTE,
    8: M.ACCEPTD,
    16: M.REJECTD,
}
#: ``coding`` values of sendsms: 0 = 7-bit (GSM-7), 2 = UCS-2.
CODING_GSM7, CODING_UCS2 = 0, 2
#: Query fields Kannel fills into our receipt URL (``ref`` is ours, added verbatim).
DLR_URL_FIELDS = "status=%d&at=%T&answer=%A"
#: Kannel answers beginning with these codes mean it took the message.
ACCEPTED_PREFIXES = ("0:", "3:")


def kannel_literal(url: str) -> str:
    """``url`` with every ``%`` doubled, so Kannel's escape substitution leaves it as it was."""
    return url.replace("%", "%%")


def dlr_url_for(callback_url: str, reference: str) -> str:
    """The ``dlr-url`` value: our receipt URL plus our reference and Kannel's escapes."""
    sep = "&" if "?" in callback_url else "?"
    ref = quote(reference, safe="")
    return f"{kannel_literal(callback_url)}{sep}{kannel_literal(f'ref={ref}')}&{DLR_URL_FIELDS}"


class KannelProvider(HttpAdapter):
    """A Kannel smsbox. One per worker process; one pooled session per event loop.

    ``base_url`` is the smsbox ``sendsms-port`` URL (``http://host:13013``); ``username`` and
    ``password`` a ``sendsms-user``. ``timeout_s`` bounds one call, ``max_attempts`` the calls per
    message, ``deadline_s`` one message's whole send, ``concurrency`` the calls in flight.
    ``callback_url`` is where receipts go unless a message names its own (none: no DLRs asked
    for). ``smsc`` routes to one ``smsc-id``; ``max_segments`` must not exceed the user's
    ``max-messages``.
    """

    name = "kannel"
    #: Kannel cannot be asked about a reference: ``lookup`` only says "assume it has it".

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        *,
        options: HttpOptions | None = None,
        dlr_mask: int = DLR_MASK_ALL,
        smsc: str | None = None,
        max_segments: int = MAX_SEGMENTS,
        **overrides: Unpack[HttpOptionsArgs],
    ) -> None:
        self._setup(base_url, options, overrides)
        self.username = username
        self._password = password
        self.dlr_mask, self.smsc, self.max_segments = dlr_mask, smsc, max_segments

    def __repr__(self) -> str:
        return f"KannelProvider({self.base_url!r}, username={self.username!r})"

    # -- sending -------------------------------------------------------------------------------

    def query(self, message: OutboundMessage) -> dict[str, str]:
        """The sendsms query for one message (password included: never log it)."""
        ucs2 = message.encoding == UCS_2 or measure(message.text).encoding == UCS_2
        params = {
            "username": self.username,
            "password": self._password,
            "from": message.sender,
            "to": message.to,
            "text": message.text,
            "charset": "UTF-8",
            "coding": str(CODING_UCS2 if ucs2 else CODING_GSM7),
        }
        callback = message.callback_url or self.callback_url
        if callback and self.dlr_mask:
            params["dlr-mask"] = str(self.dlr_mask)
            params["dlr-url"] = dlr_url_for(callback, message.reference)
        if self.smsc:
            params["smsc"] = self.smsc
        return params

    def _scrub(self, text: str) -> str:
        """``text`` without the password (aiohttp errors may quote the URL)."""
        if not self._password:
            return text
        for form in {self._password, quote(self._password, safe=""), quote_plus(self._password)}:
            text = text.replace(form, "***")
        return text

    async def _send_one(
        self, session: aiohttp.ClientSession, message: OutboundMessage
    ) -> SendResult:
        """Never raises: every outcome is a ``SendResult``."""
        ref = message.reference
        segments = max(message.segments, measure(message.text).segments)
        if segments > self.max_segments:
            return SendResult(
                ref,
                M.ERROR,
                attempts=0,
                error=f"{segments} segments: over {self.max_segments}, Kannel would truncate",
            )
        deadline = Deadline(self.deadline_s)
        url = f"{self.base_url}/cgi-bin/sendsms?{urlencode(self.query(message))}"
        attempts = 0

        async def attempt() -> SendResult:
            nonlocal attempts
            attempts += 1
            try:
                reply = check_status(
                    await request(session, "GET", url, timeout_s=deadline.cap(self.timeout_s))
                )
            except OutcomeUnknown as exc:
                # Kannel may have queued it and cannot be asked: never resend.
                return SendResult(
                    ref,
                    M.DEQUEUED,
                    unknown=True,
                    attempts=attempts,
                    error=self._scrub(f"outcome unknown: {exc.reason}"),
                )
            return self._accepted(ref, reply.text, attempts)

        try:
            return await retried(attempt, self._policy(deadline))
        except PermanentGatewayError as exc:
            return SendResult(ref, M.ERROR, error=self._scrub(exc.reason), attempts=attempts)
        except GatewayError as exc:
            return SendResult(
                ref,
                M.ERROR,
                attempts=attempts,
                error=self._scrub(f"gave up after {attempts} attempts: {exc}"),
                retryable=True,
            )
        except Exception as exc:  # a bug or a surprise after the call may have gone out
            log.exception("%s: unexpected failure sending %s", self.name, ref)
            return SendResult(
                ref,
                M.DEQUEUED,
                unknown=True,
                attempts=attempts,
                error=self._scrub(f"unexpected {type(exc).__name__}: {exc}"),
            )

    @staticmethod
    def _accepted(reference: str, body: str, attempts: int) -> SendResult:
        """A 2xx answer: Kannel only says 2xx when it took the message ("0:" or "3:")."""
        answer = body.strip()
        note = (
            None if answer.startswith(ACCEPTED_PREFIXES) else f"unusual answer: {snippet(answer)}"
        )
        return SendResult(reference, M.SENT, gateway_id=reference, error=note, attempts=attempts)

    # -- look-up and receipts ------------------------------------------------------------------

    async def lookup(self, reference: str) -> LookupResult:
        """Kannel has no look-up: "assume it has it", so the caller never resends (module doc)."""
        return LookupResult(found=True, gateway_id=None, status=None)

    def parse_mo(self, payload: dict[str, Any]) -> Inbound:
        """An inbound (MO) webhook: see ``providers/inbound.py``."""
        return inbound.parse_kannel(payload)

    def parse_receipt(self, payload: dict[str, Any]) -> Receipt:
        """A dlr-url call's query (``ref``, ``status`` = Kannel's %d, ``at``, ``answer``).

        Raises ``ValueError`` for a missing reference or a status that is not one of Kannel's
        five (the API answers 400 and the call shows in Kannel's log).
        """
        ref = str(payload.get("ref") or "").strip()
        if not ref:
            raise ValueError("Kannel receipt without ref")
        raw_status = str(payload.get("status", "")).strip()
        try:
            status = DLR_STATUS[int(raw_status)]
        except (ValueError, KeyError):
            raise ValueError(f"unknown Kannel DLR status {raw_status!r}") from None
        at = payload.get("at")
        return Receipt(
            reference=ref,
            gateway_id=ref,
            status=status,
            at=str(at) if at else None,
            raw=dict(payload),
        )
