"""Excel .xlsx through python-calamine (~15x faster than openpyxl), or as a stream, after the
zip guard.

Memory: calamine holds one sheet's cells in native memory (~80 bytes a cell with the row lists
this module makes: ~256 MB for 1,000,000 rows of three columns) and has no lazy reader. So a
sheet whose used range is at least ``XLSX_STREAM_MIN_CELLS`` cells, and whose XML the guard found
in the plain form applications write, is read as a stream by :mod:`xlsx_stream` instead (memory
flat: ~30 MB at 100,000 rows as at 1,000,000, plus the shared strings; ~1.5-2x calamine's CPU
in the reading child); smaller or unusual sheets are loaded by calamine, whose memory they bound.
:mod:`xlsx_guard` refuses a sheet with more than ``max_rows`` rows before either reads it. Both run
in a child process with a memory limit (:mod:`xlsx_child`): :func:`open_xlsx` is the caller's
side, :func:`load_sheet` the child's.

Cells become text: numbers that are whole print as integers (``525512345678.0`` ->
``"525512345678"``, so phone numbers stored as numbers survive); other floats print their
shortest repr (``10.65``); dates and times in ISO 8601; booleans ``TRUE``/``FALSE``; formulas give
the value Excel cached when it saved the file (a formula never calculated, as openpyxl writes
them, reads as an empty cell); error cells (``#DIV/0!``, ``#N/A``) read as empty cells.
"""

from __future__ import annotations

import datetime as dt
import zipfile
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import python_calamine

from broadcaster.errors import FileRejected
from broadcaster.ingest.header import Record, tabulate
from broadcaster.ingest.rows import RecipientTable
from broadcaster.ingest.xlsx_child import XlsxChild
from broadcaster.ingest.xlsx_extent import XLSX_MAX_CELLS, SheetExtent
from broadcaster.ingest.xlsx_guard import SheetEntry, ZipReport, check_xlsx_zip
from broadcaster.ingest.xlsx_stream import (
    SHARED_STRINGS_PART,
    SheetRows,
    part_chunks,
    read_context,
    stream_records,
)

#: Cells (the used range, rows x columns) from which a plain sheet is read as a stream rather
#: than loaded by calamine, which holds ~80 bytes a cell: see the README's measured figures.
XLSX_STREAM_MIN_CELLS = 300_000

_CALAMINE_ERRORS: tuple[type[BaseException], ...] = (
    python_calamine.CalamineError,
    python_calamine.PasswordError,
    python_calamine.ZipError,
    python_calamine.XmlError,
    python_calamine.WorksheetNotFound,
    python_calamine.WorkbookClosed,
)


def open_xlsx(
    path: Path, *, source: str, sheet: str | None, max_rows: int, stack: ExitStack
) -> RecipientTable:
    """Open one sheet of a workbook: ``sheet`` by name, else the first visible worksheet.

    The workbook is read by a child process (stopped when ``stack`` closes); its rows are lazy.
    """
    child = XlsxChild(
        path,
        source=source,
        sheet=sheet,
        max_rows=max_rows,
        stream_min_cells=XLSX_STREAM_MIN_CELLS,  # read now: tests set it to stream small sheets
    )
    stack.callback(child.stop)
    name, names = child.table()
    layout, rows = tabulate(child.records(), source, max_rows)
    meta = {"sheet": name, "sheets": names, **layout.meta()}
    return RecipientTable(
        source=source, format="xlsx", columns=layout.columns, meta=meta, rows=rows
    )


def load_sheet(
    path: Path,
    *,
    source: str,
    sheet: str | None,
    max_rows: int,
    stream_min_cells: int = XLSX_STREAM_MIN_CELLS,
) -> tuple[str, list[str], Iterator[Record]]:
    """In this process: guard, load one sheet, and give (its name, all names, its records).

    A sheet of at least ``stream_min_cells`` cells (its used range, as the guard measured it)
    in the plain form is read as a stream (:mod:`xlsx_stream`); any other by calamine.
    """
    report = check_xlsx_zip(path, source)
    streamed = _stream_sheet(path, report, source, sheet, max_rows, stream_min_cells)
    if streamed is not None:
        return streamed
    try:
        with python_calamine.CalamineWorkbook.from_path(str(path)) as book:
            names = list(book.sheet_names)
            name = _choose_sheet(book, sheet, source)
            _check_extent(report.sheet_extent(name), name, source, max_rows)
            data = book.get_sheet_by_name(name)  # the sheet keeps its cells after the book closes
    except _CALAMINE_ERRORS as exc:
        raise FileRejected(source, f"unreadable .xlsx: {type(exc).__name__}: {exc}") from None
    end = data.end
    if end is None:
        raise FileRejected(source, f"no rows: sheet {name!r} is empty")
    if end[0] + 1 > max_rows + 1:
        raise FileRejected(
            source, f"sheet {name!r} has {end[0] + 1:,} rows, more than {max_rows:,}"
        )
    return name, names, _records(data)


def _stream_sheet(
    path: Path, report: ZipReport, source: str, sheet: str | None, max_rows: int, min_cells: int
) -> tuple[str, list[str], Iterator[Record]] | None:
    """The sheet as a stream if it is big and plain enough; None: calamine reads it."""
    if not report.sheets:
        return None
    names = [entry.name for entry in report.sheets]
    name = choose_sheet(report.sheets, sheet, source)
    part = report.part_by_sheet.get(name)
    extent = report.extent_by_part.get(part) if part is not None else None
    if part is None or extent is None or not extent.plain or extent.cells < min_cells:
        return None
    _check_extent(report.sheet_extent(name), name, source, max_rows)
    return name, names, _streamed_records(path, part, source, name, report, extent.first_col)


def _streamed_records(
    path: Path, part: str, source: str, name: str, report: ZipReport, first_col: int
) -> Iterator[Record]:
    with zipfile.ZipFile(path) as zf:
        strings = report.extent_by_part.get(SHARED_STRINGS_PART)
        plain = strings is not None and strings.plain
        context = read_context(zf, source, date1904=report.date1904, plain_strings=plain)
        any_rows = False
        for record in stream_records(
            lambda: SheetRows(source, part, context).rows_plain(part_chunks(zf, part)),
            low=first_col or 1,
        ):
            any_rows = True
            yield record
        if not any_rows:
            raise FileRejected(source, f"no rows: sheet {name!r} is empty")


def choose_sheet(sheets: list[SheetEntry], sheet: str | None, source: str) -> str:
    """``sheet`` if the workbook has it, else the first visible worksheet (else the first
    worksheet), as :func:`_choose_sheet` chooses from calamine's view of the same workbook."""
    names = [entry.name for entry in sheets]
    if sheet is not None:
        if sheet in names:
            return sheet
        listed = ", ".join(repr(n) for n in names)
        raise FileRejected(source, f"no sheet named {sheet!r}; the workbook has: {listed}")
    worksheets = [entry for entry in sheets if entry.worksheet]
    chosen = [entry for entry in worksheets if entry.visible] or worksheets
    if not chosen:
        raise FileRejected(source, "no rows: the workbook has no worksheet")
    return chosen[0].name


def _check_extent(extent: SheetExtent | None, name: str, source: str, max_rows: int) -> None:
    """Refuse, before loading, a sheet with too many rows or too large a used range."""
    if extent is None:
        return
    if extent.rows > max_rows + 1:  # + 1: the header row
        raise FileRejected(
            source, f"sheet {name!r} has {extent.rows:,} rows, more than {max_rows:,}"
        )
    if extent.cells > XLSX_MAX_CELLS:
        raise FileRejected(
            source,
            f"sheet {name!r} spans {extent.rows:,} rows x {extent.columns:,} columns = "
            f"{extent.cells:,} cells, over {XLSX_MAX_CELLS:,} (a stray cell far from the data?)",
        )


def _choose_sheet(book: python_calamine.CalamineWorkbook, sheet: str | None, source: str) -> str:
    names = list(book.sheet_names)
    if sheet is not None:
        if sheet in names:
            return sheet
        listed = ", ".join(repr(n) for n in names)
        raise FileRejected(source, f"no sheet named {sheet!r}; the workbook has: {listed}")
    worksheets = [
        m for m in book.sheets_metadata if m.typ == python_calamine.SheetTypeEnum.WorkSheet
    ]
    visible = [m for m in worksheets if m.visible == python_calamine.SheetVisibleEnum.Visible]
    chosen = visible or worksheets
    if not chosen:
        raise FileRejected(source, "no rows: the workbook has no worksheet")
    return chosen[0].name


def _records(data: python_calamine.CalamineSheet) -> Iterator[Record]:
    """Non-empty rows as (sheet row number, text cells).

    calamine's ``iter_rows`` starts at the sheet's first row (A1), whatever the first used cell,
    so the n-th row yielded is sheet row n; columns start at the first used column.
    """
    for index, row in enumerate(data.iter_rows()):
        cells = [cell.strip() if type(cell) is str else cell_text(cell) for cell in row]
        if any(cells):
            yield index + 1, cells


def cell_text(value: object) -> str:
    """One non-str cell value as text (see the module docstring for the rules)."""
    if type(value) is float:
        if value.is_integer():
            return str(int(value))
        return repr(value)
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return str(value)
    if isinstance(value, str):
        return value.strip()
    return "" if value is None else str(value).strip()
