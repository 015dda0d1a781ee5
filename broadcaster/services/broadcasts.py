"""Use cases of a broadcast's life before sending: check a file, create, read."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from broadcaster.config import Settings
from broadcaster.constants import INSERT_BATCH_ROWS
from broadcaster.domain.phones import PhoneNormalizer
from broadcaster.domain.quiet_hours import (
    Window,
    closed_zones,
    next_open,
    parse_validity_s,
    parse_window,
    recipient_zone,
)
from broadcaster.domain.schedule import in_zone, refuse_past_start, start_time_utc, zone
from broadcaster.domain.states import BroadcastStatus, MessageStatus
from broadcaster.domain.templates import Template, parse_template
from broadcaster.domain.wire import camel, iso8601
from broadcaster.errors import FileRejected, InputError, NotFound
from broadcaster.ingest import RecipientTable, open_recipients
from broadcaster.net import guard as netguard
from broadcaster.services.codes import may_use
from broadcaster.services.importer import (
    DUPLICATE,
    ProgressHook,
    PublishHook,
    import_batches,
    import_rows,
)
from broadcaster.services.ingest_child import ProducerChild, worth_a_child
from broadcaster.services.recipients import (
    Draft,
    RowError,
    build_drafts,
    unknown_names,
    with_zones,
)
from broadcaster.services.retries import retry_summary
from broadcaster.services.send_windows import live_counters, window_state
from broadcaster.services.views import BroadcastDetail, BroadcastView, base_fields
from broadcaster.store import broadcasts_repo, codes_repo, optouts_repo
from broadcaster.store.db import Connection, Engine, utcnow

ERRORS_SHOWN = 50


@dataclass
class CheckReport:
    """A dry run over a recipient file: what a broadcast of it would hold."""

    source: str
    valid: int = 0
    invalid: int = 0
    duplicates: int = 0
    total_segments: int = 0
    segments_exceeded: int = 0
    #: Valid recipients on the workspace's suppression list: they would end BLACKLISTED.
    blacklisted: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    #: With a send window: valid recipients per local zone (to say how many would wait now).
    zones: dict[str, int] = field(default_factory=dict)
    window: str | None = None
    #: How many would wait for their window if sent now, and when the first of them may go.
    waiting_for_window: int = 0
    next_window_at: str | None = None
    #: The first valid messages as they would be sent (``--preview N``), in the API's names.
    preview: list[dict[str, Any]] | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "source": self.source,
            "valid": self.valid,
            "invalid": self.invalid,
            "duplicates": self.duplicates,
            "total_segments": self.total_segments,
            "segments_exceeded": self.segments_exceeded,
            "blacklisted": self.blacklisted,
            "errors": self.errors,
        }
        if self.preview is not None:
            out["preview"] = self.preview
        if self.window is not None:
            out.update(
                window=self.window,
                waiting_for_window=self.waiting_for_window,
                next_window_at=self.next_window_at,
                zones=self.zones,
            )
        return out

    def as_wire(self) -> dict[str, Any]:
        """The report in the HTTP API's names (dry-run and ``recipients check --json`` alike)."""
        return {camel(k): v for k, v in self.as_dict().items()}

    def judge_window(self, window: Window, tz: str, now: datetime) -> None:
        """Fill in how many recipients would wait for ``window`` if the broadcast started now."""
        self.window = str(window)
        closed = closed_zones(window, list(self.zones), now)
        self.waiting_for_window = sum(self.zones[z] for z in closed)
        if closed:
            first = min(next_open(window, z, now) for z in closed)
            self.next_window_at = iso8601(in_zone(first, tz))


def _note(errors: list[dict[str, Any]], line: int, value: str, reason: str) -> None:
    if len(errors) < ERRORS_SHOWN:
        errors.append({"line": line, "value": value, "reason": reason})


def _template_for(text: str | None, table: RecipientTable) -> Template:
    template = _optional_template(text, table)
    if template is None:
        raise InputError('no message text: give --text, or a JSON file with a "text" field')
    return template


def _optional_template(text: str | None, table: RecipientTable) -> Template | None:
    text = text if text is not None else table.meta.get("text")
    if not text:
        return None
    template = parse_template(text)
    missing = unknown_names(template, table.columns)
    if missing:
        cols = ", ".join(table.columns or ()) or "none (no header row)"
        raise FileRejected(
            table.source,
            f"template uses {', '.join('{' + m + '}' for m in missing)} "
            f"but the file has no such column; columns: {cols}",
        )
    return template


def check_recipients(
    path: str | Path,
    settings: Settings,
    *,
    text: str | None = None,
    region: str | None = None,
    sheet: str | None = None,
    window: str | None = None,
    tz: str = "UTC",
    now: datetime | None = None,
    suppressed: Callable[[list[str]], set[str]] | None = None,
    preview: int = 0,
) -> CheckReport:
    """Read a file as a broadcast would, store nothing, and say what would happen.

    With a send ``window`` (and the broadcast's zone ``tz`` for numbers of several zones), it
    also says how many would wait for their window if sent at ``now`` (default: the clock).
    ``suppressed`` answers which of a batch of numbers are opted out (see
    :func:`suppressed_in`); without it nothing counts as blacklisted. ``preview``: keep the
    first that many valid messages, rendered, to show them.
    """
    parsed = parse_window(window) if window is not None else None
    zone(tz)
    normalizer = PhoneNormalizer(region or settings.default_region)
    with _open(path, settings, sheet) as table:
        report = CheckReport(source=table.source, preview=[] if preview > 0 else None)
        template = _optional_template(text, table)
        batch: list[str] = []
        seen: set[int] = set()  # E.164 digits as ints: compact enough for a dry run
        for item in build_drafts(table.rows, template, normalizer, table.columns):
            if isinstance(item, RowError):
                report.invalid += 1
                _note(report.errors, item.line, item.value, item.reason)
                continue
            key = int(item.recipient[1:])
            if key in seen:
                report.duplicates += 1
                _note(report.errors, item.line, item.recipient, DUPLICATE)
                continue
            seen.add(key)
            if report.preview is not None and len(report.preview) < preview:
                report.preview.append(_previewed(item))
            report.valid += 1
            report.total_segments += item.segments
            report.segments_exceeded += item.status == MessageStatus.SEGMENTS_EXCEEDED
            if parsed is not None and item.status == MessageStatus.QUEUE:
                local = recipient_zone(item.recipient, tz)
                report.zones[local] = report.zones.get(local, 0) + 1
            batch.append(item.recipient)
            if len(batch) >= INSERT_BATCH_ROWS:
                _count_suppressed(report, batch, suppressed)
        _count_suppressed(report, batch, suppressed)
    if parsed is not None:
        report.judge_window(parsed, tz, now or utcnow())
    return report


def _previewed(draft: Draft) -> dict[str, Any]:
    return {
        "line": draft.line,
        "to": draft.recipient,
        "text": draft.text,
        "encoding": draft.encoding,
        "segments": draft.segments,
        "status": draft.status.value,
    }


def _count_suppressed(
    report: CheckReport, batch: list[str], suppressed: Callable[[list[str]], set[str]] | None
) -> None:
    if suppressed is not None and batch:
        report.blacklisted += len(suppressed(batch))
    batch.clear()


def suppressed_in(engine: Engine, workspace: str) -> Callable[[list[str]], set[str]]:
    """For a dry run: which numbers of a batch the workspace's suppression list holds."""

    def look(numbers: list[str]) -> set[str]:
        with engine.begin() as conn:
            ws = codes_repo.ensure_workspace(conn, workspace)
            return optouts_repo.numbers_among(conn, ws, numbers)

    return look


def _open(
    path: str | Path, settings: Settings, sheet: str | None
) -> AbstractContextManager[RecipientTable]:
    return open_recipients(
        path, sheet=sheet, max_rows=settings.max_rows, max_file_bytes=settings.max_file_bytes
    )


@dataclass(frozen=True, slots=True)
class NewBroadcast:
    """What an operator asks for; recipients come separately (file or table)."""

    sender: str
    text: str | None
    name: str | None = None
    at: str | None = None
    tz: str = "UTC"
    region: str | None = None
    workspace: str = codes_repo.DEFAULT_WORKSPACE
    request_dr: bool = True
    callbacks: tuple[str, ...] = ()
    #: Most bytes (UTF-8) of message text this one request may store; None: no cap (files are
    #: streamed and bounded per row). The API's batch send sets it: a small request must not be
    #: able to store hundreds of megabytes.
    max_text_bytes: int | None = None
    #: Start at once, whatever ``at`` says (``--now``: a past ``at`` is otherwise refused).
    start_now: bool = False
    #: How the caller's user starts at once on purpose, for the refusal of a past ``at``.
    start_now_hint: str = "give --now"
    #: The user recorded as owner (seed 004's ``userName``); None: nobody in particular.
    owner: str | None = None
    #: Quiet hours: ``HH:MM-HH:MM`` in each recipient's local time (``tz`` where a number spans
    #: several zones); None: any hour.
    window: str | None = None
    #: How long after its start an unsent message may still go (seconds or ``2h``); then EXPIRED.
    validity: str | float | None = None
    #: A keyword's confirmation: the inbound message it answers (one reply each; exempt from
    #: the suppression list, since a STOP's confirmation goes to a number just suppressed).
    reply_to_inbound: int | None = None


def create_from_file(
    engine: Engine,
    settings: Settings,
    path: str | Path,
    req: NewBroadcast,
    *,
    sheet: str | None = None,
    on_publish: PublishHook | None = None,
    on_progress: ProgressHook | None = None,
) -> BroadcastView:
    """Store a broadcast and one message per valid recipient, all or nothing."""
    with _open(path, settings, sheet) as table:
        return create_from_table(
            engine, settings, table, req, on_publish=on_publish, on_progress=on_progress
        )


def create_from_table(
    engine: Engine,
    settings: Settings,
    table: RecipientTable,
    req: NewBroadcast,
    *,
    on_publish: PublishHook | None = None,
    on_progress: ProgressHook | None = None,
) -> BroadcastView:
    """All or nothing, in short transactions (:mod:`importer`): a file that fails half-way,
    or a process killed half-way, leaves nothing visible, and other writers are never held up
    for longer than one batch. ``on_publish`` runs in the transaction that makes it visible."""
    template = _template_for(req.text, table)
    sender = req.sender or table.meta.get("from") or ""
    window = parse_window(req.window) if req.window else None
    validity_s = parse_validity_s(req.validity) if req.validity not in (None, "") else None
    now = utcnow()
    start_at = now if req.start_now else start_time_utc(req.at, req.tz, now)
    refuse_past_start(start_at, now, req.start_now_hint)
    for url in req.callbacks:  # refused now, naming why: not recorded to fail on every change
        netguard.check_callback_url_static(url, allow_private=settings.callback_allow_private)
    normalizer = PhoneNormalizer(req.region or settings.default_region)
    with engine.begin() as conn:
        ws = codes_repo.ensure_workspace(conn, req.workspace)
        _require_code(conn, ws, sender, req.workspace)

    def publish(conn: Connection, broadcast_id: int) -> None:
        # Checked again where it counts: the code may have gone while the rows were stored.
        _require_code(conn, ws, sender, req.workspace)
        if zones:
            broadcasts_repo.update_broadcast(conn, broadcast_id, zones=sorted(zones))
        if on_publish is not None:
            on_publish(conn, broadcast_id)

    values = {
        "workspace_id": ws,
        "name": req.name or f"{table.source}",
        "sender_code": sender,
        "template": template.source,
        "start_at": start_at,
        "timezone": req.tz,
        "source": table.source,
        "request_dr": req.request_dr,
        "callbacks": list(req.callbacks) or None,
        "owner": req.owner,
        "send_window": str(window) if window else None,
        "validity_s": validity_s,
        "reply_to_inbound": req.reply_to_inbound,
    }
    zones: set[str] = set()
    if _on_second_core(table, settings, req):
        assert table.reopen is not None
        with ProducerChild(
            table.reopen,
            template=template.source,
            region=req.region or settings.default_region,
            zone_fallback=req.tz if window is not None else None,
            batch_rows=INSERT_BATCH_ROWS,
        ) as child:
            row = import_batches(
                engine, values, child.batches(zones), on_publish=publish, on_progress=on_progress
            )
        return BroadcastView.of(row)
    drafts = build_drafts(table.rows, template, normalizer, table.columns)
    if window is not None:
        drafts = with_zones(drafts, req.tz, zones)
    if req.max_text_bytes is not None:
        drafts = _capped(drafts, req.max_text_bytes)
    return BroadcastView.of(
        import_rows(engine, values, drafts, on_publish=publish, on_progress=on_progress)
    )


def _on_second_core(table: RecipientTable, settings: Settings, req: NewBroadcast) -> bool:
    """Whether a producer process reads this file (:mod:`ingest_child`): a big CSV/TXT file
    read from disk, without a per-request text cap."""
    if req.max_text_bytes is not None:
        return False
    return worth_a_child(table, settings.ingest_child_min_bytes)


def _capped(items: Iterator[Draft | RowError], max_bytes: int) -> Iterator[Draft | RowError]:
    """The drafts, raising InputError (the import then discards what it staged) once their
    texts pass ``max_bytes`` in UTF-8: the refusal comes before the rest is rendered."""
    total = 0
    for item in items:
        if isinstance(item, Draft):
            total += len(item.text.encode("utf-8"))
            if total > max_bytes:
                raise InputError(
                    f"the messages of this request hold over {max_bytes:,} bytes of text; "
                    f"the limit is {max_bytes:,} (send fewer recipients or shorter texts)"
                )
        yield item


def _require_code(conn: Connection, ws: int, sender: str, workspace: str) -> None:
    """CODE_NOT_ALLOWED unless ``workspace`` may send from ``sender`` (its own or shared)."""
    if codes_repo.find_code(conn, ws, sender) is None or not may_use(conn, ws, sender):
        raise InputError(
            f"CODE_NOT_ALLOWED: sender code {sender!r} is not registered in workspace "
            f"{workspace!r} (add it: broadcaster codes add {sender or 'CODE'} --kind …)"
        )


def get_broadcast(
    engine: Engine, broadcast_id: int, workspace: str | None = None, now: datetime | None = None
) -> BroadcastDetail:
    """The broadcast with live counts; ``now`` (default: the clock) judges its send windows."""
    with engine.connect() as conn:
        ws = None
        if workspace is not None:
            with conn.begin():
                ws = codes_repo.ensure_workspace(conn, workspace)
        row = broadcasts_repo.get_broadcast(conn, broadcast_id, ws)
        if row is None or row["status"] == BroadcastStatus.DELETED.value:
            raise NotFound(f"broadcast {broadcast_id} does not exist")
        counts = broadcasts_repo.status_counts(conn, broadcast_id)
        # Counters derived now, not the poller's last copy: what a user reads is never stale.
        view = BroadcastView.of({**row, **live_counters(conn, broadcast_id, counts)})
        retrying, next_retry = retry_summary(conn, broadcast_id)
        window = window_state(conn, row, now or utcnow())
    tz = row["timezone"]
    return BroadcastDetail(
        **base_fields(view),
        retrying=retrying,
        next_retry_at=in_zone(next_retry, tz),
        expires_at=in_zone(window.expires_at, tz),
        waiting_for_window=window.waiting,
        next_window_at=in_zone(window.opens_at, tz),
        counts=counts,
    )


#: The sender-code rule, for the edit of a broadcast (``services/broadcast_edit.py``).
require_code = _require_code
