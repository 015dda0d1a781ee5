"""The xlsx zip guard and sheet extents, below the level of whole files."""

from __future__ import annotations

import io
from pathlib import Path

import openpyxl
import pytest

from broadcaster.errors import FileRejected
from broadcaster.ingest import xlsx_guard
from broadcaster.ingest.xlsx_extent import SheetExtent, column_number
from broadcaster.ingest.xlsx_guard import check_xlsx_zip


@pytest.mark.parametrize(
    ("letters", "number"),
    [(b"A", 1), (b"Z", 26), (b"AA", 27), (b"AZ", 52), (b"BA", 53), (b"XFD", 16384)],
)
def test_column_number(letters: bytes, number: int) -> None:
    assert column_number(letters) == number


_SHEET = (
    b'<sheetData><row r="3" spans="2:4"><c r="B3" t="s"><v>0</v></c><c s="1" r="D3"><v>1</v></c>'
    b'</row><row r="12"><c r="C12"><v>2</v></c></row><row><c><v>3</v></c></row></sheetData>'
)


@pytest.mark.parametrize("piece", [1, 2, 3, 5, 7, 16, 31, 32, len(_SHEET)])
def test_extent_is_the_same_however_the_xml_is_cut(piece: int) -> None:
    extent, tail = SheetExtent(), b""
    for i in range(0, len(_SHEET), piece):
        fresh = _SHEET[i : i + piece]
        extent.feed(tail, fresh)
        tail = (tail + fresh)[-32:]
    assert (extent.row_tags, extent.first_row, extent.last_row) == (3, 3, 12)
    assert (extent.first_col, extent.last_col) == (2, 4)
    assert (extent.rows, extent.columns, extent.cells) == (10, 3, 30)


def _workbook_bytes() -> bytes:
    wb = openpyxl.Workbook()
    wb.active.title = "Only"
    wb.active.append(["phone"])
    wb.active.append([5255])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def test_report_maps_sheets_to_parts(tmp_path: Path) -> None:
    path = tmp_path / "w.xlsx"
    path.write_bytes(_workbook_bytes())
    report = check_xlsx_zip(path, "w.xlsx")
    assert report.part_by_sheet == {"Only": "xl/worksheets/sheet1.xml"}
    extent = report.sheet_extent("Only")
    assert extent is not None and (extent.rows, extent.columns) == (2, 1)
    assert report.sheet_extent("unknown") is extent  # unknown part: the largest sheet stands in


def test_too_many_entries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "w.xlsx"
    path.write_bytes(_workbook_bytes())
    monkeypatch.setattr(xlsx_guard, "XLSX_MAX_ENTRIES", 3)
    with pytest.raises(FileRejected, match="entries in the workbook"):
        check_xlsx_zip(path, "w.xlsx")


def test_password_flag_and_odd_compression_are_refused(tmp_path: Path) -> None:
    data = bytearray(_workbook_bytes())
    central = data.rfind(b"PK\x01\x02")  # the last central directory record
    path = tmp_path / "w.xlsx"
    flagged = bytearray(data)
    flagged[central + 8] |= 0x1  # general purpose flag: encrypted
    path.write_bytes(bytes(flagged))
    with pytest.raises(FileRejected, match="password-protected"):
        check_xlsx_zip(path, "w.xlsx")
    odd = bytearray(data)
    odd[central + 10] = 12  # compression method: bzip2
    path.write_bytes(bytes(odd))
    with pytest.raises(FileRejected, match="unsupported compression"):
        check_xlsx_zip(path, "w.xlsx")
