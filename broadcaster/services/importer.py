"""Store a broadcast's rows in short transactions, then publish it in one: all or nothing
without holding the database's write lock for a whole file.

One transaction per file held SQLite's single write lock for the whole import (a 200 MB upload:
~50 s), and every other writer of every tenant (sends, receipts, codes) waited for it, failing
past the 60 s busy timeout. PostgreSQL kept one huge transaction open too. Instead::

    batch 1   tx: insert the broadcast as IMPORTING (hidden) + its first rows
    batch k   tx: heartbeat (compare-and-set on IMPORTING) + rows
    last      tx: its rows + publish: IMPORTING -> SCHEDULED with the counters (then -> COMPLETED
                  through the transition table when nothing is sendable),
                  and the caller's ``on_publish`` hook (the drop folder's ledger key), together

Rows are read, validated and rendered *before* their transaction opens, so a transaction lasts
only as long as its INSERTs (tens of ms for ``INSERT_BATCH_ROWS`` rows) and other writers
get in between. A file of one batch is one transaction, as before.

All or nothing still holds because an IMPORTING broadcast does not exist for any reader: no get,
list, count, report, scheduler or poller query selects it (``STAGING_STATES``). A failure
deletes what was staged (IMPORTING -> DISCARDING, then batched deletes); a process that dies
leaves an IMPORTING row whose heartbeat stops, and :func:`sweep_abandoned` (run by every poller
tick) removes it once the heartbeat is ``import_stale_s`` old.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from operator import itemgetter
from typing import Any

from broadcaster.constants import INSERT_BATCH_ROWS
from broadcaster.domain.counts import derive_counters
from broadcaster.domain.states import BroadcastAction, BroadcastStatus, MessageStatus, StagingStatus
from broadcaster.errors import ImportAbandoned
from broadcaster.services.recipients import Draft, RowError
from broadcaster.services.transitions import try_transition
from broadcaster.store import broadcasts_repo, imports_repo, optouts_repo
from broadcaster.store.db import Connection, Engine, utcnow

log = logging.getLogger(__name__)

#: Positions in an import row (``broadcasts_repo.MESSAGE_ROW_COLUMNS``) that the suppression
#: step reads and rewrites.
_RECIPIENT = broadcasts_repo.MESSAGE_ROW_COLUMNS.index("recipient")
_STATUS = broadcasts_repo.MESSAGE_ROW_COLUMNS.index("status")
_ERROR = broadcasts_repo.MESSAGE_ROW_COLUMNS.index("error")
_status_of = itemgetter(_STATUS)

#: Called inside the publishing transaction with the broadcast's id; raising aborts the import
#: (nothing becomes visible). The drop folder records its file's key here.
PublishHook = Callable[[Connection, int], None]
#: Told how many rows an import has read so far, after each batch it stored.
ProgressHook = Callable[[int], None]

DUPLICATE = "duplicate"
#: Why a broadcast with no sendable recipient is COMPLETED as soon as it is stored.
NO_SENDABLE_REASON = "no sendable recipients"
#: Abandoned imports looked at per sweep.
SWEEP_BROADCASTS = 20
#: Delete batches one sweep spends at most (the rest waits for the next tick).
SWEEP_BATCHES = 50


#: Each message status as the plain string stored (an enum's ``.value`` costs per row).
_STATUS_TEXT = {status: status.value for status in MessageStatus}


@dataclass
class Batch:
    """Rows of one transaction, prepared before it opens, as the tuples the store takes
    (``broadcasts_repo.MESSAGE_ROW_COLUMNS`` / ``ERROR_ROW_COLUMNS``): no dict per row."""

    messages: list[tuple[Any, ...]] = field(default_factory=list)
    errors: list[tuple[Any, ...]] = field(default_factory=list)


@dataclass
class _Tally:
    """What the stored rows add up to; counted as they are stored, so publishing reads nothing."""

    invalid: int = 0
    duplicates: int = 0
    counts: Counter[str] = field(default_factory=Counter)


def batches_of(items: Iterable[Draft | RowError], rows: int) -> Iterator[Batch]:
    """Drafts and row errors in batches of at most ``rows`` each; at least one (maybe empty)."""
    batch = Batch()
    messages, errors = batch.messages, batch.errors
    status_text = _STATUS_TEXT
    for item in items:
        if type(item) is RowError:
            errors.append((item.line, item.value, item.reason))
            if len(errors) < rows:
                continue
        else:
            assert isinstance(item, Draft)
            messages.append(
                (
                    item.line,
                    item.recipient,
                    item.text,
                    item.encoding,
                    item.segments,
                    status_text[item.status],
                    item.external_id,
                    item.client_id,
                    item.tz,
                    None,  # error: set by the suppression step for opted-out recipients
                )
            )
            if len(messages) < rows:
                continue
        yield batch
        batch = Batch()
        messages, errors = batch.messages, batch.errors
    yield batch


def _with_last(batches: Iterator[Batch]) -> Iterator[tuple[Batch, bool]]:
    """Each batch and whether it is the last: the next one is read before this one is stored,
    so the last batch and the publication share one transaction."""
    current = next(batches)
    for following in batches:
        yield current, False
        current = following
    yield current, True


class _Staged:
    """One import in progress: which broadcast row it owns and what is stored so far."""

    def __init__(self, engine: Engine, values: dict[str, Any], on_publish: PublishHook | None):
        self.engine = engine
        self.values = values
        self.on_publish = on_publish
        self.broadcast_id: int | None = None  # set once its first transaction committed
        self.tally = _Tally()
        self.created_at = utcnow()  # every message of one import carries the same

    def store(self, batch: Batch, last: bool) -> dict[str, Any] | None:
        """One transaction: the batch, and on the last one the publication; the row if published."""
        now = utcnow()
        with (
            self.engine.connect() as conn,
            broadcasts_repo.import_cache(conn),
            conn.begin(),
        ):
            if not last:
                imports_repo.staging_commit(conn)
            if self.broadcast_id is None:
                bid = broadcasts_repo.insert_broadcast(
                    conn, status=StagingStatus.IMPORTING.value, **self.values
                )
            else:
                bid = self.broadcast_id
                if not imports_repo.heartbeat(conn, bid, now):
                    raise ImportAbandoned(
                        f"import of broadcast {bid} was abandoned (no progress for too long)"
                    )
            self._insert(conn, bid, batch)
            row = self._publish(conn, bid, now) if last else None
        self.broadcast_id = bid
        return row

    def _insert(self, conn: Connection, bid: int, batch: Batch) -> None:
        tally = self.tally
        self._suppress(conn, batch)
        duplicates = broadcasts_repo.store_messages(conn, bid, self.created_at, batch.messages)
        errors = batch.errors
        tally.invalid += len(errors)
        tally.counts.update(map(_status_of, batch.messages))  # counted in C, not per row
        if duplicates:  # the unique index said: this recipient is already in the broadcast
            by_line = {m[0]: m for m in batch.messages}
            for line in duplicates:
                m = by_line[line]
                tally.counts[m[_STATUS]] -= 1
                errors.append((line, m[_RECIPIENT], DUPLICATE))
            tally.duplicates += len(duplicates)
        broadcasts_repo.store_row_errors(conn, bid, errors)

    def _suppress(self, conn: Connection, batch: Batch) -> None:
        """Recipients on the workspace's suppression list are stored BLACKLISTED, never sent
        (one primary-key look-up per batch; a keyword's confirmation is exempt). An opt-out
        that comes later is refused by the send claim."""
        if self.values.get("reply_to_inbound") is not None:
            return
        queue = MessageStatus.QUEUE.value
        rows = batch.messages  # tuples in broadcasts_repo.MESSAGE_ROW_COLUMNS order
        queued = [m[_RECIPIENT] for m in rows if m[_STATUS] == queue]
        found = optouts_repo.numbers_among(conn, self.values["workspace_id"], queued)
        if not found:
            return
        blacklisted = MessageStatus.BLACKLISTED.value
        for i, m in enumerate(rows):
            if m[_STATUS] == queue and m[_RECIPIENT] in found:
                rows[i] = (
                    *m[:_STATUS],
                    blacklisted,
                    *m[_STATUS + 1 : _ERROR],
                    optouts_repo.SUPPRESSED_REASON,
                )

    def _publish(self, conn: Connection, bid: int, now: datetime) -> dict[str, Any]:
        counters, sendable = _outcome(self.tally)
        if not imports_repo.publish(conn, bid, BroadcastStatus.SCHEDULED, now, **counters):
            raise ImportAbandoned(
                f"import of broadcast {bid} was abandoned before it was published"
            )
        if not sendable:
            complete_unsendable(conn, bid, now)
        if self.on_publish is not None:
            self.on_publish(conn, bid)
        row = broadcasts_repo.get_broadcast(conn, bid)
        assert row is not None  # published in this very transaction
        return row


def _outcome(tally: _Tally) -> tuple[dict[str, Any], bool]:
    """The counters a broadcast of these stored rows is published with, and whether any of its
    messages is left to send."""
    counts = dict(tally.counts)
    values: dict[str, Any] = {
        **derive_counters(counts),
        "invalid": tally.invalid,
        "duplicates": tally.duplicates,
    }
    return values, counts.get(MessageStatus.QUEUE.value, 0) > 0


def complete_unsendable(conn: Connection, broadcast_id: int, now: datetime) -> None:
    """SCHEDULED → COMPLETED for a broadcast with nothing to send (every row invalid or
    refused): done now, never stuck SCHEDULED. The transition table's compare-and-set, like
    every other change of a broadcast's status, inside the caller's transaction (which holds
    the row it has just published or edited, so the move cannot be lost)."""
    moved = try_transition(
        conn,
        broadcast_id,
        BroadcastAction.COMPLETE,
        among=frozenset({BroadcastStatus.SCHEDULED}),
        started_at=now,
        ended_at=now,
        updated_at=now,
        status_reason=NO_SENDABLE_REASON,
    )
    assert moved, f"broadcast {broadcast_id} left SCHEDULED inside its own transaction"


def store_in(
    conn: Connection,
    engine: Engine,
    broadcast_id: int,
    items: Iterable[Draft | RowError],
    *,
    workspace_id: int,
) -> tuple[dict[str, Any], bool]:
    """Store rows of an already visible broadcast inside the caller's transaction (an edit of
    one that has not started, whose row the caller holds); the counters it gets, and whether any
    message is left to send (if not, the caller completes it: :func:`complete_unsendable`).
    ``workspace_id``: whose suppression list applies to the new recipients."""
    staged = _Staged(engine, {"workspace_id": workspace_id}, None)
    for batch in batches_of(items, INSERT_BATCH_ROWS):
        staged._insert(conn, broadcast_id, batch)
    return _outcome(staged.tally)


def import_rows(
    engine: Engine,
    values: dict[str, Any],
    items: Iterable[Draft | RowError],
    *,
    on_publish: PublishHook | None = None,
    batch_rows: int = INSERT_BATCH_ROWS,
    on_progress: ProgressHook | None = None,
) -> dict[str, Any]:
    """Store a broadcast (``values``: its columns) with its rows; return its published row.

    ``on_progress`` is told the rows read so far after each stored batch (a progress bar).

    Raises whatever reading or storing raised, after removing everything staged: on any
    failure nothing of the import is visible, and nothing of it is left once this returns
    (unless the database itself failed; then the sweep removes it later).
    """
    return import_batches(
        engine,
        values,
        batches_of(items, batch_rows),
        on_publish=on_publish,
        on_progress=on_progress,
    )


def import_batches(
    engine: Engine,
    values: dict[str, Any],
    batches: Iterable[Batch],
    *,
    on_publish: PublishHook | None = None,
    on_progress: ProgressHook | None = None,
) -> dict[str, Any]:
    """:func:`import_rows` for rows already in batches (prepared elsewhere, e.g. by the
    producer process of a big file: :mod:`broadcaster.services.ingest_child`); at least one."""
    staged = _Staged(engine, values, on_publish)
    row: dict[str, Any] | None = None
    try:
        read = 0
        for batch, last in _with_last(iter(batches)):
            row = staged.store(batch, last)
            read += len(batch.messages) + len(batch.errors)
            if on_progress is not None:
                on_progress(read)
        assert row is not None  # the last batch published it
        return row
    except BaseException:
        if staged.broadcast_id is not None:
            discard(engine, staged.broadcast_id)
        raise


def discard(engine: Engine, broadcast_id: int) -> None:
    """Remove a staged broadcast now, in batches; a database failure leaves it to the sweep."""
    try:
        with engine.begin() as conn:
            taken = imports_repo.take_for_discard(conn, broadcast_id)
        if taken:
            _purge(engine, broadcast_id, max_batches=None)
    except Exception:
        log.exception("import of broadcast %s: clean-up failed; the sweep removes it", broadcast_id)


def _purge(engine: Engine, broadcast_id: int, max_batches: int | None) -> int:
    """Delete a DISCARDING broadcast's rows batch by batch, then the row; batches spent.

    Stops after ``max_batches`` (None: no limit) with the row still DISCARDING, to go on later.
    """
    spent = 0
    while max_batches is None or spent < max_batches:
        with engine.begin() as conn:
            removed = imports_repo.delete_rows(conn, broadcast_id, INSERT_BATCH_ROWS)
        spent += 1
        if removed == 0:
            with engine.begin() as conn:
                imports_repo.delete_broadcast(conn, broadcast_id)
            break
    return spent


def sweep_abandoned(engine: Engine, stale_s: float, now: datetime) -> list[int]:
    """Remove imports whose process died (no heartbeat for ``stale_s``), a bounded amount per
    call; returns the broadcast ids taken. Safe beside live imports and other sweeps."""
    stale_before = now - timedelta(seconds=stale_s)
    with engine.connect() as conn:
        candidates = imports_repo.abandoned(conn, stale_before, SWEEP_BROADCASTS)
    taken: list[int] = []
    budget = SWEEP_BATCHES
    for bid in candidates:
        if budget <= 0:
            break
        with engine.begin() as conn:
            if not imports_repo.take_for_discard(conn, bid, stale_before):
                continue  # it came back to life (a heartbeat), or is gone
        log.warning("sweeping broadcast %s: its import stopped without finishing", bid)
        taken.append(bid)
        budget -= _purge(engine, bid, max_batches=budget)
    return taken
