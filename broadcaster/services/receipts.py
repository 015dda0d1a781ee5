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


def apply_receipt(
    engine: Engine, provider: str, receipt: Receipt, *, allow_private: bool = False
) -> Applied:
    """Store the receipt in the history and move the message forward if the receipt is news.

    A status change also queues the client's callbacks, in the same transaction (outbox).
    """
    now = utcnow()
    with engine.begin() as conn:
        msg = messages_repo.find_for_receipt(conn, receipt.reference, receipt.gateway_id)
        applied = False
        status = None
        if msg is None:
            log.warning(
                "receipt for unknown message ref=%s gateway_id=%s from %s",
                receipt.reference,
                receipt.gateway_id,
                provider,
            )
        else:
            allowed = [s for s in _CANDIDATES if receipt_applies(s, receipt.status)]
            applied = bool(allowed) and messages_repo.advance_status(
                conn, msg["id"], allowed, receipt.status, now, gateway_id=receipt.gateway_id
            )
            status = receipt.status.value if applied else _status_of(conn, msg["id"])
            if applied:
                metrics.record_receipt(receipt.status.value, msg["sender_code"], provider)
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
