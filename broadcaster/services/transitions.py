"""Every change of a broadcast's status, through one door: the transition table's
compare-and-set (``domain/states.py`` says where an action may start and where it leads).

``among`` narrows where it may start from for a caller that knows more (completing a RUNNING
broadcast is the poller's, completing a SCHEDULED one with nothing to send the importer's), never
widens it: a state the table does not allow stays refused.
"""

from __future__ import annotations

from typing import Any

from broadcaster.domain.states import BroadcastAction, BroadcastStatus, broadcast_transition
from broadcaster.store import broadcasts_repo
from broadcaster.store.db import Connection


def try_transition(
    conn: Connection,
    broadcast_id: int,
    action: BroadcastAction,
    *,
    among: frozenset[BroadcastStatus] | None = None,
    only_if_all_sent: bool = False,
    **values: Any,
) -> bool:
    """Apply ``action`` if the broadcast is in a state it may start from now; True when it moved."""
    allowed, to = broadcast_transition(action)
    if among is not None:
        allowed = allowed & among
    return broadcasts_repo.compare_and_set_status(
        conn, broadcast_id, allowed, to, only_if_all_sent=only_if_all_sent, **values
    )
