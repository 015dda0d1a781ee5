"""Every hostile file of tests/support/hostile_files.py reads exactly as its case says."""

from __future__ import annotations

from pathlib import Path

import pytest

from broadcaster.errors import FileRejected
from broadcaster.ingest import RecipientRow, RowProblem, open_recipients, read_recipients_bytes
from tests.support.hostile_files import (
    ExpectedProblem,
    ExpectedRow,
    HostileCase,
    build_hostile_files,
    case_names,
    matches,
    observe,
)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> dict[str, HostileCase]:
    return {case.name: case for case in build_hostile_files(tmp_path_factory.mktemp("hostile"))}


def test_the_factory_covers_enough_cases() -> None:
    names = case_names()
    assert len(names) >= 35
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("name", case_names())
def test_hostile_file_reads_as_expected(hostile: dict[str, HostileCase], name: str) -> None:
    case = hostile[name]
    observed = observe(case)
    if case.expectation[0] == "rejected":
        assert observed[0] == "rejected", f"{name} was read: {str(observed[1])[:300]}"
        assert case.expectation[1] in observed[1]
    else:
        assert observed[0] == "rows", f"{name} was rejected: {observed[1]}"
        want, got = case.expectation[1], observed[1]
        assert [(type(w).__name__, w.line) for w in want] == [
            (type(g).__name__, g.line) for g in got
        ]
        for w, g in zip(want, got, strict=True):
            if isinstance(w, ExpectedProblem):
                assert w.reason in g.reason
            else:
                assert w == g
    assert matches(case.expectation, observed)


@pytest.mark.parametrize("name", case_names())
def test_upload_of_hostile_bytes_reads_the_same(hostile: dict[str, HostileCase], name: str) -> None:
    """read_recipients_bytes (HTTP uploads) agrees with open_recipients on every case."""
    case = hostile[name]
    items: list[ExpectedRow | ExpectedProblem] = []
    try:
        with read_recipients_bytes(
            case.path.read_bytes(), case.path.name, **case.open_kwargs
        ) as table:
            assert table.source == case.path.name
            for item in table.rows:
                items.append(
                    ExpectedProblem(item.line, item.reason)
                    if isinstance(item, RowProblem)
                    else ExpectedRow(item.line, item.phone, item.params)
                )
        observed: tuple[str, object] = ("rows", items)
    except FileRejected as exc:
        assert exc.path == case.path.name  # messages name the upload, not the temp file
        observed = ("rejected", exc.reason)
    assert matches(case.expectation, observed)


@pytest.mark.parametrize(
    ("name", "fmt", "columns", "meta"),
    [
        ("utf8_header_comma", "csv", ("name", "amount"), {"encoding": "utf-8", "delimiter": ","}),
        ("utf8_bom", "csv", ("name", "amount"), {"encoding": "utf-8-sig"}),
        ("utf16le_bom", "csv", ("name", "amount"), {"encoding": "utf-16"}),
        ("utf16be_no_bom", "csv", ("name", "amount"), {"encoding": "utf-16-be"}),
        ("cp1252", "csv", ("nombre", "nota"), {"encoding": "cp1252", "delimiter": ";"}),
        ("tab", "csv", ("name",), {"delimiter": "\t", "phone_header": "msisdn"}),
        (
            "pipe_no_header",
            "txt",
            None,
            {"delimiter": "|", "phone_column": 0, "phone_header": None},
        ),
        ("one_number_per_line", "txt", None, {"delimiter": None}),
        ("excel_sep_line", "csv", ("name,last",), {"delimiter": "|"}),
        (
            "phone_not_first",
            "csv",
            ("name", "city"),
            {"phone_column": 2, "phone_header": "Mobile Number"},
        ),
        ("trailing_delimiters", "csv", ("name",), {"delimiter": ";"}),
        ("xlsx_named_text", "csv", ("name",), {}),
        ("xlsx_basic", "xlsx", ("Name", "Amount", "Since", "VIP"), {"sheet": "Recipients"}),
        ("xlsx_named_csv", "xlsx", ("name",), {"phone_header": "mobile"}),
        ("xlsx_first_sheet_hidden", "xlsx", ("name",), {"sheet": "Recipients", "phone_column": 1}),
        ("xlsx_offset_data", "xlsx", ("name",), {"phone_column": 0}),
        (
            "json_messangi_batch",
            "json",
            None,
            {"from": "12345", "text": "Hi {0}, your balance is ${1}", "type": "MT"},
        ),
        ("json_number_list", "json", None, {}),
    ],
)
def test_table_format_columns_and_meta(
    hostile: dict[str, HostileCase],
    name: str,
    fmt: str,
    columns: tuple[str, ...] | None,
    meta: dict,
) -> None:
    case = hostile[name]
    with open_recipients(case.path, **case.open_kwargs) as table:
        assert table.format == fmt
        assert table.columns == columns
        assert {k: table.meta.get(k) for k in meta} == meta
        assert table.source == str(case.path)
        assert all(isinstance(r, RecipientRow | RowProblem) for r in table.rows)


def test_second_sheet_meta_lists_every_sheet(hostile: dict[str, HostileCase]) -> None:
    case = hostile["xlsx_second_sheet_by_name"]
    with open_recipients(case.path, sheet="Recipients") as table:
        assert table.meta["sheet"] == "Recipients"
        assert table.meta["sheets"] == ["Notes", "Recipients"]


def test_a_row_problem_keeps_at_most_100_characters(hostile: dict[str, HostileCase]) -> None:
    with open_recipients(hostile["one_mb_line"].path) as table:
        problems = [r for r in table.rows if isinstance(r, RowProblem)]
    assert len(problems) == 1
    assert problems[0].value == "x" * 100


def test_rejection_carries_path_and_line(hostile: dict[str, HostileCase]) -> None:
    case = hostile["json_invalid"]
    with pytest.raises(FileRejected) as info, open_recipients(case.path):
        pass
    assert info.value.path == str(case.path)
    assert info.value.line == 4
    assert str(info.value).startswith(f"{case.path}:4: invalid JSON")


def test_missing_file_and_directory_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(FileRejected, match="no such file"), open_recipients(tmp_path / "nope.csv"):
        pass
    with pytest.raises(FileRejected, match="not a regular file"), open_recipients(tmp_path):
        pass
