"""Per-recipient results of a broadcast as CSV or XLSX, written as a stream of bytes.

The reports are generators of byte pieces (:func:`report_chunks`), pulled one piece at a time:
the HTTP side asks for the next piece (on its report pool) only once the previous one is written
to the client, so a client that does not read holds no thread, only a paused generator. Rows come
from an iterator (SQL pages of 5,000, each its own short read), so a million-row report never sits
in memory: CSV in 64 KiB pieces; XLSX through openpyxl's write-only mode, which keeps each sheet's
XML in a temporary file, then zips it into another temporary file, served from there in pieces
(the first XLSX byte comes after the last row is read). While it reads rows, the XLSX generator
yields an empty piece every ``HEARTBEAT_ROWS`` rows: each pull is a short slice of work, so a big
report shares the pool with everyone else's and can be abandoned (``close()``) between slices.

``write_csv``, ``write_xlsx`` and ``write_report`` push the same pieces into a ``write`` callable
(``write(b"")`` being a heartbeat). Nothing here knows about HTTP.

Spreadsheet safety: a cell that starts with ``=``, ``+``, ``-``, ``@``, tab or CR in a text column
(message text, gateway error, row-error value) is an injected formula when Excel opens a CSV;
such CSV cells get a leading ``'`` (OWASP's advice). In XLSX text is stored as text, never as a
formula (openpyxl would make one of a value starting with ``=``), so it needs no prefix. Phone
numbers keep their ``+``. Times are ISO 8601 UTC text in both formats.
"""

from __future__ import annotations

import csv
import io
import re
import tempfile
from collections.abc import Callable, Generator, Iterable, Iterator
from datetime import datetime
from typing import Any

from broadcaster.domain.wire import iso8601
from broadcaster.services import queries
from broadcaster.store.db import Engine

#: Header of the results (one row per message), in the order of queries_repo.REPORT_COLUMNS.
HEADER = (
    "id",
    "line",
    "to",
    "status",
    "segments",
    "encoding",
    "gatewayId",
    "error",
    "createdAt",
    "sentAt",
    "updatedAt",
    "text",
    "externalId",  # the client's own ids (seed 001), empty when none was given
    "clientId",
)
#: Columns whose content comes from people or gateways: formula-neutralised in CSV.
_FREE_TEXT = frozenset(
    HEADER.index(name) for name in ("error", "text", "gatewayId", "externalId", "clientId")
)
_TIMES = frozenset({HEADER.index("createdAt"), HEADER.index("sentAt"), HEADER.index("updatedAt")})
ERROR_HEADER = ("line", "value", "reason")
CSV_CHUNK_BYTES = 64 * 1024
#: Pieces an XLSX file is served in, once built.
XLSX_CHUNK_BYTES = 64 * 1024
HEARTBEAT_ROWS = 1_000
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# XML 1.0 forbids these; openpyxl would raise on them (a gateway error could carry one).
_ILLEGAL_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")

Write = Callable[[bytes], Any]
FORMATS = ("csv", "xlsx")
CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def _neutral(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_START) else value


def _csv_time(value: Any) -> Any:
    return iso8601(value) if isinstance(value, datetime) else value


def _csv_row(row: tuple[Any, ...]) -> list[Any]:
    out = list(row)
    for i in _FREE_TEXT:
        if isinstance(out[i], str):
            out[i] = _neutral(out[i])
    for i in _TIMES:
        out[i] = _csv_time(out[i])
    return out


class _Counted:
    """An iterator that counts what passed through it (the writers' return value)."""

    def __init__(self, rows: Iterable[tuple[Any, ...]]) -> None:
        self._rows, self.n = iter(rows), 0

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return self

    def __next__(self) -> tuple[Any, ...]:
        row = next(self._rows)
        self.n += 1
        return row


def _push(pieces: Iterable[bytes], write: Write) -> None:
    for piece in pieces:
        write(piece)


def iter_csv(
    rows: Iterable[tuple[Any, ...]], chunk_bytes: int = CSV_CHUNK_BYTES
) -> Generator[bytes, None, None]:
    """UTF-8 CSV (with BOM, so Excel reads accents) of the rows, in pieces of ~``chunk_bytes``."""
    buf = io.StringIO()
    out = csv.writer(buf, lineterminator="\r\n")
    buf.write("\ufeff")
    out.writerow(HEADER)
    for row in rows:
        out.writerow(_csv_row(row))
        if buf.tell() >= chunk_bytes:
            yield buf.getvalue().encode()
            buf.seek(0)
            buf.truncate()
    if buf.tell():
        yield buf.getvalue().encode()


def write_csv(
    rows: Iterable[tuple[Any, ...]], write: Write, chunk_bytes: int = CSV_CHUNK_BYTES
) -> int:
    """:func:`iter_csv` into ``write``; returns how many rows were written."""
    counted = _Counted(rows)
    _push(iter_csv(counted, chunk_bytes), write)
    return counted.n


class _Sink:
    """A write-only file for zipfile: no tell/seek, so it streams with data descriptors."""

    def __init__(self, write: Write) -> None:
        self._write = write

    def write(self, data: bytes) -> int:
        if data:
            self._write(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass


def _xlsx_row(ws: Any, row: Iterable[Any]) -> list[Any]:
    """Cells for one row: times as ISO text (as in CSV), text that looks like a formula kept text."""
    from openpyxl.cell import WriteOnlyCell

    out: list[Any] = []
    for value in row:
        if isinstance(value, datetime):
            value = _csv_time(value)
        elif isinstance(value, str):
            if _ILLEGAL_XML.search(value):
                value = _ILLEGAL_XML.sub("\ufffd", value)
            if value.startswith("="):  # openpyxl would store it as a formula
                cell = WriteOnlyCell(ws, value)
                cell.data_type = "s"
                value = cell
        out.append(value)
    return out


def iter_xlsx(
    rows: Iterable[tuple[Any, ...]],
    error_rows: Iterable[tuple[Any, ...]] = (),
    chunk_bytes: int = XLSX_CHUNK_BYTES,
) -> Generator[bytes, None, None]:
    """An .xlsx with a "results" sheet (one row per message) and a "row errors" sheet.

    Yields ``b""`` every ``HEARTBEAT_ROWS`` rows while it reads, then the file in pieces. openpyxl's
    write-only mode keeps memory flat but writes about 8,000 rows/s here (no lxml), and the zip is
    only assembled after the last row: a 1,000,000-row report sends its first byte after about
    two minutes. Closing the generator early deletes every temporary file.
    """
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    with tempfile.TemporaryFile() as built:
        try:
            ws = wb.create_sheet("results")
            ws.append(list(HEADER))
            for n, row in enumerate(rows, 1):
                ws.append(_xlsx_row(ws, row))
                if n % HEARTBEAT_ROWS == 0:
                    yield b""
            errors = wb.create_sheet("row errors")
            errors.append(list(ERROR_HEADER))
            for row in error_rows:
                errors.append(_xlsx_row(errors, row))
            wb.save(_Sink(built.write))
        except BaseException:  # GeneratorExit included: an abandoned report
            _discard(wb)
            raise
        built.seek(0)
        while piece := built.read(chunk_bytes):
            yield piece


def write_xlsx(
    rows: Iterable[tuple[Any, ...]], write: Write, error_rows: Iterable[tuple[Any, ...]] = ()
) -> int:
    """:func:`iter_xlsx` into ``write`` (heartbeats as ``write(b"")``); returns the result rows."""
    counted = _Counted(rows)
    _push(iter_xlsx(counted, error_rows), write)
    return counted.n


def _discard(wb: Any) -> None:
    """Close and delete the sheets' temporary files of an abandoned workbook."""
    for ws in wb.worksheets:
        try:
            if not ws.closed:
                ws.close()
            ws._writer.cleanup()
        except Exception:  # noqa: BLE001 - best effort; the file may be gone already
            pass


def report_chunks(engine: Engine, broadcast_id: int, fmt: str) -> Generator[bytes, None, None]:
    """The report of a broadcast (whose ownership the caller checked) in ``fmt``, as pieces to
    pull; an empty piece means "still working" (nothing to send yet)."""
    rows = queries.report_rows(engine, broadcast_id)
    if fmt == "csv":
        return iter_csv(rows)
    if fmt == "xlsx":
        return iter_xlsx(rows, queries.row_error_rows(engine, broadcast_id))
    raise ValueError(f"unknown report format {fmt!r}")


def write_report(engine: Engine, broadcast_id: int, fmt: str, write: Write) -> None:
    """Push the report of a broadcast in ``fmt`` into ``write`` (see :func:`report_chunks`)."""
    _push(report_chunks(engine, broadcast_id, fmt), write)
