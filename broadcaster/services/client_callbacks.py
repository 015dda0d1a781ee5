"""Client callbacks: each status change of a message sent with ``requestDR`` and ``callbacks``
(seed 001) is POSTed to every callback URL of its broadcast, signed, retried, recorded.

Outbox pattern. :func:`enqueue_status_change` runs *inside* the transaction that changes the
message's status and inserts one ``callback_deliveries`` row per URL, so the change and its
callbacks commit or vanish together: no process death can lose one. :func:`deliver_pending`
(a beat task) claims due rows with a lease, POSTs them concurrently and records each attempt.

Delivery is at least once: a worker killed after the client answered but before the result was
written delivers that row again once its lease ends. Clients deduplicate on the
``X-Broadcaster-Delivery`` header (one id per row) or on (id, status).

Outcomes: 2xx → delivered. 408, 425, 429, 5xx (but 501/505…: broadcaster/net/retry.py), timeouts,
connection errors, DNS failures → retried with exponential backoff and jitter, then failed after ``callback_max_attempts``. Other 3xx/4xx →
failed at once (redirects are never followed: they could point anywhere). A URL that is not
http(s), carries credentials or reaches a non-public address → refused, never POSTed.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from broadcaster.config import Settings
from broadcaster.constants import ERROR_TEXT_CHARS
from broadcaster.domain.wire import iso8601, utc_naive
from broadcaster.errors import InputError
from broadcaster.logsafe import printable
from broadcaster.net import guard as netguard
from broadcaster.net import retry as retry_policy
from broadcaster.store import callbacks_repo
from broadcaster.store.callbacks_repo import Claimed, Outcome
from broadcaster.store.db import Connection, Engine, utcnow
from broadcaster.webhooks.transport import Failure, WebhookTransport

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Broadcaster-Signature"
TIMESTAMP_HEADER = "X-Broadcaster-Timestamp"
#: One id per outbox row: the same value on every retry of one notification.
DELIVERY_HEADER = "X-Broadcaster-Delivery"

#: Backoff before attempt n+1 is about BASE × 2^(n-1), capped, then scaled by a jitter in [½, 1].
BACKOFF_BASE_S = 2.0
BACKOFF_CAP_S = 3600.0
#: A Retry-After longer than this is not honoured in full.
RETRY_AFTER_CAP_S = 3600.0
#: A claim's lease outlives the request timeout by this much; a worker that dies mid-delivery
#: leaves its rows due again when the lease ends.
LEASE_MARGIN_S = 30.0
#: Callback POSTs in flight at once within one ``deliver_pending`` call.
DEFAULT_CONCURRENCY = 50
#: Attempt results are written in batches of this many (and at the end of a call).
FLUSH_EVERY = 50


# --- pure parts -------------------------------------------------------------------------------


def parse_callbacks(value: Any) -> list[str]:
    """The stored ``broadcasts.callbacks`` value as a list of distinct URLs, in order.

    Accepts a JSON list or the seed's comma-separated string; blanks are dropped.
    """
    items: Iterable[Any]
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else value
    out: list[str] = []
    for item in items:
        url = str(item).strip()
        if url and url not in out:
            out.append(url)
    return out


def build_payload(
    *,
    message_id: int,
    broadcast_id: int,
    status: str,
    at: datetime,
    sender: str,
    recipient: str,
    external_id: str | None = None,
    client_id: str | None = None,
) -> dict[str, Any]:
    """The JSON body a client receives (docs/callbacks.md)."""
    payload: dict[str, Any] = {
        "id": str(message_id),
        "status": status,
        "date": iso8601(utc_naive(at), millis=True),
        "from": sender,
        "to": recipient,
        "broadcastId": broadcast_id,
    }
    if external_id:
        payload["externalId"] = external_id
    if client_id:
        payload["clientId"] = client_id
    return payload


def encode_body(payload: dict[str, Any]) -> bytes:
    """Compact, key-sorted JSON: the exact bytes that are signed and sent."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(
    secret: str,
    timestamp: str,
    body: bytes,
    signature: str,
    *,
    now_s: float | None = None,
    tolerance_s: float = 300.0,
) -> bool:
    """What a client does: constant-time compare, and refuse stale timestamps (replays)."""
    try:
        age_s = abs((time.time() if now_s is None else now_s) - int(timestamp))
    except ValueError:
        return False
    return age_s <= tolerance_s and hmac.compare_digest(sign(secret, timestamp, body), signature)


def classify(http_status: int) -> Outcome | None:
    """DELIVERED, FAILED (never retried), or None: retry later."""
    if 200 <= http_status < 300:
        return Outcome.DELIVERED
    if retry_policy.is_retryable(http_status):
        return None
    return Outcome.FAILED


def backoff_s(
    attempt: int, *, rng: random.Random | None = None, retry_after_s: float | None = None
) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based), with jitter.

    The jitter spreads a burst of failures (a client's outage) so they do not all come back at
    once; a Retry-After from the client is a floor.
    """
    if retry_after_s is not None:
        retry_after_s = min(retry_after_s, RETRY_AFTER_CAP_S)
    return retry_policy.backoff_s(
        attempt, base_s=BACKOFF_BASE_S, cap_s=BACKOFF_CAP_S, rng=rng, retry_after_s=retry_after_s
    )


def _retry_after_s(value: str | None) -> float | None:
    return retry_policy.parse_retry_after(value, cap_s=RETRY_AFTER_CAP_S)


# --- enqueue: inside the caller's transaction ------------------------------------------------


def _rows_for(
    urls: Sequence[str],
    message_id: int,
    status: str,
    payload: dict[str, Any],
    now: datetime,
    allow_private: bool,
) -> list[dict[str, Any]]:
    rows = []
    for url in urls:
        row = {
            "message_id": message_id,
            "url": url[: netguard.MAX_URL_CHARS],
            "status": status,
            "attempts": 0,
            "outcome": Outcome.PENDING.value,
            "last_error": None,
            "payload": payload,
            "next_attempt_at": now,
            "created_at": now,
            "updated_at": now,
        }
        try:
            netguard.check_callback_url_static(url, allow_private=allow_private)
        except InputError as exc:
            row.update(
                outcome=Outcome.REFUSED.value,
                last_error=str(exc)[:ERROR_TEXT_CHARS],
                next_attempt_at=None,
            )
        rows.append(row)
    return rows


def _status_text(status: Any) -> str:
    return str(getattr(status, "value", status))


def enqueue_status_change(
    conn: Connection,
    *,
    message_id: int,
    broadcast_id: int,
    status: str,
    now: datetime,
    allow_private: bool = False,
) -> int:
    """Queue one callback per URL for a message's new status; call it in the status change's
    transaction. One query when the broadcast has no callbacks or no requestDR (then returns 0).

    No network I/O here (it would hold the transaction open): URLs are checked statically
    (scheme, credentials, address literals, ``localhost``) and a bad one is stored ``refused``;
    names are resolved and checked right before delivery. ``allow_private`` is
    ``settings.callback_allow_private``. Returns the rows added (a repeat of the same change adds
    none).
    """
    target = callbacks_repo.target_for_message(conn, message_id, broadcast_id)
    if target is None or not target.request_dr:
        return 0
    urls = parse_callbacks(target.callbacks)
    if not urls:
        return 0
    text = _status_text(status)
    payload = build_payload(
        message_id=message_id,
        broadcast_id=broadcast_id,
        status=text,
        at=now,
        sender=target.sender_code,
        recipient=target.recipient or "",
        external_id=target.external_id,
        client_id=target.client_id,
    )
    return callbacks_repo.insert(
        conn, _rows_for(urls, message_id, text, payload, now, allow_private)
    )


def enqueue_status_changes(
    conn: Connection,
    *,
    broadcast_id: int,
    changes: Sequence[tuple[int, str]],
    now: datetime,
    allow_private: bool = False,
) -> int:
    """:func:`enqueue_status_change` for many messages of one broadcast: (message_id, status) pairs.

    For the send path's batched writes: one query for the broadcast; when it wants callbacks, one
    for the recipients and one batched insert. Ids not in the broadcast are skipped.
    """
    if not changes:
        return 0
    target = callbacks_repo.target_for_broadcast(conn, broadcast_id)
    if target is None or not target.request_dr:
        return 0
    urls = parse_callbacks(target.callbacks)
    if not urls:
        return 0
    to = callbacks_repo.identities(conn, broadcast_id, sorted({mid for mid, _ in changes}))
    rows: list[dict[str, Any]] = []
    for message_id, status in changes:
        if message_id not in to:
            continue
        text = _status_text(status)
        recipient, external_id, client_id = to[message_id]
        payload = build_payload(
            message_id=message_id,
            broadcast_id=broadcast_id,
            status=text,
            at=now,
            sender=target.sender_code,
            recipient=recipient,
            external_id=external_id,
            client_id=client_id,
        )
        rows.extend(_rows_for(urls, message_id, text, payload, now, allow_private))
    return callbacks_repo.insert(conn, rows)


# --- delivery ---------------------------------------------------------------------------------


@dataclass
class DeliveryReport:
    """What one ``deliver_pending`` call did."""

    claimed: int = 0
    delivered: int = 0
    retrying: int = 0  # failed this time, due again later
    failed: int = 0
    refused: int = 0
    stale: int = 0  # results dropped: the lease ran out and another worker took the row

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class _Checks:
    """One DNS check per (host, port) per call, shared by concurrent attempts."""

    def __init__(self, allow_private: bool) -> None:
        self._allow_private = allow_private
        self._tasks: dict[str, asyncio.Task[None]] = {}

    async def check(self, url: str) -> None:
        parsed = netguard.check_callback_url_static(url, allow_private=self._allow_private)
        if self._allow_private:
            return
        key = f"{parsed.host}:{parsed.port}"
        if key not in self._tasks:
            self._tasks[key] = asyncio.ensure_future(
                netguard.check_callback_url_async(url, allow_private=self._allow_private)
            )
        await asyncio.shield(self._tasks[key])


@dataclass(frozen=True, slots=True)
class _Attempt:
    outcome: Outcome | None  # None: retry later
    error: str | None = None
    retry_after_s: float | None = None


async def _post(
    transport: WebhookTransport, settings: Settings, row: Claimed, now: datetime
) -> _Attempt:
    body = encode_body(row.payload)
    timestamp = str(int(now.replace(tzinfo=UTC).timestamp()))
    headers = {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: sign(settings.callback_secret, timestamp, body),
        DELIVERY_HEADER: str(row.id),
    }
    sent = await transport.post(row.url, body, headers)
    if sent.status is None:
        return _Attempt(_FAILURE_OUTCOME[sent.failure or Failure.TRANSIENT], sent.detail)
    status = sent.status
    verdict = classify(status)
    if verdict is Outcome.DELIVERED:
        return _Attempt(verdict)
    why = "redirects are not followed" if 300 <= status < 400 else ""
    return _Attempt(verdict, f"HTTP {status} {why}".strip(), _retry_after_s(sent.retry_after))


#: What a POST that got no status means for the row (None: retry later).
_FAILURE_OUTCOME: dict[Failure, Outcome | None] = {
    Failure.REFUSED_ADDRESS: Outcome.REFUSED,
    Failure.INVALID_URL: Outcome.FAILED,
    Failure.TRANSIENT: None,
}


async def _attempt(
    transport: WebhookTransport,
    settings: Settings,
    checks: _Checks,
    row: Claimed,
    clock: Callable[[], datetime],
) -> _Attempt:
    try:
        await checks.check(row.url)  # again right before sending: DNS may have changed since
    except InputError as exc:
        return _Attempt(Outcome.REFUSED, str(exc))
    except OSError as exc:  # name did not resolve: perhaps a passing DNS fault
        return _Attempt(None, f"DNS lookup failed: {exc}")
    return await _post(transport, settings, row, clock())


def _result(
    row: Claimed, attempt: _Attempt, settings: Settings, now: datetime, rng: random.Random | None
) -> dict[str, Any]:
    outcome, next_at, err = attempt.outcome, None, attempt.error
    if outcome is None:
        if row.attempts >= settings.callback_max_attempts:
            outcome, err = Outcome.FAILED, f"{err}; gave up after {row.attempts} attempts"
        else:
            outcome = Outcome.PENDING
            delay = backoff_s(row.attempts, rng=rng, retry_after_s=attempt.retry_after_s)
            next_at = now + timedelta(seconds=delay)
    return {
        "rid": row.id,
        "lease": row.lease_until,
        "outcome": outcome.value,
        "next_at": next_at,
        "err": err,
    }


def _claim(engine: Engine, settings: Settings, now: datetime, limit: int) -> list[Claimed]:
    # Read, then claim in a transaction of its own that starts with the UPDATE: on SQLite a
    # transaction that read first could not become a writer once another worker has written.
    with engine.connect() as conn:
        due = callbacks_repo.due_ids(conn, now, limit)
    if not due:
        return []
    lease_until = now + timedelta(seconds=settings.callback_timeout_s + LEASE_MARGIN_S)
    with engine.begin() as conn:
        return callbacks_repo.claim(conn, [rid for rid, _ in due], now=now, lease_until=lease_until)


def _flush(
    engine: Engine, results: list[dict[str, Any]], report: DeliveryReport, now: datetime
) -> None:
    if not results:
        return
    with engine.begin() as conn:
        written = callbacks_repo.record(conn, results, now)
    report.stale += len(results) - written
    results.clear()


async def deliver_pending(
    engine: Engine,
    settings: Settings,
    transport: WebhookTransport,
    *,
    limit: int = 500,
    now: datetime | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    rng: random.Random | None = None,
) -> DeliveryReport:
    """Claim up to ``limit`` due callbacks, POST them through ``transport`` (at most
    ``concurrency`` at once), record.

    ``now`` (naive UTC) freezes the clock for tests; by default each step reads the time. Safe to
    run in any number of workers at once: a row is delivered by whoever claimed it.
    """
    clock: Callable[[], datetime] = (lambda: now) if now is not None else utcnow
    report = DeliveryReport()
    claimed = _claim(engine, settings, clock(), limit)
    report.claimed = len(claimed)
    if not claimed:
        return report
    checks = _Checks(settings.callback_allow_private)
    gate = asyncio.Semaphore(max(concurrency, 1))

    async def one(row: Claimed) -> tuple[Claimed, _Attempt]:
        async with gate:
            return row, await _attempt(transport, settings, checks, row, clock)

    pending: list[dict[str, Any]] = []
    for done in asyncio.as_completed([one(row) for row in claimed]):
        row, attempt = await done
        result = _result(row, attempt, settings, clock(), rng)
        _count(report, result["outcome"])
        if result["outcome"] != Outcome.DELIVERED.value:
            log.info(
                "callback %s to %s: %s (attempt %d)",
                row.id,
                printable(row.url),
                printable(result["err"]),
                row.attempts,
            )
        pending.append(result)
        if len(pending) >= FLUSH_EVERY:
            _flush(engine, pending, report, clock())
    _flush(engine, pending, report, clock())
    return report


def _count(report: DeliveryReport, outcome: str) -> None:
    field = {
        Outcome.DELIVERED.value: "delivered",
        Outcome.PENDING.value: "retrying",
        Outcome.FAILED.value: "failed",
        Outcome.REFUSED.value: "refused",
    }[outcome]
    setattr(report, field, getattr(report, field) + 1)


def deliveries_of(engine: Engine, message_id: int) -> list[dict[str, Any]]:
    """A message's callback rows (url, status, outcome, attempts, last_error…), oldest first."""
    with engine.connect() as conn:
        return callbacks_repo.for_message(conn, message_id)


#: Outbox rows of an inbound message: its id negated in ``message_id`` (message ids are
#: positive) and this status, so the one outbox (one row per key, status, URL; leased, retried,
#: signed) forwards MOs too without a table of its own.
INBOUND_EVENT = "INBOUND"


def enqueue_inbound(
    conn: Connection,
    inbound_id: int,
    urls: Sequence[str],
    payload: dict[str, Any],
    now: datetime,
    allow_private: bool,
) -> int:
    """Queue an inbound message for the workspace's callback URLs, in the caller's transaction."""
    rows = _rows_for(urls, -inbound_id, INBOUND_EVENT, payload, now, allow_private)
    return callbacks_repo.insert(conn, rows)
