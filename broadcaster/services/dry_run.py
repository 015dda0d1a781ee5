"""The upload preview: the same dry run as ``broadcaster recipients check``, plus the ETA at the
sender code's rate, for the dashboard to show before anything is stored."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from broadcaster.config import Settings
from broadcaster.domain.progress import eta_seconds
from broadcaster.services.broadcasts import check_recipients, suppressed_in
from broadcaster.services.codes import get_code
from broadcaster.store.db import Engine

#: Rendered messages a preview shows.
PREVIEW_MESSAGES = 5


def dry_run(
    engine: Engine,
    settings: Settings,
    path: Path,
    *,
    workspace: str,
    workspace_id: int,
    sender: str | None,
    text: str | None,
    region: str | None = None,
    sheet: str | None = None,
    window: str | None = None,
    tz: str = "UTC",
) -> dict[str, Any]:
    """What a broadcast of ``path`` would hold, under the API's names; nothing is stored.

    ``sender`` (optional) must be the workspace's code (NotFound otherwise): its rate gives the
    ETA of the valid recipients' segments (not counting quiet hours).
    """
    rate = get_code(engine, settings, sender, workspace_id).mps if sender else None
    report = check_recipients(
        path,
        settings,
        text=text,
        region=region,
        sheet=sheet,
        window=window,
        tz=tz,
        suppressed=suppressed_in(engine, workspace),
        preview=PREVIEW_MESSAGES,
    )
    out = report.as_wire()
    out["mps"] = rate
    out["etaSeconds"] = eta_seconds(report.total_segments, rate)
    return out
