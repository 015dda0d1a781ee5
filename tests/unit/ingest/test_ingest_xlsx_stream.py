"""The streaming XLSX reader gives what calamine gives, on the same workbooks.

Each workbook is read twice in this process by ``load_sheet``: once forced through the stream
(``stream_min_cells=0``) and once forced through calamine; the records must be equal (trailing
empty cells aside: calamine pads each row to the sheet's width), and a workbook one refuses the
other refuses too. The hostile files are read through the real reading child with the stream
forced, and must read exactly as their cases say.
"""

from __future__ import annotations

import datetime as dt
import io
import time
import zipfile
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from broadcaster.errors import FileRejected
from broadcaster.ingest import xlsx_reader
from broadcaster.ingest.xlsx_guard import check_xlsx_zip
from broadcaster.ingest.xlsx_reader import load_sheet
from broadcaster.ingest.xlsx_stream import number_format_kind
from tests.support import hostile_files
from tests.support.hostile_files import build_hostile_files, case_names, matches, observe

NEVER = 10**12


def _read(path: Path, stream: bool, **kwargs: Any) -> tuple[str, Any]:
    """("rows", (sheet name, names, records with trailing empties cut)) or ("rejected", reason)."""
    options: dict[str, Any] = {"sheet": None, "max_rows": 10**6, **kwargs}
    try:
        name, names, records = load_sheet(
            path, source=path.name, stream_min_cells=0 if stream else NEVER, **options
        )
        rows = []
        for line, cells in records:
            while cells and not cells[-1]:
                cells = cells[:-1]
            rows.append((line, cells))
    except FileRejected as exc:
        return ("rejected", exc.reason)
    return ("rows", (name, names, rows))


def _same(path: Path, **kwargs: Any) -> tuple[str, Any]:
    streamed, loaded = _read(path, True, **kwargs), _read(path, False, **kwargs)
    if loaded[0] == "rejected":
        assert streamed[0] == "rejected", f"calamine refused ({loaded[1]}), the stream read it"
    else:
        assert streamed == loaded
    return streamed


def _save(tmp_path: Path, wb: openpyxl.Workbook, name: str = "w.xlsx") -> Path:
    path = tmp_path / name
    wb.save(path)
    return path


def test_big_plain_sheets_are_streamed_small_ones_loaded(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    wb.active.append(["phone"])
    wb.active.append([525500000001])
    path = _save(tmp_path, wb)
    report = check_xlsx_zip(path, "w.xlsx")
    assert report.extent_by_part["xl/worksheets/sheet1.xml"].plain
    assert report.extent_by_part["xl/worksheets/sheet1.xml"].cells == 2
    small = xlsx_reader.XLSX_STREAM_MIN_CELLS
    assert xlsx_reader._stream_sheet(path, report, "w.xlsx", None, 10, small) is None
    streamed = xlsx_reader._stream_sheet(path, report, "w.xlsx", None, 10, 2)
    assert streamed is not None
    assert list(streamed[2]) == [(1, ["phone"]), (2, ["525500000001"])]


def test_values_of_every_kind(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["phone", "name", "n", "when", "flag", "t", "dur", "pct"])
    ws.append(
        [525500000001, " Ana ", 10.65, dt.date(2024, 1, 2), True, dt.time(3, 4, 5), 1.5, 0.25]
    )
    ws.append(["+52 55 0000 0002", "Bob & <Co>", -0.0, dt.datetime(2024, 1, 2, 3, 4, 5, 250000)])
    ws.append([None, None, None, None, None])
    ws.append([525500000003.0, "Carl", 1e20, dt.datetime(1900, 1, 1), False, dt.time(0, 0)])
    ws.append(
        [525500000004, "x" * 300, 1 / 3, dt.date(1900, 2, 28), None, None, 1e-7, 12345678901234567]
    )
    ws.append([525500000005, "línea\nnueva", 2**53 + 1, dt.date(1900, 3, 1)])
    for row in range(2, 8):
        ws.cell(row, 7).number_format = "[h]:mm:ss"
        ws.cell(row, 8).number_format = "0.00%"
    ws.cell(3, 3).number_format = "yyyy-mm-dd;@"
    ws["J9"] = "far"
    ws["A12"] = "=1+1"  # never calculated: an empty cell
    _same(_save(tmp_path, wb))


def test_number_formats_as_calamine_reads_them(tmp_path: Path) -> None:
    formats = [
        "DD/MM/YY", "H:MM:SS;@", "#,##0\\ [$\\u20bd-46D]", 'm"M"d"D";@', "[h]:mm:ss",
        '"Y: "0.00"m";"Y: "-0.00"m";"Y: <num>m";@', '"$"#,##0_);[Red]("$"#,##0)',
        "0_ ;[Red]\\-0\\ ", "\\Y000000", '#,##0.0####" YMD"', "[h]", "[ss]", "[s].000", "[mm]",
        "[Blue]\\+[h]:mm;[Red]\\-[h]:mm", "[>=100][Magenta][s].00", "[>=100][Magenta].00",
        "General", "ha/p\\\\m", "0.00E+00", "mmm-yy", "AM/PM", "0%", "#,##0*y", "*-yyyy-mm-dd",
    ]  # fmt: skip
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["phone", *[f"f{i}" for i in range(len(formats))]])
    for value in (45000.0, 45000.75, 0.3, 61.5, 1.0):
        ws.append([525500000001, *[value] * len(formats)])
        for col, code in enumerate(formats, start=2):
            ws.cell(ws.max_row, col).number_format = code
    _same(_save(tmp_path, wb))
    assert number_format_kind("yyyy-mm-dd") == 1
    assert number_format_kind("[h]:mm") == 2
    assert number_format_kind("0.00") == 0


def test_the_1904_date_system(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    wb.epoch = openpyxl.utils.datetime.CALENDAR_MAC_1904
    ws = wb.active
    ws.append(["phone", "since"])
    ws.append([525500000001, dt.date(2024, 1, 2)])
    ws.append([525500000002, dt.datetime(2001, 5, 6, 7, 8, 9)])
    assert _same(_save(tmp_path, wb))[1][2][1] == (2, ["525500000001", "2024-01-02"])


def test_offset_sparse_and_second_sheets(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    notes = wb.active
    notes.title = "Notes"
    notes.sheet_state = "hidden"
    notes.append(["read me"])
    ws = wb.create_sheet("Recipients")
    ws["C4"], ws["D4"], ws["F4"] = "phone", "name", "extra"
    ws["C5"], ws["D5"] = 525500000001, "Ana"
    ws["D7"] = "Bob"
    ws["C9"] = 525500000003
    ws["H20"] = "far right"
    ws["B30"].number_format = "0.00"  # a styled empty cell left of the data: not a column
    wb.create_sheet("Third").append(["mobile"])
    path = _save(tmp_path, wb)
    assert _same(path)[1][0] == "Recipients"  # the first visible worksheet
    assert _same(path, sheet="Notes")[1][2] == [(1, ["read me"])]
    assert _same(path, sheet="Nope")[0] == "rejected"


def test_shared_strings_with_runs_and_phonetic_text(tmp_path: Path) -> None:
    shared = (
        '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="5">'
        "<si><t>phone</t></si>"
        '<si><r><rPr><b/></rPr><t xml:space="preserve">An </t></r><r><t>a</t></r></si>'
        '<si><t>漢字</t><rPh sb="0" eb="2"><t>カンジ</t></rPh></si>'
        "<si><t>a_x000D_b &amp; &#x41;</t></si>"
        "<si><t> padded </t></si>"
        "</sst>"
    )
    rows = (
        '<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c></row>'
        '<row r="2"><c r="A2"><v>525500000001</v></c><c r="B2" t="s"><v>1</v></c>'
        '<c r="C2" t="s"><v>2</v></c><c r="D2" t="s"><v>3</v></c><c r="E2" t="s"><v>4</v></c></row>'
    )
    _same(_handmade(tmp_path, rows, shared=shared))
    bad = (
        '<row r="1"><c r="A1" t="s"><v>0</v></c></row><row r="2"><c r="A2" t="s"><v>9</v></c></row>'
    )
    assert _same(_handmade(tmp_path, bad, shared=shared, name="bad.xlsx"))[0] == "rejected"


def test_a_big_shared_strings_table_plain_and_rich(tmp_path: Path) -> None:
    """Read by patterns a region at a time; a region holding a rich string goes to expat."""
    items = [f"<si><t>Cliente {i} &amp; hijos</t></si>" for i in range(30_000)]
    items[15_001] = '<si><r><t xml:space="preserve">Rich </t></r><r><t>one</t></r></si>'
    items[20_000] = '<si><t xml:space="preserve">  spaced  </t></si>'
    shared = (
        '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        "<si><t>phone</t></si><si><t>name</t></si>" + "".join(items) + "</sst>"
    )
    rows = '<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c></row>'
    rows += "".join(
        f'<row r="{i + 2}"><c r="A{i + 2}"><v>{525500000000 + i}</v></c>'
        f'<c r="B{i + 2}" t="s"><v>{i + 2}</v></c></row>'
        for i in range(0, 30_000, 7)
    )
    path = _handmade(tmp_path, rows, shared=shared)
    assert check_xlsx_zip(path, path.name).extent_by_part["xl/sharedStrings.xml"].plain
    records = _same(path)[1][2]
    assert records[1] == (2, ["525500000000", "Cliente 0 & hijos"])
    assert (15_003, ["525500015001", "Rich one"]) in records


@pytest.mark.parametrize("rich", [False, True])
def test_one_huge_shared_string_reads_in_linear_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rich: bool
) -> None:
    """A string spanning many chunks: the text held so far was joined and searched again at
    each chunk (O(n²): 64 MB took 3.5 s, 1 GB the child's whole CPU limit). Small chunks
    here make 4 MB as many chunks as a 4 GB string would have."""
    from broadcaster.ingest import xlsx_stream

    monkeypatch.setattr(xlsx_stream, "_CHUNK_BYTES", 256)
    huge = "".join(f"{i:07d}" for i in range(600_000))  # 4.2 MB, not a bomb
    run = f"<r><t>{huge}</t></r><r><t>!</t></r>" if rich else f"<t>{huge}</t>"
    shared = (
        '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        f"<si><t>phone</t></si><si>{run}</si><si><t>after</t></si></sst>"
    )
    rows = (
        '<row r="1"><c r="A1" t="s"><v>0</v></c></row><row r="2"><c r="A2" t="s"><v>2</v></c>'
        '<c r="B2" t="s"><v>1</v></c></row>'
    )
    path = _handmade(tmp_path, rows, shared=shared)
    started = time.process_time()
    records = _read(path, True)[1][2]
    assert time.process_time() - started < 5  # ~0.3 s; it was ~12 s
    assert records == [(1, ["phone"]), (2, ["after", huge + ("!" if rich else "")])]


@pytest.mark.parametrize("size", [1, 2, 3, 5, 64])
def test_regions_cut_before_each_start_across_chunks(size: int) -> None:
    from broadcaster.ingest.xlsx_stream import _regions

    text = "<sst><si><t>ñ</t></si><si><t>€ab</t></si>" + "x" * 40 + "<si><t>z</t></si></sst>"
    data = text.encode("utf-8")
    chunks = iter([data[i : i + size] for i in range(0, len(data), size)])
    regions = list(_regions(chunks, "<si"))
    assert "".join(regions) == text
    assert all(region.startswith("<si") for region in regions[1:])
    assert regions[-1].startswith("<si><t>z")


@pytest.mark.parametrize("mixed", [False, True])
def test_prefixed_shared_strings_are_read_by_local_name(tmp_path: Path, mixed: bool) -> None:
    """``<x:si>`` is an ``<si>`` for calamine; the patterns saw none (all prefixed: every index
    refused) or skipped them (mixed: every later string read one place off)."""
    ns = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    first = "<x:si><x:t>phone</x:t></x:si>"
    rest = "<si><t>name</t></si><si><t>x</t></si>" if mixed else "<x:si><x:t>name</x:t></x:si>"
    shared = f'<sst xmlns="{ns}" xmlns:x="{ns}">{first}{rest}</sst>'
    rows = '<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c></row>'
    assert _same(_handmade(tmp_path, rows, shared=shared))[1][2] == [(1, ["phone", "name"])]


# Sheets written by hand: forms openpyxl does not write, which other applications do.
_CELL_FORMS = [
    # an error, an empty inline string: empty cells that count for the first column (column A
    # holds nothing else here: reading them as no cell at all shifted every cell of the sheet),
    # in the plain form and in a row that expat reads
    '<row r="1"><c r="A1" t="e"><v>#N/A</v></c><c r="B1"><v>1</v></c></row>',
    '<row r="1"><c r="A1" t="inlineStr"><is><t> </t></is></c><c r="B1"><v>1</v></c></row>',
    '<row r="1"><c r="A1" t="inlineStr"><is></is></c><c r="B1"><v>1</v></c></row>',
    '<row r="1"><c r="A1" t="e"><v>#REF!</v></c><c r="B1" t="inlineStr"><is><t/></is></c>'
    '<c r="C1" t="inlineStr"><is><r><t>x</t></r></is></c></row><row r="2"><c r="C2"><v>2</v></c></row>',
    # spaces before the end of end tags (XML allows them)
    '<row  r="1" ><c  r="A1" ><v >1</v ></c ><c r="B1" t="inlineStr"><is><t>a</t ></is ></c>'
    '</row\n><row r="2"><c r="A2"><v>2</v></c></row\t>',
    # inline strings: runs, preserved space, escapes, entities, phonetic runs
    '<row r="1"><c r="A1" t="inlineStr"><is><t> a </t><r><t>b</t></r><rPh><t>X</t></rPh></is></c>'
    '<c r="B1" t="inlineStr"><is><t xml:space="preserve"> x  y </t></is></c>'
    '<c r="C1" t="inlineStr"><is><t>a_x000D_b &amp; &#x41;&#13;&#10;c</t></is></c>'
    '<c r="D1" t="inlineStr"><is><t></t></is></c><c r="E1" t="inlineStr"><v>5</v></c></row>',
    # formulas with cached values of each type, an error, booleans, ISO dates, empty values
    '<row r="1"><c r="A1"><f>1+1</f><v>2</v></c><c r="B1" t="str"><f>"a"</f><v> a_x0041_ </v></c>'
    '<c r="C1" t="e"><f>1/0</f><v>#DIV/0!</v></c><c r="D1" t="b"><v>1</v></c><c r="E1" t="b"><v>0</v></c>'
    '<c r="F1" t="d"><v>2024-01-02T03:04:05</v></c><c r="G1" t="d"><v>2024-01-02</v></c>'
    '<c r="H1" t="b"><v>true</v></c><c r="I1" t="n"><v>1E3</v></c><c r="J1"><v>-12.50</v></c>'
    '<c r="K1"><v>00012</v></c><c r="L1"><v>.5</v></c><c r="M1"><v>inf</v></c></row>',
    # empty cells of every kind, a formula-made empty text counts for the first column
    '<row r="1"><c r="A1" t="str"><v></v></c><c r="B1"><v></v></c><c r="C1" t="s"><v></v></c>'
    '<c r="D1" s="0"/></row><row r="2"><c r="B2"><v>1</v></c></row>',
    '<row r="1"><c r="A1"><v></v></c><c r="C1" t="inlineStr"><is><t></t></is></c></row>'
    '<row r="2"><c r="B2"><v>1</v></c><c r="D2"><v>4</v></c></row>',
    # rows and cells without references, self-closing rows, rows with Excel's attributes
    '<row><c><v>1</v></c><c><v>2</v></c></row><row/><row><c r="C3"><v>3</v></c><c><v>4</v></c></row>',
    '<row r="2" spans="1:2" ht="15" x14ac:dyDescent="0.25"><c r="A2" s="0" t="n"><v>1</v></c></row>'
    '<row r="4" s="1" customFormat="1"/><row r="5"><c r="B5"><v>5</v></c></row>',
    # other spellings: single quotes, attributes in another order, spaces, pretty-printing
    "<row r='1'><c t='inlineStr' r='A1'><is><t>phone</t></is></c></row>\n  <row r = \"2\" >\n"
    '    <c s="0" r="A2" ><v>525500000001</v></c>\n    <c r="B2"\n t="b"><v>1</v></c>\n  </row>\n',
    # a cell naming a row other than its own, cells out of order within a row, twice the same
    '<row r="1"><c r="B1"><v>2</v></c><c r="A1"><v>1</v></c><c r="A1"><v>3</v></c></row>'
    '<row r="2"><c r="A3"><v>3</v></c></row><row r="4"><c r="A4"><v>4</v></c></row>',
    # the last child of a cell decides, as in calamine; without a type, text that is no number
    '<row r="1"><c r="A1"><v>1</v><f>x</f></c><c r="B1"><v> 12</v></c><c r="C1"><v>1_0</v></c>'
    '<c r="D1"><v>abc</v></c><c r="E1"><v> </v></c></row>',
]
_REFUSED_FORMS = [
    # an error value calamine does not know, in the plain form and in a row that expat reads
    '<row r="1"><c r="A1" t="e"><v>#SPILL!</v></c><c r="B1"><v>1</v></c></row>',
    '<row r="1"><c r="A1" t="e"><v>#N/A </v></c><c r="B1" t="inlineStr"><is><r><t>x</t></r></is></c></row>',
    '<row r="1"><c r="A1" t="zz"><v>q</v></c></row>',  # an unknown cell type
    '<row r="1"><c r="A1" t="n"><v> 12</v></c></row>',  # not a number as calamine reads one
    '<row r="1"><c r="A1" t="n"><v>1_0</v></c></row>',
    '<row r="1"><c r="A1"><v>1</v><extLst/></c></row>',  # a cell holds v, f or is
    '<row r="1"><c r="A1" t="b"><v>2</v></c></row>',
    '<row r="1"><c r="A1" t="s"><v>0</v></c></row>',  # no shared strings at all
]


@pytest.mark.parametrize("rows", _CELL_FORMS)
def test_handmade_cells_read_as_calamine_reads_them(tmp_path: Path, rows: str) -> None:
    assert _same(_handmade(tmp_path, rows))[0] == "rows"


@pytest.mark.parametrize("rows", _REFUSED_FORMS)
def test_what_calamine_refuses_the_stream_refuses(tmp_path: Path, rows: str) -> None:
    assert _same(_handmade(tmp_path, rows))[0] == "rejected"


@pytest.mark.parametrize("t", ["", ' t="n"', ' t="b"', ' t="e"'])
@pytest.mark.parametrize("plain", [True, False])
def test_a_reference_in_a_value_that_is_not_text_is_refused(
    tmp_path: Path, t: str, plain: bool
) -> None:
    """No application writes ``<v>&#49;2</v>``: calamine reads such a value up to its first
    reference ('' here, '1' for ``1&#48;``), the plain form read it raw ('&#49;2'), expat
    decoded it ('12'). Three readings of one cell: the stream refuses it instead."""
    rest = "" if plain else '<c r="C1" t="inlineStr"><is><r><t>x</t></r></is></c>'
    for value in ("&#49;2", "1&#48;", "a&amp;b"):
        rows = f'<row r="1"><c r="A1"{t}><v>{value}</v></c><c r="B1"><v>7</v></c>{rest}</row>'
        outcome = _read(_handmade(tmp_path, rows), True)
        assert outcome[0] == "rejected", (value, outcome)
        assert "reference" in outcome[1]
    rows = f'<row r="1"><c r="A1" t="str"><v>1&#48;&amp;</v></c>{rest}</row>'  # text: decoded
    assert _same(_handmade(tmp_path, rows))[1][2] == [(1, ["10&", *(["", "x"] if rest else [])])]


def test_a_sheet_data_tag_prefixed_or_long_is_read(tmp_path: Path) -> None:
    """``<x:sheetData>`` leaves the sheet to calamine; a ``<sheetData>`` tag longer than a chunk
    is found (the stream kept only the last 64 characters before it: 'cut short')."""
    sheet = hostile_files._sheet_xml('<row r="1"><c r="A1"><v>1</v></c></row>')
    ns = 'xmlns:x="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
    for data in (
        sheet.replace("<worksheet ", "<worksheet " + ns)
        .replace("<sheetData>", "<x:sheetData>")
        .replace("</sheetData>", "</x:sheetData>"),
        sheet.replace("<sheetData>", f'<sheetData a="{"x" * 600_000}">'),
    ):
        path = tmp_path / "s.xlsx"
        path.write_bytes(hostile_files._handmade_xlsx(data))
        assert _same(path)[1][2] == [(1, ["1"])]
    empty = sheet.replace("<sheetData>", '<sheetData a="1"/>').replace(
        '<row r="1"><c r="A1"><v>1</v></c></row></sheetData>', ""
    )
    path.write_bytes(hostile_files._handmade_xlsx(empty))
    assert "empty" in _same(path)[1]  # refused as calamine refuses it, not as cut short


def test_character_references_decode_as_in_xml(tmp_path: Path) -> None:
    """``&#128;`` is U+0080 in XML (HTML's decoder made it '€', cp1252's), and ``&#13;`` a CR
    kept as it is (only raw line ends are normalised): in shared strings, inline strings and
    formula text, in the plain form and in a row that expat reads."""
    refs = "x&#128;&#x9F;&#150;a&#13;b&#13;&#10;c\r\nd&#x1F600;&amp;&#0065;y"
    shared = (
        '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        f"<si><t>{refs}</t></si></sst>"
    )
    rows = "".join(
        f'<row r="{i}"><c r="A{i}" t="inlineStr"><is><t>{refs}</t></is></c>'
        f'<c r="B{i}" t="str"><v>{refs}</v></c><c r="C{i}" t="s"><v>0</v></c>{rest}</row>'
        for i, rest in ((1, ""), (2, '<c r="D2" t="inlineStr"><is><r><t>z</t></r></is></c>'))
    )
    records = _same(_handmade(tmp_path, rows, shared=shared))[1][2]
    want = "x\x80\x9f\x96a\rb\r\nc\nd\U0001f600&Ay"
    assert records == [(1, [want] * 3), (2, [want] * 3 + ["z"])]


def test_rows_out_of_order_are_refused_not_misread(tmp_path: Path) -> None:
    """calamine sorts them; a stream cannot go back, and no application writes them."""
    rows = '<row r="3"><c r="A3"><v>3</v></c></row><row r="2"><c r="A2"><v>2</v></c></row>'
    outcome = _read(_handmade(tmp_path, rows), True)
    assert outcome[0] == "rejected"
    assert "row 2 comes after row 3" in outcome[1]


_NOT_PLAIN_CELL = '<c r="C1" t="inlineStr"><is><r><t>x</t></r></is></c>'  # a row for expat


@pytest.mark.parametrize(
    "rows",
    [
        # a long run of spaces in a row's attribute: the row pattern once tried every split of
        # it between two of its parts (200,000 spaces: minutes of CPU, one row)
        f'<row r="1" spans="{" " * 200_000}"><c r="A1"><v>1</v></c>{_NOT_PLAIN_CELL}</row>',
        # a long number that is not one: the number pattern tried every split of its digits
        f'<row r="1"><c r="A1"><v>{"1" * 200_000}x</v></c>{_NOT_PLAIN_CELL}</row>',
        f'<row r="1"><c r="A1" t="n"><v>{"1" * 200_000}x</v></c>{_NOT_PLAIN_CELL}</row>',
    ],
    ids=["row-attribute-spaces", "untyped-digits", "typed-digits"],
)
def test_crafted_runs_read_in_linear_time(tmp_path: Path, rows: str) -> None:
    """Backtracking patterns would hold a core for minutes on these (up to the child's CPU
    limit); read in linear time they take milliseconds (the bound is loose on purpose)."""
    path = _handmade(tmp_path, rows)
    started = time.process_time()
    _read(path, True)
    assert time.process_time() - started < 10
    _same(path)


def test_a_sheet_not_in_the_plain_form_is_left_to_calamine(tmp_path: Path) -> None:
    rows = '<row r="1"><!-- a note --><c r="A1"><v>1</v></c></row>'
    path = _handmade(tmp_path, rows)
    assert not check_xlsx_zip(path, path.name).extent_by_part["xl/worksheets/sheet1.xml"].plain
    assert _same(path)[1][2] == [(1, ["1"])]


def test_the_first_column_is_found_past_many_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Until a cell in the leftmost column shows up, rows wait; past PENDING_ROWS, a first
    pass finds the column and the rows are read again."""
    from broadcaster.ingest import xlsx_stream

    monkeypatch.setattr(xlsx_stream, "PENDING_ROWS", 3)
    rows = "".join(f'<row r="{i}"><c r="C{i}"><v>{i}</v></c></row>' for i in range(1, 10))
    rows += '<row r="10"><c r="B10"><v>10</v></c></row>'
    path = _handmade(tmp_path, rows, dimension="A1:C10")
    assert _same(path)[1][2][0] == (1, ["", "1"])


def _handmade(
    tmp_path: Path,
    rows: str,
    *,
    shared: str | None = None,
    name: str = "h.xlsx",
    dimension: str = "A1:C3",
) -> Path:
    sheet = hostile_files._sheet_xml(rows, dimension=dimension).replace(
        "<worksheet ",
        '<worksheet xmlns:x14ac="http://schemas.microsoft.com/office/spreadsheetml/2009/9/ac" ',
    )
    data = hostile_files._handmade_xlsx(sheet)
    if shared is not None:
        buf = io.BytesIO(data)
        with zipfile.ZipFile(buf, "a") as zf:
            zf.writestr("xl/sharedStrings.xml", shared)
        data = buf.getvalue()
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> dict[str, hostile_files.HostileCase]:
    return {case.name: case for case in build_hostile_files(tmp_path_factory.mktemp("hostile"))}


@pytest.mark.parametrize("name", [n for n in case_names() if "xlsx" in n])
def test_hostile_workbooks_read_the_same_through_the_stream(
    hostile: dict[str, hostile_files.HostileCase], name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(xlsx_reader, "XLSX_STREAM_MIN_CELLS", 0)  # the reading child streams all
    case = hostile[name]
    assert matches(case.expectation, observe(case)), observe(case)
