"""Editing a broadcast that has not started: new recipients, text, sender and start time.

Seed 004's ``createBroadcastFromJson`` with an existing ``broadcastId`` edits it. The rules are
the creation's own (``create_from_table``'s template, sender-code and start-time checks, the
same draft storing and counters); this adds only the guard that nothing of it was sent yet, held
by a row lock so the poller cannot start it half-edited. One transaction (the rows come from one
bounded POST parameter): a refusal leaves the broadcast as it was.
"""

from __future__ import annotations

from typing import Any

from broadcaster.config import Settings
from broadcaster.domain.phones import PhoneNormalizer
from broadcaster.domain.schedule import refuse_past_start, start_time_utc
from broadcaster.domain.states import BroadcastStatus
from broadcaster.errors import InvalidTransition, NotFound
from broadcaster.ingest import RecipientTable
from broadcaster.services.broadcasts import (
    NewBroadcast,
    _template_for,
    require_code,
)
from broadcaster.services.importer import complete_unsendable, store_in
from broadcaster.services.recipients import build_drafts
from broadcaster.services.views import BroadcastView
from broadcaster.store import broadcasts_repo, codes_repo
from broadcaster.store.db import Engine, utcnow

EDIT_ACTION = "edit"


def edit_unstarted(
    engine: Engine,
    settings: Settings,
    broadcast_id: int,
    table: RecipientTable,
    req: NewBroadcast,
) -> BroadcastView:
    """Replace the recipients, text, sender, name and start of a broadcast nothing was sent of.

    NotFound for another workspace's or a deleted one; InvalidTransition once it started.
    """
    template = _template_for(req.text, table)
    sender = req.sender or table.meta.get("from") or ""
    now = utcnow()
    start_at = now if req.start_now else start_time_utc(req.at, req.tz, now)
    refuse_past_start(start_at, now, req.start_now_hint)
    normalizer = PhoneNormalizer(req.region or settings.default_region)
    with engine.begin() as conn:
        ws = codes_repo.ensure_workspace(conn, req.workspace)
        if not broadcasts_repo.claim_unstarted(conn, broadcast_id, ws):
            row = broadcasts_repo.get_broadcast(conn, broadcast_id, ws)
            if row is None or row["status"] == BroadcastStatus.DELETED.value:
                raise NotFound(f"broadcast {broadcast_id} does not exist")
            state = row["status"] if row["started_at"] is None else f"{row['status']} (started)"
            raise InvalidTransition(f"broadcast {broadcast_id}", state, EDIT_ACTION)
        require_code(conn, ws, sender, req.workspace)
        broadcasts_repo.clear_recipients(conn, broadcast_id)
        values: dict[str, Any] = {
            "sender_code": sender,
            "template": template.source,
            "start_at": start_at,
            "timezone": req.tz,
            "source": table.source,
        }
        if req.name:
            values["name"] = req.name
        if req.owner:
            values["owner"] = req.owner
        drafts = build_drafts(table.rows, template, normalizer, table.columns)
        counters, sendable = store_in(conn, engine, broadcast_id, drafts, workspace_id=ws)
        broadcasts_repo.update_broadcast(conn, broadcast_id, **values, **counters)
        if not sendable:
            complete_unsendable(conn, broadcast_id, now)
        return BroadcastView.of(broadcasts_repo.get_broadcast(conn, broadcast_id) or {})
