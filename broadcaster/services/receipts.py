"""Delivery receipts: idempotent, order-proof, and never lost.

A receipt may come before the send response (the message is still DEQUEUED: it applies), twice
(the second is a no-op), or out of order (a late ENROUTE never overwrites a final DELIVRD).
Every receipt is kept in the history, applied or not; unknown ids are logged, not crashed on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from broadcaster import metrics
from broadcaster.domain.states import MessageStatus, receipt_applies
from broadcaster.logsafe import printable
from broadcaster.providers.base import Receipt
from broadcaster.services.client_callbacks import enqueue_status_change
from broadcaster.store import messages_repo
from broadcaster.store.db import utcnow
from broadcaster.store.models import receipts

log = logging.getLogger(__name__)

_INSERT_RECEIPT = sa.insert(receipts)
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
                enqueue_status_change(
                    conn,
                    message_id=msg["id"],
                    broadcast_id=msg["broadcast_id"],
                    status=receipt.status.value,
                    now=now,
                    allow_private=allow_private,
                )
        conn.execute(
            _INSERT_RECEIPT,
            {
                "message_id": msg["id"] if msg else None,
                "provider": provider,
                "gateway_id": receipt.gateway_id,
                "status": receipt.status.value,
                "applied": applied,
                "reported_at": (receipt.at or "")[:40] or None,
                "received_at": now,
                "raw": _jsonable(receipt.raw),
            },
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


def history(engine: Engine, message_id: int) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                receipts.c.status,
                receipts.c.applied,
                receipts.c.reported_at,
                receipts.c.received_at,
                receipts.c.provider,
            )
            .where(receipts.c.message_id == message_id)
            .order_by(receipts.c.id)
        ).mappings()
        return [dict(r) for r in rows]
