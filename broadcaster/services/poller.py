"""The beat tick: start due broadcasts, recover lost work, keep the numbers true.

Everything here is idempotent and safe to run from several beat processes at once: each step is
a compare-and-set or a recount.

Bulkheads: each step (start due, recover leases, poll each broadcast's gateway, expire, reconcile
each broadcast) runs on its own; one that fails is logged with its traceback, counted in
``broadcaster_tick_step_failures_total{step}`` and the others go on. A broadcast whose sender
code names no provider or account that exists is suspended with the reason, instead of failing
every tick.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from broadcaster import metrics
from broadcaster.config import Settings
from broadcaster.domain.states import (
    BroadcastAction,
    BroadcastStatus,
    MessageStatus,
)
from broadcaster.errors import GatewayError, InvalidTransition, NotFound
from broadcaster.logsafe import printable
from broadcaster.providers.base import Provider, StatusPoller
from broadcaster.services import control, importer
from broadcaster.services.client_callbacks import enqueue_status_changes
from broadcaster.services.dispatch import TaskQueue, top_up
from broadcaster.services.receipts import apply_receipt
from broadcaster.services.send_windows import expire_past_validity, live_counters
from broadcaster.services.transitions import try_transition
from broadcaster.store import broadcasts_repo, codes_repo, messages_repo
from broadcaster.store.db import Engine, utcnow

log = logging.getLogger(__name__)

#: Gateway look-ups in flight at once while recovering expired leases.
LOOKUP_CONCURRENCY = 50
#: Ended broadcasts keep being recounted this long, for late receipts.
RECOUNT_ENDED_S = 600
#: Width of ``broadcasts.status_reason`` (store/models.py).
STATUS_REASON_CHARS = 300


@dataclass
class TickReport:
    #: Steps that failed this tick ("reconcile:42" names the broadcast), each logged and counted.
    failed_steps: list[str] = field(default_factory=list)
    #: Broadcasts suspended because their sender code cannot be routed to any gateway.
    unroutable: list[int] = field(default_factory=list)
    started: list[int] = field(default_factory=list)
    completed: list[int] = field(default_factory=list)
    recovered_sent: int = 0
    released: int = 0
    expired: int = 0
    chunks_topped_up: int = 0
    polled_receipts: int = 0
    #: Staged imports removed because their process died (services/importer.py).
    swept_imports: list[int] = field(default_factory=list)


def _failed(report: TickReport, step: str) -> None:
    """Log the exception being handled with its traceback, count it, and note it in the report."""
    log.exception("tick step %s failed; the other steps go on", step)
    metrics.record_tick_failure(step.split(":", 1)[0])
    report.failed_steps.append(step)


def _isolated(report: TickReport, step: str, fn: Callable[..., Any], *args: Any) -> None:
    """Run one step of the tick; its failure is :func:`_failed`, never the tick's."""
    try:
        fn(*args)
    except Exception:  # noqa: BLE001 - a bulkhead: every other step must still run
        _failed(report, step)


async def _isolated_async(report: TickReport, step: str, coro: Awaitable[Any]) -> None:
    try:
        await coro
    except Exception:  # noqa: BLE001 - a bulkhead, as in _isolated
        _failed(report, step)


def start_due(
    engine: Engine, settings: Settings, queue: TaskQueue, now: datetime, report: TickReport
) -> None:
    with engine.connect() as conn:
        due = broadcasts_repo.due_broadcasts(conn, now)
    for broadcast_id in due:
        _isolated(
            report,
            f"start:{broadcast_id}",
            _start_one,
            engine,
            settings,
            queue,
            broadcast_id,
            now,
            report,
        )


def _start_one(
    engine: Engine,
    settings: Settings,
    queue: TaskQueue,
    broadcast_id: int,
    now: datetime,
    report: TickReport,
) -> None:
    if control.start(engine, settings, queue, broadcast_id, due_by=now):
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
        try:
            provider = provider_for(codes[(row["workspace_id"], row["sender_code"])])
            async with gate:
                found = await provider.lookup(str(row["id"]))
        except (GatewayError, ValueError) as exc:  # the gateway is down too, or its route unknown
            log.warning("lookup of message %s failed: %s", row["id"], printable(exc))
            return
        except Exception:  # a bug, not the gateway: its traceback, and next tick
            log.exception("lookup of message %s failed unexpectedly", row["id"])
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
    """RUNNING → COMPLETED only when no message is left unsent (checked in the UPDATE)."""
    with engine.begin() as conn:
        return try_transition(
            conn,
            broadcast_id,
            BroadcastAction.COMPLETE,
            among=frozenset({BroadcastStatus.RUNNING}),
            only_if_all_sent=True,
            ended_at=now,
            updated_at=now,
        )


def _watched(engine: Engine, now: datetime) -> list[tuple[int, str, str]]:
    """(id, status, sender code) of active broadcasts and of those that ended recently."""
    with engine.connect() as conn:
        return broadcasts_repo.watched(conn, now - timedelta(seconds=RECOUNT_ENDED_S))


#: Share of wall time one broadcast's recount may take: 5 ms in a 2 s tick.
RECOUNT_DUTY = 0.0025
#: The longest a broadcast goes without a full recount (s): the proof that its numbers are true.
RECOUNT_MAX_INTERVAL_S = 60.0
#: A recount cheaper than this (about 40,000 messages) runs on every tick, as it always did.
RECOUNT_EVERY_TICK_BELOW_S = 0.002


class Recounts:
    """When each broadcast's counters are next recounted from its messages, in this process.

    A recount (``GROUP BY status``) costs about 49 µs per thousand messages; done on every tick
    it would cost a 1M-message broadcast 49 ms each 2 s. So each broadcast is recounted again
    only once ``cost / RECOUNT_DUTY`` has passed since its last recount (at most
    ``RECOUNT_MAX_INTERVAL_S``): a broadcast whose recount costs under
    ``RECOUNT_EVERY_TICK_BELOW_S`` every tick, a million-message one every ~20 s, and any
    broadcast at once when it completes or its stop cancels messages. Between recounts the last counts stand (the
    queue-depth metric too). Several tick processes each keep their own schedule: at worst a
    broadcast is recounted once per process per interval.
    """

    def __init__(
        self,
        duty: float = RECOUNT_DUTY,
        max_interval_s: float = RECOUNT_MAX_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
        every_tick_below_s: float = RECOUNT_EVERY_TICK_BELOW_S,
    ) -> None:
        self.duty, self.max_interval_s, self.clock = duty, max_interval_s, clock
        self.every_tick_below_s = every_tick_below_s
        #: (database, broadcast id) → (``clock`` s of the next recount, the last counts); the
        #: cost itself is measured on ``time.perf_counter``.
        self._due: dict[tuple[str, int], tuple[float, dict[str, int]]] = {}

    def recount_if_due(
        self, engine: Engine, broadcast_id: int, *, force: bool = False
    ) -> dict[str, int]:
        """Messages per status: recounted (and stored as counters) when due, else the last."""
        now, started = self.clock(), time.perf_counter()
        key = (str(engine.url), broadcast_id)
        due = self._due.get(key)
        if due is not None and not force and now < due[0]:
            return due[1]
        with engine.begin() as conn:
            counts = broadcasts_repo.status_counts(conn, broadcast_id)
            broadcasts_repo.set_counters(
                conn, broadcast_id, **live_counters(conn, broadcast_id, counts)
            )
        cost_s = time.perf_counter() - started
        if cost_s < self.every_tick_below_s:
            self._due.pop(key, None)
        else:
            self._due[key] = (now + min(cost_s / self.duty, self.max_interval_s), counts)
        return counts

    def forget_others(self, engine: Engine, watched: set[int]) -> None:
        """Drop the schedule of this database's broadcasts no longer watched (ended, deleted)."""
        url = str(engine.url)
        for key in [k for k in self._due if k[0] == url and k[1] not in watched]:
            del self._due[key]


#: This process's schedule (the tick runs in a long-lived worker process).
RECOUNTS = Recounts()


def reconcile(
    engine: Engine, settings: Settings, queue: TaskQueue, now: datetime, report: TickReport
) -> None:
    """Recount, complete, cancel stragglers of stopped broadcasts, and refill lost chunks."""
    _isolated(report, "expire", expire, engine, settings, now, report)
    depths: dict[str, int] = defaultdict(int)
    watched = _watched(engine, now)
    RECOUNTS.forget_others(engine, {broadcast_id for broadcast_id, _, _ in watched})
    for broadcast_id, status, code in watched:
        _isolated(
            report,
            f"reconcile:{broadcast_id}",
            _reconcile_one,
            engine,
            settings,
            queue,
            now,
            report,
            (broadcast_id, status, code),
            depths,
        )
    metrics.set_queue_depth(depths)


def expire(engine: Engine, settings: Settings, now: datetime, report: TickReport) -> None:
    """Messages sent longer ago than their validity with no final receipt become EXPIRED, and so
    do unsent ones of a broadcast whose own validity (``--validity``) has run out."""
    with engine.begin() as conn:
        expired = messages_repo.expire_silent(
            conn, now - timedelta(seconds=settings.validity_s), now
        )
        expired += expire_past_validity(conn, now)
        _notify(conn, settings, expired, MessageStatus.EXPIRED, now)
        report.expired += len(expired)


def _reconcile_one(
    engine: Engine,
    settings: Settings,
    queue: TaskQueue,
    now: datetime,
    report: TickReport,
    watched: tuple[int, str, str],
    depths: dict[str, int],
) -> None:
    broadcast_id, status, code = watched
    cancelled = 0
    if status == BroadcastStatus.STOPPED.value:
        with engine.begin() as conn:
            cancelled = messages_repo.cancel_unsent(conn, broadcast_id, now)
    if status == BroadcastStatus.RUNNING.value:
        if _complete_if_done(engine, broadcast_id, now):
            report.completed.append(broadcast_id)
        else:
            report.chunks_topped_up += top_up(engine, settings, queue, broadcast_id, now)
    force = cancelled > 0 or broadcast_id in report.completed
    counts = RECOUNTS.recount_if_due(engine, broadcast_id, force=force)
    depths[code] += counts.get(MessageStatus.QUEUE.value, 0)


#: Gateway jobs asked about per broadcast per tick (gateways without push receipts).
POLL_JOBS_PER_TICK = 50


async def poll_gateway_statuses(
    engine: Engine,
    settings: Settings,
    provider_for: Callable[[str], Provider],
    now: datetime,
    report: TickReport,
) -> None:
    """Settle messages of gateways that only answer when asked (OpenText job status pages).

    Each broadcast is its own step; one whose sender code routes nowhere is suspended."""
    for broadcast_id, status, _ in _watched(engine, now):
        await _isolated_async(
            report,
            f"poll:{broadcast_id}",
            _poll_one(engine, settings, provider_for, broadcast_id, status, report),
        )


async def _poll_one(
    engine: Engine,
    settings: Settings,
    provider_for: Callable[[str], Provider],
    broadcast_id: int,
    status: str,
    report: TickReport,
) -> None:
    with engine.connect() as conn:
        b = broadcasts_repo.get_broadcast(conn, broadcast_id) or {}
        code = codes_repo.find_code(conn, b.get("workspace_id", 0), b.get("sender_code", "")) or {}
        key = code.get("account") or code.get("provider") or settings.provider
        try:
            provider = provider_for(key)
        except Exception as exc:  # noqa: BLE001 - an account removed or a provider unknown
            _suspend_unroutable(engine, broadcast_id, status, b.get("sender_code"), exc, report)
            return
        if not isinstance(provider, StatusPoller):
            return
        jobs = messages_repo.in_network_gateway_ids(conn, broadcast_id, limit=POLL_JOBS_PER_TICK)
    for job_id in jobs:
        try:
            receipts = await provider.poll_status(job_id)
        except GatewayError as exc:  # the gateway is down or the job unknown: next tick
            log.warning(
                "status of job %s via %s failed: %s", printable(job_id), key, printable(exc)
            )
            continue
        except Exception:  # a bug, not the gateway: its traceback, and next tick
            log.exception("status of job %s via %s failed unexpectedly", printable(job_id), key)
            continue
        for receipt in receipts:
            report.polled_receipts += apply_receipt(
                engine, key, receipt, allow_private=settings.callback_allow_private
            ).applied


def _suspend_unroutable(
    engine: Engine,
    broadcast_id: int,
    status: str,
    sender_code: str | None,
    exc: Exception,
    report: TickReport,
) -> None:
    """A RUNNING broadcast whose code routes to no gateway is suspended with the reason, so that
    ``get`` says what to fix; it resumes where it stopped once the code or account is fixed."""
    if status != BroadcastStatus.RUNNING.value:
        return
    reason = (
        f"sender code {sender_code} cannot be sent through: {exc}; fix the code's provider or "
        "account (BROADCASTER_ACCOUNTS), then resume"
    )[:STATUS_REASON_CHARS]
    log.error("broadcast %s suspended: %s", broadcast_id, reason)
    metrics.record_tick_failure("route")
    try:
        control.suspend(engine, broadcast_id, reason=reason)
    except (InvalidTransition, NotFound):  # suspended, stopped or deleted meanwhile
        return
    report.unroutable.append(broadcast_id)


def _sweep_imports(engine: Engine, settings: Settings, now: datetime, report: TickReport) -> None:
    report.swept_imports = importer.sweep_abandoned(engine, settings.import_stale_s, now)


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
    _isolated(report, "start_due", start_due, engine, settings, queue, now, report)
    await _isolated_async(
        report, "recover_leases", recover_leases(engine, settings, provider_for, now, report)
    )
    await _isolated_async(
        report, "poll", poll_gateway_statuses(engine, settings, provider_for, now, report)
    )
    _isolated(report, "reconcile", reconcile, engine, settings, queue, now, report)
    _isolated(report, "sweep_imports", _sweep_imports, engine, settings, now, report)
    return report
