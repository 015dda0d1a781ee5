"""The beat tick: start due broadcasts, recover lost work, keep the numbers true.

Everything here is idempotent and safe to run from several beat processes at once: each step is
a compare-and-set or a recount.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from broadcaster import metrics
from broadcaster.config import Settings
from broadcaster.domain.states import BroadcastStatus, MessageStatus
from broadcaster.providers.base import Provider
from broadcaster.services import control, importer
from broadcaster.services.client_callbacks import enqueue_status_changes
from broadcaster.services.counts import derive_counters
from broadcaster.services.dispatch import TaskQueue, top_up
from broadcaster.services.receipts import apply_receipt
from broadcaster.store import broadcasts_repo, codes_repo, messages_repo
from broadcaster.store.db import utcnow
from broadcaster.store.models import broadcasts, messages

log = logging.getLogger(__name__)

#: Gateway look-ups in flight at once while recovering expired leases.
LOOKUP_CONCURRENCY = 50
#: Ended broadcasts keep being recounted this long, for late receipts.
RECOUNT_ENDED_S = 600


@dataclass
class TickReport:
    started: list[int] = field(default_factory=list)
    completed: list[int] = field(default_factory=list)
    recovered_sent: int = 0
    released: int = 0
    expired: int = 0
    chunks_topped_up: int = 0
    polled_receipts: int = 0
    #: Staged imports removed because their process died (services/importer.py).
    swept_imports: list[int] = field(default_factory=list)


def start_due(
    engine: Engine, settings: Settings, queue: TaskQueue, now: datetime, report: TickReport
) -> None:
    with engine.connect() as conn:
        due = broadcasts_repo.due_broadcasts(conn, now)
    for broadcast_id in due:
        if control.start(engine, settings, queue, broadcast_id):
            report.started.append(broadcast_id)


async def recover_leases(
    engine: Engine,
    settings: Settings,
    provider_for: Callable[[str], Provider],
    now: datetime,
    report: TickReport,
) -> None:
    """A lease ran out with no answer: ask the gateway, never resend blindly."""
    with engine.connect() as conn:
        expired = messages_repo.expired_leases(conn, now)
        codes = {}
        for row in expired:
            key = (row["workspace_id"], row["sender_code"])
            if key not in codes:
                found = codes_repo.find_code(conn, *key) or {}
                codes[key] = found.get("account") or found.get("provider") or settings.provider
    sent: list[tuple[int, str | None]] = []
    absent: list[int] = []
    gate = asyncio.Semaphore(LOOKUP_CONCURRENCY)

    async def settle(row: dict[str, Any]) -> None:
        provider = provider_for(codes[(row["workspace_id"], row["sender_code"])])
        try:
            async with gate:
                found = await provider.lookup(str(row["id"]))
        except Exception as exc:  # the gateway is down too: try again next tick
            log.warning("lookup of message %s failed: %s", row["id"], exc)
            return
        if found.found:
            sent.append((row["id"], found.gateway_id))
        else:
            absent.append(row["id"])

    # Concurrent, so a slow gateway costs one deadline per tick, not one per message.
    await asyncio.gather(*(settle(row) for row in expired))
    owner = {row["id"]: row["broadcast_id"] for row in expired}
    with engine.begin() as conn:
        messages_repo.record_sent(conn, sent, now)
        _notify(conn, settings, [(mid, owner[mid]) for mid, _ in sent], MessageStatus.SENT, now)
        report.recovered_sent += len(sent)
        report.released += messages_repo.release(conn, absent, now)


def _notify(
    conn: Any,
    settings: Settings,
    changed: list[tuple[int, int]],
    status: MessageStatus,
    now: datetime,
) -> None:
    """Queue client callbacks for status changes the poller made, grouped per broadcast."""
    by_broadcast: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for message_id, broadcast_id in changed:
        by_broadcast[broadcast_id].append((message_id, status.value))
    for broadcast_id, changes in by_broadcast.items():
        enqueue_status_changes(
            conn,
            broadcast_id=broadcast_id,
            changes=changes,
            now=now,
            allow_private=settings.callback_allow_private,
        )


def _complete_if_done(engine: Engine, broadcast_id: int, now: datetime) -> bool:
    """RUNNING → COMPLETED only when no message is left QUEUE or DEQUEUED (checked in the UPDATE)."""
    unsent = sa.exists().where(
        messages.c.broadcast_id == broadcast_id,
        messages.c.status.in_([MessageStatus.QUEUE.value, MessageStatus.DEQUEUED.value]),
    )
    with engine.begin() as conn:
        done = conn.execute(
            sa.update(broadcasts)
            .where(
                broadcasts.c.id == broadcast_id,
                broadcasts.c.status == BroadcastStatus.RUNNING.value,
                ~unsent,
            )
            .values(status=BroadcastStatus.COMPLETED.value, ended_at=now, updated_at=now)
        ).rowcount
    return done == 1


def _watched(engine: Engine, now: datetime) -> list[tuple[int, str, str]]:
    """(id, status, sender code) of active broadcasts and of those that ended recently."""
    recent = now - timedelta(seconds=RECOUNT_ENDED_S)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(broadcasts.c.id, broadcasts.c.status, broadcasts.c.sender_code).where(
                sa.or_(
                    broadcasts.c.status.in_(
                        [BroadcastStatus.RUNNING.value, BroadcastStatus.SUSPENDED.value]
                    ),
                    sa.and_(
                        broadcasts.c.status.in_(
                            [BroadcastStatus.COMPLETED.value, BroadcastStatus.STOPPED.value]
                        ),
                        broadcasts.c.ended_at >= recent,
                    ),
                )
            )
        )
        return [(int(i), s, c) for i, s, c in rows]


def reconcile(
    engine: Engine, settings: Settings, queue: TaskQueue, now: datetime, report: TickReport
) -> None:
    """Recount, complete, cancel stragglers of stopped broadcasts, and refill lost chunks."""
    with engine.begin() as conn:
        expired = messages_repo.expire_silent(
            conn, now - timedelta(seconds=settings.validity_s), now
        )
        _notify(conn, settings, expired, MessageStatus.EXPIRED, now)
        report.expired += len(expired)
    depths: dict[str, int] = defaultdict(int)
    for broadcast_id, status, code in _watched(engine, now):
        if status == BroadcastStatus.STOPPED.value:
            with engine.begin() as conn:
                messages_repo.cancel_unsent(conn, broadcast_id, now)
        if status == BroadcastStatus.RUNNING.value:
            if _complete_if_done(engine, broadcast_id, now):
                report.completed.append(broadcast_id)
            else:
                report.chunks_topped_up += top_up(engine, settings, queue, broadcast_id, now)
        with engine.begin() as conn:
            counts = broadcasts_repo.status_counts(conn, broadcast_id)
            broadcasts_repo.set_counters(conn, broadcast_id, **derive_counters(counts))
        depths[code] += counts.get(MessageStatus.QUEUE.value, 0)
    metrics.set_queue_depth(depths)


#: Gateway jobs asked about per broadcast per tick (gateways without push receipts).
POLL_JOBS_PER_TICK = 50


async def poll_gateway_statuses(
    engine: Engine,
    settings: Settings,
    provider_for: Callable[[str], Provider],
    now: datetime,
    report: TickReport,
) -> None:
    """Settle messages of gateways that only answer when asked (OpenText job status pages)."""
    for broadcast_id, _, _ in _watched(engine, now):
        with engine.connect() as conn:
            b = broadcasts_repo.get_broadcast(conn, broadcast_id) or {}
            code = (
                codes_repo.find_code(conn, b.get("workspace_id", 0), b.get("sender_code", "")) or {}
            )
            key = code.get("account") or code.get("provider") or settings.provider
            provider = provider_for(key)
            if not hasattr(provider, "poll_status"):
                continue
            jobs = messages_repo.in_network_gateway_ids(
                conn, broadcast_id, limit=POLL_JOBS_PER_TICK
            )
        for job_id in jobs:
            try:
                receipts = await provider.poll_status(job_id)
            except Exception as exc:  # the gateway is down or the job unknown: next tick
                log.warning("status of job %s via %s failed: %s", job_id, key, exc)
                continue
            for receipt in receipts:
                report.polled_receipts += apply_receipt(
                    engine, key, receipt, allow_private=settings.callback_allow_private
                ).applied


async def tick(
    engine: Engine,
    settings: Settings,
    queue: TaskQueue,
    provider_for: Callable[[str], Provider],
    now: datetime | None = None,
) -> TickReport:
    """One beat: the scheduler and the status poller together."""
    now = now or utcnow()
    report = TickReport()
    start_due(engine, settings, queue, now, report)
    await recover_leases(engine, settings, provider_for, now, report)
    await poll_gateway_statuses(engine, settings, provider_for, now, report)
    reconcile(engine, settings, queue, now, report)
    report.swept_imports = importer.sweep_abandoned(engine, settings.import_stale_s, now)
    return report
