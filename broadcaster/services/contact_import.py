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

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from broadcaster.config import Settings
from broadcaster.constants import INSERT_BATCH_ROWS
from broadcaster.domain.contacts import (
    IdentifierType,
    attribute_text,
    identifier_value,
    merge_attributes,
)
from broadcaster.domain.phones import PhoneNormalizer
from broadcaster.errors import FileRejected, InputError
from broadcaster.ingest import RecipientRow, RecipientTable, RowProblem, open_recipients
from broadcaster.ingest.header import normalize_header
from broadcaster.services.contacts import list_name
from broadcaster.store import codes_repo, contacts_repo
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
    into: str
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


@dataclass(slots=True)
class _Row:
    line: int
    identifiers: dict[IdentifierType, str]
    attributes: dict[str, str]


def _layout(table: RecipientTable) -> _Layout:
    """The file's columns sorted into identifiers and attributes; FileRejected for a header
    that cannot name an attribute (a placeholder could never use it)."""
    idents: list[tuple[int, IdentifierType]] = []
    attrs: list[tuple[int, str]] = []
    for i, raw in enumerate(table.columns or ()):
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
    return _Layout(tuple(idents), tuple(attrs))


def _parse(
    rows: Iterable[RecipientRow | RowProblem],
    layout: _Layout,
    region: str | None,
    report: ImportReport,
) -> Iterator[_Row]:
    """Rows with checked identifiers and attributes; the others become row errors."""
    phones = PhoneNormalizer(region)
    for row in rows:
        report.read += 1
        if isinstance(row, RowProblem):
            report.error(row.line, row.value, row.reason)
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


def _batches(rows: Iterator[_Row], size: int) -> Iterator[list[_Row]]:
    batch: list[_Row] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


class _Batcher:
    """Applies one batch of parsed rows inside the import's transaction."""

    def __init__(self, conn: Connection, ws: int, list_id: int, key: IdentifierType) -> None:
        self.conn, self.ws, self.list_id, self.key = conn, ws, list_id, key

    def apply(self, batch: list[_Row], report: ImportReport) -> None:
        conn, ws, key = self.conn, self.ws, self.key
        keyed = self._keyed(batch, report)
        known = contacts_repo.owners(conn, ws, key.value, list(keyed))
        others = self._other_owners(keyed)
        new = [r for v, r in keyed.items() if v not in known]
        old = [(known[v], r) for v, r in keyed.items() if v in known]
        now = utcnow()
        new_ids = contacts_repo.insert_contacts(
            conn, ws, [merge_attributes({}, r.attributes) for r in new], now
        )
        current = contacts_repo.attributes_of(conn, [c for c, _ in old])
        contacts_repo.update_attributes(
            conn, [(c, {**current.get(c, {}), **r.attributes}) for c, r in old], now
        )
        claims: list[tuple[int, str, str]] = []
        fresh: list[tuple[int, str, str]] = []
        created = set(new_ids)
        taken: dict[tuple[str, str], int] = {}
        for cid, row in [*zip(new_ids, new, strict=True), *old]:
            for kind, value in row.identifiers.items():
                holder = others.get((kind.value, value), taken.get((kind.value, value), cid))
                if holder != cid:  # stored, but without the identifier another contact holds
                    report.error(
                        row.line, value, f"{kind.value} {value} belongs to contact {holder}"
                    )
                    continue
                taken[(kind.value, value)] = cid
                if cid in created:
                    fresh.append((cid, kind.value, value))
                elif kind is not key:
                    claims.append((cid, kind.value, value))
        contacts_repo.insert_identifiers(conn, ws, fresh)
        contacts_repo.set_identifiers(conn, ws, claims)
        report.created += len(new_ids)
        report.updated += len(old)
        contacts_repo.add_members(conn, self.list_id, [*new_ids, *(c for c, _ in old)], now)

    def _keyed(self, batch: list[_Row], report: ImportReport) -> dict[str, _Row]:
        """The batch by key value; a later row of the same key merges into the earlier one."""
        out: dict[str, _Row] = {}
        for row in batch:
            value = row.identifiers.get(self.key)
            if value is None:
                report.error(row.line, "", f"no {self.key.value} value to match contacts by")
                continue
            first = out.get(value)
            if first is None:
                out[value] = row
            else:
                first.identifiers.update(row.identifiers)
                first.attributes.update(row.attributes)
        return out

    def _other_owners(self, keyed: dict[str, _Row]) -> dict[tuple[str, str], int]:
        """(type, value) -> holder for the batch's identifiers other than the key."""
        wanted: dict[str, set[str]] = {}
        for row in keyed.values():
            for kind, value in row.identifiers.items():
                if kind is not self.key:
                    wanted.setdefault(kind.value, set()).add(value)
        out: dict[tuple[str, str], int] = {}
        for name, values in wanted.items():
            held = contacts_repo.owners(self.conn, self.ws, name, sorted(values))
            out.update({(name, value): cid for value, cid in held.items()})
        return out


def import_table(
    engine: Engine,
    table: RecipientTable,
    workspace: str,
    into: str,
    *,
    by: str = IdentifierType.MOBILE.value,
    region: str | None = None,
    batch_rows: int = INSERT_BATCH_ROWS,
) -> dict[str, Any]:
    """Upsert every row of ``table`` into list ``into`` (created if need be); the report."""
    key = IdentifierType(by.upper()) if by.upper() in KEYS else None
    if key is None:
        raise InputError(f"by: contacts are matched by {' or '.join(KEYS)}, not {by!r}")
    name = list_name(into)
    layout = _layout(table)
    if key is IdentifierType.EXTERNAL and not any(k is key for _, k in layout.identifiers):
        raise FileRejected(table.source, "matching by EXTERNAL needs an 'external' column")
    report = ImportReport(source=table.source, into=name)
    with engine.begin() as conn:
        ws = codes_repo.ensure_workspace(conn, workspace)
        lid = contacts_repo.ensure_list(conn, ws, name, utcnow())
        batcher = _Batcher(conn, ws, lid, key)
        for batch in _batches(_parse(table.rows, layout, region, report), batch_rows):
            batcher.apply(batch, report)
        report.members = contacts_repo.member_counts(conn, [lid]).get(lid, 0)
    return report.as_dict()


def import_file(
    engine: Engine,
    settings: Settings,
    path: str | Path,
    workspace: str,
    into: str,
    *,
    by: str = IdentifierType.MOBILE.value,
    region: str | None = None,
    sheet: str | None = None,
) -> dict[str, Any]:
    """:func:`import_table` over a file, with the broadcast readers' limits."""
    with open_recipients(
        path, sheet=sheet, max_rows=settings.max_rows, max_file_bytes=settings.max_file_bytes
    ) as table:
        return import_table(
            engine, table, workspace, into, by=by, region=region or settings.default_region
        )
