"""Progress and ETA of the broadcasts in a list: what is left to send, at the code's rate.

Kept apart from the list itself (``queries.list_broadcasts``) because it needs the settings
(a code's default rate) and one more grouped query; the dashboard's list shows both.
"""

from __future__ import annotations

from broadcaster.config import Settings
from broadcaster.domain.progress import eta_seconds, progress
from broadcaster.domain.states import BroadcastStatus
from broadcaster.services.codes import to_sender_code
from broadcaster.services.views import BroadcastProgress, BroadcastView, base_fields
from broadcaster.store import codes_repo, queries_repo
from broadcaster.store.db import Engine

#: Broadcasts whose queue is being (or will be) sent: the others have no ETA.
_SENDING = frozenset({BroadcastStatus.SCHEDULED, BroadcastStatus.RUNNING})


def with_progress(
    engine: Engine, settings: Settings, workspace_id: int, items: list[BroadcastView]
) -> list[BroadcastProgress]:
    """``items`` (broadcast views) with remainingMessages, remainingSegments, progress, etaSeconds.

    etaSeconds is None for a broadcast that is not sending (suspended, stopped, completed) or
    whose code has no known rate; it does not count quiet hours or a start still to come.
    """
    with engine.connect() as conn:
        left = queries_repo.unsent_segments(conn, [b.id for b in items])
        rates = {
            r["code"]: to_sender_code(r, settings).mps
            for r in codes_repo.list_codes(conn, workspace_id)
        }
    out = []
    for b in items:
        messages, segments = left.get(b.id, (0, 0))
        sending = b.status in _SENDING
        out.append(
            BroadcastProgress(
                **base_fields(b),
                remaining_messages=messages,
                remaining_segments=segments,
                progress=progress(b.expected_messages, messages),
                eta_seconds=eta_seconds(segments, rates.get(b.shortcode)) if sending else None,
            )
        )
    return out
