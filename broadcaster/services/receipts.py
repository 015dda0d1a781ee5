"""Delivery receipts: idempotent, order-proof, and never lost.

A receipt may come before the send response (the message is still DEQUEUED: it applies), twice
(the second is a no-op), or out of order (a late ENROUTE never overwrites a final DELIVRD).
Every receipt is kept in the history, applied or not; unknown ids are logged, not crashed on.

Receipts that arrive together are applied together (:func:`apply_receipts`): one transaction
and one round of statements for the group, with exactly the outcome the same receipts would
have one by one in arrival order. A group that cannot be applied whole (a row another writer
moved meanwhile, a receipt the database refuses) is rolled back and applied one by one, so one
bad receipt fails only itself.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from broadcaster import metrics
from broadcaster.domain.states import MessageStatus, receipt_applies
from broadcaster.logsafe import printable
from broadcaster.providers.base import Receipt
from broadcaster.services.client_callbacks import enqueue_status_change, enqueue_status_changes
from broadcaster.store import messages_repo, optouts_repo, receipts_repo
from broadcaster.store.db import Connection, Engine, utcnow

log = logging.getLogger(__name__)

_CANDIDATES = [
    MessageStatus.DEQUEUED,
    MessageStatus.SENT,
    MessageStatus.ENROUTE,
    MessageStatus.ACCEPTD,
]


@dataclass(frozen=True, slots=True)
class Applied:
    message_id: int | None
    status: str | None  # the message's status after this receipt
    applied: bool
    broadcast_id: int | None = None


def sent_through(msg: dict[str, Any], provider: str, default_provider: str | None) -> bool:
    """Whether the message went out through route ``provider`` (an account or a provider).

    The route is recorded at the claim. A message claimed before that column existed falls back
    to its sender code's route; when even that cannot tell (no default provider given), it is
    accepted as before.
    """
    route = msg["route"] or msg["code_account"] or msg["code_provider"] or default_provider
    return route is None or route == provider


def apply_receipt(
    engine: Engine,
    provider: str,
    receipt: Receipt,
    *,
    allow_private: bool = False,
    default_provider: str | None = None,
) -> Applied:
    """Store the receipt in the history and move the message forward if the receipt is news.

    ``provider`` is the route the receipt came through; it applies only to messages sent
    through that route. A message of another route is treated exactly as an unknown id (not
    linked, not applied, answered the same), so a route cannot touch or probe another's messages.
    A status change also queues the client's callbacks, in the same transaction (outbox).
    """
    now = utcnow()
    with engine.begin() as conn:
        msg = _find_own(conn, receipt, provider, default_provider)
        applied = False
        status = None
        if msg is None:
            log.warning(
                "receipt for unknown message ref=%s gateway_id=%s from %s",
                printable(receipt.reference),
                printable(receipt.gateway_id),
                printable(provider),
            )
        else:
            allowed = [s for s in _CANDIDATES if receipt_applies(s, receipt.status)]
            applied = bool(allowed) and messages_repo.advance_status(
                conn, msg["id"], allowed, receipt.status, now, gateway_id=receipt.gateway_id
            )
            status = receipt.status.value if applied else _status_of(conn, msg["id"])
            if applied:
                metrics.record_receipt(
                    receipt.status.value, msg["sender_code"], provider, workspace=msg["workspace"]
                )
                if receipt.status is MessageStatus.BLACKLISTED:  # the gateway's opt-out list
                    optouts_repo.add_from_messages(
                        conn, [msg["id"]], f"receipt via {provider}", now
                    )
                enqueue_status_change(
                    conn,
                    message_id=msg["id"],
                    broadcast_id=msg["broadcast_id"],
                    status=receipt.status.value,
                    now=now,
                    allow_private=allow_private,
                )
        receipts_repo.insert(
            conn, [_history_row(provider, receipt, msg["id"] if msg else None, applied, now)]
        )
    return Applied(
        msg["id"] if msg else None, status, applied, msg["broadcast_id"] if msg else None
    )


def _find_own(
    conn: Any, receipt: Receipt, provider: str, default_provider: str | None
) -> dict[str, Any] | None:
    """The message of this route the receipt speaks of; a foreign one counts as none."""
    msg = messages_repo.find_for_receipt(conn, receipt.reference, receipt.gateway_id, provider)
    if msg is not None and not sent_through(msg, provider, default_provider):
        # Our reference named another route's message: its gateway id may still be one of ours.
        msg = messages_repo.find_for_receipt(conn, None, receipt.gateway_id, provider)
    if msg is not None and not sent_through(msg, provider, default_provider):
        return None
    return msg


def _status_of(conn: Any, message_id: int) -> str | None:
    row = messages_repo.get_message(conn, message_id)
    return row["status"] if row else None


def _jsonable(raw: dict[str, Any]) -> dict[str, Any]:
    return {
        str(k): (v if isinstance(v, (str, int, float, bool, type(None))) else str(v))
        for k, v in raw.items()
    }


def _history_row(
    provider: str, receipt: Receipt, message_id: int | None, applied: bool, now: datetime
) -> dict[str, Any]:
    return {
        "message_id": message_id,
        "provider": provider,
        "gateway_id": receipt.gateway_id,
        "status": receipt.status.value,
        "applied": applied,
        "reported_at": (receipt.at or "")[:40] or None,
        "received_at": now,
        "raw": _jsonable(receipt.raw),
    }


def history(engine: Engine, message_id: int) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return receipts_repo.history(conn, message_id)


# --- receipts in groups -------------------------------------------------------------------------

#: (route the receipt came through, the receipt), in arrival order.
Incoming = tuple[str, Receipt]
#: What one receipt of a group came to: its answer, or the error that refused it alone.
Outcome = Applied | Exception


class _GroupRaced(Exception):
    """A message of the group moved between the group's read and its write."""


def apply_receipts(
    engine: Engine,
    group: Sequence[Incoming],
    *,
    allow_private: bool = False,
    default_provider: str | None = None,
) -> list[Outcome]:
    """Apply a group of receipts in one transaction; one outcome per receipt, in order.

    The outcome of each receipt is what :func:`apply_receipt` would give for it had the group's
    receipts come one after the other in this order. When the group cannot commit whole, it is
    rolled back and each receipt is applied on its own: an error then belongs to that receipt
    alone (returned, not raised).
    """
    if not group:
        return []
    try:
        return list(_apply_group(engine, group, allow_private, default_provider))
    except Exception as exc:  # noqa: BLE001 - one by one below isolates the culprit
        if not isinstance(exc, _GroupRaced):
            log.warning("a group of %d receipts failed (%s); one by one", len(group), exc)
    outcomes: list[Outcome] = []
    for provider, receipt in group:
        try:
            outcomes.append(
                apply_receipt(
                    engine,
                    provider,
                    receipt,
                    allow_private=allow_private,
                    default_provider=default_provider,
                )
            )
        except Exception as exc:  # noqa: BLE001 - the answer of this receipt alone
            log.exception("receipt from %s failed", printable(provider))
            outcomes.append(exc)
    return outcomes


@dataclass
class _Tracked:
    """One message's state while the group's receipts are replayed against it in memory."""

    row: dict[str, Any]
    status: str
    gateway_id: str | None
    changed: bool = False


BLACKLISTED = MessageStatus.BLACKLISTED.value


def _apply_group(
    engine: Engine, group: Sequence[Incoming], allow_private: bool, default_provider: str | None
) -> list[Applied]:
    now = utcnow()
    with engine.begin() as conn:
        owners = _find_group(conn, group, default_provider)
        tracked: dict[int, _Tracked] = {}
        answers: list[Applied] = []
        history: list[dict[str, Any]] = []
        changes: dict[int, list[tuple[int, str]]] = defaultdict(list)
        wants_callbacks: set[int] = set()
        for (provider, receipt), msg in zip(group, owners, strict=True):
            answer = _replay(tracked, provider, receipt, msg)
            answers.append(answer)
            history.append(_history_row(provider, receipt, answer.message_id, answer.applied, now))
            if answer.applied and msg is not None:
                changes[msg["broadcast_id"]].append((msg["id"], receipt.status.value))
                if msg["request_dr"] and msg["has_callbacks"]:  # else enqueue would find no URL
                    wants_callbacks.add(msg["broadcast_id"])
        moves = [
            messages_repo.Advance(mid, t.row["status"], t.status, t.gateway_id)
            for mid, t in tracked.items()
            if t.changed
        ]
        if not receipts_repo.store_group(conn, moves, history, now):
            raise _GroupRaced
        # a gateway's BLACKLISTED: its number joins the workspace's suppression list (source gateway)
        refused = [m for pairs in changes.values() for m, st in pairs if st == BLACKLISTED]
        optouts_repo.add_from_messages(conn, refused, "receipt via gateway", now)
        for broadcast_id, pairs in changes.items():
            if broadcast_id not in wants_callbacks:  # what enqueue would read first, read already
                continue
            enqueue_status_changes(
                conn, broadcast_id=broadcast_id, changes=pairs, now=now, allow_private=allow_private
            )
    # one counter update per (status, code, route, workspace) of the group, not per receipt
    counted: Counter[tuple[str, str, str, str]] = Counter(
        (receipt.status.value, msg["sender_code"], provider, msg["workspace"])
        for (provider, receipt), answer, msg in zip(group, answers, owners, strict=True)
        if answer.applied and msg is not None
    )
    for (status, code, provider, workspace), n in counted.items():
        metrics.record_receipt(status, code, provider, n, workspace=workspace)
    return answers


def _replay(
    tracked: dict[int, _Tracked], provider: str, receipt: Receipt, msg: dict[str, Any] | None
) -> Applied:
    """One receipt against the in-memory state of its message: what ``advance_status`` does."""
    if msg is None:
        _log_unknown(receipt, provider)
        return Applied(None, None, False, None)
    t = tracked.get(msg["id"])
    if t is None:
        t = tracked[msg["id"]] = _Tracked(msg, msg["status"], msg["gateway_id"])
    current = MessageStatus(t.status)
    applied = current in _CANDIDATES and receipt_applies(current, receipt.status)
    if applied:
        t.status, t.changed = receipt.status.value, True
        t.gateway_id = t.gateway_id or receipt.gateway_id or None
    return Applied(msg["id"], t.status, applied, msg["broadcast_id"])


def _find_group(
    conn: Connection, group: Sequence[Incoming], default_provider: str | None
) -> list[dict[str, Any] | None]:
    """Each receipt's own message, as :func:`_find_own` finds it, in two statements at most."""
    refs = [messages_repo.receipt_reference_id(r.reference) for _, r in group]
    by_id = messages_repo.find_many_by_id(conn, [m for m in refs if m is not None])
    first: list[dict[str, Any] | None] = [by_id.get(m) if m is not None else None for m in refs]
    # By gateway id: where the reference found nothing, or found another route's message.
    keys = [
        (r.gateway_id, provider)
        for (provider, r), msg in zip(group, first, strict=True)
        if r.gateway_id and (msg is None or not sent_through(msg, provider, default_provider))
    ]
    by_gid = messages_repo.find_many_by_gateway_id(conn, keys)
    owners: list[dict[str, Any] | None] = []
    for (provider, r), msg in zip(group, first, strict=True):
        if msg is None or not sent_through(msg, provider, default_provider):
            msg = by_gid.get((r.gateway_id, provider)) if r.gateway_id else None
        if msg is not None and not sent_through(msg, provider, default_provider):
            msg = None
        owners.append(msg)
    return owners


def _log_unknown(receipt: Receipt, provider: str) -> None:
    log.warning(
        "receipt for unknown message ref=%s gateway_id=%s from %s",
        printable(receipt.reference),
        printable(receipt.gateway_id),
        printable(provider),
    )
