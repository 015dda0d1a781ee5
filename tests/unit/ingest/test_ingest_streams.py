"""Streaming behaviour: round trips, chunk boundaries, row limits, laziness and flat memory."""

from __future__ import annotations

import csv
import io
import json
import tracemalloc
from pathlib import Path

import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broadcaster.errors import FileRejected
from broadcaster.ingest import (
    RecipientRow,
    RowProblem,
    json_stream,
    open_recipients,
    read_recipients_bytes,
)
from broadcaster.ingest.json_stream import JsonSyntaxError, events

# --------------------------------------------------------------------------- CSV round trip

_CELL_CHARS = st.sampled_from(list("abcXYZ019 .-_'\"\n\r\u00e9\u00f1\u00fc"))
_cells = st.text(_CELL_CHARS, max_size=12)
_phones = st.from_regex(r"\+?[0-9]{6,15}", fullmatch=True)


@st.composite
def _tables(draw: st.DrawFn) -> list[list[str]]:
    width = draw(st.integers(0, 4))
    rows = draw(
        st.lists(
            st.tuples(_phones, st.lists(_cells, min_size=width, max_size=width)),
            min_size=1,
            max_size=30,
        )
    )
    return [[phone, *params] for phone, params in rows]


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    table=_tables(),
    delimiter=st.sampled_from([",", ";", "\t", "|"]),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "cp1252"]),
    newline=st.sampled_from(["\n", "\r\n"]),
)
def test_written_csv_reads_back(
    tmp_path: Path, table: list[list[str]], delimiter: str, encoding: str, newline: str
) -> None:
    # Given a table written by the csv module (no header: the phone cells have digits). With
    # "\n" as line end the writer would leave a lone "\r" unquoted, so it quotes everything then.
    buf = io.StringIO()
    quoting = csv.QUOTE_ALL if newline == "\n" else csv.QUOTE_MINIMAL
    csv.writer(buf, delimiter=delimiter, lineterminator=newline, quoting=quoting).writerows(table)
    path = tmp_path / "t.csv"
    path.write_bytes(buf.getvalue().encode(encoding))
    # When it is read
    with open_recipients(path) as t:
        got = list(t.rows)
    # Then every row comes back trimmed, trailing empty params dropped, lines increasing
    expected = []
    for phone, *params in table:
        cells = [c.strip() for c in params]
        while cells and not cells[-1]:
            cells.pop()
        expected.append((phone, tuple(cells)))
    assert [(r.phone, r.params) for r in got if isinstance(r, RecipientRow)] == expected
    lines = [r.line for r in got]
    assert lines == sorted(set(lines)) and lines[0] == 1


# --------------------------------------------------------------------------- JSON stream

_json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.text(max_size=8),
    st.floats(allow_nan=False, allow_infinity=False),
)
_json_values = st.recursive(
    _json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=12,
)


def _literal(value: object) -> object:
    """What the stream gives for a value: numbers as their JSON literal text."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, list):
        return [_literal(v) for v in value]
    assert isinstance(value, dict)
    return {k: _literal(v) for k, v in value.items()}


@settings(max_examples=200, deadline=None)
@given(
    doc=st.one_of(
        st.lists(_json_values, max_size=8),
        st.dictionaries(
            st.sampled_from(["to", "from", "text", "recipients", "x"]), _json_values, max_size=4
        ),
    ),
    chunk=st.integers(1, 9),
    indent=st.sampled_from([None, 2]),
)
def test_json_stream_agrees_with_json_loads(doc: object, chunk: int, indent: int | None) -> None:
    text = json.dumps(doc, indent=indent)
    old = json_stream.CHUNK_CHARS
    json_stream.CHUNK_CHARS = chunk  # tiny chunks: every value straddles a boundary somewhere
    try:
        got = list(events(io.StringIO(text), frozenset({"to"})))
    finally:
        json_stream.CHUNK_CHARS = old
    if isinstance(doc, list):
        expected = [(None, "item", _literal(v)) for v in doc] or [(None, "empty", [])]
    else:
        assert isinstance(doc, dict)
        expected = []
        for key, value in doc.items():
            if key == "to" and isinstance(value, list):
                expected += [(key, "item", _literal(v)) for v in value] or [(key, "empty", [])]
            else:
                expected.append((key, "value", _literal(value)))
    assert [tuple(e) for e in got] == expected


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        ("[1, 2,\n]", "Expecting value", 2),
        ("[1 2]", "expecting ',' or ']'", 1),
        ('{"to": [1]\n\n"x": 2}', "expecting ',' or '}'", 3),
        ("{1: 2}", "property name", 1),
        ("[1]\n[2]", "Extra data", 2),
        ('"just a string"', "expecting a list or an object", 1),
        ('[\n"unterminated', "Unterminated string", 2),
        ('{"to": [', "found the end of the document", 1),
        ("[tru]", "Expecting value", 1),
    ],
)
def test_json_stream_syntax_errors(text: str, message: str, line: int) -> None:
    old = json_stream.CHUNK_CHARS
    json_stream.CHUNK_CHARS = 3
    try:
        with pytest.raises(JsonSyntaxError) as info:
            list(events(io.StringIO(text), frozenset({"to"})))
    finally:
        json_stream.CHUNK_CHARS = old
    assert message in info.value.message
    assert info.value.line == line


def test_json_meta_after_the_list_is_known_before_the_rows(tmp_path: Path) -> None:
    path = tmp_path / "batch.json"
    path.write_text('{"to": [{"to": "+5255"}], "text": "Hi", "from": 123}')
    with open_recipients(path) as table:
        assert table.meta == {"text": "Hi", "from": "123"}
        assert list(table.rows) == [RecipientRow(1, "+5255", ())]


@pytest.mark.parametrize(
    ("content", "rows"),
    [
        (
            '{"from": "1", "text": "x", "to": "+580000000005"}',
            [RecipientRow(1, "+580000000005", ())],
        ),
        ('{"recipients": ["1", "2"]}', [RecipientRow(1, "1", ()), RecipientRow(2, "2", ())]),
        ('[{"to": "1", "params": null}, {"to": null}]', [RecipientRow(1, "1", ()), "to"]),
        ('[[], [1, [2]], {"to": true}]', ["empty", "text or numbers", "phone number"]),
    ],
)
def test_json_shapes(tmp_path: Path, content: str, rows: list[object]) -> None:
    path = tmp_path / "r.json"
    path.write_text(content)
    with open_recipients(path) as table:
        got = list(table.rows)
    assert len(got) == len(rows)
    for want, item in zip(rows, got, strict=True):
        if isinstance(want, str):
            assert isinstance(item, RowProblem) and want in item.reason
        else:
            assert item == want


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ('{"to": [], "x": 1}', "the recipient list is empty"),
        ("[]", "the recipient list is empty"),
        ('{"to": ["1"], "recipients": ["2"]}', "two recipient lists"),
        ('{"to": {"phone": "1"}}', "JSON must be a list"),
        ('{"to": [1, }', "invalid JSON"),
    ],
)
def test_json_refusals(tmp_path: Path, content: str, reason: str) -> None:
    path = tmp_path / "r.json"
    path.write_text(content)
    with pytest.raises(FileRejected, match=reason), open_recipients(path):
        pass


def test_json_single_recipient_keeps_a_number_literal(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text('{"from": "1", "to": 5.5e3}')
    with open_recipients(path) as table:
        assert table.meta == {"from": "1"}
        assert list(table.rows) == [RecipientRow(1, "5.5e3", ())]


def test_json_over_max_rows_is_refused_before_any_row(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text(json.dumps([str(5255000000 + i) for i in range(6)]))
    with (
        pytest.raises(FileRejected, match="more than 5 recipients"),
        open_recipients(path, max_rows=5),
    ):
        pass
    with open_recipients(path, max_rows=6) as table:
        assert len(list(table.rows)) == 6


# --------------------------------------------------------------------------- limits and laziness


def _write_csv(path: Path, rows: int, header: bool = True) -> None:
    with path.open("w") as f:
        if header:
            f.write("phone,name\n")
        for i in range(rows):
            f.write(f"5255{i:08d},n{i}\n")


def test_csv_row_limit_is_raised_while_iterating(tmp_path: Path) -> None:
    # Given a file with 8 rows and a limit of 5
    path = tmp_path / "r.csv"
    _write_csv(path, 8)
    seen: list[int] = []
    # When it is read, Then 5 rows come out and the 6th raises, naming its line
    with pytest.raises(FileRejected) as info, open_recipients(path, max_rows=5) as table:
        for row in table.rows:
            seen.append(row.line)
    assert seen == [2, 3, 4, 5, 6]
    assert info.value.line == 7 and "more than 5 rows" in info.value.reason


def test_csv_at_the_row_limit_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    _write_csv(path, 5)
    with open_recipients(path, max_rows=5) as table:
        assert [r.line for r in table.rows] == [2, 3, 4, 5, 6]


def test_xlsx_row_limit_counts_data_rows(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    wb.active.append(["phone"])
    for i in range(5):
        wb.active.append([5255000000 + i])
    path = tmp_path / "r.xlsx"
    wb.save(path)
    with open_recipients(path, max_rows=5) as table:
        assert len(list(table.rows)) == 5
    with (
        pytest.raises(FileRejected, match="6 rows, more than 4"),
        open_recipients(path, max_rows=4),
    ):
        pass


def test_rows_are_a_lazy_iterator(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    _write_csv(path, 10)
    with open_recipients(path) as table:
        assert iter(table.rows) is table.rows
        assert next(table.rows) == RecipientRow(2, "525500000000", ("n0",))


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_memory_stays_flat(tmp_path: Path, fmt: str) -> None:
    """Reading 100,000 rows allocates far less than holding them would (~25 MB as objects)."""
    rows = 100_000
    if fmt == "csv":
        path = tmp_path / "big.csv"
        _write_csv(path, rows)
    else:
        path = tmp_path / "big.json"
        path.write_text(
            json.dumps(
                {"text": "hi", "to": [{"to": f"5255{i:08d}", "params": ["a"]} for i in range(rows)]}
            )
        )
    tracemalloc.start()
    try:
        with open_recipients(path) as table:
            count = sum(1 for _ in table.rows)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert count == rows
    assert peak < 8 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"


def test_upload_temp_file_is_removed(tmp_path: Path) -> None:
    data = b"phone\n5255\n"
    with read_recipients_bytes(data, "C:\\Users\\ana\\list.txt") as table:
        assert table.source == "list.txt"
        assert table.format == "txt"  # the client's extension is the hint
        assert list(table.rows) == [RecipientRow(2, "5255", ())]
    with (
        pytest.raises(FileRejected, match="over the limit"),
        read_recipients_bytes(data, "a.csv", max_file_bytes=4),
    ):
        pass
