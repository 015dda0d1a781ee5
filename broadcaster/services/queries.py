"""Workspace-scoped reads: pages of broadcasts, of a broadcast's messages and of its row errors.

Every function takes the caller's ``workspace_id`` and answers NotFound for a broadcast of
another workspace, exactly as for one that does not exist: ids of other tenants are not
confirmed. Pages are keyset: ``after`` is the cursor a previous page returned (None: first page).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from broadcaster.domain.states import FAILED_STATES
from broadcaster.errors import NotFound
from broadcaster.services.views import (
    Breakdown,
    BroadcastView,
    Bucket,
    MessageItem,
    Page,
    ReasonCount,
    RecipientMessage,
    RowErrorView,
    Timeline,
)
from broadcaster.store import codes_repo, queries_repo
from broadcaster.store.db import Engine

#: Rows per SQL page while streaming a report.
REPORT_PAGE_ROWS = 5_000


def require_broadcast(
    engine: Engine, broadcast_id: int, workspace_id: int | None
) -> dict[str, Any]:
    """The broadcast row, or NotFound when it is not this workspace's (or does not exist).

    ``workspace_id`` None: any workspace's (the operator's command line without --workspace).
    """
    with engine.connect() as conn:
        row = queries_repo.owned_broadcast(conn, broadcast_id, workspace_id)
    if row is None:
        raise NotFound(f"broadcast {broadcast_id} does not exist")
    return row


def list_broadcasts(
    engine: Engine,
    workspace_id: int,
    *,
    status: str | None = None,
    after: tuple[int, ...] | None = None,
    limit: int = 50,
) -> Page[BroadcastView]:
    """Newest first. Counters are the poller's last copy; GET one broadcast for live ones."""
    with engine.connect() as conn:
        rows = queries_repo.broadcasts_page(
            conn,
            workspace_id,
            status=status,
            before_id=after[0] if after else None,
            limit=limit + 1,
        )
    more = len(rows) > limit
    rows = rows[:limit]
    return Page([BroadcastView.of(r) for r in rows], (rows[-1]["id"],) if more else None)


def workspace_scope(engine: Engine, workspace: str | None) -> int | None:
    """The id of workspace ``workspace`` (created on first use, as every command does), or None
    for "any workspace": the command line's operator reads any broadcast by its id."""
    if workspace is None:
        return None
    with engine.begin() as conn:
        return codes_repo.ensure_workspace(conn, workspace)


def list_messages(
    engine: Engine,
    workspace_id: int | None,
    broadcast_id: int,
    *,
    status: str | None = None,
    after: tuple[int, ...] | None = None,
    limit: int = 50,
) -> Page[MessageItem]:
    require_broadcast(engine, broadcast_id, workspace_id)
    with engine.connect() as conn:
        rows = queries_repo.messages_page(
            conn, broadcast_id, status=status, after_id=after[0] if after else None, limit=limit + 1
        )
    more = len(rows) > limit
    rows = rows[:limit]
    return Page([MessageItem.of(r) for r in rows], (rows[-1]["id"],) if more else None)


def list_row_errors(
    engine: Engine,
    workspace_id: int | None,
    broadcast_id: int,
    *,
    after: tuple[int, ...] | None = None,
    limit: int = 50,
) -> Page[RowErrorView]:
    require_broadcast(engine, broadcast_id, workspace_id)
    key = (after[0], after[1]) if after and len(after) == 2 else None
    with engine.connect() as conn:
        rows = queries_repo.row_errors_page(conn, broadcast_id, after=key, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    items = [RowErrorView.of(r) for r in rows]
    return Page(items, (rows[-1]["line"], rows[-1]["id"]) if more else None)


def batch_outcome(
    engine: Engine, broadcast_id: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(messages in input order, row errors in input order) of a small broadcast just created."""
    with engine.connect() as conn:
        msgs = queries_repo.recipients_by_line(conn, broadcast_id)
        errors = queries_repo.row_errors_page(conn, broadcast_id, after=None, limit=1_000_000)
    return msgs, errors


def report_rows(
    engine: Engine, broadcast_id: int, page_rows: int = REPORT_PAGE_ROWS
) -> Iterator[tuple[Any, ...]]:
    """Every message of a broadcast as a report row, fetched ``page_rows`` at a time.

    Each page is its own short read, so a slow client never holds a transaction open.
    """
    after = 0
    while True:
        with engine.connect() as conn:
            page = queries_repo.report_page(conn, broadcast_id, after_id=after, limit=page_rows)
        yield from page
        if len(page) < page_rows:
            return
        after = int(page[-1][0])


def row_error_rows(
    engine: Engine, broadcast_id: int, page_rows: int = REPORT_PAGE_ROWS
) -> Iterator[tuple[Any, ...]]:
    """Every row error of a broadcast as (line, value, reason), in file order, paged."""
    after: tuple[int, int] | None = None
    while True:
        with engine.connect() as conn:
            page = queries_repo.row_errors_page(conn, broadcast_id, after=after, limit=page_rows)
        for r in page:
            yield (r["line"], r["value"], r["reason"])
        if len(page) < page_rows:
            return
        after = (int(page[-1]["line"]), int(page[-1]["id"]))


def queue_depth(engine: Engine) -> dict[str, int]:
    """QUEUE messages per sender code now (all workspaces): the metrics gauge's source."""
    with engine.connect() as conn:
        return queries_repo.queue_depth(conn)


def message_details(
    engine: Engine, workspace_id: int, broadcast_id: int, limit: int
) -> list[dict[str, Any]]:
    """The first ``limit`` messages with text, client id and times (naive UTC), for seed 004."""
    require_broadcast(engine, broadcast_id, workspace_id)
    with engine.connect() as conn:
        return queries_repo.message_details(conn, broadcast_id, limit)


#: Steps of a broadcast's timeline.
TIMELINE_STEPS = ("minute", "second")
#: Most buckets one timeline answer holds (an hour by the second, 2.5 days by the minute).
TIMELINE_MAX_BUCKETS = 3_600
#: How the store writes a bucket (``_bucket`` in store/queries_repo.py), per step.
_STORE_BUCKET = {"minute": "%Y-%m-%d %H:%M", "second": "%Y-%m-%d %H:%M:%S"}


def timeline(
    engine: Engine,
    workspace_id: int | None,
    broadcast_id: int,
    step: str = "minute",
    *,
    before: datetime | None = None,
    limit: int = TIMELINE_MAX_BUCKETS,
) -> Timeline:
    """Sent, delivered and failed per minute (or second), oldest first, empty buckets left out.

    At most the newest ``limit`` buckets (older than ``before``); ``next_before`` is where the
    older ones end (pass it as ``before``), None when there are none. A broadcast sent one
    message a second over days is tens of megabytes of buckets: never built in one answer.
    """
    require_broadcast(engine, broadcast_id, workspace_id)
    fmt = _STORE_BUCKET[step]
    with engine.connect() as conn:
        series = queries_repo.timeline_counts(
            conn,
            broadcast_id,
            step,
            FAILED_STATES,
            before=before.strftime(fmt) if before else None,
            limit=limit + 1,
        )
    # A series cut at its limit is complete only from its oldest kept bucket on.
    floor = max((rows[limit - 1][0] for rows in series.values() if len(rows) > limit), default="")
    counts: dict[str, dict[str, int]] = {}
    for name, rows in series.items():
        for bucket, n in rows[:limit]:
            if bucket >= floor:
                counts.setdefault(bucket, {})[name] = n
    keys = sorted(counts)
    if len(keys) > limit:
        keys, floor = keys[-limit:], keys[-limit]
    nxt = datetime.strptime(floor, fmt).replace(tzinfo=UTC) if floor else None
    # A bucket's text is the store's UTC truncated to the step: naive UTC, shown with Z.
    buckets = [Bucket(datetime.strptime(k, fmt), **counts[k]) for k in keys]
    return Timeline(step, buckets, next_before=nxt)


def breakdown(engine: Engine, workspace_id: int | None, broadcast_id: int) -> Breakdown:
    """Messages by final (or current) status, and the failed ones by status and reason."""
    require_broadcast(engine, broadcast_id, workspace_id)
    with engine.connect() as conn:
        rows = queries_repo.status_breakdown(conn, broadcast_id)
    by_status: dict[str, int] = {}
    for status, _, n in rows:
        by_status[status] = by_status.get(status, 0) + n
    reasons = [
        ReasonCount(status, error, n) for status, error, n in rows if status in FAILED_STATES
    ]
    return Breakdown(by_status, reasons)


def recipient_messages(
    engine: Engine,
    workspace_id: int,
    recipient: str,
    *,
    after: tuple[int, ...] | None = None,
    limit: int = 50,
) -> Page[RecipientMessage]:
    """One number's messages in every broadcast of the workspace, newest first."""
    with engine.connect() as conn:
        rows = queries_repo.recipient_messages(
            conn, workspace_id, recipient, before_id=after[0] if after else None, limit=limit + 1
        )
    more = len(rows) > limit
    rows = rows[:limit]
    items = [RecipientMessage.of(r) for r in rows]
    return Page(items, (rows[-1]["id"],) if more else None)
