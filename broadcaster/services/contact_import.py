"""Import contacts from a recipient file (CSV, TXT, XLSX, JSON) into a list, all or nothing.

The file is read by the broadcast readers (:mod:`broadcaster.ingest`): the phone column is the
``MOBILE``; columns headed ``email``, ``external`` (or ``external_id``) and ``app_alias`` are
those identifiers; every other named column is an attribute. Each row is upserted by its
``MOBILE`` (or by its ``EXTERNAL`` with ``by="EXTERNAL"``): a known contact gets the row's
attributes merged in (the file wins), an unknown one is created. A row that cannot be stored
is a row error with its line (bad number, an identifier another contact holds); the rest go on.

All or nothing: the whole file is one transaction, applied in batches of
``INSERT_BATCH_ROWS`` (one SELECT of the batch's owners, one executemany per table); a file that
fails half-way (too many rows, a broken stream) leaves nothing. That transaction holds SQLite's
write lock for the import (about 75 s per million rows here; see bench/bench_contacts.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from broadcaster.config import Settings
from broadcaster.constants import INSERT_BATCH_ROWS
from broadcaster.domain.contacts import (
    ATTRIBUTE_VALUE_CHARS,
    MAX_ATTRIBUTES,
    VALUE_CHARS,
    IdentifierType,
    attribute_text,
    identifier_value,
)
from broadcaster.domain.phones import PhoneNormalizer
from broadcaster.errors import FileRejected, InputError
from broadcaster.ingest import RecipientRow, RecipientTable, RowProblem, open_recipients
from broadcaster.ingest.header import normalize_header
from broadcaster.services.contacts import list_name
from broadcaster.services.ingest_child import ProducerChild, worth_a_child
from broadcaster.store import codes_repo, contact_stage, contacts_repo
from broadcaster.store.contact_stage import StagedRow
from broadcaster.store.db import Connection, Engine, utcnow

if TYPE_CHECKING:
    from broadcaster.services.importer import ProgressHook

ERRORS_SHOWN = 50
#: Column headers (after ``normalize_header``) that hold an identifier rather than an attribute.
IDENTIFIER_COLUMNS = {
    "email": IdentifierType.EMAIL,
    "emailaddress": IdentifierType.EMAIL,
    "external": IdentifierType.EXTERNAL,
    "externalid": IdentifierType.EXTERNAL,
    "appalias": IdentifierType.APP_ALIAS,
}
KEYS = (IdentifierType.MOBILE.value, IdentifierType.EXTERNAL.value)


@dataclass
class ImportReport:
    """What an import did; ``errors`` holds the first ``ERRORS_SHOWN`` row errors."""

    source: str
    into: str | None
    read: int = 0
    created: int = 0
    updated: int = 0
    invalid: int = 0
    members: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    def error(self, line: int, value: str, reason: str) -> None:
        self.invalid += 1
        if len(self.errors) < ERRORS_SHOWN:
            self.errors.append({"line": line, "value": value[:200], "reason": reason})

    def absorb(self, errors: Iterable[Sequence[Any]], read: int, invalid: int) -> None:
        """What a producer process's report gained: its row errors (line, value, reason)."""
        self.read += read
        self.invalid += invalid
        room = ERRORS_SHOWN - len(self.errors)
        for line, value, reason in list(errors)[: max(room, 0)]:
            self.errors.append({"line": line, "value": value, "reason": reason})

    def add_errors(self, count: int, first: list[tuple[int, str, str]]) -> None:
        """Row errors found after reading (``count``, the first of them by line): the report
        keeps the first ``ERRORS_SHOWN`` of all by line."""
        self.invalid += count
        found = [{"line": line, "value": v[:200], "reason": r} for line, v, r in first]
        self.errors = sorted([*self.errors, *found], key=lambda e: e["line"])[:ERRORS_SHOWN]

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "list": self.into,
            "read": self.read,
            "created": self.created,
            "updated": self.updated,
            "invalidRows": self.invalid,
            "members": self.members,
            "errors": self.errors,
        }


@dataclass(frozen=True, slots=True)
class _Layout:
    """Which params column is which: identifier columns by type, attribute columns by name."""

    identifiers: tuple[tuple[int, IdentifierType], ...]
    attributes: tuple[tuple[int, str], ...]
    #: Whether the columns have names (a header row, or ``columns``); how many are named.
    named: bool = True
    width: int = 0


def parse_columns(text: str | None) -> list[str] | None:
    """``first_name,tier`` (the ``--columns`` option, the ``columns`` form field) as names."""
    if text is None:
        return None
    names = [n.strip() for n in text.split(",")]
    if not any(names) or len(names) > MAX_ATTRIBUTES:
        raise InputError(f"columns: 1 to {MAX_ATTRIBUTES} names separated by commas")
    return names


@dataclass(slots=True)
class _Row:
    line: int
    identifiers: dict[IdentifierType, str]
    attributes: dict[str, str]


def _layout(table: RecipientTable, columns: Sequence[str] | None = None) -> _Layout:
    """The file's columns sorted into identifiers and attributes; FileRejected for a header
    that cannot name an attribute (a placeholder could never use it).

    ``columns`` names the cells after the phone of a file without a header row, in order
    (``--columns first_name,tier``); a file with a header is named by it and refuses them."""
    if columns is not None and table.columns is not None:
        raise FileRejected(
            table.source,
            "the file has a header row, which names its columns: --columns is for files "
            "without one",
        )
    names = table.columns if columns is None else tuple(columns)
    idents: list[tuple[int, IdentifierType]] = []
    attrs: list[tuple[int, str]] = []
    for i, raw in enumerate(names or ()):
        name = raw.strip()
        if not name:
            continue
        kind = IDENTIFIER_COLUMNS.get(normalize_header(name))
        if kind is not None:
            idents.append((i, kind))
            continue
        attr = name.replace(" ", "_").replace("-", "_")
        if not attr.isidentifier() or len(attr) > 64:
            raise FileRejected(
                table.source,
                f"column {raw[:40]!r} cannot name an attribute (letters, digits, _)",
            )
        attrs.append((i, attr))
    if len(attrs) > MAX_ATTRIBUTES:
        raise FileRejected(table.source, f"at most {MAX_ATTRIBUTES} attribute columns")
    return _Layout(tuple(idents), tuple(attrs), named=names is not None, width=len(names or ()))


def _parse(
    rows: Iterable[RecipientRow | RowProblem],
    layout: _Layout,
    region: str | None,
    report: ImportReport,
    *,
    source: str = "",
    columns_given: bool = False,
) -> Iterator[_Row]:
    """Rows with checked identifiers and attributes; the others become row errors."""
    phones = PhoneNormalizer(region)
    mobile, limit = IdentifierType.MOBILE, ATTRIBUTE_VALUE_CHARS
    identifier_columns, attribute_columns = layout.identifiers, layout.attributes
    check_width = columns_given or not layout.named
    for row in rows:
        report.read += 1
        if type(row) is RowProblem:
            report.error(row.line, row.value, row.reason)
            continue
        assert isinstance(row, RecipientRow)
        if check_width:
            extra = _unnamed_cells(row, layout, source)
            if extra:
                report.error(row.line, row.phone, extra)
                continue
        params, width = row.params, len(row.params)
        try:
            idents: dict[IdentifierType, str] = {}
            if row.phone:
                # the broadcast's normaliser and its fast path; for a bad cell, the reason
                number = phones.e164(row.phone) if len(row.phone) <= VALUE_CHARS else None
                idents[mobile] = number or identifier_value(mobile, row.phone, region, phones)
            for i, kind in identifier_columns:
                if i < width and params[i]:
                    idents[kind] = identifier_value(kind, params[i], region)
            attrs: dict[str, str] = {}
            for i, name in attribute_columns:
                if i < width and (text := params[i]):
                    if len(text) > limit or "\x00" in text:
                        attribute_text(name, text)  # raises, saying why
                    attrs[name] = text
        except InputError as exc:
            report.error(row.line, row.phone, str(exc))
            continue
        yield _Row(row.line, idents, attrs)


def _unnamed_cells(row: RecipientRow, layout: _Layout, source: str) -> str | None:
    """Why a row of a headerless file has cells nobody named (a row error), if it has."""
    if len(row.params) <= layout.width or not any(row.params[layout.width :]):
        return None
    if not layout.named:  # dropping them silently would lose what the user gave
        raise FileRejected(
            source,
            f"line {row.line} has cells after the phone, but the file has no header row to "
            "name them: add one, or name them with --columns first_name,tier (the columns "
            "form field over HTTP)",
        )
    return f"{len(row.params)} cells after the phone, but columns names {layout.width}"


def _batches(rows: Iterator[_Row], size: int) -> Iterator[list[_Row]]:
    batch: list[_Row] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _staged(batch: list[_Row], key: IdentifierType, report: ImportReport) -> list[StagedRow]:
    """The batch as staging rows, one per key value (a later row of a key merges into the
    first: its identifiers and attributes win); a row without a key value is a row error."""
    out: dict[str, _Row] = {}
    for row in batch:
        value = row.identifiers.get(key)
        if value is None:
            report.error(row.line, "", f"no {key.value} value to match contacts by")
            continue
        first = out.get(value)
        if first is None:
            out[value] = row
        else:
            first.identifiers.update(row.identifiers)
            first.attributes.update(row.attributes)
    get = IdentifierType
    return [
        (
            r.line,
            value,
            r.identifiers.get(get.MOBILE),
            r.identifiers.get(get.EMAIL),
            r.identifiers.get(get.EXTERNAL),
            r.identifiers.get(get.APP_ALIAS),
            contact_stage.attributes_json(r.attributes),
        )
        for value, r in out.items()
    ]


def import_table(
    engine: Engine,
    table: RecipientTable,
    workspace: str,
    into: str | None,
    *,
    by: str = IdentifierType.MOBILE.value,
    region: str | None = None,
    batch_rows: int = INSERT_BATCH_ROWS,
    columns: Sequence[str] | None = None,
    child_min_bytes: int = 0,
    on_progress: ProgressHook | None = None,
) -> dict[str, Any]:
    """Upsert every row of ``table`` into list ``into`` (created if need be; None: into no
    list); the report. ``columns`` names a headerless file's cells after the phone. A CSV/TXT
    file of at least ``child_min_bytes`` (0: none) is read by a producer process on the
    second core while this one stages, as a broadcast's is. ``on_progress`` is told the rows
    read so far after each staged batch (the command line's progress bar)."""
    key = IdentifierType(by.upper()) if by.upper() in KEYS else None
    if key is None:
        raise InputError(f"by: contacts are matched by {' or '.join(KEYS)}, not {by!r}")
    name = list_name(into) if into is not None else None
    layout = _layout(table, columns)
    if key is IdentifierType.EXTERNAL and not any(k is key for _, k in layout.identifiers):
        raise FileRejected(table.source, "matching by EXTERNAL needs an 'external' column")
    report = ImportReport(source=table.source, into=name)
    if worth_a_child(table, child_min_bytes):
        assert table.reopen is not None
        options = {"by": key.value, "columns": list(columns) if columns is not None else None}
        with ProducerChild(
            table.reopen, region=region, batch_rows=batch_rows, job="contacts", options=options
        ) as child:
            batches = _from_child(child, report)
            return _store(engine, batches, workspace, name, key, report, on_progress)
    rows = _parse(
        table.rows, layout, region, report, source=table.source, columns_given=columns is not None
    )
    staged = (_staged(batch, key, report) for batch in _batches(rows, batch_rows))
    return _store(engine, staged, workspace, name, key, report, on_progress)


def _store(
    engine: Engine,
    batches: Iterable[list[StagedRow]],
    workspace: str,
    name: str | None,
    key: IdentifierType,
    report: ImportReport,
    on_progress: ProgressHook | None = None,
) -> dict[str, Any]:
    """Stage the batches on one connection of the engine, a short transaction each, then
    publish them in one; the staging tables go whatever happens."""
    with engine.connect() as conn:
        contact_stage.create(conn)
        conn.commit()
        try:
            for batch in batches:
                with conn.begin():  # the connection's temporary table: no lock on the database
                    contact_stage.stage(conn, batch)
                if on_progress is not None:
                    on_progress(report.read)
            with conn.begin():
                kinds = contact_stage.prepare(conn, key.value)
            with conn.begin():
                _publish(conn, workspace, name, key, kinds, report)
        finally:
            if conn.in_transaction():
                conn.rollback()
            contact_stage.drop(conn)
            conn.commit()
    return report.as_dict()


def _from_child(child: ProducerChild, report: ImportReport) -> Iterator[list[StagedRow]]:
    """The staged batches a producer process sends (:func:`produce`), its counts into
    ``report``."""
    for staged, errors, read, invalid in child.frames():
        report.absorb(errors, read, invalid)
        yield list(staged)
    report.absorb(*child.end)


def produce(args: dict[str, Any], send: Callable[..., None]) -> None:
    """The producer process's job (:mod:`broadcaster.services.ingest_child`): read, check and
    stage-shape the file's rows exactly as :func:`import_table` does in process, and send each
    batch with what the report gained meanwhile: ``("batch", rows, errors, read, invalid)``,
    then ``("end", errors, read, invalid)``."""
    key, columns = IdentifierType(args["by"]), args["columns"]
    with open_recipients(**args["reopen"]) as table:
        layout = _layout(table, columns)
        report = ImportReport(source=table.source, into=None)
        rows = _parse(
            table.rows,
            layout,
            args["region"],
            report,
            source=table.source,
            columns_given=columns is not None,
        )
        sent = [0, 0, 0]  # errors, read, invalid already sent

        def gained() -> tuple[Any, ...]:
            errors = tuple((e["line"], e["value"], e["reason"]) for e in report.errors[sent[0] :])
            out = (errors, report.read - sent[1], report.invalid - sent[2])
            sent[:] = [len(report.errors), report.read, report.invalid]
            return out

        for batch in _batches(rows, args["batch_rows"]):
            send("batch", tuple(_staged(batch, key, report)), *gained())
        send("end", *gained())


def _publish(
    conn: Connection,
    workspace: str,
    name: str | None,
    key: IdentifierType,
    kinds: list[str],
    report: ImportReport,
) -> None:
    """The one transaction that makes the staged rows contacts (and members of ``name``)."""
    now = utcnow()
    ws = codes_repo.ensure_workspace(conn, workspace)
    lid = contacts_repo.ensure_list(conn, ws, name, now) if name is not None else None
    done = contact_stage.publish(conn, ws, lid, key.value, now, ERRORS_SHOWN, kinds)
    report.created, report.updated = done.created, done.updated
    report.add_errors(done.errors, done.first_errors)
    if lid is not None:
        report.members = contacts_repo.member_counts(conn, [lid]).get(lid, 0)


def import_file(
    engine: Engine,
    settings: Settings,
    path: str | Path,
    workspace: str,
    into: str | None,
    *,
    by: str = IdentifierType.MOBILE.value,
    region: str | None = None,
    sheet: str | None = None,
    columns: Sequence[str] | None = None,
    max_file_bytes: int | None = None,
    source: str | None = None,
    on_progress: ProgressHook | None = None,
) -> dict[str, Any]:
    """:func:`import_table` over a file, with the broadcast readers' limits (an upload's
    ``max_file_bytes`` and its own file name as ``source``)."""
    with open_recipients(
        path,
        sheet=sheet,
        max_rows=settings.max_rows,
        max_file_bytes=max_file_bytes or settings.max_file_bytes,
        source=source,
    ) as table:
        return import_table(
            engine,
            table,
            workspace,
            into,
            by=by,
            region=region or settings.default_region,
            columns=columns,
            child_min_bytes=settings.ingest_child_min_bytes,
            on_progress=on_progress,
        )
