"""Send one chunk of a broadcast: tokens first, then a leased claim, then the gateway.

Order matters. Tokens are taken before claiming so a throttled chunk never holds claimed
messages while it waits; the claim is one compare-and-set that also checks the broadcast is
RUNNING, so a suspend stops the next claim; results are written with compare-and-set so a
receipt that beat the send response is kept.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ParamSpec, TypeVar

from broadcaster import metrics
from broadcaster.config import Settings
from broadcaster.constants import BUCKET_ACCOUNT_PREFIX, BUCKET_CODE_PREFIX, MAX_MPS, MIN_MPS
from broadcaster.domain.states import (
    REFUSED_STATES,
    BroadcastAction,
    BroadcastStatus,
    MessageStatus,
)
from broadcaster.providers.base import OutboundMessage, Provider, SendResult
from broadcaster.providers.registry import receipt_callback_url
from broadcaster.services.client_callbacks import enqueue_status_changes
from broadcaster.services.codes import (
    SenderCode,
    account_ceilings,
    may_use,
    owner_key,
    to_sender_code,
)
from broadcaster.services.dispatch import TaskQueue, dispatch
from broadcaster.services.inflight import InFlight
from broadcaster.services.retries import schedule_retries
from broadcaster.services.send_windows import gate, retry_deadline
from broadcaster.services.transitions import try_transition
from broadcaster.store import broadcasts_repo, codes_repo, messages_repo, optouts_repo
from broadcaster.store.db import Engine, utcnow
from broadcaster.throttle import Limit, TokenBucket

P = ParamSpec("P")
T = TypeVar("T")

#: A claim that took longer than this (waiting for the write lock) renews its leases at once.
LEASE_SLACK_S = 0.2


@dataclass
class SendContext:
    """What a worker process holds across chunk tasks: one of each, built once."""

    settings: Settings
    engine: Engine
    bucket: TokenBucket
    queue: TaskQueue
    provider_for: Callable[[str], Provider]
    #: The clock send windows and validity are judged by (naive UTC); tests pass their own.
    clock: Callable[[], datetime] = utcnow


@dataclass
class ChunkOutcome:
    """What one chunk task did, for logs and tests."""

    sent: int = 0
    failed: int = 0
    unknown: int = 0
    handed_back: int = 0
    #: Refused by a passing fault and queued again with a retry time.
    retrying: int = 0
    stopped: bool = False
    waited_s: float = 0.0
    #: The last results recorded were all failures (the broadcast's streak may be non-zero).
    failure_streak: bool = False


@dataclass(frozen=True, slots=True)
class _Route:
    broadcast: dict[str, Any]
    code: SenderCode
    limits: list[Limit]
    callback_url: str | None
    #: The broadcast's workspace name: every metric carries it, so no tenant hides in another's.
    workspace: str = ""

    @property
    def wants_callbacks(self) -> bool:
        """Client callbacks are queued only for broadcasts that asked for them (seed: requestDR)."""
        return bool(self.broadcast["request_dr"] and self.broadcast["callbacks"])


def bounded_rate(mps: float) -> float:
    """``mps`` within MIN_MPS..MAX_MPS. Rates are checked where they enter, but a code stored
    before they were (``1e-300``) would make waits of 1e300 s that overflow every hand-back."""
    return min(MAX_MPS, max(MIN_MPS, mps))


def _route(ctx: SendContext, broadcast_id: int) -> _Route | None:
    with ctx.engine.connect() as conn:
        b = broadcasts_repo.get_broadcast(conn, broadcast_id)
        if b is None:
            return None
        row = codes_repo.find_code(conn, b["workspace_id"], b["sender_code"])
        if row is None or not may_use(conn, b["workspace_id"], b["sender_code"]):
            # A row nobody authorised (written before codes had owners, or by hand) never
            # reaches the owner's gateway route or bucket.
            return None
        workspace = codes_repo.workspace_name(conn, b["workspace_id"]) or ""
    code = to_sender_code(row, ctx.settings)
    key = code.route_key
    limits = [Limit(code_bucket_key(code), bounded_rate(code.mps))]
    ceiling = account_ceilings(ctx.settings).get(code.account or "")
    if ceiling:
        limits.append(Limit(f"{BUCKET_ACCOUNT_PREFIX}{code.account}", bounded_rate(ceiling)))
    return _Route(b, code, limits, receipt_callback_url(ctx.settings, key), workspace)


def code_bucket_key(code: SenderCode) -> str:
    """The Redis key of the bucket that enforces ``code``'s rate: one per code, globally.

    A code string has one owner (``services/codes.py``) and a shared code carries its owner's
    route, so every workspace allowed to send from it meets this one bucket, and no other
    workspace's code ever does.
    """
    return f"{BUCKET_CODE_PREFIX}{code.route_key}:{owner_key(code.code)}"


def _affordable(batch: list[tuple[int, int]], tokens: int) -> list[tuple[int, int]]:
    """The longest prefix of (id, segments) whose segments fit in ``tokens``."""
    out, used = [], 0
    for mid, seg in batch:
        if used + seg > tokens:
            break
        out.append((mid, seg))
        used += seg
    return out


async def send_chunk(ctx: SendContext, broadcast_id: int, ids: list[int]) -> ChunkOutcome:
    """Send what is still QUEUE among ``ids``; hand the rest back rather than wait long.

    Messages are claimed in small groups as slots free up and each is sent on its own, so one
    slow gateway answer holds up one message, not a group. Claimed-but-unanswered messages never
    exceed ``send_concurrency``: that bounds what a suspend can still let through.
    """
    outcome = ChunkOutcome()
    route = await off_loop(_route, ctx, broadcast_id)
    if route is None:
        outcome.stopped = True
        return outcome
    outcome.failure_streak = route.broadcast["consecutive_failures"] > 0
    pending = await off_loop(_queued, ctx, ids, gate(route.broadcast, ctx.clock()).closed_zones)
    s = ctx.settings
    provider = ctx.provider_for(route.code.route_key)
    claims: dict[int, int] = {}  # message id -> its attempts at this chunk's claim
    flow = InFlight(
        s.send_concurrency, lambda results: _record(ctx, route, results, outcome, claims)
    )
    try:
        while pending:
            room = await flow.room(at_least=min(s.send_group_size, len(pending)))
            group = pending[: min(room, max(s.send_group_size, s.send_claim_max))]
            grant = await ctx.bucket.take(
                route.limits, sum(seg for _, seg in group), min_tokens=group[0][1]
            )
            if grant.granted == 0:
                if outcome.waited_s + grant.wait_s > s.throttle_max_wait_s:
                    await off_loop(
                        _hand_back, ctx, broadcast_id, [mid for mid, _ in pending], grant.wait_s
                    )
                    metrics.record_handback(route.code.code, route.workspace)
                    outcome.handed_back = len(pending)
                    return outcome
                await asyncio.sleep(grant.wait_s)
                outcome.waited_s += grant.wait_s
                metrics.record_throttle_wait(route.code.code, grant.wait_s, route.workspace)
                continue
            take = _affordable(group, grant.granted)
            pending = pending[len(take) :]
            window = gate(route.broadcast, ctx.clock())
            if window.shut:  # every window closed meanwhile, or the validity ran out
                outcome.stopped = True
                return outcome
            claimed = await off_loop(
                _claim,
                ctx,
                broadcast_id,
                [mid for mid, _ in take],
                route.code.route_key,
                window.closed_zones,
            )
            if not claimed and not await off_loop(_still_running, ctx, broadcast_id):
                outcome.stopped = True
                return outcome
            for message in claimed:
                claims[message.id] = message.attempts
                flow.launch(_timed(provider, route.code.route_key, _outbound(route, message)))
    finally:
        await flow.close()
    await off_loop(dispatch, ctx.engine, s, ctx.queue, broadcast_id, max_chunks=1, now=ctx.clock())
    return outcome


def off_loop(call: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> Awaitable[T]:
    """``call`` in a thread: the send path's event loop never waits on the database. A claim
    or a write waiting for SQLite's lock (up to its 60 s busy timeout) would otherwise freeze
    every request in flight, and their timeouts with them."""
    return asyncio.to_thread(call, *args, **kwargs)


def _queued(ctx: SendContext, ids: list[int], closed_zones: list[str]) -> list[tuple[int, int]]:
    """(id, segments) of the chunk's messages still QUEUE, outside ``closed_zones``."""
    with ctx.engine.connect() as conn:
        return messages_repo.queued_segments(conn, ids, closed_zones)


def _hand_back(ctx: SendContext, broadcast_id: int, ids: list[int], wait_s: float) -> None:
    """Free the worker: the remainder goes back to the queue, due when its tokens will be."""
    countdown = max(wait_s, 0.05)
    with ctx.engine.begin() as conn:
        messages_repo.restamp(conn, ids, utcnow() + timedelta(seconds=countdown))
    ctx.queue.send_chunk(broadcast_id, ids, countdown)


def _claim(
    ctx: SendContext,
    broadcast_id: int,
    ids: list[int],
    route_key: str | None = None,
    closed_zones: list[str] | None = None,
) -> list[messages_repo.Claimed]:
    """Claim with a lease that counts from when the claim took effect.

    The UPDATE may wait for SQLite's write lock (seconds, with several writers). A lease counted
    from before the wait could run out while these messages are still being sent (the send
    deadline is 80 % of the lease, from the send's start); the poller would then find a message
    not yet at the gateway, release it, and a second worker would send it too (the race that
    explains two duplicates one crash-test run saw). Renewing in the same transaction cannot
    wait: it holds the lock.
    """
    lease_s = ctx.settings.lease_s
    with ctx.engine.begin() as conn:
        asked = utcnow()
        claimed = messages_repo.claim(
            conn,
            broadcast_id,
            ids,
            now=asked,
            lease_s=lease_s,
            route=route_key,
            closed_zones=closed_zones or (),
        )
        if len(claimed) < len(ids):  # some refused: those of suppressed numbers end BLACKLISTED
            got = {c.id for c in claimed}
            optouts_repo.blacklist_queued(
                conn, broadcast_id, asked, [i for i in ids if i not in got]
            )
        took = utcnow()
        if claimed and (took - asked).total_seconds() > LEASE_SLACK_S:
            messages_repo.extend_lease(
                conn, [c.id for c in claimed], took + timedelta(seconds=lease_s)
            )
    return claimed


async def _timed(provider: Provider, key: str, message: OutboundMessage) -> list[SendResult]:
    """One message through the adapter, its latency observed (retries and look-ups included)."""
    started = time.monotonic()
    try:
        return await provider.send_batch([message])
    finally:
        metrics.observe_send_latency(key, time.monotonic() - started)


def _outbound(route: _Route, c: messages_repo.Claimed) -> OutboundMessage:
    return OutboundMessage(
        reference=str(c.id),
        sender=route.code.code,
        to=c.recipient,
        text=c.text,
        encoding=c.encoding,
        segments=c.segments,
        callback_url=route.callback_url,
        request_dr=bool(route.broadcast["request_dr"]),
    )


def _still_running(ctx: SendContext, broadcast_id: int) -> bool:
    with ctx.engine.connect() as conn:
        b = broadcasts_repo.get_broadcast(conn, broadcast_id)
    return bool(b and b["status"] == BroadcastStatus.RUNNING.value)


def _record(
    ctx: SendContext,
    route: _Route,
    results: list[SendResult],
    outcome: ChunkOutcome,
    claims: dict[int, int],
) -> None:
    broadcast_id = route.broadcast["id"]
    sent = [
        (int(r.reference), r.gateway_id)
        for r in results
        if r.status == MessageStatus.SENT and not r.unknown
    ]
    failed = [
        (int(r.reference), r.error or "gateway error")
        for r in results
        if r.status == MessageStatus.ERROR and not r.unknown and not r.retryable
    ]
    # A passing fault outlasted the in-request attempts: queued again, not finalized.
    passing = [
        (int(r.reference), r.error or "gateway error", claims.get(int(r.reference), -1))
        for r in results
        if r.status == MessageStatus.ERROR and r.retryable and not r.unknown
    ]
    # the gateway's refusals keep their seed name (BLACKLISTED, SEGMENTS_EXCEEDED…), not ERROR
    refused = [
        (int(r.reference), r.status.value, r.error or r.status.value)
        for r in results
        if r.status in REFUSED_STATES and not r.unknown
    ]
    outcome.unknown += sum(r.unknown for r in results)
    now = utcnow()
    requeued = 0
    with ctx.engine.begin() as conn:
        if passing:
            exhausted = schedule_retries(
                conn, ctx.settings, passing, now, deadline=retry_deadline(route.broadcast)
            )
            failed += exhausted
            requeued = len(passing) - len(exhausted)
            outcome.retrying += requeued
        messages_repo.record_sent(conn, sent, now)
        messages_repo.record_failed(conn, failed, now)
        messages_repo.record_refused(conn, refused, now)
        blacklisted = [m for m, st, _ in refused if st == MessageStatus.BLACKLISTED.value]
        optouts_repo.add_from_messages(
            conn, blacklisted, f"refused via {route.code.route_key}", now
        )
        if route.wants_callbacks:
            changes = [(m, MessageStatus.SENT.value) for m, _ in sent] + [
                (m, MessageStatus.ERROR.value) for m, _ in failed
            ]
            changes += [(m, st) for m, st, _ in refused]
            enqueue_status_changes(
                conn,
                broadcast_id=broadcast_id,
                changes=changes,
                now=now,
                allow_private=ctx.settings.callback_allow_private,
            )
        # requeued ones count too: a dead gateway still suspends the broadcast
        failures = len(failed) + len(refused) + requeued
        if failures or outcome.failure_streak:
            # Only touch the counter when there is news: a healthy run writes nothing here.
            _track_failures(conn, ctx.settings, broadcast_id, failures=failures, any_ok=bool(sent))
            outcome.failure_streak = bool(failures) and not sent
    outcome.sent += len(sent)
    outcome.failed += len(failed) + len(refused)
    metrics.record_sent(route.code.code, route.code.route_key, len(sent), route.workspace)
    metrics.record_failed(
        route.code.code, route.code.route_key, len(failed) + len(refused), route.workspace
    )


def _track_failures(
    conn: Any, settings: Settings, broadcast_id: int, *, failures: int, any_ok: bool
) -> None:
    """Too many consecutive gateway failures suspend the broadcast instead of burning the list."""
    if not failures and not any_ok:
        return
    if any_ok:
        broadcasts_repo.reset_consecutive_failures(conn, broadcast_id)
        return
    value = broadcasts_repo.add_consecutive_failures(conn, broadcast_id, failures)
    if value >= settings.auto_suspend_failures:
        try_transition(
            conn,
            broadcast_id,
            BroadcastAction.SUSPEND,
            among=frozenset({BroadcastStatus.RUNNING}),
            status_reason=f"suspended automatically after {value} consecutive gateway failures",
        )
