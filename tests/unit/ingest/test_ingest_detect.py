"""Sniffing tables: format, encoding, delimiter, header names, layout, cell text."""

from __future__ import annotations

import codecs
import datetime as dt
from pathlib import Path

import pytest

from broadcaster.errors import FileRejected
from broadcaster.ingest.detect import detect_delimiter, detect_encoding, sniff_format
from broadcaster.ingest.header import Layout, detect_layout, normalize_header, split_cells
from broadcaster.ingest.xlsx_reader import cell_text


@pytest.mark.parametrize(
    ("text", "complete", "expected"),
    [
        ("a,b,c\n1,2,3\n", True, ","),
        ("a;b;c\n1;2,5;3\n", True, ";"),  # decimal commas lose to the consistent semicolons
        ("a\tb\n1\t2\n", True, "\t"),
        ("a|b\n1|2\n", True, "|"),
        ("5255\n5256\n", True, None),  # one column
        ("", True, None),
        ('phone,name\n1,"a;b;c"\n2,"d;e;f"\n', True, ","),  # delimiters inside quotes do not count
        ('phone;note\n1;"x,\ny,z"\n2;w\n', True, ";"),  # nor do those in a quoted multi-line field
        ("p,n;x\n1,2;3\n4,5;6\n", True, ","),  # a tie in consistency and count: order of preference
        ("p;a;b\n1;2;3\n4;5;6\n7,8", False, ";"),  # a cut last record is left out
        ("p,a\n1,2\n3,4\n5;6;7;8;9;10", True, ","),
        ("\n\n1|a\n\n2|b\n", True, "|"),  # blank lines are not records
    ],
)
def test_detect_delimiter(text: str, complete: bool, expected: str | None) -> None:
    assert detect_delimiter(text, complete=complete) == expected


@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        (b"phone\n5255\n", "utf-8"),
        ("tel\u00e9fono\n".encode(), "utf-8"),
        (codecs.BOM_UTF8 + b"phone\n", "utf-8-sig"),
        (codecs.BOM_UTF16_LE + "phone\n".encode("utf-16-le"), "utf-16"),
        (codecs.BOM_UTF16_BE + "phone\n".encode("utf-16-be"), "utf-16"),
        (codecs.BOM_UTF32_LE + "phone\n".encode("utf-32-le"), "utf-32"),
        ("phone,nombre\n".encode("utf-16-le"), "utf-16-le"),
        ("phone,nombre\n".encode("utf-16-be"), "utf-16-be"),
        ("Jos\u00e9 N\u00fa\u00f1ez \u20ac\n".encode("cp1252"), "cp1252"),
        (b"5255,\x1a\n", "utf-8"),  # a DOS end-of-file marker is not binary
    ],
)
def test_detect_encoding(sample: bytes, expected: str) -> None:
    assert detect_encoding(sample, "f.csv") == expected


@pytest.mark.parametrize(
    ("sample", "reason"),
    [
        (b"phone\x00\n5255\n", "NUL bytes"),
        (b"\x01\x02\x03\x04\x05\x06\x07\x08 abc", "control characters"),
        (
            b"ok\x81\x8d\x8f\x90\x9d",
            "neither UTF-8 nor Windows-1252",
        ),  # bytes cp1252 leaves undefined
    ],
)
def test_detect_encoding_refuses_binary(sample: bytes, reason: str) -> None:
    with pytest.raises(FileRejected, match=reason):
        detect_encoding(sample, "f.csv")


@pytest.mark.parametrize(
    ("filename", "content", "expected"),
    [
        ("a.csv", b"phone\n1\n", "csv"),
        ("a.TXT", b"1\n2\n", "txt"),
        ("a.dat", b"1\n2\n", "csv"),
        ("noext", b"1\n", "csv"),
        ("a.csv", b'  \n [ "1" ]', "json"),
        ("a.txt", b'{"to": []}', "json"),
        ("a.json", b"phone\n1\n", "csv"),  # the extension lies: content wins
        ("a.xlsx", b"phone\n1\n", "csv"),
        ("a.csv", codecs.BOM_UTF8 + b"[1]", "json"),
    ],
)
def test_sniff_format(tmp_path: Path, filename: str, content: bytes, expected: str) -> None:
    path = tmp_path / filename
    path.write_bytes(content)
    assert sniff_format(path, content, filename) == expected


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty file"),
        (b"  \r\n", "blank space"),
        (b"%PDF-1.4\n", "PDF"),
        (b"\x89PNG\r\n\x1a\n", "PNG"),
        (b"PK\x05\x06" + bytes(18), "empty zip"),
    ],
)
def test_sniff_format_refuses(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(content)
    with pytest.raises(FileRejected, match=reason):
        sniff_format(path, content, "f.csv")


@pytest.mark.parametrize(
    ("name", "normalized"),
    [
        (" Phone_Number ", "phonenumber"),
        ("Tel\u00e9fono", "telefono"),
        ("M\u00d3VIL", "movil"),
        ("to:", "to"),
        ("E-mail", "email"),
        ("", ""),
    ],
)
def test_normalize_header(name: str, normalized: str) -> None:
    assert normalize_header(name) == normalized


@pytest.mark.parametrize(
    ("first", "layout"),
    [
        (["5255", "Ana"], Layout(0, None)),
        (["+52 (55) 0000", ""], Layout(0, None)),
        (["phone", "name"], Layout(0, ("name",), "phone")),
        (["name", "MSISDN", "city"], Layout(1, ("name", "city"), "MSISDN")),
        (
            ["name", "to", "phone"],
            Layout(1, ("name", "phone"), "to"),
        ),  # the first phone-like name wins
        (
            ["Celular", "nombre", "", ""],
            Layout(0, ("nombre",), "Celular"),
        ),  # trailing empties dropped
        (["5255", "phone"], Layout(1, ("5255",), "phone")),  # a phone-named cell makes a header
    ],
)
def test_detect_layout(first: list[str], layout: Layout) -> None:
    assert detect_layout(first, "f.csv", 1) == layout


@pytest.mark.parametrize("first", [["name", "city"], ["Customer list", "", ""], ["", "Ana"]])
def test_detect_layout_refuses_a_header_without_phone(first: list[str]) -> None:
    with pytest.raises(FileRejected, match="no phone column found") as info:
        detect_layout(first, "f.csv", 3)
    assert info.value.line == 3


@pytest.mark.parametrize(
    ("cells", "layout", "phone", "params"),
    [
        (["1", "a", "b"], Layout(0, None), "1", ("a", "b")),
        (["1", "a", "", ""], Layout(0, None), "1", ("a",)),
        (["1", "", "b", ""], Layout(0, None), "1", ("", "b")),
        (["1"], Layout(0, ("x", "y")), "1", ("", "")),
        (["1", "a", "b", "c", ""], Layout(0, ("x", "y")), "1", ("a", "b", "c")),
        (["1", "a", "", ""], Layout(0, ("x", "y")), "1", ("a", "")),
        (["a", "b", "1"], Layout(2, ("x", "y"), "p"), "1", ("a", "b")),
        (["a"], Layout(2, ("x", "y"), "p"), "", ("a", "")),
    ],
)
def test_split_cells(cells: list[str], layout: Layout, phone: str, params: tuple[str, ...]) -> None:
    row = split_cells(7, cells, layout)
    assert (row.line, row.phone, row.params) == (7, phone, params)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (525512345678.0, "525512345678"),
        (5.255e11, "525500000000"),
        (1e20, "100000000000000000000"),
        (10.65, "10.65"),
        (0.1 + 0.2, "0.30000000000000004"),  # a non-integer float keeps its repr
        (-3.0, "-3"),
        (42, "42"),
        (True, "TRUE"),
        (False, "FALSE"),
        (dt.date(2024, 1, 2), "2024-01-02"),
        (dt.datetime(2024, 1, 2, 3, 4, 5), "2024-01-02T03:04:05"),
        (dt.time(9, 30), "09:30:00"),
        (dt.timedelta(hours=25), "1 day, 1:00:00"),
        ("  x ", "x"),
        (None, ""),
        (float("inf"), "inf"),
    ],
)
def test_cell_text(value: object, text: str) -> None:
    assert cell_text(value) == text
