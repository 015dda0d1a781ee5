"""Per-recipient results of a broadcast as CSV or XLSX, written as a stream of bytes.

The writers take rows from an iterator (SQL pages of 5,000) and hand bytes to ``write`` as they
go, so a million-row report never sits in memory: CSV in 64 KiB pieces; XLSX through openpyxl's
write-only mode, which keeps each sheet's XML in a temporary file and zips it into ``write`` at
the end (the first XLSX byte comes after the last row is read).

``write`` may block (it is how the HTTP side pushes back on a slow client) and may raise to
abandon the report (the client went away); ``write(b"")`` is a heartbeat the XLSX writer sends
every ``HEARTBEAT_ROWS`` rows so that it can be abandoned while it writes nothing out. Nothing
here knows about HTTP.

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
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine

from broadcaster.services import queries

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
    return value.isoformat(timespec="seconds") + "Z" if isinstance(value, datetime) else value


def _csv_row(row: tuple[Any, ...]) -> list[Any]:
    out = list(row)
    for i in _FREE_TEXT:
        if isinstance(out[i], str):
            out[i] = _neutral(out[i])
    for i in _TIMES:
        out[i] = _csv_time(out[i])
    return out


def write_csv(
    rows: Iterable[tuple[Any, ...]], write: Write, chunk_bytes: int = CSV_CHUNK_BYTES
) -> int:
    """UTF-8 CSV (with BOM, so Excel reads accents) of the rows; returns how many were written."""
    buf = io.StringIO()
    out = csv.writer(buf, lineterminator="\r\n")
    buf.write("\ufeff")
    out.writerow(HEADER)
    n = 0
    for row in rows:
        out.writerow(_csv_row(row))
        n += 1
        if buf.tell() >= chunk_bytes:
            write(buf.getvalue().encode())
            buf.seek(0)
            buf.truncate()
    if buf.tell():
        write(buf.getvalue().encode())
    return n


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


def write_xlsx(
    rows: Iterable[tuple[Any, ...]], write: Write, error_rows: Iterable[tuple[Any, ...]] = ()
) -> int:
    """An .xlsx with a "results" sheet (one row per message) and a "row errors" sheet.

    openpyxl's write-only mode keeps memory flat but writes about 8,000 rows/s here (no lxml),
    and the zip is only assembled after the last row: a 1,000,000-row report sends its first
    byte after about two minutes.
    """
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    try:
        ws = wb.create_sheet("results")
        ws.append(list(HEADER))
        n = 0
        for row in rows:
            ws.append(_xlsx_row(ws, row))
            n += 1
            if n % HEARTBEAT_ROWS == 0:
                write(b"")
        errors = wb.create_sheet("row errors")
        errors.append(list(ERROR_HEADER))
        for row in error_rows:
            errors.append(_xlsx_row(errors, row))
        wb.save(_Sink(write))
    except BaseException:
        _discard(wb)
        raise
    return n


def _discard(wb: Any) -> None:
    """Close and delete the sheets' temporary files of an abandoned workbook."""
    for ws in wb.worksheets:
        try:
            if not ws.closed:
                ws.close()
            ws._writer.cleanup()
        except Exception:  # noqa: BLE001 - best effort; the file may be gone already
            pass


def write_report(engine: Engine, broadcast_id: int, fmt: str, write: Write) -> int:
    """Stream the report of a broadcast (whose ownership the caller checked) in ``fmt``."""
    rows = queries.report_rows(engine, broadcast_id)
    if fmt == "csv":
        return write_csv(rows, write)
    if fmt == "xlsx":
        return write_xlsx(rows, write, queries.row_error_rows(engine, broadcast_id))
    raise ValueError(f"unknown report format {fmt!r}")
