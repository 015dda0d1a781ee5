"""Single messages: send one now, read one with its receipt history."""

from __future__ import annotations

from typing import Any

from broadcaster.config import Settings
from broadcaster.domain.phones import normalize_phone
from broadcaster.errors import InputError, NotFound
from broadcaster.ingest import RecipientRow, RecipientTable
from broadcaster.services.broadcasts import NewBroadcast, create_from_table
from broadcaster.services.receipts import history
from broadcaster.services.views import MessageView, ReceiptView
from broadcaster.store import broadcasts_repo, messages_repo
from broadcaster.store.codes_repo import DEFAULT_WORKSPACE
from broadcaster.store.db import Engine


def one_row_table(
    number: str,
    params: tuple[str, ...] = (),
    source: str = "api",
    ids: tuple[str | None, str | None] = (None, None),
) -> RecipientTable:
    """A one-recipient table; ``ids`` are the client's externalId and clientId (seed 001)."""
    return RecipientTable(
        source=source,
        format="json",
        columns=None,
        meta={},
        rows=iter([RecipientRow(1, number, params, ids[0], ids[1])]),
    )


def send_one(
    engine: Engine,
    settings: Settings,
    *,
    sender: str,
    to: str,
    text: str,
    region: str | None = None,
    workspace: str = DEFAULT_WORKSPACE,
    callbacks: tuple[str, ...] = (),
    request_dr: bool = True,
    external_id: str | None = None,
    client_id: str | None = None,
) -> MessageView:
    """A one-recipient broadcast that starts now; a bad number is refused as INVALID_ROUTING."""
    phone = normalize_phone(to, region or settings.default_region)
    if not phone.ok:
        raise InputError(
            f"INVALID_ROUTING: {to!r} is not a valid number ({phone.reason.value if phone.reason else ''})"
        )
    req = NewBroadcast(
        sender=sender,
        text=text,
        name=f"single {phone.e164}",
        region=region,
        workspace=workspace,
        callbacks=callbacks,
        request_dr=request_dr,
    )
    table = one_row_table(to, ids=(external_id, client_id))
    view = create_from_table(engine, settings, table, req)
    with engine.connect() as conn:
        mid = messages_repo.only_message_id(conn, view.id)
    return get_message(engine, mid)


def message_view(row: dict[str, Any], receipts: list[dict[str, Any]]) -> MessageView:
    return MessageView(
        id=row["id"],
        broadcast_id=row["broadcast_id"],
        to=row["recipient"],
        text=row["text"],
        encoding=row["encoding"],
        segments=row["segments"],
        status=row["status"],
        attempts=row["attempts"],
        gateway_id=row["gateway_id"],
        error=row["error"],
        external_id=row.get("external_id"),
        client_id=row.get("client_id"),
        created_at=row["created_at"],
        sent_at=row["sent_at"],
        updated_at=row["updated_at"],
        receipts=[
            ReceiptView(
                status=r["status"],
                applied=r["applied"],
                provider=r["provider"],
                reported_at=r["reported_at"],
                received_at=r["received_at"],
            )
            for r in receipts
        ],
    )


def get_message(engine: Engine, message_id: int, workspace_id: int | None = None) -> MessageView:
    with engine.connect() as conn:
        row = messages_repo.get_message(conn, message_id)
        if row is not None and workspace_id is not None:
            owner = broadcasts_repo.workspace_of(conn, row["broadcast_id"])
            row = row if owner == workspace_id else None
    if row is None:
        raise NotFound(f"message {message_id} does not exist")
    return message_view(row, history(engine, message_id))
