"""HTTP plumbing every gateway adapter shares: what a failure means, Retry-After, retry policy.

What a failed call means for a resend decides everything here::

    outcome                           examples                                     raised as
    never reached the gateway         connection refused, DNS, connect timeout     RetryableGatewayError
    refused, worth another try        429 (Retry-After), 408, 425, 5xx but 501/505 RetryableGatewayError
    refused for good                  400, 401, 403, 404, 413, 422, other 4xx      PermanentGatewayError
    may have reached the gateway      timeout after sending, reset or disconnect   OutcomeUnknown
                                      mid-response, payload error, unreadable 2xx

Only ``OutcomeUnknown`` obliges the adapter to ask the gateway before any resend: gateways are
not idempotent. ``request`` performs one call and raises exactly these; ``check_status`` turns
a non-2xx reply into one; ``retrying`` is the tenacity policy (the statuses, Retry-After and
jittered backoff of broadcaster/net/retry.py, bounded by attempts and by a ``Deadline``).
"""

from __future__ import annotations

import asyncio
import functools
import json
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, TypedDict, TypeVar

import aiohttp
from multidict import CIMultiDictProxy
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt
from tenacity.stop import stop_base
from tenacity.wait import wait_base
from yarl import URL

from broadcaster.errors import (
    GatewayError,
    OutcomeUnknown,
    PermanentGatewayError,
    RetryableGatewayError,
)
from broadcaster.net import retry as retry_policy
from broadcaster.providers.base import OutboundMessage, SendResult

#: How much of a response body an error message quotes.
SNIPPET_CHARS = 200
#: Connecting is safe to retry, so it gets its own, shorter timeout.
CONNECT_TIMEOUT_S = 5.0
#: Retry-After values above this are treated as this (a gateway asking for an hour is broken).
MAX_RETRY_AFTER_S = 300.0
#: Backoff defaults: first wait up to ``BACKOFF_BASE_S``, doubling, never above ``BACKOFF_CAP_S``.
BACKOFF_BASE_S = 0.2
BACKOFF_CAP_S = 10.0

T = TypeVar("T")

#: One jitter source for the process (seeding a Random per message costs more than the send).
_JITTER = random.Random()


def snippet(text: str, limit_chars: int = SNIPPET_CHARS) -> str:
    """The start of a body, on one line, for error messages."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit_chars else flat[: limit_chars - 1] + "…"


def parse_retry_after(value: str | None, *, now_epoch_s: float | None = None) -> float | None:
    """Seconds to wait from a gateway's ``Retry-After`` (seconds or an HTTP date), at most
    ``MAX_RETRY_AFTER_S``: the shared policy of broadcaster/net/retry.py with the gateway cap."""
    return retry_policy.parse_retry_after(value, cap_s=MAX_RETRY_AFTER_S, now_epoch_s=now_epoch_s)


def classify_status(
    status: int, body: str = "", headers: Mapping[str, str] | None = None
) -> GatewayError | None:
    """The error a reply's status means, or None for 1xx-3xx (success as far as transport goes)."""
    if status < 400:
        return None
    reason = f"HTTP {status}: {snippet(body)}" if body else f"HTTP {status}"
    if retry_policy.is_retryable(status):
        retry_after = parse_retry_after((headers or {}).get("Retry-After"))
        return RetryableGatewayError(reason, retry_after_s=retry_after)
    return PermanentGatewayError(reason, status=status)


def classify_exception(exc: BaseException) -> GatewayError:
    """The error a transport exception means. Order matters: subclasses first."""
    if isinstance(exc, GatewayError):
        return exc
    name = type(exc).__name__
    if isinstance(exc, aiohttp.ClientConnectorCertificateError | aiohttp.ClientSSLError):
        return PermanentGatewayError(f"TLS: {exc}")
    if isinstance(exc, aiohttp.ConnectionTimeoutError | aiohttp.ClientConnectorError):
        # The connection never opened: nothing was sent, a resend is safe.
        return RetryableGatewayError(f"not connected ({name}): {exc}")
    if isinstance(exc, aiohttp.InvalidURL):
        return PermanentGatewayError(f"invalid URL: {exc}")
    if isinstance(exc, asyncio.TimeoutError):
        return OutcomeUnknown(f"timeout after sending ({name})")
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        return OutcomeUnknown(f"{name}: {exc}")
    if isinstance(exc, aiohttp.ClientConnectionError | aiohttp.ClientResponseError | OSError):
        return OutcomeUnknown(f"{name}: {exc}")
    return OutcomeUnknown(f"unexpected {name}: {exc}")


@dataclass(frozen=True, slots=True)
class HttpReply:
    """A complete response: status, headers and the whole body as text."""

    status: int
    headers: Mapping[str, str]
    text: str

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json(self) -> Any:
        """The body as JSON; a 2xx we cannot read is an unknown outcome (it may have worked)."""
        try:
            return json.loads(self.text)
        except ValueError as exc:
            raise OutcomeUnknown(
                f"HTTP {self.status} with unreadable body: {snippet(self.text)}"
            ) from exc


def check_status(reply: HttpReply) -> HttpReply:
    """``reply`` when 2xx; else raise what its status means."""
    error = classify_status(reply.status, reply.text, reply.headers)
    if error is not None:
        raise error
    if not reply.ok:  # 1xx/3xx: we follow no redirects for POSTs, so this is a misconfiguration
        raise PermanentGatewayError(f"HTTP {reply.status}: unexpected", status=reply.status)
    return reply


async def request(
    session: aiohttp.ClientSession,
    method: str,
    url: str | URL,
    *,
    timeout_s: float,
    **kwargs: Any,
) -> HttpReply:
    """One HTTP call, body read in full; transport failures raised as classified ``GatewayError``.

    Does not judge the status: pass the reply to ``check_status`` for that. ``timeout_s`` bounds
    the whole call; connecting alone gets at most ``CONNECT_TIMEOUT_S`` so that a dead host is
    told apart (safe to retry) from a gateway that went quiet after we sent (unknown).
    """
    try:
        async with session.request(method, url, timeout=_timeout(timeout_s), **kwargs) as resp:
            text = await resp.text(errors="replace")
            headers: CIMultiDictProxy[str] = resp.headers
            return HttpReply(resp.status, headers, text)
    except Exception as exc:  # every transport failure becomes a GatewayError
        raise classify_exception(exc) from exc


@functools.lru_cache(maxsize=64)
def _timeout(timeout_s: float) -> aiohttp.ClientTimeout:
    """The timeouts of one call (nearly every call asks for the adapter's own ``timeout_s``)."""
    return aiohttp.ClientTimeout(
        total=max(timeout_s, 0.001), sock_connect=min(timeout_s, CONNECT_TIMEOUT_S)
    )


class Deadline:
    """A point in time an operation must finish by; ``clock`` is injectable for tests."""

    __slots__ = ("_clock", "_end")

    def __init__(self, budget_s: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._end = clock() + budget_s

    def remaining_s(self) -> float:
        """Seconds left, never negative."""
        return max(self._end - self._clock(), 0.0)

    @property
    def expired(self) -> bool:
        return self._clock() >= self._end

    def cap(self, timeout_s: float) -> float:
        """``timeout_s``, shortened so a call ends by the deadline."""
        return min(timeout_s, self.remaining_s())


class wait_backoff_or_retry_after(wait_base):  # noqa: N801 (tenacity's naming)
    """The shared backoff (broadcaster/net/retry.py): jittered exponential, ``retry_after_s`` on
    the error a floor plus ≤10 % jitter, so a crowd refused together does not return together.
    After an ``OutcomeUnknown`` it waits at least ``settle_s``: a gateway still working on the
    request we gave up on should have stored it before we ask whether it did.
    """

    def __init__(
        self,
        base_s: float = BACKOFF_BASE_S,
        cap_s: float = BACKOFF_CAP_S,
        rng: random.Random | None = None,
        settle_s: float = 0.0,
    ) -> None:
        self.base_s, self.cap_s, self.settle_s = base_s, cap_s, settle_s
        self._rng = rng or _JITTER

    def __call__(self, retry_state: RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        retry_after = getattr(exc, "retry_after_s", None)
        backoff_s = retry_policy.backoff_s(
            retry_state.attempt_number,
            base_s=self.base_s,
            cap_s=self.cap_s,
            rng=self._rng,
            retry_after_s=retry_after,
        )
        return max(backoff_s, self.settle_s) if isinstance(exc, OutcomeUnknown) else backoff_s


class stop_before_deadline(stop_base):  # noqa: N801
    """Stop when the coming wait would end at or past the deadline."""

    def __init__(self, deadline: Deadline) -> None:
        self.deadline = deadline

    def __call__(self, retry_state: RetryCallState) -> bool:
        return self.deadline.remaining_s() <= (retry_state.upcoming_sleep or 0.0)


def retrying(
    *,
    max_attempts: int,
    deadline: Deadline,
    base_s: float = BACKOFF_BASE_S,
    cap_s: float = BACKOFF_CAP_S,
    retry_on: tuple[type[BaseException], ...] = (RetryableGatewayError,),
    settle_s: float = 0.0,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> AsyncRetrying:
    """The retry policy: ``async for attempt in retrying(...): with attempt: ...``.

    Retries ``retry_on`` (by default every retryable error, ``OutcomeUnknown`` included: the
    caller decides what a retry does after an unknown outcome), at most ``max_attempts`` calls,
    and never sleeps past ``deadline``; after an unknown outcome it waits at least ``settle_s``.
    The last error is re-raised when it gives up.
    """
    return AsyncRetrying(
        stop=stop_after_attempt(max_attempts) | stop_before_deadline(deadline),
        wait=wait_backoff_or_retry_after(base_s, cap_s, settle_s=settle_s),
        retry=retry_if_exception_type(retry_on),
        reraise=True,
        sleep=sleep,
    )


async def retried(call: Callable[[], Awaitable[T]], policy: Callable[[], AsyncRetrying]) -> T:
    """``call()`` under a ``retrying`` policy, tenacity entered only once a first call failed.

    Nearly every send succeeds at once, and iterating tenacity per message cost a tenth of a
    worker's CPU at full speed. A first failure is replayed as the policy's attempt 1, so which
    errors are retried, the waits, the stops and the error re-raised are exactly the policy's.
    """
    try:
        return await call()
    except Exception as exc:
        first: BaseException | None = exc
    async for attempt in policy():
        with attempt:
            if first is not None:
                replay, first = first, None
                raise replay
            return await call()
    raise AssertionError("unreachable")  # pragma: no cover


class LoopSession:
    """One pooled ``ClientSession`` and a concurrency semaphore per event loop.

    A session is bound to the loop that made it; a worker keeps one loop for its life, but tests
    and the API may call an adapter from another, so a new loop gets a new session.
    ``on_new_loop`` runs when that happens (e.g. to re-bind a token lock).
    """

    def __init__(
        self,
        concurrency: int,
        *,
        headers: dict[str, str] | None = None,
        on_new_loop: Callable[[], None] | None = None,
    ) -> None:
        self.concurrency = concurrency
        self._headers = headers
        self._on_new_loop = on_new_loop
        self.session: aiohttp.ClientSession | None = None
        self._semaphore: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def get(self) -> tuple[aiohttp.ClientSession, asyncio.Semaphore]:
        """The session and semaphore of the running loop, made on first use."""
        loop = asyncio.get_running_loop()
        if self.session is None or self.session.closed or self._loop is not loop:
            connector = aiohttp.TCPConnector(
                limit=self.concurrency, limit_per_host=self.concurrency
            )
            # No cookie jar: a gateway API is stateless per request, and a cookie one answer
            # sets must not ride along on the next message (nor cost a jar look-up per send).
            self.session = aiohttp.ClientSession(
                connector=connector, headers=self._headers, cookie_jar=aiohttp.DummyCookieJar()
            )
            self._semaphore = asyncio.Semaphore(self.concurrency)
            self._loop = loop
            if self._on_new_loop is not None:
                self._on_new_loop()
        assert self._semaphore is not None
        return self.session, self._semaphore

    async def close(self) -> None:
        """Release the session (only from the loop that made it)."""
        session, self.session = self.session, None
        if session is not None and not session.closed and self._loop is asyncio.get_running_loop():
            await session.close()


@dataclass(frozen=True, slots=True)
class HttpOptions:
    """What every HTTP gateway adapter is built with, whatever its gateway: the registry makes
    one from the settings (``providers/registry.py``), tests override single fields.

    ``timeout_s`` bounds one HTTP call, ``max_attempts`` the calls per message, ``deadline_s``
    one message's whole send (keep it well under the claim lease), ``concurrency`` the requests
    in flight and the pool size (None: the adapter's own default), ``callback_url`` where
    receipts go unless a message names its own, ``name`` what the adapter is called (None: its
    type, "kannel"…; an account's name when several accounts of one type need telling apart).
    The backoff knobs exist for tests.
    """

    timeout_s: float = 10.0
    max_attempts: int = 5
    concurrency: int | None = None
    deadline_s: float = 60.0
    callback_url: str | None = None
    backoff_base_s: float = BACKOFF_BASE_S
    backoff_cap_s: float = BACKOFF_CAP_S
    name: str | None = None


class HttpOptionsArgs(TypedDict, total=False):
    """:class:`HttpOptions`'s fields as keyword arguments of an adapter's constructor."""

    timeout_s: float
    max_attempts: int
    concurrency: int | None
    deadline_s: float
    callback_url: str | None
    backoff_base_s: float
    backoff_cap_s: float
    name: str | None


class HttpAdapter:
    """What every HTTP gateway adapter keeps: where it sends, how hard it tries, its session.

    Subclasses take ``options`` (an :class:`HttpOptions`) and any of its fields as keyword
    arguments that override it, and call ``_setup`` with both.
    """

    name: str
    base_url: str
    callback_url: str | None
    #: Requests in flight when ``HttpOptions.concurrency`` is None (gateways differ).
    DEFAULT_CONCURRENCY = 20

    def _setup(
        self,
        base_url: str,
        options: HttpOptions | None,
        overrides: HttpOptionsArgs,
        *,
        headers: dict[str, str] | None = None,
        on_new_loop: Callable[[], None] | None = None,
    ) -> None:
        o = replace(options or HttpOptions(), **overrides)
        concurrency = self.DEFAULT_CONCURRENCY if o.concurrency is None else o.concurrency
        if o.max_attempts < 1 or concurrency < 1:
            raise ValueError("max_attempts and concurrency must be at least 1")
        self.name = o.name or type(self).name
        self.base_url = base_url.rstrip("/")
        self.timeout_s, self.max_attempts = o.timeout_s, o.max_attempts
        self.concurrency, self.deadline_s = concurrency, o.deadline_s
        self.callback_url = o.callback_url
        self.backoff_base_s, self.backoff_cap_s = o.backoff_base_s, o.backoff_cap_s
        self._http = LoopSession(concurrency, headers=headers, on_new_loop=on_new_loop)

    def _client(self) -> tuple[aiohttp.ClientSession, asyncio.Semaphore]:
        """The session and semaphore of the running loop."""
        return self._http.get()

    async def send_batch(self, messages: list[OutboundMessage]) -> list[SendResult]:
        """The default: each message on its own request, all concurrently (at most
        ``concurrency`` at once); one result per message, in order. An adapter whose gateway
        takes many messages per request (OpenText's jobs) overrides it."""
        session, semaphore = self._client()
        if len(messages) == 1:  # the send path's case: no task, no extra coroutine layer
            async with semaphore:
                return [await self._send_one(session, messages[0])]

        async def one(message: OutboundMessage) -> SendResult:
            async with semaphore:
                return await self._send_one(session, message)

        return list(await asyncio.gather(*(one(m) for m in messages)))

    async def _send_one(
        self, session: aiohttp.ClientSession, message: OutboundMessage
    ) -> SendResult:
        """One message, one request (and its retries). Never raises: every outcome, a bug's
        included, is a ``SendResult``. Adapters that use the default ``send_batch`` define it."""
        raise NotImplementedError(f"{type(self).__name__} sends no single messages")

    def _policy(self, deadline: Deadline, *, settle_s: float = 0.0) -> Callable[[], AsyncRetrying]:
        """This adapter's retry policy for one operation, for ``retried``."""
        return lambda: retrying(
            max_attempts=self.max_attempts,
            deadline=deadline,
            settle_s=settle_s,
            base_s=self.backoff_base_s,
            cap_s=self.backoff_cap_s,
        )

    async def close(self) -> None:
        """Release the session (only from the loop that made it)."""
        await self._http.close()
