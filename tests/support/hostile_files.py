"""A factory of hostile recipient files, each with exactly what reading it must give.

``build_hostile_files(dir)`` writes every case into ``dir`` and returns ``HostileCase`` tuples
``(name, path, expectation)``:

* ``("rejected", text)``: opening the file or iterating its rows raises FileRejected whose
  ``reason`` contains ``text``;
* ``("rows", items)``: the rows come out exactly as ``items``, in order, where an item is an
  ``ExpectedRow(line, phone, params)`` (equal to the RecipientRow's fields) or an
  ``ExpectedProblem(line, reason)`` (a RowProblem on that line whose reason contains ``reason``).

A few cases need options for ``open_recipients`` (a sheet name, a small ``max_rows``): they are in
``case.open_kwargs``. ``observe(case)`` reads a case the way the expectation is written, so a test
is ``assert matches(case.expectation, observe(case))``. Other test suites (service, drop folder,
API uploads) reuse these files.
"""

from __future__ import annotations

import codecs
import datetime as dt
import io
import random
import struct
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import openpyxl
from openpyxl.styles import Font


class ExpectedRow(NamedTuple):
    line: int
    phone: str
    params: tuple[str, ...]


class ExpectedProblem(NamedTuple):
    line: int
    reason: str  # a substring of RowProblem.reason


Expectation = tuple[str, Any]  # ("rejected", str) | ("rows", list[ExpectedRow | ExpectedProblem])

#: Options for open_recipients, by case name (most cases need none).
OPEN_KWARGS: dict[str, dict[str, Any]] = {}


class HostileCase(NamedTuple):
    name: str
    path: Path
    expectation: Expectation

    @property
    def open_kwargs(self) -> dict[str, Any]:
        return OPEN_KWARGS.get(self.name, {})


P1, P2, P3, P4 = "+525500000001", "525500000002", "525500000003", "525500000004"


def rows(*items: tuple[Any, ...]) -> Expectation:
    out: list[ExpectedRow | ExpectedProblem] = []
    for item in items:
        out.append(
            ExpectedProblem(*item)
            if len(item) == 2
            else ExpectedRow(item[0], item[1], tuple(item[2]))
        )
    return ("rows", out)


def rejected(reason: str) -> Expectation:
    return ("rejected", reason)


# --------------------------------------------------------------------------- text files

_BASIC = f"phone,name,amount\n{P1},Ana,10.65\n{P2},José,20\n"
_BASIC_ROWS = rows((2, P1, ("Ana", "10.65")), (3, P2, ("José", "20")))
_SAMPLE_BYTES = 64 * 1024  # keep in step with broadcaster.ingest.detect.SAMPLE_BYTES


def _text_cases() -> list[tuple[str, bytes, Expectation]]:
    return [
        ("utf8_header_comma.csv", _BASIC.encode(), _BASIC_ROWS),
        ("utf8_bom.csv", codecs.BOM_UTF8 + _BASIC.encode(), _BASIC_ROWS),
        ("utf16le_bom.csv", codecs.BOM_UTF16_LE + _BASIC.encode("utf-16-le"), _BASIC_ROWS),
        ("utf16be_bom.csv", codecs.BOM_UTF16_BE + _BASIC.encode("utf-16-be"), _BASIC_ROWS),
        # Decided: UTF-16 without BOM is recognised by its NUL pattern and read.
        ("utf16le_no_bom.csv", _BASIC.encode("utf-16-le"), _BASIC_ROWS),
        ("utf16be_no_bom.csv", _BASIC.encode("utf-16-be"), _BASIC_ROWS),
        (
            "cp1252.csv",
            f"telefono;nombre;nota\n{P1};José Núñez;5 €\n".encode("cp1252"),
            rows((2, P1, ("José Núñez", "5 €"))),
        ),
        (
            "semicolon_decimal_comma.csv",
            f"phone;name;amount\n{P1};Ana;10,65\n{P2};Bob;1.000,5\n".encode(),
            rows((2, P1, ("Ana", "10,65")), (3, P2, ("Bob", "1.000,5"))),
        ),
        (
            "tab.tsv",
            f"msisdn\tname\n{P1}\tAna Lopez\n{P2}\tBob\n".encode(),
            rows((2, P1, ("Ana Lopez",)), (3, P2, ("Bob",))),
        ),
        (
            "pipe_no_header.txt",
            f"{P1}|Ana|x\n{P2}|Bob|y\n".encode(),
            rows((1, P1, ("Ana", "x")), (2, P2, ("Bob", "y"))),
        ),
        (
            "excel_sep_line.csv",
            f"sep=|\nphone|name,last\n{P1}|Lopez, Ana\n".encode(),
            rows((3, P1, ("Lopez, Ana",))),
        ),
        (
            "embedded_newlines.csv",
            f'phone,address,name\n{P1},"Calle 1\nPiso 2",Ana\n{P2},"a\r\nb",Bob\n{P3},c,Carl\n'.encode(),
            rows(
                (2, P1, ("Calle 1\nPiso 2", "Ana")),
                (4, P2, ("a\r\nb", "Bob")),
                (6, P3, ("c", "Carl")),
            ),
        ),
        (
            "no_header.csv",
            f"{P1},Ana\n{P2},Bob\n".encode(),
            rows((1, P1, ("Ana",)), (2, P2, ("Bob",))),
        ),
        (
            "phone_not_first.csv",
            f"name,city, Mobile Number \nAna,Lima,{P1}\nBob,Quito,{P2}\n".encode(),
            rows((2, P1, ("Ana", "Lima")), (3, P2, ("Bob", "Quito"))),
        ),
        (
            "header_alias_accent.csv",
            f"Nombre,Teléfono\nAna,{P1}\n".encode(),
            rows((2, P1, ("Ana",))),
        ),
        (
            "header_without_phone_column.csv",
            b"name,city\nAna,Lima\n",
            rejected("no phone column found"),
        ),
        ("only_header.csv", b"phone,name\r\n", rejected("no rows after the header")),
        (
            "blank_lines.csv",
            f"\n\nphone,name\n\n   \n{P1},Ana\n,,\n\t\n{P2},Bob\n\n".encode(),
            rows((6, P1, ("Ana",)), (9, P2, ("Bob",))),
        ),
        (
            "trailing_delimiters.csv",
            f"phone;name;\n{P1};Ana;\n{P2};;\n{P3};Bob;;;\n".encode(),
            rows((2, P1, ("Ana",)), (3, P2, ("",)), (4, P3, ("Bob",))),
        ),
        (
            "quoted_delimiters.csv",
            f'phone,name,note\n"+52 55 0000 0001","Lopez, Ana","say ""hi"", ok"\n{P2}, "Bob, Jr",x\n'.encode(),
            rows(
                (2, "+52 55 0000 0001", ("Lopez, Ana", 'say "hi", ok')), (3, P2, ("Bob, Jr", "x"))
            ),
        ),
        (
            "mixed_line_endings.csv",
            f"phone,name\r\n{P1},Ana\n{P2},Bob\r\n{P3},Carl\r{P4},Dan".encode(),
            rows((2, P1, ("Ana",)), (3, P2, ("Bob",)), (4, P3, ("Carl",)), (5, P4, ("Dan",))),
        ),
        (
            "ragged_rows.csv",
            f"phone,name,city\n{P1},Ana\n{P2},Bob,Lima,extra\n{P3}\n{P4},,,\n".encode(),
            rows(
                (2, P1, ("Ana", "")),
                (3, P2, ("Bob", "Lima", "extra")),
                (4, P3, ("", "")),
                (5, P4, ("", "")),
            ),
        ),
        (
            "bad_quoting.csv",
            f'{P1},"Ana" Lopez\n{P2},Bob\n{P3},"Carl, Jr" ,x\n'.encode(),
            rows((1, "bad quoting"), (2, P2, ("Bob",)), (3, "bad quoting")),
        ),
        (
            "unclosed_quote.csv",
            f'phone,name\n{P1},Ana\n{P2},"Bob\n{P3},Carl\n'.encode(),
            rejected("unclosed quote"),
        ),
        (
            "one_mb_line.csv",
            f"phone,name\n{P1},Ana\n{P2},{'x' * 1_048_576}\n{P3},Carl\n".encode(),
            rows((2, P1, ("Ana",)), (3, "field too long"), (4, P3, ("Carl",))),
        ),
        (
            "line_over_4_mib.csv",
            f"phone,name\n{P1},Ana\n{P2},{'y,' * 2_200_000}\n{P3},Carl\n".encode(),
            rows((2, P1, ("Ana",)), (3, "line too long"), (4, P3, ("Carl",))),
        ),
        (
            "very_wide_row.csv",
            (f"{P1}," + ",".join(f"v{i}" for i in range(5000)) + f"\n{P2},a\n").encode(),
            rows((1, P1, tuple(f"v{i}" for i in range(5000))), (2, P2, ("a",))),
        ),
        (
            "one_number_per_line.txt",
            f"{P1}\n{P2}\r\n\n +52 55 0000 0003 \n".encode(),
            rows((1, P1, ()), (2, P2, ()), (4, "+52 55 0000 0003", ())),
        ),
        (
            "txt_with_commas.txt",
            f"{P1},Ana\n{P2},Bob".encode(),
            rows((1, P1, ("Ana",)), (2, P2, ("Bob",))),
        ),
        ("empty_file.csv", b"", rejected("empty file")),
        ("whitespace_only.csv", b"\n \r\n\t\n", rejected("no rows")),
        ("binary_junk.csv", random.Random(7).randbytes(4096), rejected("binary content")),
        ("nul_bytes.csv", f"phone,name\n{P1},A\x00na\n".encode(), rejected("NUL bytes")),
        ("gzip_named_csv.csv", b"\x1f\x8b\x08\x00" + bytes(20), rejected("gzip")),
        ("xlsx_named_text.xlsx", f"phone,name\n{P1},Ana\n".encode(), rows((2, P1, ("Ana",)))),
        (
            "json_messangi_batch.json",
            (
                b'{"from":"12345","text":"Hi {0}, your balance is ${1}","to":[\n'
                b'{"to:":"+525500000000","params":["Elizabeth",10.65]},\n'
                b'{"to:":"+525511111111","params":["Joshua",20.5]}],"type":"MT"}'
            ),
            rows(
                (1, "+525500000000", ("Elizabeth", "10.65")),
                (2, "+525511111111", ("Joshua", "20.5")),
            ),
        ),
        (
            "json_number_list.json",
            f'["{P1}", 525500000002, 5.255E+11, " {P3} "]'.encode(),
            rows((1, P1, ()), (2, P2, ()), (3, "5.255E+11", ()), (4, P3, ())),
        ),
        (
            "json_object_list.json",
            codecs.BOM_UTF8
            + (
                f'[{{"phone": "{P1}", "params": ["Ana", 1, true, null]}}, {{"Mobile": " {P2} "}},'
                f' {{"name": "x"}}, ["{P3}", "Carl", 2.50], {{"to": 5, "params": "Ana"}}, 7]'
            ).encode(),
            rows(
                (1, P1, ("Ana", "1", "true", "")),
                (2, P2, ()),
                (3, "no phone"),
                (4, P3, ("Carl", "2.50")),
                (5, '"params" must be a list'),
                (6, "7", ()),
            ),
        ),
        ("json_invalid.json", b'{"to": [\n  "1",\n  "2",\n]}', rejected("invalid JSON")),
        (
            "json_wrong_shape.json",
            b'{"from": "12345", "text": "hi"}',
            rejected("JSON must be a list"),
        ),
        ("json_empty_list.json", b"  []  ", rejected("no rows")),
        ("json_lines.json", b'{"to": "1"}\n{"to": "2"}\n', rejected("invalid JSON: Extra data")),
        ("too_big.csv", _BASIC.encode(), rejected("over the limit of 32")),
    ]


def _sample_overflow_cases() -> list[tuple[str, bytes, Expectation]]:
    """Damage placed after the 64 KB sniffing sample: found row by row, not up front."""
    filler = [f"5255{i:08d},name{i}" for i in range(_SAMPLE_BYTES // 20 + 10)]
    body = "phone,name\n" + "\n".join(filler) + "\n"
    expected = [(i + 2, f"5255{i:08d}", (f"name{i}",)) for i in range(len(filler))]
    bad_line = len(filler) + 2
    tail_rows = [(bad_line + 1, P1, ("Ana",))]
    return [
        (
            "nul_after_sample.csv",
            (body + f"{P2},B\x00b\n{P1},Ana\n").encode(),
            rows(*expected, (bad_line, "NUL byte"), *tail_rows),
        ),
        (
            "undecodable_after_sample.csv",
            body.encode() + f"{P2},Jos".encode() + b"\xe9\n" + f"{P1},Ana\n".encode(),
            rows(*expected, (bad_line, "undecodable bytes"), *tail_rows),
        ),
    ]


# --------------------------------------------------------------------------- xlsx files


def _save(wb: openpyxl.Workbook) -> bytes:
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _xlsx_basic() -> bytes:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Recipients"
    ws.append(["Phone", "Name", "Amount", "Since", "VIP"])
    ws.append([525500000001, "Ana ", 10.65, dt.date(2024, 1, 2), True])
    ws.append(["+52 55 0000 0002", "Bob", 20, dt.datetime(2024, 1, 2, 3, 4, 5), False])
    ws.append([None, None, None, None, None])
    ws.append([525500000003.0, "Carl", 1e20, None, None])
    return _save(wb)


def _xlsx_scientific() -> bytes:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["phone", "note"])
    for value in (5.255e11, 525512345678, "5.255E+11"):
        ws.append([value, "sci"])
        ws.cell(ws.max_row, 1).number_format = "0.00E+00"
    ws.append([0.5, "half"])
    return _save(wb)


def _xlsx_formula_uncached() -> bytes:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["phone", "total"])
    ws.append([525500000001, "=1+1"])  # openpyxl stores the formula without a cached value
    return _save(wb)


def _xlsx_merged() -> bytes:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["phone", "group", "name"])
    ws.append([525500000001, "VIP", "Ana"])
    ws.append([525500000002, None, "Bob"])
    ws.merge_cells("B2:B3")  # only B2 holds the value
    ws["A5"] = "Footer note"
    ws["A5"].font = Font(bold=True)
    ws.merge_cells("A5:C5")
    return _save(wb)


def _xlsx_sheets(hidden_first: bool = False) -> bytes:
    wb = openpyxl.Workbook()
    notes = wb.active
    notes.title = "Notes"
    notes.append(["Read me first"])
    if hidden_first:
        notes.sheet_state = "hidden"
    recipients = wb.create_sheet("Recipients")
    recipients.append(["name", "mobile"])
    recipients.append(["Ana", 525500000001])
    return _save(wb)


def _xlsx_empty() -> bytes:
    wb = openpyxl.Workbook()
    wb.active.title = "Empty"
    return _save(wb)


def _xlsx_header_only() -> bytes:
    wb = openpyxl.Workbook()
    wb.active.append(["phone", "name"])
    return _save(wb)


def _xlsx_offset() -> bytes:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws["C4"], ws["D4"] = "phone", "name"
    ws["C5"], ws["D5"] = 525500000001, "Ana"
    ws["D7"] = "Bob"
    ws["C8"] = 525500000003
    return _save(wb)


def _xlsx_rows(count: int) -> bytes:
    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet("Big")
    ws.append(["phone"])
    for i in range(count):
        ws.append([525500000000 + i])
    return _save(wb)


def _xlsx_no_header_wide() -> bytes:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append([525500000001, "a", None, None])
    ws.append([525500000002, None, None, "d"])  # makes the sheet 4 wide: row 1 is padded with ""
    return _save(wb)


# Hand-written parts: openpyxl cannot store formula results, Excel always does.
_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    "</Types>"
)
_ROOT_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>'
)
_WORKBOOK = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
    'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
    '<sheets><sheet name="Formulas" sheetId="1" r:id="rId1"/></sheets></workbook>'
)
_WORKBOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>'
)
_FORMULA_SHEET_ROWS = (
    '<row r="1"><c r="A1" t="inlineStr"><is><t>phone</t></is></c>'
    '<c r="B1" t="inlineStr"><is><t>name</t></is></c><c r="C1" t="inlineStr"><is><t>total</t></is></c></row>'
    # A phone computed by a formula (cached as a number), a text formula, a numeric one.
    '<row r="2"><c r="A2"><f>525500000000+1</f><v>525500000001</v></c>'
    '<c r="B2" t="str"><f>"An"&amp;"a"</f><v>Ana</v></c><c r="C2"><f>10.6+0.05</f><v>10.65</v></c></row>'
    # An error cached by Excel (#DIV/0!: calamine gives it as an empty cell) and a boolean formula.
    '<row r="3"><c r="A3" t="str"><f>"5255"&amp;"00000002"</f><v>525500000002</v></c>'
    '<c r="B3" t="e"><f>1/0</f><v>#DIV/0!</v></c><c r="C3" t="b"><f>TRUE()</f><v>1</v></c></row>'
)


def _sheet_xml(rows_xml: str, dimension: str = "A1:C3") -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        f'<dimension ref="{dimension}"/><sheetData>{rows_xml}</sheetData></worksheet>'
    )


def _handmade_xlsx(
    sheet_xml: str,
    *,
    part: str = "xl/worksheets/sheet1.xml",
    target: str = "worksheets/sheet1.xml",
    workbook: str = _WORKBOOK,
) -> bytes:
    """A workbook of one sheet ``sheet_xml`` stored as ``part``, which the rels call ``target``."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", _CONTENT_TYPES)
        zf.writestr("_rels/.rels", _ROOT_RELS)
        zf.writestr("xl/workbook.xml", workbook)
        zf.writestr(
            "xl/_rels/workbook.xml.rels",
            _WORKBOOK_RELS.replace('Target="worksheets/sheet1.xml"', f'Target="{target}"'),
        )
        zf.writestr(part, sheet_xml)
    return buf.getvalue()


def single_quoted_bomb() -> bytes:
    """The ~1.6 KB workbook of issue 11: A1:XFD1048576 in single quotes (once 549 GB, an abort)."""
    rows = (
        "<row r='1'><c r='A1' t='inlineStr'><is><t>phone</t></is></c></row>"
        "<row r='2'><c r='A2' t='inlineStr'><is><t>525500000001</t></is></c></row>"
        "<row r='1048576'><c r='XFD1048576' t='inlineStr'><is><t>x</t></is></c></row>"
    )
    return _handmade_xlsx(
        _sheet_xml(rows).replace('<dimension ref="A1:C3"/>', "<dimension ref='A1:XFD1048576'/>")
    )


def _huge_dimension() -> bytes:
    """Two honest cells under a dimension claiming the whole grid: calamine reserves for it."""
    rows = _inline_row(1, [("A1", "phone")]) + _inline_row(2, [("A2", "525500000001")])
    return _handmade_xlsx(_sheet_xml(rows, dimension="A1:XFD1048576"))


def _odd_part_name(sheet_xml: str) -> bytes:
    """The sheet in a part not named .xml, found only through the workbook's relationships."""
    return _handmade_xlsx(sheet_xml, part="xl/worksheets/data.bin", target="worksheets/data.bin")


def _prefixed_bomb() -> bytes:
    """Namespace prefixes, odd spacing, and a character reference inside the reference."""
    sheet = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<x:worksheet xmlns:x="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        "<x:sheetData><x:row r='1'><x:c\n\tr = \"A1\" t='inlineStr'><x:is><x:t>phone</x:t>"
        "</x:is></x:c></x:row><x:row r = '1048576'><x:c r='&#88;FD1048576' t='inlineStr'>"
        "<x:is><x:t>525500000001</x:t></x:is></x:c></x:row></x:sheetData></x:worksheet>"
    )
    return _handmade_xlsx(sheet)


_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE worksheet [<!ENTITY a "lol">'
    + "".join(f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(9))
    + "]>"
)


def _entity_bomb_sheet() -> bytes:
    rows = _inline_row(1, [("A1", "phone")]) + _inline_row(2, [("A2", "&j;")])
    return _handmade_xlsx(_LAUGHS + _sheet_xml(rows).split("?>", 1)[1])


def _entity_bomb_workbook() -> bytes:
    rows = _inline_row(1, [("A1", "phone")]) + _inline_row(2, [("A2", "525500000001")])
    return _handmade_xlsx(_sheet_xml(rows), workbook=_LAUGHS + _WORKBOOK.split("?>", 1)[1])


def _bad_xml() -> bytes:
    rows = _inline_row(1, [("A1", "phone")]) + "<row r='2'><c r='A2' <c r='XFD1048576'/></row>"
    return _handmade_xlsx(_sheet_xml(rows))


def _valid_sheet() -> str:
    return _sheet_xml(_inline_row(1, [("A1", "phone")]) + _inline_row(2, [("A2", P2)]), "A1:A2")


def _bomb_ratio() -> bytes:
    """An honest zip whose sheet declares 32 MB of padding squeezed ~1000x."""
    padding = " " * (32 * 1024 * 1024)
    return _handmade_xlsx(_sheet_xml(_FORMULA_SHEET_ROWS + f"<!--{padding}-->"))


def _raw_zip(entries: list[tuple[str, bytes, int, int]], claimed_compressed: int = 0) -> bytes:
    """A zip written by hand: (name, deflated data, declared size, declared CRC) per entry.

    ``claimed_compressed`` > 0 makes the directory claim that compressed size for every entry.
    """
    out, central = io.BytesIO(), io.BytesIO()
    for name, data, size, crc in entries:
        offset = out.tell()
        encoded = name.encode()
        out.write(
            struct.pack(
                "<4s5H3I2H", b"PK\x03\x04", 20, 0, 8, 0, 0, crc, len(data), size, len(encoded), 0
            )
        )
        out.write(encoded + data)
        central.write(
            struct.pack(
                "<4s6H3I5H2I",
                b"PK\x01\x02",
                20,
                20,
                0,
                8,
                0,
                0,
                crc,
                claimed_compressed or len(data),
                size,
                len(encoded),
                0,
                0,
                0,
                0,
                0,
                offset,
            )
        )
        central.write(encoded)
    start, directory = out.tell(), central.getvalue()
    out.write(directory)
    out.write(
        struct.pack(
            "<4s4H2IH", b"PK\x05\x06", 0, 0, len(entries), len(entries), len(directory), start, 0
        )
    )
    return out.getvalue()


def _deflate(data: bytes) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return c.compress(data) + c.flush()


def _bomb_declared_total() -> bytes:
    """Three entries claiming 1 GB each from 8 MB each (a plausible ratio), 3 GB in all."""
    parts = [
        ("xl/workbook.xml", _WORKBOOK.encode()),
        ("xl/worksheets/sheet1.xml", b"<x/>"),
        ("xl/worksheets/sheet2.xml", b"<x/>"),
    ]
    entries = [(n, _deflate(d), 1_000_000_000, zlib.crc32(d)) for n, d in parts]
    return _raw_zip(entries, claimed_compressed=8_000_000)


def _bomb_lying(declared_total: int | None = None) -> bytes:
    """Sizes in the directory that lie: small claims over a 48 MB sheet, or a huge claim."""
    parts = [
        ("[Content_Types].xml", _CONTENT_TYPES.encode()),
        ("_rels/.rels", _ROOT_RELS.encode()),
        ("xl/workbook.xml", _WORKBOOK.encode()),
        ("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS.encode()),
    ]
    entries = [(n, _deflate(d), len(d), zlib.crc32(d)) for n, d in parts]
    sheet = _sheet_xml(_FORMULA_SHEET_ROWS + "<!--" + " " * (48 * 1024 * 1024) + "-->").encode()
    packed = _deflate(sheet)
    if declared_total is None:
        entries.append(
            (
                "xl/worksheets/sheet1.xml",
                packed,
                4 * len(packed),
                zlib.crc32(sheet[: 4 * len(packed)]),
            )
        )
    else:
        entries.append(("xl/worksheets/sheet1.xml", packed, declared_total, zlib.crc32(sheet)))
        entries.append(("xl/worksheets/sheet2.xml", packed, declared_total, zlib.crc32(sheet)))
    return _raw_zip(entries)


def _inline_row(row: int | None, cells: list[tuple[str | None, str]]) -> str:
    """A <row> of inline cells; None leaves out the r= attributes (allowed, positions follow)."""
    head = "<row>" if row is None else f'<row r="{row}">'
    body = "".join(
        (f'<c r="{ref}"' if ref else "<c") + f' t="inlineStr"><is><t>{text}</t></is></c>'
        for ref, text in cells
    )
    return head + body + "</row>"


def _sparse_bomb_sheet() -> str:
    """Two cells, A1 and XFD1048576: a 1 KB file whose dense grid is 17 billion cells."""
    rows = _inline_row(1, [("A1", "phone")]) + _inline_row(
        1048576, [("XFD1048576", "525500000001")]
    )
    return _sheet_xml(rows, dimension="A1:A2")  # the dimension lies too


def _sparse_bomb() -> bytes:
    return _handmade_xlsx(_sparse_bomb_sheet())


def _far_row() -> bytes:
    rows = _inline_row(1, [("A1", "phone")]) + _inline_row(5000, [("A5000", "525500000001")])
    return _handmade_xlsx(_sheet_xml(rows, dimension="A1:A2"))


def _rows_without_refs(count: int) -> bytes:
    rows = _inline_row(None, [(None, "phone"), (None, "name")])
    rows += "".join(
        _inline_row(None, [(None, f"52550000000{i}"), (None, f"n{i}")]) for i in range(count)
    )
    return _handmade_xlsx(_sheet_xml(rows))


def _corrupt_entry() -> bytes:
    data = bytearray(_xlsx_rows(200))
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as zf:
        info = zf.getinfo("xl/worksheets/sheet1.xml")
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    for i in range(start + 40, start + 60):
        data[i] ^= 0x55
    return bytes(data)


def _zip_not_xlsx() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("recipients.csv", f"phone\n{P1}\n")
    return buf.getvalue()


def _xlsx_cases() -> list[tuple[str, Callable[[], bytes], Expectation]]:
    return [
        (
            "xlsx_basic.xlsx",
            _xlsx_basic,
            rows(
                (2, "525500000001", ("Ana", "10.65", "2024-01-02", "TRUE")),
                (3, "+52 55 0000 0002", ("Bob", "20", "2024-01-02T03:04:05", "FALSE")),
                (5, "525500000003", ("Carl", "100000000000000000000", "", "")),
            ),
        ),
        (
            "xlsx_scientific.xlsx",
            _xlsx_scientific,
            rows(
                (2, "525500000000", ("sci",)),
                (3, "525512345678", ("sci",)),
                (4, "5.255E+11", ("sci",)),
                (5, "0.5", ("half",)),
            ),
        ),
        (
            "xlsx_formula_cached.xlsx",
            lambda: _handmade_xlsx(_sheet_xml(_FORMULA_SHEET_ROWS)),
            rows((2, "525500000001", ("Ana", "10.65")), (3, "525500000002", ("", "TRUE"))),
        ),
        # Documented: a formula never calculated (openpyxl writes none) reads as an empty cell.
        ("xlsx_formula_uncached.xlsx", _xlsx_formula_uncached, rows((2, "525500000001", ("",)))),
        (
            "xlsx_merged_cells.xlsx",
            _xlsx_merged,
            rows(
                (2, "525500000001", ("VIP", "Ana")),
                (3, "525500000002", ("", "Bob")),
                (5, "Footer note", ("", "")),
            ),
        ),
        ("xlsx_empty_sheet.xlsx", _xlsx_empty, rejected("no rows")),
        ("xlsx_header_only.xlsx", _xlsx_header_only, rejected("no rows after the header")),
        ("xlsx_second_sheet_by_name.xlsx", _xlsx_sheets, rows((2, "525500000001", ("Ana",)))),
        (
            "xlsx_unknown_sheet.xlsx",
            _xlsx_sheets,
            rejected("no sheet named 'Nope'; the workbook has: 'Notes', 'Recipients'"),
        ),
        (
            "xlsx_first_sheet_hidden.xlsx",
            lambda: _xlsx_sheets(hidden_first=True),
            rows((2, "525500000001", ("Ana",))),
        ),
        ("xlsx_first_sheet_default.xlsx", _xlsx_sheets, rejected("no phone column found")),
        (
            "xlsx_offset_data.xlsx",
            _xlsx_offset,
            rows((5, "525500000001", ("Ana",)), (7, "", ("Bob",)), (8, "525500000003", ("",))),
        ),
        (
            "xlsx_no_header_padded.xlsx",
            _xlsx_no_header_wide,
            rows((1, "525500000001", ("a",)), (2, "525500000002", ("", "", "d"))),
        ),
        ("xlsx_over_max_rows.xlsx", lambda: _xlsx_rows(10), rejected("more than 5")),
        ("xlsx_named_csv.csv", _xlsx_header_only_data, rows((2, "525500000001", ("Ana",)))),
        ("xlsx_zip_bomb_ratio.xlsx", _bomb_ratio, rejected("zip bomb suspected")),
        ("xlsx_zip_bomb_lying_sizes.xlsx", _bomb_lying, rejected("zip bomb suspected")),
        (
            "xlsx_zip_bomb_huge_claim.xlsx",
            lambda: _bomb_lying(1_500_000_000),
            rejected("zip bomb suspected"),
        ),
        (
            "xlsx_zip_bomb_declared_total.xlsx",
            _bomb_declared_total,
            rejected("the workbook expands to 3,000,000,000 bytes"),
        ),
        ("xlsx_sparse_cell_bomb.xlsx", _sparse_bomb, rejected("cells, over 20,000,000")),
        ("xlsx_far_row.xlsx", _far_row, rejected("has 5,000 rows, more than 100")),
        ("xlsx_single_quoted_bomb.xlsx", single_quoted_bomb, rejected("cells, over 20,000,000")),
        ("xlsx_huge_dimension.xlsx", _huge_dimension, rejected("cells, over 20,000,000")),
        (
            "xlsx_odd_part_name_bomb.xlsx",
            lambda: _odd_part_name(_sparse_bomb_sheet()),
            rejected("cells, over 20,000,000"),
        ),
        (
            "xlsx_odd_part_name_valid.xlsx",
            lambda: _odd_part_name(_valid_sheet()),
            rows((2, P2, ())),
        ),
        (
            "xlsx_absolute_target.xlsx",
            lambda: _handmade_xlsx(_valid_sheet(), target="/xl/worksheets/sheet1.xml"),
            rows((2, P2, ())),
        ),
        ("xlsx_prefixed_bomb.xlsx", _prefixed_bomb, rejected("cells, over 20,000,000")),
        (
            "xlsx_huge_cell_ref.xlsx",
            lambda: _handmade_xlsx(_sheet_xml(_inline_row(1, [("A99999999", "phone")]))),
            rejected("beyond Excel's last cell XFD1048576"),
        ),
        (
            "xlsx_huge_row_number.xlsx",
            lambda: _handmade_xlsx(_sheet_xml('<row r="4294967297"><c><v>1</v></c></row>')),
            rejected("outside Excel's grid"),
        ),
        ("xlsx_bad_xml.xlsx", _bad_xml, rejected("malformed XML")),
        ("xlsx_entity_bomb_sheet.xlsx", _entity_bomb_sheet, rejected("document type declaration")),
        (
            "xlsx_entity_bomb_workbook.xlsx",
            _entity_bomb_workbook,
            rejected("document type declaration"),
        ),
        (
            "xlsx_rows_without_refs.xlsx",
            lambda: _rows_without_refs(3),
            rows(*[(i + 2, f"52550000000{i}", (f"n{i}",)) for i in range(3)]),
        ),
        (
            "xlsx_rows_without_refs_over_max.xlsx",
            lambda: _rows_without_refs(6),
            rejected("more than 5"),
        ),
        ("xlsx_truncated.xlsx", lambda: _xlsx_basic()[:1500], rejected("corrupt .xlsx")),
        ("xlsx_corrupt_entry.xlsx", _corrupt_entry, rejected("corrupt .xlsx")),
        (
            "xlsx_encrypted.xlsx",
            lambda: b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504),
            rejected("password-protected"),
        ),
        ("zip_not_xlsx.xlsx", _zip_not_xlsx, rejected("not an .xlsx workbook")),
    ]


def _xlsx_header_only_data() -> bytes:
    wb = openpyxl.Workbook()
    wb.active.append(["mobile", "name"])
    wb.active.append([525500000001, "Ana"])
    return _save(wb)


OPEN_KWARGS.update(
    {
        "xlsx_second_sheet_by_name": {"sheet": "Recipients"},
        "xlsx_unknown_sheet": {"sheet": "Nope"},
        "xlsx_over_max_rows": {"max_rows": 5},
        "xlsx_far_row": {"max_rows": 100},
        "xlsx_rows_without_refs_over_max": {"max_rows": 5},
        "too_big": {"max_file_bytes": 32},
    }
)


def case_names() -> list[str]:
    """Every case's name, without writing anything (for pytest parametrize ids)."""
    tables = _text_cases() + _sample_overflow_cases() + _xlsx_cases()
    return [Path(filename).stem for filename, _, _ in tables]


def build_hostile_files(dir: Path) -> list[HostileCase]:  # noqa: A002 - the agreed signature
    """Write every hostile case into ``dir``; return (name, path, expectation) for each."""
    dir.mkdir(parents=True, exist_ok=True)
    cases: list[HostileCase] = []
    for filename, data, expectation in _text_cases() + _sample_overflow_cases():
        cases.append(_write(dir, filename, data, expectation))
    for filename, build, expectation in _xlsx_cases():
        cases.append(_write(dir, filename, build(), expectation))
    return cases


def _write(dir: Path, filename: str, data: bytes, expectation: Expectation) -> HostileCase:  # noqa: A002
    path = dir / filename
    path.write_bytes(data)
    return HostileCase(path.stem, path, expectation)


def observe(case: HostileCase) -> Expectation:
    """Read a case's file with its open_kwargs and describe the outcome like an expectation."""
    from broadcaster.errors import FileRejected
    from broadcaster.ingest import RowProblem, open_recipients

    items: list[ExpectedRow | ExpectedProblem] = []
    try:
        with open_recipients(case.path, **case.open_kwargs) as table:
            for item in table.rows:
                if isinstance(item, RowProblem):
                    items.append(ExpectedProblem(item.line, item.reason))
                else:
                    items.append(ExpectedRow(item.line, item.phone, item.params))
    except FileRejected as exc:
        return ("rejected", exc.reason)
    return ("rows", items)


def matches(expected: Expectation, observed: Expectation) -> bool:
    """Equal, except that rejection reasons and problem reasons match by substring."""
    if expected[0] != observed[0]:
        return False
    if expected[0] == "rejected":
        return expected[1] in observed[1]
    want, got = expected[1], observed[1]
    if len(want) != len(got):
        return False
    for w, g in zip(want, got, strict=True):
        if type(w) is not type(g) or w.line != g.line:
            return False
        if isinstance(w, ExpectedProblem):
            if w.reason not in g.reason:
                return False
        elif w != g:
            return False
    return True
