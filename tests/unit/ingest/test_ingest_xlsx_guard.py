"""The xlsx zip guard and sheet extents, below the level of whole files."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import openpyxl
import psutil
import pytest

from broadcaster.errors import FileRejected
from broadcaster.ingest import open_recipients, xlsx_guard
from broadcaster.ingest.xlsx_child import XlsxChild, death_reason
from broadcaster.ingest.xlsx_extent import SheetExtent, SheetScan, column_number
from broadcaster.ingest.xlsx_guard import check_xlsx_zip
from tests.support import hostile_files

MIB = 1024 * 1024


@pytest.mark.parametrize(
    ("letters", "number"),
    [(b"A", 1), (b"Z", 26), (b"AA", 27), (b"AZ", 52), (b"BA", 53), (b"XFD", 16384)],
)
def test_column_number(letters: bytes, number: int) -> None:
    assert column_number(letters) == number


_SHEET = (
    '<?xml version="1.0" encoding="UTF-8"?><worksheet><dimension ref="B3:D12"/><sheetData>'
    '<row r="3" spans="2:4"><c r="B3" t="s"><v>0</v></c><c s="1" r="D3"><v>1</v></c>'
    '</row><row r="12"><c r="C12"><v>2</v></c></row><row><c><v>3</v></c></row></sheetData>'
    "</worksheet>"
)
# The same cells as Excel would never write them: quotes, spacing, prefixes, character refs.
_ODD_SHEET = (
    "<?xml version='1.0'?><x:worksheet xmlns:x='urn:x'><x:dimension ref = 'B3:D12'/>"
    "<x:sheetData><x:row\n r='3'><x:c r='B3'><x:v>0</x:v></x:c><x:c s=\"1\"\tr='&#68;3'>"
    "<x:v>1</x:v></x:c></x:row><x:row r = \"12\"><x:c r='C12'/></x:row><x:row><x:c/></x:row>"
    "</x:sheetData></x:worksheet>"
)


def _scan(document: bytes, piece: int) -> SheetExtent:
    extent = SheetExtent()
    scan = SheetScan("w.xlsx", "sheet.xml", extent)
    for i in range(0, len(document), piece):
        scan.feed(document[i : i + piece])
    scan.close()
    return extent


@pytest.mark.parametrize("piece", [1, 2, 3, 5, 7, 16, 31, 32, 100, 10_000])
@pytest.mark.parametrize(
    "document",
    [
        _SHEET.encode(),
        _ODD_SHEET.encode(),
        # UTF-16: expat's callbacks for every element instead of the byte patterns.
        _SHEET.replace("UTF-8", "UTF-16").encode("utf-16"),
    ],
    ids=["plain", "odd", "utf16"],
)
def test_extent_is_the_same_however_the_xml_is_cut(document: bytes, piece: int) -> None:
    extent = _scan(document, piece)
    assert (extent.row_tags, extent.first_row, extent.last_row) == (3, 3, 13)
    assert (extent.first_col, extent.last_col) == (1, 4)
    assert (extent.rows, extent.columns, extent.cells) == (11, 4, 44)


@pytest.mark.parametrize(
    ("xml", "reason"),
    [
        ('<!DOCTYPE w [<!ENTITY a "x">]><w>&a;</w>', "document type declaration"),
        ("<w><c r='A1'></w>", "malformed XML"),
        ("<w><c r='A1'/>", "malformed XML"),  # cut short
        ("<w><c r='XFD1048577'/></w>", "beyond Excel's last cell"),
        ("<w><c r='XFE1'/></w>", "beyond Excel's last cell"),
        ('<w><c r="A0"/></w>', "beyond Excel's last cell"),
        ("<w><c r='1A'/></w>", "not a cell of Excel's grid"),
        ("<w><row r='0'/></w>", "outside Excel's grid"),
        ("<w><row r='-5'/></w>", "outside Excel's grid"),
        ("<w><dimension ref='A1:XFD99999999'/></w>", "beyond Excel's last cell"),
        ("<w><c r='A1' " + "a" * 70_000 + "='x'/></w>", "tag over 65,536 bytes"),
    ],
)
def test_sheet_scan_refuses(xml: str, reason: str) -> None:
    with pytest.raises(FileRejected, match=reason) as info:
        _scan(xml.encode(), 4096)
    assert info.value.path == "w.xlsx" and "'sheet.xml'" in info.value.reason


def test_cells_in_comments_only_make_the_extent_larger() -> None:
    """The byte patterns may meet a tag inside a comment: never smaller than the truth."""
    extent = _scan(b"<w><!-- <c r='C9'/> --><row r='1'><c r='A1'/></row></w>", 7)
    assert (extent.last_row, extent.last_col) == (9, 3)


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


def test_sheets_are_found_through_the_relationships_whatever_their_names(
    tmp_path: Path,
) -> None:
    path = tmp_path / "w.xlsx"
    path.write_bytes(hostile_files._odd_part_name(hostile_files._valid_sheet()))
    report = check_xlsx_zip(path, "w.xlsx")
    assert report.part_by_sheet == {"Formulas": "xl/worksheets/data.bin"}
    extent = report.sheet_extent("Formulas")
    assert extent is not None and (extent.rows, extent.columns) == (2, 1)


def test_duplicate_entry_names_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "w.xlsx"
    data = _workbook_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        entries = [(i.filename, zf.read(i)) for i in zf.infolist()]
    with zipfile.ZipFile(path, "w") as out, pytest.warns(UserWarning, match="Duplicate name"):
        for name, body in entries:
            out.writestr(name, body)
        out.writestr("xl/worksheets/sheet1.xml", b"<worksheet/>")
    with pytest.raises(FileRejected, match="is in the archive twice"):
        check_xlsx_zip(path, "w.xlsx")


def _big_workbook(rows: int) -> bytes:
    cells = "".join(
        f'<row r="{i}"><c r="A{i}"><v>{525500000000 + i}</v></c><c r="B{i}"><v>{i}</v></c>'
        f'<c r="C{i}"><v>{i}.5</v></c></row>'
        for i in range(2, rows + 2)
    )
    header = '<row r="1"><c r="A1" t="inlineStr"><is><t>phone</t></is></c></row>'
    return hostile_files._handmade_xlsx(hostile_files._sheet_xml(header + cells, f"A1:C{rows + 1}"))


def test_a_reader_out_of_memory_is_a_clean_refusal(tmp_path: Path) -> None:
    """calamine aborts its process when it cannot allocate: only the child dies, and says why.

    (calamine's path is forced: a sheet this big is otherwise streamed, in less memory.)"""
    path = tmp_path / "big.xlsx"
    path.write_bytes(_big_workbook(150_000))
    child = XlsxChild(
        path,
        source="big.xlsx",
        sheet=None,
        max_rows=10**6,
        memory_bytes=40 * MIB,
        stream_min_cells=10**12,
    )
    try:
        with pytest.raises(FileRejected) as info:
            child.table()
            for _ in child.records():
                pass
    finally:
        child.stop()
    assert info.value.path == "big.xlsx"
    assert "needs more memory than the reader's limit of 41,943,040 bytes" in info.value.reason
    # This process is untouched, and the same file reads in full under the default limit.
    with open_recipients(path) as table:
        assert sum(1 for _ in table.rows) == 150_000


def test_leaving_early_stops_the_reader(tmp_path: Path) -> None:
    path = tmp_path / "big.xlsx"
    path.write_bytes(_big_workbook(20_000))
    before = _children()
    with open_recipients(path) as table:
        next(iter(table.rows))
        assert len(_children() - before) == 1  # reading: one child
    assert _children() == before  # left early: the child was stopped and reaped


def _children() -> set[int]:
    return {p.pid for p in psutil.Process().children()}


@pytest.mark.parametrize(
    ("code", "stderr", "reason"),
    [
        (-6, "memory allocation of 549755813888 bytes failed", "needs more memory than"),
        (-9, "", "stopped by SIGKILL"),
        (-24, "", "stopped by SIGXCPU"),
        (1, "Traceback\nValueError: boom", "exited with status 1 (ValueError: boom)"),
    ],
)
def test_death_reasons(code: int, stderr: str, reason: str) -> None:
    assert reason in death_reason(code, stderr, 2 * 1024**3)
