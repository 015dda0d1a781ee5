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

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from broadcaster.config import Settings
from broadcaster.constants import INSERT_BATCH_ROWS
from broadcaster.domain.contacts import (
    MAX_ATTRIBUTES,
    IdentifierType,
    attribute_text,
    identifier_value,
)
from broadcaster.domain.phones import PhoneNormalizer
from broadcaster.errors import FileRejected, InputError
from broadcaster.ingest import RecipientRow, RecipientTable, RowProblem, open_recipients
from broadcaster.ingest.header import normalize_header
from broadcaster.services.contacts import list_name
from broadcaster.store import codes_repo, contact_stage, contacts_repo
from broadcaster.store.contact_stage import StagedRow
from broadcaster.store.db import Connection, Engine, utcnow

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
    for row in rows:
        report.read += 1
        if isinstance(row, RowProblem):
            report.error(row.line, row.value, row.reason)
            continue
        if columns_given or not layout.named:
            extra = _unnamed_cells(row, layout, source)
            if extra:
                report.error(row.line, row.phone, extra)
                continue
        try:
            idents: dict[IdentifierType, str] = {}
            if row.phone:
                idents[IdentifierType.MOBILE] = identifier_value(
                    IdentifierType.MOBILE, row.phone, region, phones
                )
            for i, kind in layout.identifiers:
                if i < len(row.params) and row.params[i]:
                    idents[kind] = identifier_value(kind, row.params[i], region)
            attrs = {}
            for i, name in layout.attributes:
                if i < len(row.params) and row.params[i]:
                    text = attribute_text(name, row.params[i])
                    if text is not None:
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
) -> dict[str, Any]:
    """Upsert every row of ``table`` into list ``into`` (created if need be; None: into no
    list); the report. ``columns`` names a headerless file's cells after the phone."""
    key = IdentifierType(by.upper()) if by.upper() in KEYS else None
    if key is None:
        raise InputError(f"by: contacts are matched by {' or '.join(KEYS)}, not {by!r}")
    name = list_name(into) if into is not None else None
    layout = _layout(table, columns)
    if key is IdentifierType.EXTERNAL and not any(k is key for _, k in layout.identifiers):
        raise FileRejected(table.source, "matching by EXTERNAL needs an 'external' column")
    report = ImportReport(source=table.source, into=name)
    rows = _parse(
        table.rows, layout, region, report, source=table.source, columns_given=columns is not None
    )
    with engine.connect() as conn:
        contact_stage.create(conn)
        conn.commit()
        try:
            for batch in _batches(rows, batch_rows):
                with conn.begin():  # the connection's temporary table: no lock on the database
                    contact_stage.stage(conn, _staged(batch, key, report))
            with conn.begin():
                _publish(conn, workspace, name, key, report)
        finally:
            if conn.in_transaction():
                conn.rollback()
            contact_stage.drop(conn)
            conn.commit()
    return report.as_dict()


def _publish(
    conn: Connection, workspace: str, name: str | None, key: IdentifierType, report: ImportReport
) -> None:
    """The one transaction that makes the staged rows contacts (and members of ``name``)."""
    now = utcnow()
    ws = codes_repo.ensure_workspace(conn, workspace)
    lid = contacts_repo.ensure_list(conn, ws, name, now) if name is not None else None
    done = contact_stage.publish(conn, ws, lid, key.value, now, ERRORS_SHOWN)
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
        )
