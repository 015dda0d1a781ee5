"""Multipart uploads: each format, hostile files, size cap, wrong types, malformed bodies."""

from __future__ import annotations

import io
import json
from pathlib import Path

import aiohttp
import openpyxl
import pytest

from broadcaster.api.limits import ApiLimits
from broadcaster.api.uploads import FILE_EXTENSIONS
from tests.support.api import PHONES, form
from tests.support.hostile_files import build_hostile_files

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def xlsx_bytes(rows: list[list[object]]) -> bytes:
    wb = openpyxl.Workbook()
    for r in rows:
        wb.active.append(r)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


CSV = f"phone,name\n{PHONES[0]},Ana\n{PHONES[1]},Bob\n123,Nobody\n".encode()
FILES = {
    "csv": (CSV, "list.csv", "text/csv"),
    "txt": (f"{PHONES[0]}|Ana\n{PHONES[1]}|Bob\n123|Nobody\n".encode(), "list.txt", "text/plain"),
    "xlsx": (
        xlsx_bytes([["phone", "name"], [PHONES[0], "Ana"], [PHONES[1], "Bob"], ["123", "Nobody"]]),
        "list.xlsx",
        XLSX,
    ),
    "json": (
        json.dumps(
            [
                {"to": PHONES[0], "params": ["Ana"]},
                {"to": PHONES[1], "params": ["Bob"]},
                {"to": "123", "params": ["x"]},
            ]
        ).encode(),
        "list.json",
        "application/json",
    ),
}


@pytest.mark.parametrize("fmt", sorted(FILES))
async def test_upload_each_format(api, fmt):
    data, name, ctype = FILES[fmt]
    text = "Hi {0}" if fmt in ("txt", "json") else "Hi {name}"
    resp = await api.call(
        "POST",
        "/v1/broadcasts",
        data=form(
            data,
            name,
            ctype,
            **{
                "from": "55501",
                "text": text,
                "startDate": "2031-01-02T08:00",
                "timezone": "Europe/Madrid",
            },
        ),
    )
    body = await resp.json()
    assert resp.status == 201, body
    assert body["expectedMessages"] == 2 and body["invalidRows"] == 1 and body["source"] == name
    assert body["name"] == name and body["startDate"] == "2031-01-02T08:00:00+01:00"
    msgs = await api.json("GET", f"/v1/broadcasts/{body['id']}/messages", 200)
    assert [m["to"] for m in msgs["items"]] == PHONES[:2]
    errors = await api.json("GET", f"/v1/broadcasts/{body['id']}/errors", 200)
    assert [e["value"] for e in errors["items"]] == ["123"]


async def test_json_batch_file_carries_its_own_from_and_text(api):
    data = json.dumps(
        {"from": "55501", "text": "Hi {0}", "to": [{"to": PHONES[0], "params": ["Ana"]}]}
    ).encode()
    body = await api.json("POST", "/v1/broadcasts", 201, data=form(data, "batch.json"))
    assert (
        body["text"] == "Hi {0}" and body["shortcode"] == "55501" and body["expectedMessages"] == 1
    )


async def test_upload_without_text_or_code_names_the_field(api):
    body = await api.json(
        "POST", "/v1/broadcasts", 422, data=form(CSV, "a.csv", **{"from": "55501"})
    )
    assert body["field"] == "text"
    body = await api.json("POST", "/v1/broadcasts", 422, data=form(CSV, "a.csv", text="x"))
    assert body["field"] == "from"
    body = await api.json(
        "POST", "/v1/broadcasts", 422, data=form(CSV, "a.csv", text="{nope}", **{"from": "55501"})
    )
    assert body["field"] == "text" and "nope" in body["detail"]


async def test_upload_without_file_part_is_422(api):
    f = aiohttp.FormData()
    f.add_field("from", "55501")
    f.add_field("text", "x")
    f.add_field("other", b"x", filename="x.csv")
    body = await api.json("POST", "/v1/broadcasts", 422, data=f)
    assert body["field"] == "file"


async def test_two_files_are_422(api):
    f = form(CSV, "a.csv", text="x", **{"from": "55501"})
    f.add_field("file", CSV, filename="b.csv")
    body = await api.json("POST", "/v1/broadcasts", 422, data=f)
    assert body["field"] == "file"


HOSTILE = build_hostile_files(Path(__import__("tempfile").mkdtemp(prefix="api-hostile-")))


@pytest.mark.parametrize(
    "case",
    [c for c in HOSTILE if c.expectation[0] == "rejected" and not c.open_kwargs],
    ids=lambda c: c.name,
)
async def test_hostile_file_is_422_with_file_and_line(api, case):
    filename = case.path.name
    resp = await api.call(
        "POST",
        "/v1/broadcasts",
        data=form(case.path.read_bytes(), filename, **{"from": "55501", "text": "x"}),
    )
    body = await resp.json()
    if Path(filename).suffix.lower() not in FILE_EXTENSIONS:
        assert resp.status == 415, body  # refused by name before reading
        return
    assert resp.status == 422, body
    assert body["file"] == filename and body["field"] == "file"
    assert case.expectation[1] in body["detail"]
    if "line" in body:
        assert f"{filename}:{body['line']}" in body["detail"]
    # Nothing was stored.
    assert (await api.json("GET", "/v1/broadcasts", 200))["items"] == []


async def test_hostile_files_with_a_line_report_it(api):
    case = next(c for c in HOSTILE if c.name == "unclosed_quote")
    body = await api.json(
        "POST",
        "/v1/broadcasts",
        422,
        data=form(case.path.read_bytes(), case.path.name, **{"from": "55501", "text": "x"}),
    )
    assert body["line"] == 3


@pytest.mark.parametrize(
    "case",
    [
        c
        for c in HOSTILE
        if c.expectation[0] == "rows"
        and not c.open_kwargs
        and c.path.suffix.lower() in FILE_EXTENSIONS
    ][:12],
    ids=lambda c: c.name,
)
async def test_readable_hostile_files_make_broadcasts(api, case):
    resp = await api.call(
        "POST",
        "/v1/broadcasts",
        data=form(case.path.read_bytes(), case.path.name, **{"from": "55501", "text": "x"}),
    )
    body = await resp.json()
    assert resp.status == 201, body
    rows = case.expectation[1]
    assert body["expectedMessages"] + body["invalidRows"] + body["duplicates"] == len(rows)


async def test_oversized_upload_is_413(make_api):
    api = await make_api(
        limits=ApiLimits(upload_max_bytes=10_000, rate_per_s=1e6, rate_burst=1_000_000)
    )
    big = b"phone\n" + (PHONES[0].encode() + b"\n") * 1_000
    body = await api.json(
        "POST", "/v1/broadcasts", 413, data=form(big, "big.csv", text="x", **{"from": "55501"})
    )
    assert body["field"] == "file"
    assert (await api.json("GET", "/v1/broadcasts", 200))["items"] == []
    small = b"phone\n" + PHONES[0].encode() + b"\n"
    await api.json(
        "POST", "/v1/broadcasts", 201, data=form(small, "ok.csv", text="x", **{"from": "55501"})
    )


async def test_oversized_form_field_is_413(api):
    body = await api.json(
        "POST",
        "/v1/broadcasts",
        413,
        data=form(CSV, "a.csv", text="x" * 70_000, **{"from": "55501"}),
    )
    assert body["field"] == "text"


@pytest.mark.parametrize(
    "filename,ctype",
    [
        ("list.pdf", "application/pdf"),
        ("list.csv", "image/png"),
        ("list.exe", "application/octet-stream"),
        ("list.xls", "application/vnd.ms-excel"),
    ],
)
async def test_wrong_file_type_is_415(api, filename, ctype):
    body = await api.json(
        "POST",
        "/v1/broadcasts",
        415,
        data=form(CSV, filename, ctype, text="x", **{"from": "55501"}),
    )
    assert body["field"] == "file"


@pytest.mark.parametrize(
    "ctype,data",
    [
        ("multipart/form-data", b"--x\r\n"),
        ("multipart/form-data; boundary=abc", b"garbage without boundaries"),
        (
            "multipart/form-data; boundary=abc",
            b'--abc\r\nContent-Disposition: form-data; name="file"\r\n\r\nunterminated',
        ),
    ],
)
async def test_malformed_multipart_is_4xx(api, ctype, data):
    resp = await api.call("POST", "/v1/broadcasts", data=data, headers={"Content-Type": ctype})
    assert 400 <= resp.status < 500, await resp.text()


async def test_upload_with_sheet_and_request_fields(api):
    wb = openpyxl.Workbook()
    wb.active.title = "Notes"
    wb.active.append(["nothing here"])
    ws = wb.create_sheet("List")
    ws.append(["phone"])
    ws.append([PHONES[3]])
    out = io.BytesIO()
    wb.save(out)
    body = await api.json(
        "POST",
        "/v1/broadcasts",
        201,
        data=form(
            out.getvalue(),
            "book.xlsx",
            XLSX,
            **{
                "from": "55501",
                "text": "x",
                "sheet": "List",
                "requestDR": "false",
                "callbacks": "https://example.com/cb",
                "name": "from a workbook",
            },
        ),
    )
    assert body["expectedMessages"] == 1 and body["name"] == "from a workbook"
    body = await api.json(
        "POST",
        "/v1/broadcasts",
        422,
        data=form(
            out.getvalue(), "book.xlsx", XLSX, **{"from": "55501", "text": "x", "sheet": "Nope"}
        ),
    )
    assert "Nope" in body["detail"]
    body = await api.json(
        "POST",
        "/v1/broadcasts",
        422,
        data=form(
            out.getvalue(),
            "book.xlsx",
            XLSX,
            **{"from": "55501", "text": "x", "requestDR": "maybe"},
        ),
    )
    assert body["field"] == "requestDR"
