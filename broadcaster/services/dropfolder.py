"""The drop folder: a recipient file put in ``DIR/inbox/`` becomes a broadcast.

::

    DIR/
    ├── defaults.json                 fields for every file (text, from, at, tz, name, region, sheet)
    ├── inbox/   list.csv             CSV, TXT, TSV, XLSX or JSON recipients
    │            list.broadcast.json  optional sidecar (or list.csv.broadcast.json): fields for this file
    ├── done/    list.csv  list.csv.result.json  list.csv.broadcast.json
    └── failed/  bad.csv   bad.csv.error.json    bad.csv.broadcast.json

One pass (:meth:`DropFolder.poll`) looks at every file in the inbox:

* **Temporary names are never read**: ``.tmp .temp .part .partial .crdownload .download
  .filepart .swp``, names ending in ``~`` and names starting with ``.`` or ``~``. A writer that
  writes under such a name and renames when done is the safe way to deliver.
* **A file still being written is never read**: a file is taken only once its last change
  (the later of mtime and ctime) is at least ``stable_s`` old at the pass's ``now``, and its size
  and times are the same again after it has been hashed and read (else everything read is
  rolled back and the file waits). A sidecar must have settled too.
* **A sidecar that arrives after its data file** counts if it lands within ``stable_s`` of the data
  file's last change: the data file waits that long anyway. Later than that, the file has
  already been imported with ``defaults.json`` (its result says so); the late sidecar then waits
  for a data file of its name and, if none comes within ``orphan_s``, goes to ``failed/``. Write
  the sidecar first, or both under temporary names, to be sure.
* **A restart never imports a file twice**: the import key (SHA-256 of the file's bytes and of the
  fields given by sidecar and defaults) is written to ``imported_files`` in the transaction that
  publishes the broadcast (:mod:`ledger`); a watcher killed before that leaves no key
  and nothing visible, so the file is imported on the next pass, once. A file whose key is known, because the watcher
  crashed between commit and move or because the same content was dropped under another name
  with the same fields, goes to ``done/`` with the note "already imported as broadcast N". The
  same recipients with a different text (sidecar) are a new broadcast.
* **Nothing is overwritten**: a name taken in ``done/`` or ``failed/`` gets ``-2``, ``-3``… before
  its extension.

Time comes in as an argument (``poll(now=…)``), so tests drive stability without sleeping.
Names, settling and moves are in :mod:`dropfolder_files`; the fields in :mod:`requests`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from broadcaster.config import Settings
from broadcaster.domain.wire import iso8601, to_wire
from broadcaster.errors import BroadcasterError, FileRejected, ImportAbandoned, InputError
from broadcaster.ingest import open_recipients
from broadcaster.logsafe import printable
from broadcaster.services.broadcasts import create_from_table
from broadcaster.services.dropfolder_files import (
    DATA_SUFFIXES,
    DEFAULTS_FILE,
    ERROR_SUFFIX,
    RESULT_SUFFIX,
    SIDECAR_SUFFIX,
    Entry,
    Seen,
    file_away,
    kind_of,
    settled,
)
from broadcaster.services.importer import PublishHook
from broadcaster.services.ledger import Known, create_once, sha256_file
from broadcaster.services.requests import (
    check_required,
    merge,
    new_broadcast,
    read_fields,
    read_fields_file,
)
from broadcaster.services.views import BroadcastView
from broadcaster.store import broadcasts_repo, codes_repo, db
from broadcaster.store.db import Connection, Engine

log = logging.getLogger(__name__)

#: Row errors copied into a result file; the rest are in the database (``broadcast errors``).
ROW_ERRORS_SHOWN = 50
#: Database errors that say "try again later", not "this file is bad".
TRANSIENT_DB_ERRORS = db.TRANSIENT_DB_ERRORS


class EventKind(StrEnum):
    """What a pass did with one file."""

    #: A broadcast was created; the file is in done/ with its result.
    IMPORTED = "imported"
    #: Its import key was already recorded; moved to done/ with a note naming the broadcast.
    ALREADY_IMPORTED = "already_imported"
    #: Refused; the file (and its sidecar) are in failed/ with an error report.
    FAILED = "failed"
    #: Still being written (or its sidecar is); left in the inbox.
    WAITING = "waiting"
    #: Not done for a passing reason (database unreachable, file changed while read); next pass.
    RETRY = "retry"


@dataclass(frozen=True)
class Event:
    kind: EventKind
    file: str
    detail: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"event": self.kind.value, "file": self.file, **self.detail}


def import_key(sha256: str, fields: dict[str, Any]) -> str:
    """The ledger key of a dropped file: its content and the fields it was given."""
    canonical = json.dumps({"sha256": sha256, "fields": fields}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass
class Listing:
    """The inbox at one look, by kind."""

    data: list[Entry] = field(default_factory=list)
    sidecars: dict[str, Entry] = field(default_factory=dict)
    others: list[Entry] = field(default_factory=list)


class FileChanged(Exception):
    """The file changed while it was being read: roll back, try again once it settles."""


def _gone(entry: Entry) -> Event:
    return Event(
        EventKind.RETRY,
        entry.name,
        {"reason": "left the inbox while being handled (removed, or taken by another watcher)"},
    )


def _iso(now_s: float) -> str:
    return iso8601(datetime.fromtimestamp(now_s, UTC))


@dataclass
class DropFolder:
    """One drop folder: ``root/inbox``, ``root/done``, ``root/failed`` and ``root/defaults.json``."""

    root: Path
    engine: Engine
    settings: Settings
    #: A file is read only after this long without a change (seconds).
    stable_s: float = 2.0
    #: A sidecar with no data file for this long goes to failed/ (seconds).
    orphan_s: float = 3600.0
    #: Workspace of the broadcasts, unless defaults.json or a sidecar names another.
    workspace: str = codes_repo.DEFAULT_WORKSPACE
    clock: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        self.root = Path(self.root)

    @property
    def inbox(self) -> Path:
        return self.root / "inbox"

    @property
    def done(self) -> Path:
        return self.root / "done"

    @property
    def failed(self) -> Path:
        return self.root / "failed"

    def ensure(self) -> None:
        for d in (self.inbox, self.done, self.failed):
            d.mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------ one pass

    def poll(
        self, now: float | None = None, stop: Callable[[], bool] = lambda: False
    ) -> list[Event]:
        """Look at every file in the inbox once; ``now`` is seconds since the epoch.

        ``stop`` is asked between files, so a shutdown waits for at most the file being imported.
        """
        now = self.clock() if now is None else now
        self.ensure()
        defaults_path = self.root / DEFAULTS_FILE
        try:
            defaults = read_fields_file(defaults_path) if defaults_path.exists() else {}
        except InputError as exc:
            # Every file may depend on it: nothing is imported until it is fixed.
            return [
                Event(
                    EventKind.RETRY,
                    DEFAULTS_FILE,
                    {"reason": str(exc), "line": getattr(exc, "line", None)},
                )
            ]
        listing = self._list()
        events: list[Event] = []
        for entry in listing.data:
            if stop():
                return events
            events.append(self._one(entry, listing, defaults, now))
        events += self._orphans(listing, now)
        events += self._others(listing, now)
        return events

    def _list(self) -> Listing:
        listing = Listing()
        with os.scandir(self.inbox) as it:
            names = sorted(e.name for e in it)
        for name in names:
            path = self.inbox / name
            seen = Seen.of(path)
            if seen is None or path.is_dir() and not path.is_symlink():
                continue  # gone already, or a folder (ignored)
            kind = kind_of(name)
            entry = Entry(name, path, seen)
            if kind == "temporary":
                continue
            if not seen.regular:
                listing.others.append(entry)
            elif kind == "data":
                listing.data.append(entry)
            elif kind == "sidecar":
                listing.sidecars[name] = entry
            else:
                listing.others.append(entry)
        listing.data.sort(key=lambda e: (e.seen.last_change_s, e.name))
        return listing

    # ------------------------------------------------------------------ sidecars

    @staticmethod
    def _stem(name: str) -> str:
        return name.rsplit(".", 1)[0]

    def _sidecar_for(self, entry: Entry, listing: Listing) -> Entry | None:
        """``list.csv.broadcast.json`` first, then ``list.broadcast.json`` if no other data file
        in the inbox shares the stem ``list`` (which one it meant would be a guess)."""
        full = listing.sidecars.get(entry.name + SIDECAR_SUFFIX)
        if full is not None:
            return full
        stem_name = self._stem(entry.name) + SIDECAR_SUFFIX
        by_stem = listing.sidecars.get(stem_name)
        if by_stem is None:
            return None
        rivals = [
            d.name
            for d in listing.data
            if d.name != entry.name
            and self._stem(d.name) == self._stem(entry.name)
            and d.name + SIDECAR_SUFFIX not in listing.sidecars
        ]
        if rivals:
            raise FileRejected(
                stem_name,
                f"sidecar is ambiguous: it could belong to {entry.name} or "
                f"{', '.join(rivals)}; name it {entry.name}{SIDECAR_SUFFIX}",
            )
        return by_stem

    def _claimed(self, listing: Listing) -> set[str]:
        claimed = set()
        for d in listing.data:
            claimed.add(d.name + SIDECAR_SUFFIX)
            claimed.add(self._stem(d.name) + SIDECAR_SUFFIX)
        return claimed

    # ------------------------------------------------------------------ one data file

    def _one(self, entry: Entry, listing: Listing, defaults: dict[str, Any], now: float) -> Event:
        sidecar: Entry | None = None
        try:
            sidecar = self._sidecar_for(entry, listing)
            for e in (entry, sidecar):
                if e is not None and not settled(e.seen, now, self.stable_s):
                    return self._waiting(entry, e, now)
            side = read_fields_file(sidecar.path) if sidecar else {}
            given = merge({"workspace": self.workspace}, defaults, side)
            sha = sha256_file(entry.path)
            key = import_key(sha, given)
            made, known = create_once(
                self.engine,
                key,
                entry.name,
                lambda claim: self._create(entry, defaults, side, claim),
            )
        except FileChanged:
            return Event(
                EventKind.RETRY,
                entry.name,
                {"reason": "changed while being read; it is read again once it settles"},
            )
        except ImportAbandoned as exc:  # stalled so long that it was swept: not the file's fault
            return Event(EventKind.RETRY, entry.name, {"reason": str(exc)})
        except TRANSIENT_DB_ERRORS as exc:
            log.warning(
                "drop folder: %s waits for the database: %s", printable(entry.name), printable(exc)
            )
            return Event(EventKind.RETRY, entry.name, {"reason": f"database: {type(exc).__name__}"})
        except BroadcasterError as exc:
            return self._fail(entry, sidecar, exc, now)
        except FileNotFoundError:
            return _gone(entry)
        except Exception as exc:  # a bug must not make the watcher retry one file forever
            log.exception("drop folder: unexpected error on %s", printable(entry.name))
            return self._fail(
                entry,
                sidecar,
                BroadcasterError(f"internal error: {type(exc).__name__}: {exc}"),
                now,
            )
        if known is not None:
            return self._already(entry, sidecar, sha, known, now)
        assert made is not None
        return self._imported(entry, sidecar, sha, given, made, now)

    def _create(
        self, entry: Entry, defaults: dict[str, Any], side: dict[str, Any], claim: PublishHook
    ) -> tuple[BroadcastView, list[dict[str, Any]]]:
        """Read and create (the view, and the first row errors); the publication checks the file did not change and records its key."""
        sheet = merge(defaults, side).get("sheet")

        def publish(conn: Connection, broadcast_id: int) -> None:
            # The whole file has been read by now: a change since the listing means what was
            # read may be half old, half new. Nothing is published; it is read again.
            if Seen.of(entry.path) != entry.seen:
                raise FileChanged(entry.name)
            claim(conn, broadcast_id)

        with open_recipients(
            entry.path,
            sheet=sheet,
            max_rows=self.settings.max_rows,
            max_file_bytes=self.settings.max_file_bytes,
            source=entry.name,
        ) as table:
            # A JSON file's own keys ("from", "text", "startDate"…) sit between defaults and sidecar.
            own = read_fields(table.meta, entry.name, strict=False) if table.meta else {}
            fields = merge({"workspace": self.workspace}, defaults, own, side)
            check_required(fields, entry.name)
            req = new_broadcast(fields, workspace=self.workspace)
            view = create_from_table(self.engine, self.settings, table, req, on_publish=publish)
        with self.engine.connect() as conn:
            errors = broadcasts_repo.row_error_page(conn, view.id, limit=ROW_ERRORS_SHOWN)
        return view, errors

    def _waiting(self, entry: Entry, unsettled: Entry, now: float) -> Event:
        age = max(0.0, now - unsettled.seen.last_change_s)
        return Event(
            EventKind.WAITING,
            entry.name,
            {
                "reason": f"{unsettled.name} changed {age:.1f} s ago; read after {self.stable_s:g} s without change",
                "settlesIn_s": round(self.stable_s - age, 3),
            },
        )

    # ------------------------------------------------------------------ reports and moves

    def _imported(
        self,
        entry: Entry,
        sidecar: Entry | None,
        sha: str,
        given: dict[str, Any],
        made: tuple[BroadcastView, list[dict[str, Any]]],
        now: float,
    ) -> Event:
        view, errors = made
        report = {
            "file": entry.name,
            "outcome": "imported",
            "broadcastId": view.id,
            "status": view.status,
            "expectedMessages": view.expected_messages,
            "invalidRows": view.invalid_rows,
            "duplicates": view.duplicates,
            "rowErrors": errors,
            "rowErrorsShown": f"first {len(errors)} of {view.invalid_rows + view.duplicates}",
            "sidecar": sidecar.name if sidecar else None,
            "fields": {k: v for k, v in given.items() if v is not None},
            "sha256": sha,
            "processedAt": _iso(now),
            "broadcast": to_wire(view),
        }
        moved = self._file_away(self.done, entry, sidecar, RESULT_SUFFIX, report)
        if moved is None:
            return _gone(entry)
        return Event(
            EventKind.IMPORTED,
            entry.name,
            {
                k: report[k]
                for k in ("broadcastId", "status", "expectedMessages", "invalidRows", "duplicates")
            }
            | moved,
        )

    def _already(
        self, entry: Entry, sidecar: Entry | None, sha: str, known: Known, now: float
    ) -> Event:
        when = known.created_at.isoformat(timespec="seconds") if known.created_at else "?"
        note = f"already imported as broadcast {known.broadcast_id} (from {known.name} at {when} UTC); not imported again"
        report = {
            "file": entry.name,
            "outcome": "already imported",
            "broadcastId": known.broadcast_id,
            "note": note,
            "sidecar": sidecar.name if sidecar else None,
            "sha256": sha,
            "processedAt": _iso(now),
        }
        moved = self._file_away(self.done, entry, sidecar, RESULT_SUFFIX, report)
        if moved is None:
            return _gone(entry)
        return Event(
            EventKind.ALREADY_IMPORTED,
            entry.name,
            {"broadcastId": known.broadcast_id, "note": note} | moved,
        )

    def _fail(
        self, entry: Entry, sidecar: Entry | None, exc: BroadcasterError, now: float
    ) -> Event:
        if Seen.of(entry.path) is None:
            return _gone(entry)
        report = {
            "file": entry.name,
            "outcome": "failed",
            "source": getattr(exc, "path", None) or entry.name,
            "line": getattr(exc, "line", None),
            "reason": getattr(exc, "reason", None) or str(exc).removeprefix(f"{entry.name}: "),
            "message": str(exc),
            "error": type(exc).__name__,
            "sidecar": sidecar.name if sidecar else None,
            "processedAt": _iso(now),
        }
        moved = self._file_away(self.failed, entry, sidecar, ERROR_SUFFIX, report)
        if moved is None:
            return _gone(entry)
        return Event(
            EventKind.FAILED,
            entry.name,
            {k: report[k] for k in ("source", "line", "reason")} | moved,
        )

    def _file_away(
        self,
        dest: Path,
        entry: Entry,
        sidecar: Entry | None,
        report_suffix: str,
        report: dict[str, Any],
    ) -> dict[str, str] | None:
        return file_away(dest, entry, sidecar, report_suffix, report)

    # ------------------------------------------------------------------ leftovers

    def _orphans(self, listing: Listing, now: float) -> list[Event]:
        events = []
        claimed = self._claimed(listing)
        for name, side in listing.sidecars.items():
            if name in claimed or not settled(side.seen, now, self.orphan_s):
                continue
            stem = name[: -len(SIDECAR_SUFFIX)]
            exc = FileRejected(
                name,
                f"no data file for this sidecar arrived within {self.orphan_s:g} s "
                f"(expected {stem} or {stem}.csv/.txt/.tsv/.xlsx/.json in inbox/)",
            )
            events.append(self._fail(side, None, exc, now))
        return events

    def _others(self, listing: Listing, now: float) -> list[Event]:
        events = []
        for entry in listing.others:
            if not settled(entry.seen, now, self.stable_s):
                continue
            if not entry.seen.regular:
                reason = "not a regular file (a link or device): copy the file itself into inbox/"
            elif kind_of(entry.name) == "report":
                reason = "a drop-folder report, not a recipient file"
            else:
                reason = f"not a recipient file: names must end in {', '.join(DATA_SUFFIXES)}"
            events.append(self._fail(entry, None, FileRejected(entry.name, reason), now))
        return events
