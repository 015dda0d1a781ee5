"""Adapter for the Vonage (Nexmo) SMS API as KPN exposes it (``api-prd.kpn.com``).

Authentication is OAuth2 client credentials: ``POST {token_url}?grant_type=client_credentials``
with a form ``client_id, client_secret`` answers ``{"access_token", "expires_in": "3599", …}``.
The token is cached until shortly before it expires (``TOKEN_MARGIN_S``, at most a tenth of its
life) and fetched once for all concurrent sends. A 401 from the API means the token died early
(revoked, rotated): the adapter drops it, fetches one new token and retries that message once;
a second 401 is a permanent error.

A send is ``POST {base}/send`` with JSON ``{from, to, text, type, client-ref, status-report-req,
callback}``: ``to`` without ``+`` (Nexmo wants bare international digits), ``type`` "unicode" for
UCS-2, ``client-ref`` our message id (echoed in receipts), ``callback`` our receipt URL. The
answer lists one entry per SMS part; ``status`` "0" is success and ``message-id`` the gateway's
id of that part. Other status codes (``NEXMO_STATUS``)::

    code  meaning                           we do
    0     success                           SENT (gateway_id = first part's message-id)
    1     throttled                         retry with backoff
    2     missing parameters                ERROR
    3     invalid parameters                ERROR
    4     invalid credentials               ERROR
    5     internal error                    retry with backoff
    6     invalid message (unroutable)      ERROR
    7     number barred                     BLACKLISTED (the gateway's refusal: the number goes
                                            on the workspace's suppression list, source gateway)
    8     partner account barred            ERROR
    9     partner quota exceeded (credit)   ERROR
    10    too many existing binds           retry with backoff
    11    account not enabled for REST      ERROR
    12    message too long                  ERROR
    14    invalid signature                 ERROR
    15    invalid sender address            ERROR
    22    invalid network code              ERROR
    23    invalid callback URL              ERROR
    29    non-whitelisted destination       ERROR
    32    signature and secret disallowed   ERROR
    33    number de-activated               ERROR
    other                                   ERROR (named in the error text)

A non-zero status means the part was not sent, so a retry cannot duplicate it. When some parts
of a long text were accepted and others not, the message is SENT (a resend would repeat the
accepted parts) and the refusal is noted in ``error``. HTTP statuses follow ``http.py``: 429 and
5xx retried (Retry-After honoured), other 4xx permanent.

**No look-up.** This API has no search by ``client-ref`` and is not idempotent, so after a lost
answer (timeout, reset, unreadable 2xx) the adapter never resends: it returns ``unknown=True``,
and ``lookup`` answers ``found=True`` with no status — "assume Vonage has it". The message
becomes SENT; Vonage's receipt (carrying ``client-ref``) settles it if it was sent, and the
validity sweep ends it EXPIRED if no receipt ever comes. A rare loss reported as EXPIRED is
preferred to a duplicate to a real person.

Receipts (``parse_receipt``) and inbound messages (``parse_inbound``) arrive as Vonage webhooks,
GET query or POST body (JSON or form), which our API merges into one dict.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from typing_extensions import Unpack

from broadcaster.domain.segments import UCS_2
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
    HttpReply,
    check_status,
    request,
    retried,
    snippet,
)
from broadcaster.providers.inbound import Inbound

log = logging.getLogger(__name__)

M = MessageStatus

#: KPN's endpoints (the defaults of an account that names none).
KPN_BASE_URL = "https://api-prd.kpn.com/communication/nexmo/sms"
KPN_TOKEN_URL = "https://api-prd.kpn.com/oauth/client_credential/accesstoken"
#: A token is renewed this long before it expires (or a tenth of its life, if shorter).
TOKEN_MARGIN_S = 60.0
#: Life assumed for a token whose answer names none.
DEFAULT_TOKEN_LIFE_S = 300.0
#: A refused token request is answered from memory this long (bad credentials stay bad), so a
#: batch of sends does not queue one refused token request each.
TOKEN_REFUSAL_MEMORY_S = 5.0

#: Nexmo send status code -> (name, worth a retry).
#: "Number barred": the gateway refuses the destination, as Messangi's BLACKLISTED (issue 13).
BARRED = "7"
NEXMO_STATUS: dict[str, tuple[str, bool]] = {
    "1": ("throttled", True),
    "2": ("missing parameters", False),
    "3": ("invalid parameters", False),
    "4": ("invalid credentials", False),
    "5": ("internal error", True),
    "6": ("invalid message", False),
    "7": ("number barred", False),
    "8": ("partner account barred", False),
    "9": ("partner quota exceeded", False),
    "10": ("too many existing binds", True),
    "11": ("account not enabled for REST", False),
    "12": ("message too long", False),
    "14": ("invalid signature", False),
    "15": ("invalid sender address", False),
    "22": ("invalid network code", False),
    "23": ("invalid callback URL", False),
    "29": ("non-whitelisted destination", False),
    "32": ("signature and API secret disallowed", False),
    "33": ("number de-activated", False),
}

#: Delivery receipt ``status`` words in our vocabulary.
DLR_STATUS: dict[str, MessageStatus] = {
    "delivered": M.DELIVRD,
    "expired": M.EXPIRED,
    "failed": M.UNDELIV,
    "rejected": M.REJECTD,
    "accepted": M.ACCEPTD,
    "buffered": M.ENROUTE,
    "deleted": M.DELETED,
    "unknown": M.UNKNOWN,
}


def send_error(code: str, text: str | None) -> GatewayError:
    """The error a non-zero Nexmo status code means."""
    name, retry = NEXMO_STATUS.get(code, ("unknown status", False))
    reason = f"Vonage status {code} ({name})" + (f": {snippet(text)}" if text else "")
    return RetryableGatewayError(reason) if retry else PermanentGatewayError(reason)


def bare_number(number: str) -> str:
    """An E.164 number as Nexmo wants it: digits only, no ``+`` or ``00``."""
    return number[1:] if number.startswith("+") else number


@dataclass(frozen=True, slots=True)
class Token:
    value: str
    #: ``clock()`` value after which it is no longer used.
    renew_at: float


class TokenCache:
    """One OAuth2 client-credentials token, shared by all sends, fetched once when due.

    ``clock`` is injectable for tests; the lock is per event loop (``bind``).
    """

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        *,
        margin_s: float = TOKEN_MARGIN_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.token_url, self.client_id, self._client_secret = token_url, client_id, client_secret
        self.margin_s, self.clock = margin_s, clock
        self._token: Token | None = None
        self._lock: asyncio.Lock | None = None
        self._refused: tuple[float, PermanentGatewayError] | None = None
        #: Token requests made (for tests and metrics).
        self.fetches = 0

    def __repr__(self) -> str:
        return f"TokenCache({self.token_url!r}, client_id={self.client_id!r})"

    def bind(self) -> None:
        """A fresh lock for a new event loop."""
        self._lock = asyncio.Lock()

    def invalidate(self, value: str) -> None:
        """Forget ``value`` if it is still the cached token (others may have renewed it already)."""
        if self._token is not None and self._token.value == value:
            self._token = None

    def _fresh(self) -> str | None:
        token = self._token
        return token.value if token is not None and self.clock() < token.renew_at else None

    async def get(self, session: aiohttp.ClientSession, timeout_s: float) -> str:
        """A valid token: the cached one, or one fetched now (once, however many ask)."""
        if (value := self._fresh()) is not None:
            return value
        assert self._lock is not None, "bind() first"
        async with self._lock:
            if (value := self._fresh()) is not None:
                return value
            if self._refused is not None and self.clock() < self._refused[0]:
                known = self._refused[1]
                raise PermanentGatewayError(known.reason, status=known.status)
            try:
                self._token = await self._fetch(session, timeout_s)
            except PermanentGatewayError as exc:
                self._refused = (self.clock() + TOKEN_REFUSAL_MEMORY_S, exc)
                raise
            self._refused = None
            return self._token.value

    async def _fetch(self, session: aiohttp.ClientSession, timeout_s: float) -> Token:
        self.fetches += 1
        try:
            reply = check_status(
                await request(
                    session,
                    "POST",
                    self.token_url,
                    params={"grant_type": "client_credentials"},
                    data={"client_id": self.client_id, "client_secret": self._client_secret},
                    timeout_s=timeout_s,
                )
            )
            body = reply.json()
        except OutcomeUnknown as exc:  # asking for a token twice is harmless
            raise RetryableGatewayError(f"token: {exc.reason}") from exc
        except PermanentGatewayError as exc:
            raise PermanentGatewayError(f"token: {exc.reason}", status=exc.status) from exc
        except RetryableGatewayError as exc:
            raise RetryableGatewayError(f"token: {exc.reason}", exc.retry_after_s) from exc
        value = body.get("access_token") if isinstance(body, dict) else None
        if not value:
            raise RetryableGatewayError(f"token: no access_token in {snippet(reply.text)}")
        try:
            life_s = float(body.get("expires_in", DEFAULT_TOKEN_LIFE_S))
        except (TypeError, ValueError):
            life_s = DEFAULT_TOKEN_LIFE_S
        margin_s = min(self.margin_s, life_s / 10)
        return Token(str(value), self.clock() + max(life_s - margin_s, 0.0))


@dataclass(slots=True)
class _Progress:
    attempts: int = 0
    #: This message already spent its one token refresh after a 401.
    refreshed: bool = False


class VonageProvider(HttpAdapter):
    """The Vonage/Nexmo SMS API behind KPN's OAuth2 gateway. One per worker process.

    ``base_url`` is the API base (``KPN_BASE_URL``); ``token_url`` the OAuth2 token endpoint.
    ``timeout_s`` bounds one call, ``max_attempts`` the calls per message (a 401 refresh does
    not count), ``deadline_s`` one message's whole send, ``concurrency`` the calls in flight.
    ``callback_url`` is where receipts go unless a message names its own.
    """

    name = "vonage"
    #: The API cannot be asked about a reference: ``lookup`` only says "assume it has it".

    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str,
        *,
        token_url: str = KPN_TOKEN_URL,
        options: HttpOptions | None = None,
        send_path: str = "/send",
        token_margin_s: float = TOKEN_MARGIN_S,
        clock: Callable[[], float] = time.monotonic,
        **overrides: Unpack[HttpOptionsArgs],
    ) -> None:
        self.tokens = TokenCache(
            token_url, client_id, client_secret, margin_s=token_margin_s, clock=clock
        )
        self._setup(
            base_url,
            options,
            overrides,
            headers={"Accept": "application/json"},
            on_new_loop=self.tokens.bind,
        )
        self.send_url = self.base_url + "/" + send_path.lstrip("/")

    def __repr__(self) -> str:
        return f"VonageProvider({self.base_url!r}, client_id={self.tokens.client_id!r})"

    # -- sending -------------------------------------------------------------------------------

    def payload(self, message: OutboundMessage) -> dict[str, Any]:
        """The JSON body for one message."""
        body: dict[str, Any] = {
            "from": bare_number(message.sender),
            "to": bare_number(message.to),
            "text": message.text,
            "type": "unicode" if message.encoding == UCS_2 else "text",
            "client-ref": message.reference,
        }
        callback = (message.callback_url or self.callback_url) if message.request_dr else None
        if callback:
            body["status-report-req"] = 1
            body["callback"] = callback
        return body

    async def _send_one(
        self, session: aiohttp.ClientSession, message: OutboundMessage
    ) -> SendResult:
        """Never raises: every outcome is a ``SendResult``."""
        ref = message.reference
        deadline = Deadline(self.deadline_s)
        progress = _Progress()

        async def attempt() -> SendResult:
            progress.attempts += 1
            try:
                return await self._attempt(session, message, deadline, progress)
            except OutcomeUnknown as exc:  # no look-up, not idempotent: never resend
                return SendResult(
                    ref,
                    M.DEQUEUED,
                    unknown=True,
                    attempts=progress.attempts,
                    error=f"outcome unknown: {exc.reason}",
                )

        try:
            return await retried(attempt, self._policy(deadline))
        except PermanentGatewayError as exc:
            return SendResult(ref, M.ERROR, error=exc.reason, attempts=progress.attempts)
        except GatewayError as exc:
            return SendResult(
                ref,
                M.ERROR,
                attempts=progress.attempts,
                error=f"gave up after {progress.attempts} attempts: {exc}",
                retryable=True,
            )
        except Exception as exc:  # a bug or a surprise after the call may have gone out
            log.exception("%s: unexpected failure sending %s", self.name, ref)
            return SendResult(
                ref,
                M.DEQUEUED,
                unknown=True,
                attempts=progress.attempts,
                error=f"unexpected {type(exc).__name__}: {exc}",
            )

    async def _post(
        self,
        session: aiohttp.ClientSession,
        message: OutboundMessage,
        token: str,
        deadline: Deadline,
    ) -> HttpReply:
        return await request(
            session,
            "POST",
            self.send_url,
            json=self.payload(message),
            headers={"Authorization": f"Bearer {token}"},
            timeout_s=deadline.cap(self.timeout_s),
        )

    async def _attempt(
        self,
        session: aiohttp.ClientSession,
        message: OutboundMessage,
        deadline: Deadline,
        progress: _Progress,
    ) -> SendResult:
        token = await self.tokens.get(session, deadline.cap(self.timeout_s))
        reply = await self._post(session, message, token, deadline)
        if reply.status == 401 and not progress.refreshed:
            # The token died early: renew it once and try again (a 401 sent nothing).
            progress.refreshed = True
            self.tokens.invalidate(token)
            token = await self.tokens.get(session, deadline.cap(self.timeout_s))
            reply = await self._post(session, message, token, deadline)
        body = check_status(reply).json()
        parts = body.get("messages") if isinstance(body, dict) else None
        if not isinstance(parts, list) or not parts or not all(isinstance(p, dict) for p in parts):
            raise OutcomeUnknown(f"HTTP {reply.status} without messages: {snippet(reply.text)}")
        return self._result(message.reference, parts, progress.attempts)

    @staticmethod
    def _result(reference: str, parts: list[dict[str, Any]], attempts: int) -> SendResult:
        """SENT when any part was accepted; else raise what the first refusal means."""
        accepted = [p for p in parts if str(p.get("status")) == "0"]
        refused = [p for p in parts if str(p.get("status")) != "0"]
        if not accepted:
            first = refused[0]
            code = str(first.get("status"))
            if code == BARRED:  # the destination is on the gateway's barred list: BLACKLISTED
                return SendResult(
                    reference,
                    M.BLACKLISTED,
                    error=str(send_error(code, first.get("error-text"))),
                    attempts=attempts,
                )
            raise send_error(code, first.get("error-text"))
        gateway_id = accepted[0].get("message-id")
        note = None
        if refused:
            codes = ", ".join(str(p.get("status")) for p in refused)
            note = f"{len(refused)} of {len(parts)} parts refused (status {codes})"
        return SendResult(
            reference,
            M.SENT,
            gateway_id=str(gateway_id) if gateway_id else None,
            error=note,
            attempts=attempts,
        )

    # -- look-up, receipts, inbound ------------------------------------------------------------

    async def lookup(self, reference: str) -> LookupResult:
        """No look-up by reference: "assume it has it", so the caller never resends (module doc)."""
        return LookupResult(found=True, gateway_id=None, status=None)

    def parse_mo(self, payload: dict[str, Any]) -> Inbound:
        """An inbound (MO) webhook: see ``providers/inbound.py``."""
        return inbound.parse_vonage(payload)

    def parse_receipt(self, payload: dict[str, Any]) -> Receipt:
        """A delivery receipt webhook: ``messageId, status, client-ref, msisdn, err-code, …``.

        Raises ``ValueError`` when the status is missing or not one Vonage documents.
        """
        word = str(payload.get("status") or "").strip().lower()
        if word not in DLR_STATUS:
            raise ValueError(f"unknown Vonage receipt status {payload.get('status')!r}")
        ref = payload.get("client-ref") or payload.get("client_ref")
        gid = payload.get("messageId") or payload.get("message-id")
        at = payload.get("message-timestamp") or payload.get("scts")
        return Receipt(
            reference=str(ref) if ref else None,
            gateway_id=str(gid) if gid else None,
            status=DLR_STATUS[word],
            at=str(at) if at else None,
            raw=dict(payload),
        )

    def parse_inbound(self, payload: dict[str, Any]) -> dict[str, Any]:
        """An inbound SMS webhook, see ``parse_inbound``."""
        return parse_inbound(payload)


#: Seed 002's inbound webhook as a dict (kept here under its old name; the parsing lives with the
#: other inbound formats so that ``inbound`` needs nothing from this module).
parse_inbound = inbound.vonage_fields
